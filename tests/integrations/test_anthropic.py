"""rec.instrument on the real Anthropic SDK against the fake provider: Messages, its raw
event stream and its stream helper, sync and async, errors, pause."""

from __future__ import annotations

import asyncio
import gc
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest

from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.events import Event, decode_line
from flightdeck.recorder.instrument.calls import TEXT_TAG
from flightdeck.recorder.recorder import Paused, Recorder
from tests.integrations.instr_helpers import MILLION, calls, usage_of, within

MODEL = "claude-haiku-4-5"
ARGS: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
# genai-prices 0.2.3 list prices for claude-haiku-4-5 (USD per million tokens).
IN, OUT, READ, W5M, W1H = Decimal(1), Decimal(5), Decimal("0.10"), Decimal("1.25"), Decimal(2)
# fake ANTHROPIC_USAGE: input 100 (cache-exclusive), cache writes 3000 (2000 for 5 min, 1000 for 1 h),
# cache reads 5000, output 400.
BUCKETS = (100, 400, 5000, 3000, 0, 1000)
COST = (100 * IN + 400 * OUT + 5000 * READ + 2000 * W5M + 1000 * W1H) / MILLION


def test_messages_create(anthropic_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.latency = 0.8
    message = anthropic_client.messages.create(**ARGS)
    assert message.content[0].text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert (ev.provider, ev.route, ev.model, ev.stream) == ("anthropic", "direct", MODEL, False)
    assert usage_of(ev) == BUCKETS
    assert ev.cost_status == "priced" and Decimal(ev.cost_usd) == COST == Decimal("0.0071")
    assert within(ev.latency_ms.gen, 800) and ev.latency_ms.ttft is None


def test_raw_event_stream(anthropic_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5
    with anthropic_client.messages.create(**ARGS, stream=True) as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS and Decimal(ev.cost_usd) == COST
    assert within(ev.latency_ms.ttft, 300) and within(ev.latency_ms.ttft + ev.latency_ms.gen, 800)


def test_stream_helper_text_stream_with_thinking(anthropic_client: Any, fake_provider: Any,
                                                 log_path: Path) -> None:
    fake_provider.ttft, fake_provider.thinking, fake_provider.stream_time = 0.3, 0.3, 0.2
    with anthropic_client.messages.stream(**ARGS) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello, flightdeck!" and final.usage.output_tokens == 400
    assert [b.type for b in final.content] == ["thinking", "text"]
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS
    assert within(ev.latency_ms.ttft, 300)  # the first thinking delta
    assert float(ev.tags[TEXT_TAG]) > ev.latency_ms.ttft  # the first visible text, later
    assert float(ev.tags[TEXT_TAG]) >= 300 + 300 - 5  # the server sent no text before that


def test_get_final_message_without_iterating(anthropic_client: Any, log_path: Path) -> None:
    with anthropic_client.messages.stream(**ARGS) as stream:
        assert stream.get_final_text() == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS


def test_error_event_mid_stream(anthropic_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.fail_after = 2
    seen = []
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"), \
            anthropic_client.messages.stream(**ARGS) as stream:
        for t in stream.text_stream:
            seen.append(t)
    assert seen == ["Hello", ","]
    (ev,) = calls(log_path)
    assert ev.error and "Overloaded" in ev.error
    assert ev.cost_usd is None and ev.cost_status == "unknown"


def test_helper_abandoned_half_way(anthropic_client: Any, log_path: Path) -> None:
    manager = anthropic_client.messages.stream(**ARGS)
    stream = manager.__enter__()  # entered, never exited nor read to its end
    next(iter(stream))
    del stream, manager
    gc.collect()
    (ev,) = calls(log_path)
    assert "abandoned" in (ev.message or "") and ev.cost_status == "unknown"


async def test_async_create_stream(async_anthropic_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft = 0.3
    stream = await async_anthropic_client.messages.create(**ARGS, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "message_stop"
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS and within(ev.latency_ms.ttft, 300)


async def test_async_stream_helper(async_anthropic_client: Any, log_path: Path) -> None:
    async with async_anthropic_client.messages.stream(**ARGS) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello, flightdeck!" and final.stop_reason == "end_turn"
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS


async def test_async_not_streamed(async_anthropic_client: Any, log_path: Path) -> None:
    message = await async_anthropic_client.messages.create(**ARGS)
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 1000
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS


def _events(path: Path) -> list[Event]:
    out = []
    for line in path.read_bytes().splitlines():
        ev = decode_line(line)
        assert isinstance(ev, Event)
        out.append(ev)
    return out


def test_paused_agent_waits_until_a_resume_command(anthropic_client: Any, rec: Recorder, fake_provider: Any,
                                                   log_path: Path) -> None:
    side = sidecar_path(log_path)
    append_command(side, new_command("pause", reason="test"))
    assert rec.paused
    done = threading.Event()
    result: list[Any] = []

    def agent() -> None:
        result.append(anthropic_client.messages.create(**ARGS))
        done.set()

    worker = threading.Thread(target=agent)
    worker.start()
    # The agent is held before its request: nothing reaches the server while paused.
    assert not done.wait(0.3)
    assert fake_provider.bodies("/messages") == []
    append_command(side, new_command("resume"))
    assert done.wait(10)
    worker.join()
    assert result[0].content[0].text == "Hello, flightdeck!"
    kinds = [(e.kind, e.cmd) for e in _events(log_path) if e.kind in ("signal_ack", "llm_call")]
    assert kinds == [("signal_ack", "pause"), ("signal_ack", "resume"), ("llm_call", None)]


def test_paused_agent_raises_with_on_pause_raise(fake_provider: Any, log_path: Path) -> None:
    rec = Recorder(log_path, run="r-p", on_pause="raise")
    client = rec.instrument(anthropic.Anthropic(base_url=fake_provider.url, api_key="k", max_retries=0),
                            provider="anthropic", route="direct")
    rec.pause("budget")
    with pytest.raises(Paused, match="budget"):
        client.messages.create(**ARGS)
    with pytest.raises(Paused), client.messages.stream(**ARGS):
        pass
    rec.close()
    assert fake_provider.bodies("/messages") == [] and calls(log_path) == []


def test_two_clients_keep_their_own_recorders(fake_provider: Any, tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rec_a, rec_b = Recorder(a_path, run="a"), Recorder(b_path, run="b")
    a = rec_a.instrument(anthropic.Anthropic(base_url=fake_provider.url, api_key="k", max_retries=0),
                         provider="anthropic", route="direct")
    b = rec_b.instrument(anthropic.Anthropic(base_url=fake_provider.url, api_key="k", max_retries=0),
                         provider="anthropic", route="direct")
    a.messages.create(**ARGS)
    b.messages.create(**ARGS)
    b.messages.create(**ARGS)
    rec_a.close()
    rec_b.close()
    assert len(calls(a_path)) == 1 and len(calls(b_path)) == 2


def test_loop_guardrail_pauses_through_the_wrapper(fake_provider: Any, log_path: Path) -> None:
    rules = {"rule": [{"name": "loop", "type": "loop", "threshold": 3, "window": "2m", "action": "pause"}]}
    rec = Recorder(log_path, run="r-loop", rules=rules, on_pause="raise")
    client = rec.instrument(anthropic.Anthropic(base_url=fake_provider.url, api_key="k", max_retries=0),
                            provider="anthropic", route="direct")
    for _ in range(3):  # the same prompt three times: the third call fires the rule
        client.messages.create(**ARGS)
    with pytest.raises(Paused, match="same prompt 3 times"):
        client.messages.create(**ARGS)
    rec.close()
    evs = calls(log_path)
    assert len(evs) == 3 and len({e.prompt_hash for e in evs}) == 1 and evs[0].prompt_hash
    assert len(fake_provider.bodies("/messages")) == 3


async def test_paused_async_agent_does_not_block_its_event_loop(async_anthropic_client: Any, rec: Recorder,
                                                                log_path: Path) -> None:
    side = sidecar_path(log_path)
    append_command(side, new_command("pause"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def resume_later() -> None:
        while ticks < 10:  # the loop keeps running while the agent waits
            await asyncio.sleep(0.01)
        append_command(side, new_command("resume"))

    tick = asyncio.create_task(ticker())
    message, _ = await asyncio.gather(async_anthropic_client.messages.create(**ARGS), resume_later())
    tick.cancel()
    assert message.content[0].text == "Hello, flightdeck!" and ticks >= 10
    (ev,) = calls(log_path)
    assert usage_of(ev) == BUCKETS
