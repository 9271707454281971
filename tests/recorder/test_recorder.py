"""The Recorder's calls: stage timings, failures, async, usage, cost, drops, rules, stats."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from rec_helpers import FakeMono, of_kind, read_events

from flightdeck.core.events import Usage
from flightdeck.core.rules import Firing
from flightdeck.recorder.recorder import Paused, Recorder, prompt_hash


def test_streamed_call_stage_timings_are_exact(tmp_path: Path) -> None:
    mono = FakeMono()
    log = tmp_path / "run.jsonl"
    rec = Recorder(log, run="r-1", agent="a", monotonic=mono, clock=lambda: 1_764_216_000.0)
    with rec.call(provider="anthropic", model="claude-3-5-sonnet", name="reflect", step=7, stream=True) as c:
        mono.advance(0.041)
        c.sent()
        mono.advance(0.4025)
        c.first_token()
        c.first_token()  # a later token does not move ttft
        mono.advance(0.8031)
        c.received()
        c.set_usage(Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000))
        mono.advance(0.0127)
    rec.close()
    kinds = [e.kind for e in read_events(log)]
    assert kinds == ["run_start", "llm_call", "run_end"]
    ev = of_kind(log, "llm_call")[0]
    lat = ev.latency_ms
    assert (lat.pre, lat.ttft, lat.gen, lat.post) == (41.0, 402.5, 803.1, 12.7)
    assert lat.total == pytest.approx(1259.3)
    assert (ev.run, ev.agent, ev.provider, ev.model, ev.name, ev.step, ev.stream, ev.route) == (
        "r-1", "a", "anthropic", "claude-3-5-sonnet", "reflect", 7, True, "direct")
    assert ev.usage.cache_read_tokens == 8000
    assert ev.ts == 1_764_216_000.0


def test_unstreamed_call_gen_runs_from_sent_to_received(tmp_path: Path) -> None:
    mono = FakeMono()
    rec = Recorder(tmp_path / "r.jsonl", monotonic=mono)
    with rec.call(provider="openai", model="gpt-4o") as c:
        mono.advance(0.010)
        c.sent()
        mono.advance(0.500)
        c.received()
        c.set_usage({"prompt_tokens": 10, "completion_tokens": 2})
    rec.close()
    lat = of_kind(tmp_path / "r.jsonl", "llm_call")[0].latency_ms
    assert (lat.pre, lat.ttft, lat.gen, lat.post, lat.total) == (10.0, None, 500.0, 0.0, 510.0)


def test_failed_call_is_recorded_and_reraised(tmp_path: Path) -> None:
    mono = FakeMono()
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, monotonic=mono)
    with pytest.raises(TimeoutError, match="upstream"), rec.call(provider="openai", model="gpt-4o") as c:
        c.sent()
        mono.advance(2.0)
        raise TimeoutError("upstream timed out")
    rec.close()
    ev = of_kind(log, "llm_call")[0]
    assert ev.error == "TimeoutError: upstream timed out"
    assert ev.latency_ms.gen is None and ev.latency_ms.total == 2000.0
    assert ev.usage == Usage()


async def test_async_with(tmp_path: Path) -> None:
    mono = FakeMono()
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, monotonic=mono)
    async with rec.call(provider="openai", model="gpt-4o-mini", name="plan") as c:
        c.sent()
        mono.advance(0.25)
        c.received()
        c.set_usage({"prompt_tokens": 100, "completion_tokens": 20})
    with pytest.raises(KeyError):
        async with rec.call(provider="openai", model="gpt-4o-mini"):
            raise KeyError("k")
    rec.close()
    calls = of_kind(log, "llm_call")
    assert [c.name for c in calls] == ["plan", None]
    assert calls[0].latency_ms.gen == 250.0
    assert calls[0].usage.input_tokens == 100 and calls[0].usage.output_tokens == 20
    assert calls[1].error == "KeyError: 'k'"


def test_event_ids_are_unique(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    a = Recorder(log, agent="a")
    b = Recorder(log, agent="b")
    for rec in (a, b, a, b):
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
    a.close()
    b.close()
    ids = [e.id for e in read_events(log)]
    assert len(ids) == len(set(ids)) == 8


def test_priced_from_normalised_usage(tmp_path: Path) -> None:
    from flightdeck.core.pricing import price

    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    raw = {"input_tokens": 1200, "output_tokens": 350, "cache_read_input_tokens": 8000,
           "cache_creation_input_tokens": 0}
    with rec.call(provider="anthropic", model="claude-3-5-sonnet-20241022") as c:
        c.set_usage(raw)
    rec.close()
    ev = of_kind(log, "llm_call")[0]
    expected = price("anthropic", "claude-3-5-sonnet-20241022", ev.usage, ev.ts)
    assert ev.cost_status == expected.status == "priced"
    assert Decimal(ev.cost_usd) == expected.usd
    assert ev.usage.input_tokens == 1200 and ev.usage.cache_read_tokens == 8000


def test_reported_cost_and_tags_and_prompt_hash(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    messages = [{"role": "user", "content": "secret text"}]
    with rec.call(provider="openrouter", model="some/unknown-model", tags={"team": "x"}) as c:
        c.set_usage({"prompt_tokens": 10, "completion_tokens": 2})
        c.set_cost("0.0042")
        c.set_prompt(messages)
        c.tag("attempt", 2)
    rec.close()
    ev = of_kind(log, "llm_call")[0]
    assert ev.route == "proxy"
    assert ev.cost_status == "reported" and ev.cost_usd == "0.004200"
    assert ev.tags == {"team": "x", "attempt": "2"}
    assert ev.prompt_hash == prompt_hash([{"content": "secret text", "role": "user"}])
    assert b"secret text" not in log.read_bytes()


def test_unreadable_usage_gives_partial_tokens_and_a_message(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage({"prompt_tokens": 100, "completion_tokens": "lots"})
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage("not a usage object at all")
    rec.close()
    first, second = of_kind(log, "llm_call")
    assert first.usage.input_tokens == 100 and first.usage.output_tokens == 0
    assert first.message and "completion_tokens" in first.message
    assert second.usage == Usage() and second.message
    assert "flightdeck:" in capfd.readouterr().err


def test_write_errors_never_raise_and_drops_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    real_write = os.write
    failing = {"n": 2}

    def flaky_write(fd: int, data: bytes) -> int:
        if failing["n"] > 0 and data.startswith(b'{"v":1'):
            failing["n"] -= 1
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky_write)
    for _ in range(3):
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
    monkeypatch.setattr(os, "write", real_write)
    rec.close()
    calls = of_kind(log, "llm_call")
    assert len(calls) == 1 and calls[0].dropped == 2
    assert of_kind(log, "run_end")[0].dropped is None  # reported once, not again
    assert rec.dropped == 2
    err = capfd.readouterr().err
    assert err.count("No space left on device") == 1  # warned once


def test_unopenable_file_never_raises(tmp_path: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    rec = Recorder(target)
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
    rec.close()
    assert rec.dropped == 3  # run_start, llm_call, run_end


def test_in_process_loop_rule_pauses_with_alert_and_ack(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rules = {"rule": [{"name": "loop", "type": "loop", "threshold": 3, "window": "1m", "action": "pause"}]}
    rec = Recorder(log, rules=rules, on_pause="raise", agent="a")
    for _ in range(3):
        with rec.call(provider="openai", model="gpt-4o", name="reflect") as c:
            c.set_prompt(["reflect on the last failure"])
            c.set_usage(Usage(input_tokens=10))
    assert rec.paused
    with pytest.raises(Paused, match="same prompt 3 times"), rec.call(provider="openai", model="gpt-4o"):
        pass
    rec.close()
    alert = of_kind(log, "alert")[0]
    assert (alert.rule, alert.metric, alert.value, alert.threshold, alert.action) == ("loop", "loop", 3.0, 3.0, "pause")
    ack = of_kind(log, "signal_ack")[0]
    assert ack.cmd == "pause" and ack.state == {"paused": True, "models": {}}
    assert len(of_kind(log, "llm_call")) == 3  # the refused call was never made


def test_token_spike_callback_and_downgrade_rule(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    seen: list[Firing] = []
    rules = {"rule": [
        {"name": "spike", "type": "token_spike", "threshold": 5000, "action": "alert"},
        {"name": "big", "type": "token_spike", "threshold": 8000, "action": "downgrade"},
    ]}

    def boom(_: Firing) -> None:
        raise RuntimeError("a buggy callback")

    rec = Recorder(log, rules=rules, downgrades={"gpt-4o": "gpt-4o-mini"},
                   on_token_spike=seen.append, on_alert=boom)
    model = rec.model("gpt-4o")
    with rec.call(provider="openai", model=model) as c:
        c.set_usage(Usage(input_tokens=9000))
    assert [f.rule for f in seen] == ["spike", "big"]
    assert rec.model("gpt-4o") == "gpt-4o-mini"
    rec.close()
    assert [a.rule for a in of_kind(log, "alert")] == ["spike", "big"]
    assert of_kind(log, "signal_ack")[0].state["models"] == {"gpt-4o": "gpt-4o-mini"}


def test_stats_uses_the_monitor_aggregation(tmp_path: Path) -> None:
    mono = FakeMono()
    now = [1_764_216_000.0]
    rec = Recorder(tmp_path / "r.jsonl", monotonic=mono, clock=lambda: now[0])
    for i in range(10):
        with rec.call(provider="anthropic", model="claude-3-5-sonnet-20241022") as c:
            c.sent()
            mono.advance(1.0 + i)
            c.received()
            c.set_usage(Usage(input_tokens=1000, cache_read_tokens=3000, output_tokens=100))
        now[0] += 1
    st = rec.stats(300)
    rec.close()
    assert st.calls == 10
    assert st.cache_hit_rate == pytest.approx(0.75)
    assert st.mean_prompt_tokens == pytest.approx(4000)
    assert st.spend_usd > 0 and isinstance(st.spend_usd, Decimal)
    assert st.p90_total_ms == pytest.approx(9000, rel=0.02)


def test_ids_unique_across_threads(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "r.jsonl"
    rec = Recorder(log, stats=False)

    def work() -> None:
        for _ in range(200):
            with rec.call(provider="openai", model="gpt-4o") as c:
                c.set_usage(Usage(input_tokens=1))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec.close()
    ids = [e.id for e in read_events(log)]
    assert len(ids) == 802 == len(set(ids))


def test_an_event_that_cannot_be_encoded_is_counted_as_dropped(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
        c._tags = {"k": object()}  # type: ignore[dict-item]  # what tag() would never store
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
    rec.close()
    calls = of_kind(log, "llm_call")
    assert len(calls) == 1 and calls[0].dropped == 1
    assert rec.dropped == 1 and rec.faults["record"] == 1
