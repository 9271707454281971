"""rec.instrument on the real OpenAI SDK against the fake provider: Chat Completions and Responses."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from flightdeck.recorder.instrument.calls import TEXT_TAG
from flightdeck.recorder.recorder import Recorder
from tests.integrations.instr_helpers import MILLION, calls, usage_of, within

MESSAGES = [{"role": "user", "content": "hi"}]
# Hand-worked from genai-prices 0.2.3 list prices (USD per million tokens).
GPT4O = {"input": Decimal("2.50"), "cache_read": Decimal("1.25"), "output": Decimal("10.00")}
O4MINI = {"input": Decimal("1.10"), "cache_read": Decimal("0.275"), "output": Decimal("4.40")}
# fake CHAT_USAGE: prompt 1500 of which 1024 cached; completion 300 of which 100 reasoning.
CHAT_BUCKETS = (476, 300, 1024, 0, 100, 0)
CHAT_COST = (476 * GPT4O["input"] + 1024 * GPT4O["cache_read"] + 300 * GPT4O["output"]) / MILLION
# fake RESPONSES_USAGE: input 2000 of which 1536 cached; output 500 of which 320 reasoning.
RESPONSES_BUCKETS = (464, 500, 1536, 0, 320, 0)
RESPONSES_COST = (464 * O4MINI["input"] + 1536 * O4MINI["cache_read"] + 500 * O4MINI["output"]) / MILLION


def test_chat_not_streamed(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.latency = 0.8
    reply = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert (ev.provider, ev.route, ev.model, ev.stream) == ("openai", "direct", "gpt-4o", False)
    assert usage_of(ev) == CHAT_BUCKETS
    assert ev.cost_status == "priced" and Decimal(ev.cost_usd) == CHAT_COST == Decimal("0.00547")
    lat = ev.latency_ms
    assert lat.ttft is None and lat.pre is None and lat.post is None
    assert within(lat.gen, 800) and lat.total == lat.gen


def test_chat_stream_gets_usage_the_caller_did_not_ask_for(openai_client: Any, fake_provider: Any,
                                                          log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = list(stream)
    # The caller did not ask for usage: the usage-only chunk (empty choices) stays hidden.
    assert chunks and all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello, flightdeck!"
    (body,) = fake_provider.bodies("/chat/completions")
    assert body["stream_options"] == {"include_usage": True}
    (ev,) = calls(log_path)
    assert ev.stream is True and usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST
    assert within(ev.latency_ms.ttft, 300) and within(ev.latency_ms.ttft + ev.latency_ms.gen, 800)
    assert ev.tags is None or TEXT_TAG not in ev.tags  # the first token was visible text


def test_chat_stream_keeps_the_usage_chunk_a_caller_asked_for(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                               stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1500
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS


def test_server_refusing_stream_options_gives_unknown_not_zero(openai_client: Any, fake_provider: Any,
                                                               log_path: Path) -> None:
    fake_provider.refuse_stream_options = True
    chunks = list(openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, flightdeck!"
    first, second = fake_provider.bodies("/chat/completions")
    assert "stream_options" in first and "stream_options" not in second
    (ev,) = calls(log_path)
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert "refused stream_options.include_usage" in (ev.message or "")
    assert ev.error is None


def test_reasoning_deltas_count_as_first_token(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft, fake_provider.thinking, fake_provider.stream_time = 0.2, 0.4, 0.1
    for _ in openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
        pass
    (ev,) = calls(log_path)
    assert within(ev.latency_ms.ttft, 200)
    # thinking for 0.4 s (and a gap of 0.4/3 s) before the first visible text
    assert ev.tags is not None and float(ev.tags[TEXT_TAG]) > ev.latency_ms.ttft
    assert float(ev.tags[TEXT_TAG]) >= 200 + 400 - 5  # the server sent no text before that


def test_connection_dropped_mid_stream(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.fail_after = 2
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 3  # the role chunk and two content chunks
    (ev,) = calls(log_path)
    assert ev.error and "APIConnectionError" in ev.error
    assert ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.latency_ms.ttft is not None


def test_abandoned_stream_is_written_when_collected(openai_client: Any, log_path: Path) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    assert calls(log_path) == []
    del stream  # freed by its reference count: no cycle keeps it for a later collection
    (ev,) = calls(log_path)
    assert ev.cost_status == "unknown" and ev.cost_usd is None
    assert "abandoned after 2 events" in (ev.message or "")


def test_stream_closed_early(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        next(stream)
    (ev,) = calls(log_path)
    assert "closed after 1 events" in (ev.message or "") and ev.cost_status == "unknown"


def test_http_error_before_the_stream(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.status = 503
    with pytest.raises(openai.InternalServerError):
        openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    (ev,) = calls(log_path)
    assert "InternalServerError" in (ev.error or "") and ev.cost_status == "unknown"


async def test_four_concurrent_async_streams(async_openai_client: Any, fake_provider: Any,
                                             log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5

    async def one(i: int) -> str:
        stream = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        text = ""
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
        return text

    texts = await asyncio.gather(*(one(i) for i in range(4)))
    assert texts == ["Hello, flightdeck!"] * 4
    evs = calls(log_path)
    assert len(evs) == 4 and len({e.id for e in evs}) == 4
    for ev in evs:
        assert usage_of(ev) == CHAT_BUCKETS and Decimal(ev.cost_usd) == CHAT_COST
        lat = ev.latency_ms
        assert within(lat.ttft, 300) and within(lat.ttft + lat.gen, 800)
    # Concurrent, not one after another: the total of each is far below 4 x 800 ms.
    assert all(ev.latency_ms.total < 4 * 800 for ev in evs)


async def test_async_not_streamed(async_openai_client: Any, log_path: Path) -> None:
    reply = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.usage.prompt_tokens == 1500
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS and ev.stream is False


def test_responses_create(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.latency = 0.3
    reply = openai_client.responses.create(model="o4-mini", input="hi")
    assert reply.output_text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == RESPONSES_BUCKETS
    assert Decimal(ev.cost_usd) == RESPONSES_COST == Decimal("0.0031328")
    assert within(ev.latency_ms.gen, 300)


def test_responses_raw_event_stream(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft, fake_provider.stream_time = 0.3, 0.5
    events = list(openai_client.responses.create(model="o4-mini", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    (ev,) = calls(log_path)
    assert usage_of(ev) == RESPONSES_BUCKETS and ev.stream is True
    assert within(ev.latency_ms.ttft, 300) and within(ev.latency_ms.ttft + ev.latency_ms.gen, 800)


def test_responses_stream_helper(openai_client: Any, fake_provider: Any, log_path: Path) -> None:
    fake_provider.ttft = 0.3
    with openai_client.responses.stream(model="o4-mini", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello, flightdeck!"
    (ev,) = calls(log_path)  # the helper calls the client's create: still one event
    assert usage_of(ev) == RESPONSES_BUCKETS and within(ev.latency_ms.ttft, 300)


async def test_async_responses_stream_helper(async_openai_client: Any, log_path: Path) -> None:
    async with async_openai_client.responses.stream(model="o4-mini", input="hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == RESPONSES_BUCKETS


def test_downgrade_is_substituted_and_the_asked_model_kept(fake_provider: Any, log_path: Path) -> None:
    rec = Recorder(log_path, run="r-d", downgrades={"gpt-4o": "gpt-4o-mini"})
    client = rec.instrument(openai.OpenAI(base_url=fake_provider.openai_url, api_key="k", max_retries=0),
                            provider="openai", route="direct")
    rec.model("gpt-4o")
    from flightdeck.core.control import append_command, new_command, sidecar_path
    append_command(sidecar_path(log_path), new_command("downgrade"))
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    rec.close()
    (body,) = fake_provider.bodies("/chat/completions")
    assert body["model"] == "gpt-4o-mini"
    (ev,) = calls(log_path)
    assert ev.model == "gpt-4o-mini" and ev.tags == {"asked_model": "gpt-4o"}
    mini = (476 * Decimal("0.15") + 1024 * Decimal("0.075") + 300 * Decimal("0.60")) / MILLION
    assert Decimal(ev.cost_usd) == mini


def test_only_this_client_is_instrumented(rec: Recorder, fake_provider: Any, log_path: Path) -> None:
    plain = openai.OpenAI(base_url=fake_provider.openai_url, api_key="k", max_retries=0)
    wrapped = rec.instrument(openai.OpenAI(base_url=fake_provider.openai_url, api_key="k", max_retries=0),
                             provider="openai", route="direct")
    plain.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert calls(log_path) == []
    assert "create" not in vars(plain.chat.completions)
    assert openai.resources.chat.completions.Completions.create is not wrapped.chat.completions.create
    # Instrumenting twice replaces the recording instead of stacking it.
    rec.instrument(wrapped, provider="openai", route="direct")
    wrapped.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(calls(log_path)) == 1


def test_not_a_client_is_a_clear_error(rec: Recorder) -> None:
    with pytest.raises(TypeError, match="OpenAI or Anthropic SDK client"):
        rec.instrument(object())


def test_chat_stream_helper_goes_through_the_wrapped_create(openai_client: Any, log_path: Path) -> None:
    with openai_client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "content.delta" in kinds and final.choices[0].message.content == "Hello, flightdeck!"
    (ev,) = calls(log_path)
    assert usage_of(ev) == CHAT_BUCKETS and ev.stream is True


def test_parse_methods_are_recorded(openai_client: Any, log_path: Path) -> None:
    chat = openai_client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)
    resp = openai_client.responses.parse(model="o4-mini", input="hi")
    assert chat.choices[0].message.content == resp.output_text == "Hello, flightdeck!"
    first, second = calls(log_path)
    assert usage_of(first) == CHAT_BUCKETS and usage_of(second) == RESPONSES_BUCKETS


def test_loop_broken_off_then_dropped_is_written_as_abandoned(openai_client: Any, log_path: Path) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    assert calls(log_path) == []  # the caller may still read on
    del stream
    (ev,) = calls(log_path)
    assert "abandoned after 1 events" in (ev.message or "")


async def test_async_stream_closed_early_and_failing(async_openai_client: Any, fake_provider: Any,
                                                    log_path: Path) -> None:
    async with await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                                 stream=True) as stream:
        async for _ in stream:
            break
    fake_provider.fail_after = 2
    failing = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for _ in failing:
            pass
    closed, failed = calls(log_path)
    assert "closed after 1 events" in (closed.message or "") and closed.cost_status == "unknown"
    assert "APIConnectionError" in (failed.error or "") and failed.cost_usd is None
