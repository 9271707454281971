"""Sliding windows, burn, future-dated calls, quantiles: figures worked out by hand (SPEC 5.1)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flightdeck.core.aggregate import FUTURE_SKEW, HORIZON, Aggregator
from flightdeck.core.events import Command, Event, IdSource, Latency, Usage

T0 = 1_764_216_000.0  # 04:00:00 UTC, a minute and hour boundary
_ids = IdSource("fedcba987654")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def call(ts: float, cost: str | None = "0.010000", **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "v": 1, "ts": ts, "kind": "llm_call", "id": _ids(), "run": "r-1", "agent": "a", "provider": "openai",
        "route": "direct", "model": "gpt-4o", "stream": True, "usage": Usage(input_tokens=100, output_tokens=10),
        "cost_usd": cost, "cost_status": "priced" if cost is not None else "unknown",
        "latency_ms": Latency(ttft=300.0, total=1000.0),
    }
    fields.update(kw)
    return Event(**fields)


def live(now: float, **kw: Any) -> tuple[Aggregator, Clock]:
    clock = Clock(now)
    return Aggregator(clock=clock, rates=lambda p, m, t: None, **kw), clock


def test_a_call_50_seconds_ago_is_in_1m_whatever_second_it_is() -> None:
    for offset in range(0, 120, 7):  # every phase of the calendar minute
        agg, _ = live(T0 + offset + 50.0)
        agg.add(call(T0 + offset))
        assert agg.snapshot().windows["1m"].calls == 1, offset
        assert agg.window(60).calls == 1


def test_the_window_edge_moves_second_by_second() -> None:
    agg, clock = live(T0 + 130.5)
    agg.add(call(T0 + 70.2))  # second 70: (130 - 60, 130] leaves it out
    agg.add(call(T0 + 71.9))  # second 71: in
    agg.add(call(T0 + 130.4))  # second 130: in
    assert agg.snapshot().windows["1m"].calls == 2
    clock.now = T0 + 131.0  # one second on: 71 drops out
    assert agg.snapshot().windows["1m"].calls == 1
    assert agg.window(61, now=T0 + 131.0).calls == 2  # any length, to the second
    assert agg.snapshot().windows["5m"].calls == 3


def test_whole_minutes_cached_then_a_late_call_lands_in_one() -> None:
    agg, clock = live(T0 + 3000.0)
    for i in range(2900):
        agg.add(call(T0 + i))
    snap = agg.snapshot()  # fills the caches of the minutes and 10 s blocks
    # 15m = seconds 2101 .. 3000: the calls of 2101 .. 2899
    assert snap.windows["60m"].calls == 2900 and snap.windows["15m"].calls == 799
    assert snap.windows["15m"].cost_usd == Decimal("7.990000")  # 799 x 0.01
    agg.add(call(T0 + 2500.5, cost="1"))  # late, into a cached minute of both windows
    again = agg.snapshot()
    assert again.windows["15m"].calls == 800 and again.windows["15m"].cost_usd == Decimal("8.990000")
    assert again.windows["60m"].calls == 2901
    assert again.series[-10].start == T0 + 41 * 60 and again.series[-10].calls == 61  # its minute, 2460 .. 2519
    clock.now += 1
    assert agg.snapshot().windows["15m"].calls == 799  # second 2101 left; the late call is still in


def test_burn_is_spend_over_the_time_observed() -> None:
    # A run 59 s old that spent $1.00: 1.00 x 3600 / 59 per hour, in every window (not spread over 5, 15, 60 min).
    agg, _ = live(T0 + 61.0)
    agg.add(call(T0 + 2.0, cost="0.40"))
    agg.add(call(T0 + 31.0, cost="0.60"))
    snap = agg.snapshot()
    want = (Decimal(1) * 3600 / Decimal(59)).quantize(Decimal("0.000001"))
    assert want == Decimal("61.016949")
    for name in ("1m", "5m", "15m", "60m"):
        assert snap.windows[name].burn_usd_per_hour == want, name
    # An old run: the window is the observed time. 5m holds $0.60 -> 0.60 x 12 = 7.20 $/h.
    agg.add(call(T0 - 7200.0, cost="5"))
    snap = agg.snapshot()
    assert snap.windows["5m"].burn_usd_per_hour == Decimal("12.000000")  # $1.00 in 300 s
    assert snap.windows["1m"].burn_usd_per_hour == Decimal("60.000000")  # $1.00 in 60 s


def test_projection_uses_the_stated_5m_burn() -> None:
    now = T0 + 30 * 60.0  # 04:30:00
    agg, _ = live(now)
    for i in range(10):  # $0.10 every 30 s for the last 5 minutes: $1.00, burn $12/h
        agg.add(call(now - 1 - 30 * i, cost="0.10"))
    agg.add(call(T0 + 60, cost="2"))  # earlier this hour
    snap = agg.snapshot()
    assert snap.windows["5m"].burn_usd_per_hour == Decimal("12.000000")
    assert snap.projection.basis == "5m burn"
    assert snap.projection.hour_end_usd == Decimal("9.000000")  # 3.00 so far + 12 x 0.5 h
    assert snap.projection.day_end_usd == Decimal("237.000000")  # 3.00 + 12 x 19.5 h to midnight


def test_future_calls_count_in_the_totals_but_never_move_the_windows() -> None:
    agg, _ = live(T0)
    agg.add(call(T0 - 10.0, cost="0.25"))
    agg.add(call(T0 + 365 * 86400.0, cost="5"))  # a writer a year ahead
    agg.add(call(T0 + FUTURE_SKEW / 2, cost="0.5"))  # a little ahead: within the skew, not "future"
    snap = agg.snapshot()
    assert snap.total.calls == 3 and snap.total.cost_usd == Decimal("5.750000")
    assert snap.future_events == 1 and snap.to_json()["future_events"] == 1
    assert snap.windows["1m"].calls == 1 and snap.windows["1m"].cost_usd == Decimal("0.250000")
    assert snap.last_ts == T0 + FUTURE_SKEW / 2  # the far one is not the newest event
    # A report read now: the year-ahead call is in the totals; "now" stays the newest real call.
    report = Aggregator(live=False, clock=Clock(T0), breakdowns=("model",), rates=lambda p, m, t: None)
    report.add_many([call(T0 - 100.0), call(T0 + 365 * 86400.0)])
    rsnap = report.snapshot()
    assert rsnap.now == T0 - 100.0 and rsnap.future_events == 1 and rsnap.total.calls == 2


def test_quantiles_are_nearest_rank_in_every_figure() -> None:
    agg, _ = live(T0 + 10)
    agg.add(call(T0 + 1, latency_ms=Latency(ttft=100.0, total=1000.0)))
    agg.add(call(T0 + 2, latency_ms=Latency(ttft=900.0, total=3000.0)))
    snap = agg.snapshot()
    for fig in (snap.total, snap.windows["1m"], snap.breakdowns["model"][0].figures):
        assert (fig.ttft.p50, fig.ttft.p90, fig.ttft.p99) == (100.0, 900.0, 900.0)
        assert fig.stages["total"].p90 == 3000.0 and fig.stages["total"].mean == 2000.0
    out = snap.to_json()
    assert out["ttft_ms"] == {"p50": 100.0, "p90": 900.0, "p99": 900.0, "count": 2}


def test_unknown_cost_is_unpriced_never_zero_and_tiny_costs_are_plain_digits() -> None:
    agg, _ = live(T0 + 5)
    agg.add(call(T0, cost=None))
    agg.add(call(T0 + 1, cost="0.000000000001"))
    snap = agg.snapshot()
    assert snap.total.unpriced == 1 and snap.windows["1m"].unpriced == 1
    assert snap.to_json()["cost_usd"] == "0.000000000001"


def test_memory_stays_flat_over_a_long_run() -> None:
    agg, clock = live(T0)
    for i in range(0, 10 * 3600, 2):  # ten hours, a call every 2 s
        clock.now = T0 + i
        agg.add(call(T0 + i))
        if i % 1800 == 0:
            agg.snapshot()
    w = agg.windows
    assert w is not None
    assert len(w.seconds) <= HORIZON // 2 + 1
    assert len(w._minutes) <= HORIZON // 60 + 2 and len(w._tens) <= HORIZON // 10 + 2
    snap = agg.snapshot()
    assert snap.total.calls == 18_000 and snap.windows["60m"].calls == 1800


def test_the_ledger_ignores_the_filter() -> None:
    agg, clock = live(T0 + 100.0, predicate=lambda ev: ev.agent == "a")
    agg.note_command(Command(id="c-1", ts=T0 + 100.0, cmd="pause", origin="key"), sent_at=T0 + 100.0)
    agg.add(call(T0 + 99, agent="b"))  # filtered out
    clock.now = T0 + 100.5
    agg.add(Event(v=1, ts=T0 + 100.4, kind="signal_ack", id="ack-b", run="r-1", agent="b", ref="c-1",
                  cmd="pause", state={"paused": True, "models": {}}))
    snap = agg.snapshot()
    assert snap.events == 0
    assert snap.commands[0].ack_ms == 500.0 and snap.agents[0].agent == "b" and snap.agents[0].paused
