"""The recorder never writes a line the readers would reject (issue 9: the Recorder could write 10**400 tokens)."""

from __future__ import annotations

from pathlib import Path

from flightdeck import Recorder
from flightdeck.core.events import Event, decode_line


def _lines(path: Path) -> list[Event]:
    out = []
    for raw in path.read_bytes().splitlines():
        got = decode_line(raw)
        assert isinstance(got, Event), got  # every line the recorder wrote reads back
        out.append(got)
    return out


def test_out_of_bounds_usage_is_left_out_and_said(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log, run="r-1", agent="a")
    with rec.call(provider="openai", model="gpt-4o") as call:
        call.sent()
        call.received()
        call.set_usage({"prompt_tokens": 10**400, "completion_tokens": 5, "total_tokens": 10**400})
    with rec.call(provider="openai", model="gpt-4o") as call:
        call.sent()
        call.received()
        call.set_usage({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
    rec.close()
    calls = [e for e in _lines(log) if e.kind == "llm_call"]
    assert len(calls) == 2
    bad, good = calls
    assert bad.usage is not None and bad.usage.input_tokens == 0 and bad.cost_usd is None
    assert bad.cost_status == "unknown" and bad.message and "out of bounds" in bad.message
    assert good.usage is not None and good.usage.input_tokens == 12 and good.cost_usd
    assert rec.faults["record"] >= 1


def test_out_of_bounds_reported_cost_is_left_out(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log, run="r-1", agent="a")
    with rec.call(provider="openai", model="gpt-4o") as call:
        call.sent()
        call.received()
        call.set_usage({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17})
        call.set_cost("1" + "0" * 20)  # $10^20: beyond the line format's $10^9 a call
    rec.close()
    (ev,) = [e for e in _lines(log) if e.kind == "llm_call"]
    assert ev.cost_usd is None and ev.cost_status == "unknown" and ev.message and "cost out of bounds" in ev.message


def test_check_event_takes_its_fast_path_only_for_stages_in_bounds() -> None:
    from flightdeck.core.events import MAX_MILLIS, Latency, Rejected, Usage, check_event

    def call(lat: Latency) -> Event:
        return Event(v=1, ts=1764216000.0, kind="llm_call", id="a-1", run="r", usage=Usage(), latency_ms=lat)

    assert check_event(call(Latency(pre=1.0, ttft=2.0, gen=3.0, post=4.0, total=10.0))) is None
    bad = check_event(call(Latency(total=float(MAX_MILLIS))))
    assert isinstance(bad, Rejected) and bad.reason == "bad latency_ms.total"
    bad = check_event(call(Latency(gen=-1.0)))
    assert isinstance(bad, Rejected) and bad.reason == "bad latency_ms.gen"
