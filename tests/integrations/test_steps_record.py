"""rec.step (pre/post around instrumented calls, per context) and rec.record (calls timed elsewhere)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from flightdeck.recorder.recorder import Recorder
from tests.integrations.instr_helpers import calls, within

USAGE = {"input_tokens": 1000, "output_tokens": 200, "cache_read_input_tokens": 0,
         "cache_creation_input_tokens": 0}
ARGS: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 64,
                        "messages": [{"role": "user", "content": "hi"}]}


class Mono:
    """A stage clock the test sets by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_step_stages_with_two_calls(log_path: Path) -> None:
    mono = Mono()
    rec = Recorder(log_path, run="r-s", monotonic=mono)
    with rec.step("plan", 3):  # starts at 100.0
        mono.t = 100.04
        rec.record(provider="anthropic", model="claude-haiku-4-5", usage=USAGE,
                   started=100.04, first_token=100.44, ended=101.24)
        assert calls(log_path) == []  # held until the step ends: its post is not known yet
        mono.t = 101.30
        rec.record(provider="anthropic", model="claude-haiku-4-5", usage=USAGE, started=101.30, ended=101.90)
        mono.t = 102.0
    rec.close()
    first, second = calls(log_path)
    assert (first.name, first.step, second.name, second.step) == ("plan", 3, "plan", 3)
    a, b = first.latency_ms, second.latency_ms
    assert (a.pre, a.ttft, a.gen, a.post, a.total) == (40.0, 400.0, 800.0, None, 1240.0)
    # The gap between the two calls is counted once: as the second call's pre.
    assert (b.pre, b.ttft, b.gen, b.post, b.total) == (60.0, None, 600.0, 100.0, 760.0)
    assert first.stream is True and second.stream is False


def test_step_around_an_instrumented_call(anthropic_client: Any, log_path: Path, rec: Recorder) -> None:
    with rec.step("reflect"):
        time.sleep(0.2)  # prompt building
        anthropic_client.messages.create(**ARGS)
        time.sleep(0.3)  # tool calls, memory writes
    anthropic_client.messages.create(**ARGS)  # outside any step
    inside, outside = calls(log_path)
    assert inside.name == "reflect" and within(inside.latency_ms.pre, 200) and within(inside.latency_ms.post, 300)
    assert inside.latency_ms.total >= inside.latency_ms.pre + inside.latency_ms.gen + inside.latency_ms.post - 0.01
    assert outside.name is None and outside.latency_ms.pre is None and outside.latency_ms.post is None
    assert outside.latency_ms.total == outside.latency_ms.gen


def test_stream_finished_after_its_step_is_written_without_post(anthropic_client: Any, log_path: Path,
                                                                rec: Recorder) -> None:
    with rec.step("late"):
        stream = anthropic_client.messages.create(**ARGS, stream=True)
    for _ in stream:
        pass
    (ev,) = calls(log_path)
    assert ev.name == "late" and ev.latency_ms.pre is not None and ev.latency_ms.post is None


async def test_concurrent_tasks_have_their_own_steps(async_anthropic_client: Any, fake_provider: Any,
                                                     log_path: Path, rec: Recorder) -> None:
    fake_provider.ttft = 0.2

    async def agent(name: str, pre: float) -> None:
        async with rec.step(name):
            await asyncio.sleep(pre)
            async with async_anthropic_client.messages.stream(**ARGS) as stream:
                await stream.get_final_message()

    await asyncio.gather(agent("a", 0.1), agent("b", 0.3))
    by_name = {ev.name: ev for ev in calls(log_path)}
    assert set(by_name) == {"a", "b"}
    assert within(by_name["a"].latency_ms.pre, 100) and within(by_name["b"].latency_ms.pre, 300)
    assert by_name["a"].latency_ms.pre < by_name["b"].latency_ms.pre


def test_record_with_epoch_times(log_path: Path, rec: Recorder) -> None:
    t = time.time()
    rec.record(provider="anthropic", model="claude-haiku-4-5", usage=USAGE,
               started=t - 1.0, first_token=t - 0.7, ended=t, name="summarise", cost_usd="0.0042")
    (ev,) = calls(log_path)
    assert ev.name == "summarise" and ev.stream is True
    assert abs(ev.latency_ms.ttft - 300.0) < 0.01 and abs(ev.latency_ms.gen - 700.0) < 0.01
    assert ev.cost_status == "reported" and Decimal(ev.cost_usd) == Decimal("0.0042")


def test_record_with_bad_times_or_no_usage_never_raises(log_path: Path, rec: Recorder) -> None:
    rec.record(provider="anthropic", model="claude-haiku-4-5", usage=USAGE,
               started=time.time(), ended=time.perf_counter())
    rec.record(provider="anthropic", model="claude-haiku-4-5", started=5.0, ended=4.0, error="HTTP 429")
    mixed, backwards = calls(log_path)
    assert "mix epoch and monotonic" in (mixed.message or "") and mixed.latency_ms.total is None
    assert mixed.cost_status == "priced"
    assert "does not hold" in (backwards.message or "") and backwards.error == "Error: HTTP 429"
    assert backwards.cost_usd is None and backwards.cost_status == "unknown"
