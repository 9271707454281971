"""The report's inlined ``add_many`` (``Aggregator._add_many_report``) against ``_add`` per event.

``Aggregator.LEAN = False`` is the plain version. Both must give the same
Snapshot, field by field, and the same kept events, on events that take
every branch: duplicates, unknown and odd costs, costs finer than a money
unit, future dates, ISO timestamps, other kinds, dropped counts, errors,
cache reads (savings), local calls, calls without usage or latency.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event, Latency, Usage

T0 = 1_764_216_000.0
MODELS = [("anthropic", "claude-sonnet-4-5-20250929"), ("openai", "gpt-4o"), ("openai", "no-such-model"),
          ("google", "gemini-2.5-pro")]


def _events(seed: int, n: int = 3000) -> list[Event]:
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(n):
        pick = rng.randrange(30)
        if pick == 0 and out:
            out.append(rng.choice(out))  # a repeated id: a duplicate
            continue
        ts: float | str = T0 + i * rng.uniform(0.5, 90)
        if pick == 1:
            ts = "2025-11-27T05:00:00Z"  # an ISO time: _add converts it
        if pick == 2:
            ts = T0 + 10 * 86400 * 365  # beyond the clock: a future call
        if pick == 3:
            out.append(Event(v=1, ts=ts, kind=rng.choice(["run_start", "run_end", "alert", "weird"]),
                             id=f"k{seed}-{i}", run=f"r{i % 5}", rule="spend", metric="cost", value=1.0,
                             threshold=0.5, action="notify"))
            continue
        provider, model = rng.choice(MODELS)
        cost: Any = rng.choice([f"0.{rng.randint(0, 999_999):06d}", f"{rng.randint(0, 3)}.00125", None,
                                "0.0000000000001234567", "12", "not-a-number"])
        usage = None if pick == 4 else Usage(
            input_tokens=rng.randint(0, 5000), output_tokens=rng.randint(0, 900),
            cache_read_tokens=rng.choice([0, rng.randint(0, 40_000)]), cache_write_tokens=rng.randint(0, 300),
            reasoning_tokens=0, cache_write_1h_tokens=0)
        latency = None if pick == 5 else Latency(pre=rng.uniform(0, 50), ttft=rng.uniform(50, 900),
                                                 gen=rng.uniform(10, 4000), post=rng.choice([None, 1.5]),
                                                 total=rng.uniform(100, 5000))
        out.append(Event(
            v=1, ts=ts, kind="llm_call", id=rng.choice([f"{seed:012x}-{i:x}", f"msg_{seed}_{i}"]),
            run=f"r{i % 7}", agent=rng.choice(["a", "b", None]), provider=provider, route="direct", model=model,
            name=rng.choice(["plan", None]), stream=rng.choice([True, False, None]), usage=usage, cost_usd=cost,
            cost_status=rng.choice(["priced", "priced", "local", "unknown"]), latency_ms=latency,
            error="timeout" if pick == 6 else None, dropped=rng.randint(1, 9) if pick == 7 else None,
            service_tier=rng.choice([None, "priority"]), speed=rng.choice([None, None, "fast"]),
            tags={"project": "/p"} if pick == 8 else None))
    return out


@pytest.mark.parametrize(("by", "recent"), [(("model",), 200), (("model", "day", "session", "agent"), 7),
                                            ((), 0), (("week", "provider"), 1)])
def test_the_inlined_report_add_many_equals_add_per_event(by: tuple[str, ...], recent: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(3):
        events = _events(seed)
        results = []
        for lean in (False, True):
            monkeypatch.setattr(Aggregator, "LEAN", lean)
            agg = Aggregator(live=False, breakdowns=by, recent=recent, clock=lambda: T0 + 400 * 86400)
            kept: list[Event] = []
            start = 0
            rng = random.Random(seed)
            while start < len(events):  # batches of any size, as the readers make them
                size = rng.randint(1, 700)
                kept += agg.add_many(events[start:start + size])
                start += size
            results.append((agg.snapshot(), kept, agg.events, agg.duplicates, agg.future_events, agg.dropped))
        plain, lean_ = results
        assert lean_[1] == plain[1]
        assert lean_[2:] == plain[2:]
        assert lean_[0] == plain[0]
    snap = plain[0]
    assert snap.duplicates and snap.future_events and snap.dropped and snap.total.unpriced
    assert snap.total.cache_saved_usd and snap.total.errors and snap.runs_started


def test_the_monitor_keeps_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode (windows) and a predicate never take the report's loop."""
    called: list[int] = []
    monkeypatch.setattr(Aggregator, "_add_many_report", lambda self, evs, at: called.append(1) or [])
    Aggregator(live=True).add_many(_events(1, 50))
    Aggregator(live=False, predicate=lambda ev: True).add_many(_events(1, 50))
    assert not called
    Aggregator(live=False).add_many(_events(1, 50))
    assert called


ODD_COSTS = ["0.5", ".5", "1.", "²", "0.²", "١٢.٥", "0.1234567890123", "0.123456789012", "1_0", " 1.5", "1e-3",
             "-0.5", "+1", "0.000000", "007.25", "99999999.999999999999", "0x10", "1.5.1"]


def test_the_inlined_cost_parse_is_event_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report loop's inlined cost parse against event_cost (the plain path) on odd spellings."""
    from flightdeck.core.aggregate.aggregator import event_cost

    assert event_cost("²") is None  # isdigit passes it, int() refuses it: unknown, not a crash
    assert event_cost("0.011250") == 11_250_000_000
    events = [Event(v=1, ts=T0 + i, kind="llm_call", id=f"{7:012x}-{i:x}", run="r", provider="openai",
                    route="direct", model=f"m{i % 3}", usage=Usage(input_tokens=1), cost_usd=cost,
                    cost_status="priced") for i, cost in enumerate(ODD_COSTS * 3)]
    results = []
    for lean in (False, True):
        monkeypatch.setattr(Aggregator, "LEAN", lean)
        agg = Aggregator(live=False, breakdowns=("model",), clock=lambda: T0 + 86400, rates=lambda p, m, t: None)
        agg.add_many(events)
        results.append(agg.snapshot())
    assert results[0] == results[1]
    per_model = {g.key: (g.figures.cost_usd, g.figures.unpriced) for g in results[1].breakdowns["model"]}
    for m in range(3):
        units = [event_cost(c) for i, c in enumerate(ODD_COSTS * 3) if i % 3 == m]
        assert per_model[f"m{m}"][1] == sum(u is None for u in units)
