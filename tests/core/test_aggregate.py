from __future__ import annotations

import pickle
import random
from decimal import Decimal
from typing import Any

import pytest

from flightdeck.core import aggregate as agg_mod
from flightdeck.core.aggregate import Aggregator, cost_units, units_to_usd
from flightdeck.core.aggregate import aggregator as aggregator_mod
from flightdeck.core.events import Command, Event, IdSource, Latency, Usage, decode_line, encode_event
from flightdeck.core.snapshot import AlertRow

T0 = 1_764_216_000.0  # a minute boundary (and an hour boundary)
NO_RATES = lambda provider, model, ts: None  # noqa: E731


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_ids = IdSource("0123456789ab")


def call(ts: float = T0, **kw: Any) -> Event:
    usage = kw.pop("usage", None) or Usage(input_tokens=100, output_tokens=20, cache_read_tokens=300,
                                           cache_write_tokens=0)
    fields: dict[str, Any] = {
        "v": 1, "ts": ts, "kind": "llm_call", "id": _ids(), "run": "r-1", "agent": "a", "provider": "anthropic",
        "route": "direct", "model": "claude-3-5-sonnet", "name": "plan", "step": 1, "stream": True, "usage": usage,
        "cost_usd": "0.001000", "cost_status": "priced",
        "latency_ms": Latency(pre=10.0, ttft=200.0, gen=500.0, post=5.0, total=715.0),
    }
    fields.update(kw)
    return Event(**fields)


def make(**kw: Any) -> Aggregator:
    kw.setdefault("rates", NO_RATES)
    # A report is read after the fact: its clock is well past the events (else they would be "future").
    kw.setdefault("clock", Clock() if kw.get("live", True) else Clock(T0 + 30 * 86400))
    return Aggregator(**kw)


def test_cost_units_are_exact() -> None:
    assert cost_units("0.011250") == 11_250_000_000
    assert cost_units("3") == 3 * 10**12
    assert cost_units("0.0000000000001") == Decimal("0.1")  # 13 places: a Decimal
    assert units_to_usd(cost_units("0.011250")) == Decimal("0.011250")
    assert str(units_to_usd(cost_units("1.5"))) == "1.500000"
    assert str(units_to_usd(cost_units("0.123456789"))) == "0.123456789"
    for bad in ("-1", "abc", "1e5x", "NaN"):
        with pytest.raises(ValueError):
            cost_units(bad)


def test_run_totals_are_exact_and_complete() -> None:
    rng = random.Random(5)
    agg = make()
    want = Decimal(0)
    tokens = [0, 0, 0, 0, 0]
    unpriced = errors = 0
    for i in range(3000):
        u = Usage(input_tokens=rng.randrange(5000), output_tokens=rng.randrange(1, 900),
                  cache_read_tokens=rng.randrange(3000), cache_write_tokens=rng.randrange(200))
        u.reasoning_tokens = rng.randrange(u.output_tokens)
        if i % 17 == 0:
            cost = None
            unpriced += 1
        else:
            # Mixed precision, including more than 12 decimals.
            cost = str(Decimal(rng.randrange(10**9)).scaleb(-rng.choice([6, 9, 12, 15])))
            want += Decimal(cost)
        err = "Timeout" if i % 50 == 0 else None
        errors += err is not None
        agg.add(call(T0 + i, usage=u, cost_usd=cost, error=err))
        for j, name in enumerate(("input_tokens", "output_tokens", "cache_read_tokens",
                                  "cache_write_tokens", "reasoning_tokens")):
            tokens[j] += getattr(u, name)
    snap = agg.snapshot()
    t = snap.total
    assert snap.events == t.calls == 3000
    assert t.cost_usd == want
    assert t.unpriced == unpriced
    assert t.errors == errors
    assert [t.tokens.input_tokens, t.tokens.output_tokens, t.tokens.cache_read_tokens,
            t.tokens.cache_write_tokens, t.tokens.reasoning_tokens] == tokens
    prompt = tokens[0] + tokens[2] + tokens[3]
    assert t.cache_hit_rate == pytest.approx(tokens[2] / prompt)
    assert t.mean_prompt_tokens == pytest.approx(prompt / 3000)
    assert Decimal(snap.to_json()["cost_usd"]) == want


def test_duplicates_count_once() -> None:
    agg = make()
    ev = call()
    for _ in range(3):
        agg.add(ev)
    line = encode_event(ev)
    agg.add(decode_line(line))  # type: ignore[arg-type]
    snap = agg.snapshot()
    assert snap.events == 1
    assert snap.duplicates == 3
    assert snap.total.cost_usd == Decimal("0.001")


def test_ttft_only_counts_streamed_calls_and_stages_are_sketched() -> None:
    agg = make()
    agg.add(call(stream=True, latency_ms=Latency(pre=1.0, ttft=100.0, gen=300.0, post=2.0, total=403.0)))
    agg.add(call(stream=False, latency_ms=Latency(pre=1.0, ttft=999.0, gen=300.0, post=2.0, total=303.0)))
    agg.add(call(stream=True, latency_ms=None))
    t = agg.snapshot().total
    assert t.ttft.count == 1
    assert t.ttft.p50 == pytest.approx(100.0, rel=0.01)
    assert t.stages["gen"].count == 2
    assert t.stages["total"].mean == pytest.approx(353.0)
    assert set(t.stages) == {"pre", "ttft", "gen", "post", "total"}


def test_windows_follow_the_clock_and_give_burn_rates() -> None:
    clock = Clock(T0 + 30 * 60 + 30)  # half past, mid-minute
    agg = make(clock=clock)
    minute = 60.0
    # one call per minute for the last 30 minutes, each costing 0.01
    for i in range(31):
        agg.add(call(T0 + i * minute + 1, cost_usd="0.010000"))
    snap = agg.snapshot()
    assert snap.windows["1m"].calls == 1
    assert snap.windows["5m"].calls == 5
    assert snap.windows["15m"].calls == 15
    assert snap.windows["60m"].calls == 31
    w5 = snap.windows["5m"]
    assert w5.cost_usd == Decimal("0.05")
    assert w5.burn_usd_per_hour == Decimal("0.600000")  # 0.05 * 3600 / 300
    assert agg.window(300).calls == 5
    # an hour later nothing is in the short windows, but the totals keep it all
    clock.now += 3600
    snap = agg.snapshot()
    assert snap.windows["1m"].calls == 0 and snap.windows["60m"].calls == 0
    assert snap.total.calls == 31


def test_report_mode_uses_the_last_event_time() -> None:
    agg = make(live=False, clock=Clock(T0 + 86400))  # the report is read a day later
    for i in range(10):
        agg.add(call(T0 + i * 60))
    snap = agg.snapshot()
    assert snap.now == T0 + 9 * 60
    # A report summarises the whole log; sliding windows are the live monitor's.
    assert snap.windows == {} and snap.series == () and snap.total.calls == 10


def test_series_is_sixty_minutes_oldest_first_with_gaps_filled() -> None:
    agg = make(clock=Clock(T0 + 59 * 60 + 10))
    agg.add(call(T0 + 5))
    agg.add(call(T0 + 10 * 60 + 1, usage=Usage(input_tokens=0, output_tokens=1, cache_read_tokens=50)))
    agg.add(call(T0 + 10 * 60 + 2))
    series = agg.snapshot().series
    assert len(series) == 60
    assert [p.start for p in series] == [T0 + i * 60 for i in range(60)]
    assert series[0].calls == 1
    assert series[10].calls == 2
    assert series[10].cache_read_tokens == 350
    assert series[10].cost_usd == Decimal("0.002")
    assert series[10].ttft_p50 == pytest.approx(200.0, rel=0.01)
    assert all(p.calls == 0 and p.cache_hit_rate is None for i, p in enumerate(series) if i not in (0, 10))


def test_old_minutes_are_evicted_and_late_events_still_count_in_totals() -> None:
    agg = make(clock=Clock(T0 + (6 * 60 - 1) * 60))
    for i in range(6 * 60):  # six hours, one call a minute
        agg.add(call(T0 + i * 60))
    assert len(agg.windows.seconds) <= agg_mod.HORIZON // 60 + 1  # one a minute, the last hour and slack
    agg.add(call(T0 + 30))  # very late: only the totals see it
    agg.add(call(T0 + (6 * 60 - 3) * 60 + 5))  # a little late: lands in its second
    snap = agg.snapshot()
    assert snap.total.calls == 6 * 60 + 2
    assert snap.total.cost_usd == Decimal("0.362")
    assert snap.windows["5m"].calls == 6
    assert snap.windows["60m"].calls == 61


def test_breakdowns_per_dimension_sorted_by_cost() -> None:
    agg = make()
    agg.add(call(model="m-cheap", cost_usd="0.001", name="plan"))
    agg.add(call(model="m-dear", cost_usd="0.500", name="reflect", agent=None))
    agg.add(call(model="m-dear", cost_usd="0.500", name="reflect"))
    agg.add(call(model="m-free", cost_usd=None, name="plan"))
    snap = agg.snapshot()
    models = snap.breakdowns["model"]
    assert [g.key for g in models] == ["m-dear", "m-cheap", "m-free"]
    assert models[0].figures.calls == 2 and models[0].figures.cost_usd == Decimal("1")
    assert models[2].figures.unpriced == 1
    names = {g.key: g.figures for g in snap.breakdowns["name"]}
    assert names["reflect"].stages["pre"].p50 == pytest.approx(10.0, rel=0.01)
    agents = {g.key: g.figures.calls for g in snap.breakdowns["agent"]}
    assert agents == {"a": 3, "(none)": 1}
    assert set(snap.breakdowns) == {"model", "provider", "route", "agent", "run", "name"}


def test_groups_are_bounded() -> None:
    agg = make(breakdowns=("run",))
    for i in range(agg_mod.MAX_GROUPS + 50):
        agg.add(call(run=f"r-{i}"))
    rows = agg.snapshot().breakdowns["run"]
    assert len(rows) == agg_mod.MAX_GROUPS + 1
    other = next(g for g in rows if g.key == agg_mod.OTHER)
    assert other.figures.calls == 50
    assert sum(g.figures.calls for g in rows) == agg_mod.MAX_GROUPS + 50
    snap = agg.snapshot()
    assert snap.folded_groups == {"run": 50}  # the live monitor says how many keys it folded
    assert snap.to_json()["folded_groups"] == {"run": 50}


def test_unknown_breakdown_is_refused() -> None:
    with pytest.raises(ValueError, match="colour"):
        Aggregator(breakdowns=("colour",))


def test_acks_close_the_command_round_trip_and_set_agent_state() -> None:
    clock = Clock(T0 + 100.0)
    agg = make(clock=clock)
    cmd = Command(id="c-1", ts=T0 + 100.0, cmd="pause", origin="key", reason="spend")
    agg.note_command(cmd, sent_at=T0 + 100.0)
    clock.now = T0 + 100.25
    agg.add(Event(v=1, ts=T0 + 100.2, kind="signal_ack", id="ack-1", run="r-1", agent="a", ref="c-1",
                  cmd="pause", state={"paused": True, "models": {"big": "small", "bad": 3}}))
    snap = agg.snapshot()
    (row,) = snap.commands
    assert row.acked_at == T0 + 100.25
    assert row.ack_ms == pytest.approx(250.0)
    (state,) = snap.agents
    assert state.paused is True and state.models == {"big": "small"}
    assert snap.to_json()["commands"][0]["ack_ms"] == pytest.approx(250.0)


def test_alerts_other_kinds_rejects_and_dropped() -> None:
    agg = make()
    agg.add(Event(v=1, ts=T0, kind="alert", id="al-1", run="r-1", rule="loop", metric="repeat",
                  value=3.0, threshold=3.0, action="pause"))
    agg.note_alert(AlertRow(ts=T0, rule="spend", metric="usd_10m", value=2.5, threshold=2.0,
                            action="alert", source="monitor"))
    agg.add(Event(v=1, ts=T0, kind="run_start", id="rs-1", run="r-1"))
    agg.add(Event(v=1, ts=T0, kind="run_end", id="re-1", run="r-1", dropped=7))
    agg.add(Event(v=1, ts=T0, kind="heartbeat", id="hb-1", run="r-1"))
    agg.reject("not json", "garbage")
    agg.reject("not json")
    agg.reject("bad usage.input_tokens", "Expected `int` >= 0")
    snap = agg.snapshot()
    assert [a.source for a in snap.alerts] == ["agent", "monitor"]
    assert snap.alerts[0].rule == "loop" and snap.alerts[0].action == "pause"
    assert snap.runs_started == 1 and snap.runs_ended == 1
    assert snap.unknown_kinds == 1
    assert snap.dropped == 7
    assert snap.rejected == 3
    assert snap.rejected_reasons == {"not json": 2, "bad usage.input_tokens": 1}
    assert snap.recent_rejects[0][1:] == ("not json", "garbage")
    assert snap.events == 0


def test_reject_reasons_are_bounded() -> None:
    agg = make()
    for i in range(agg_mod.MAX_REASONS + 10):
        agg.reject(f"reason {i}")
    snap = agg.snapshot()
    assert len(snap.rejected_reasons) == agg_mod.MAX_REASONS + 1
    assert snap.rejected_reasons[agg_mod.OTHER] == 10
    assert snap.rejected == agg_mod.MAX_REASONS + 10


def test_predicate_filters_events() -> None:
    agg = make(predicate=lambda ev: ev.model == "keep")
    agg.add(call(model="keep"))
    agg.add(call(model="drop"))
    assert agg.snapshot().events == 1


def test_cache_savings_use_rates_and_survive_failing_ones() -> None:
    def rates(provider: str, model: str, ts: float) -> tuple[Decimal, Decimal] | None:
        if model == "boom":
            raise RuntimeError("pricing exploded")
        if model == "unknown":
            return None
        return Decimal("3"), Decimal("0.3")

    agg = make(rates=rates)
    u = Usage(input_tokens=10, output_tokens=1, cache_read_tokens=1_000_000)
    agg.add(call(usage=u))
    agg.add(call(usage=u, model="boom"))
    agg.add(call(usage=u, model="unknown"))
    agg.add(call(usage=u, cost_status="local", route="local"))
    snap = agg.snapshot()
    assert snap.total.cache_saved_usd == Decimal("2.7")  # 1M tokens x (3 - 0.3) $/MTok
    by_model = {g.key: g.figures.cache_saved_usd for g in snap.breakdowns["model"]}
    assert by_model["boom"] == 0 and by_model["unknown"] == 0


def test_default_rates_come_from_the_pricing_module() -> None:
    agg = Aggregator(clock=Clock())
    agg.add(call(usage=Usage(input_tokens=0, output_tokens=1, cache_read_tokens=1_000_000)))
    from flightdeck.core.pricing import default_pricer

    r = default_pricer().rates("anthropic", "claude-3-5-sonnet", T0)
    assert r is not None
    assert agg.snapshot().total.cache_saved_usd == r.input - r.cache_read


def test_projection_adds_the_burn_rate_over_the_time_left() -> None:
    now = T0 + 45 * 60 + 30
    agg = make(clock=Clock(now))
    for i in range(15):  # one dollar a minute for the 15 minutes up to now
        agg.add(call(T0 + (31 + i) * 60 + 10, cost_usd="1"))
    agg.add(call(T0 - 3600, cost_usd="5"))  # earlier today (T0 is 04:00 UTC)
    snap = agg.snapshot()
    assert snap.windows["15m"].burn_usd_per_hour == Decimal("60.000000")
    assert snap.windows["5m"].burn_usd_per_hour == Decimal("60.000000")
    assert snap.projection.basis == "5m burn" and snap.to_json()["projection"]["basis"] == "5m burn"
    left_hour = 3600 - (45 * 60 + 30)
    assert snap.projection.hour_end_usd == (15 + Decimal(60) * left_hour / 3600).quantize(Decimal("1e-6"))
    left_day = 20 * 3600 - (45 * 60 + 30)  # 04:45:30 to midnight
    assert snap.projection.day_end_usd == (20 + Decimal(60) * left_day / 3600).quantize(Decimal("1e-6"))


def test_budget_is_spend_over_its_window() -> None:
    agg = make(clock=Clock(T0 + 600))
    agg.add(call(T0 + 590, cost_usd="0.5"))
    agg.add(call(T0 - 3000, cost_usd="9"))
    snap = agg.snapshot(budget=(Decimal("2.00"), 600))
    assert snap.budget is not None
    assert snap.budget.spent_usd == Decimal("0.5")
    assert snap.budget.fraction == pytest.approx(0.25)
    assert snap.to_json()["budget"]["spent_usd"] == "0.500000"


def test_recent_calls_are_rows_newest_last() -> None:
    agg = make(recent=3)
    for i in range(5):
        agg.add(call(T0 + i, step=i, model=f"m{i}"))
    rows = agg.snapshot().recent
    assert [r.model for r in rows] == ["m2", "m3", "m4"]
    assert rows[-1].cost_usd == Decimal("0.001000") and rows[-1].total_ms == 715.0


def _feed(aggs: list[Aggregator], events: list[Event]) -> None:
    for i, ev in enumerate(events):
        aggs[i * len(aggs) // len(events)].add(ev)


def test_merge_equals_one_aggregator() -> None:
    rng = random.Random(9)
    events = [call(T0 + rng.uniform(0, 4 * 3600), model=rng.choice("abc"), name=rng.choice("xy"),
                   cost_usd=f"0.{rng.randrange(10**6):06d}", stream=rng.random() < 0.5)
              for _ in range(2000)]
    events.sort(key=lambda e: e.ts)  # type: ignore[arg-type, return-value]
    one = make(live=False)
    _feed([one], events)
    parts = [make(live=False) for _ in range(3)]
    _feed(parts, events)
    parts[1].reject("not json")
    one.reject("not json")
    merged = pickle.loads(pickle.dumps(parts[0]))
    for p in parts[1:]:
        merged.merge(pickle.loads(pickle.dumps(p)))
    a, b = one.snapshot().to_json(), merged.snapshot().to_json()
    assert rounded(a) == rounded(b)
    assert [r.ts for r in merged.snapshot().recent] == [r.ts for r in one.snapshot().recent]


def rounded(value: object) -> object:
    """Floats to 9 significant digits: sums of latencies depend on the order of addition."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_snapshot_json_has_the_spec_keys() -> None:
    agg = make()
    agg.add(call())
    out = agg.snapshot().to_json()
    for key in ("events", "rejected", "duplicates", "cost_usd", "unpriced", "tokens", "cache_hit_rate",
                "ttft_ms", "stages_ms", "windows"):
        assert key in out, key
    assert set(out["tokens"]) == {"input_tokens", "output_tokens", "cache_read_tokens",
                                  "cache_write_tokens", "reasoning_tokens"}
    assert set(out["ttft_ms"]) >= {"p50", "p90", "p99", "count"}
    for stage in ("pre", "ttft", "gen", "post", "total"):
        assert set(out["stages_ms"][stage]) >= {"p50", "p90", "mean"}
    assert isinstance(out["cost_usd"], str) and Decimal(out["cost_usd"]) == Decimal("0.001")
    assert set(out["windows"]) == {"1m", "5m", "15m", "60m"}


def test_report_mode_breakdowns_equal_live_mode_breakdowns() -> None:
    rng = random.Random(12)
    events = [call(T0 + i * 7.5, model=rng.choice(["a", "b", "c"]), agent=rng.choice(["x", None]),
                   name=rng.choice(["plan", "act"]), cost_usd=f"0.{rng.randrange(10**6):06d}")
              for i in range(3000)]  # ~6 hours: most minutes end in the archive
    dims = ("model", "agent", "name")
    live = make(breakdowns=dims, clock=Clock(events[-1].ts))  # type: ignore[arg-type]
    report = make(breakdowns=dims, live=False)
    for ev in events:
        live.add(ev)
        report.add(ev)
    a, b = live.snapshot().to_json(), report.snapshot().to_json()
    assert rounded(a["breakdowns"]) == rounded(b["breakdowns"])
    assert a["cost_usd"] == b["cost_usd"]


def test_report_mode_keeps_every_group() -> None:
    # SPEC 5.1: `report --by run` over 10,000 sessions lists 10,000.
    agg = make(breakdowns=("run", "model"), live=False)
    agg.add_many([call(T0 + i * 0.5, run=f"r-{i}") for i in range(10_000)])
    snap = agg.snapshot()
    runs = {g.key: g.figures.calls for g in snap.breakdowns["run"]}
    assert len(runs) == 10_000 and agg_mod.OTHER not in runs and set(runs.values()) == {1}
    assert {g.key: g.figures.calls for g in snap.breakdowns["model"]} == {"claude-3-5-sonnet": 10_000}
    assert snap.folded_groups == {} and snap.to_json()["folded_groups"] == {}


def test_day_projection_counts_archived_and_live_minutes_once() -> None:
    agg = make(clock=Clock(T0 + 36 * 600))
    # 04:00 .. 10:00 UTC, one dollar every ten minutes: most minutes end in the archive
    for i in range(37):
        agg.add(call(T0 + i * 600, cost_usd="1"))
    agg.add(call(T0 - 86400, cost_usd="100"))  # yesterday: not today's spend
    snap = agg.snapshot()
    now = T0 + 36 * 600
    burn = snap.windows["5m"].burn_usd_per_hour
    left_day = Decimal((int(now // 86400) + 1) * 86400 - int(now))
    assert snap.projection.day_end_usd == (37 + burn * left_day / 3600).quantize(Decimal("1e-6"))
    assert snap.total.cost_usd == Decimal("137")


def test_events_built_by_other_code_are_coerced_not_fatal() -> None:
    agg = make()
    agg.add(call(ts="2025-11-27T04:00:00Z"))  # type: ignore[arg-type]
    no_usage = call()
    no_usage.usage = None  # Event is a mutable Struct: other code can build anything
    agg.add(no_usage)
    bad = call()
    bad.ts = "soon"
    agg.add(bad)
    snap = agg.snapshot()
    assert snap.events == 2
    assert snap.first_ts == T0
    assert snap.rejected_reasons == {"bad ts": 1}


# -- add_many, savings rates ----------------------------------------------------------


def _mixed_events(rng: random.Random) -> list[Event]:
    ids = IdSource("feedfacecafe")
    evs: list[Event] = []
    ts = T0 - 7200.0
    for _i in range(3000):
        ts += rng.expovariate(0.5)
        late = ts - 6000 if rng.random() < 0.03 else ts  # some too late for the buckets
        kind = rng.random()
        if kind < 0.9:
            usage = Usage(input_tokens=rng.randrange(1000), output_tokens=rng.randrange(1, 50),
                          cache_read_tokens=rng.choice([0, 0, 500, 250_000]))
            evs.append(call(late, id=ids(), model=rng.choice(["m1", "m2", "local-m"]),
                            run=f"r-{rng.randrange(5)}", name=rng.choice(["a", "b", None, ""]),
                            stream=rng.choice([True, False, None]), error=rng.choice([None, None, "boom"]),
                            cost_usd=rng.choice(["0.001000", "0.0000000000001", None, "2"]),
                            cost_status=rng.choice(["priced", "local"]), usage=usage,
                            latency_ms=rng.choice([None, Latency(ttft=rng.uniform(1, 900), total=1000.0)])))
        elif kind < 0.93:
            evs.append(Event(v=1, ts=late, kind="run_start", id=ids(), run="r-1"))
        elif kind < 0.95:
            evs.append(Event(v=1, ts="not a time", kind="llm_call", id=ids(), run="r-1"))
        elif kind < 0.97:
            evs.append(call(late, id=ids(), usage=Usage()).__copy__())
            evs[-1].usage = None  # built by code: add() takes it as empty usage
        else:
            evs.append(evs[rng.randrange(len(evs))] if evs else call(late, id=ids()))  # a duplicate
    return evs


@pytest.mark.parametrize("live", [True, False])
def test_add_many_equals_add_one_at_a_time(live: bool) -> None:
    def rates(provider: str, model: str, ts: float) -> tuple[Decimal, Decimal] | None:
        return (Decimal("3"), Decimal("0.3")) if model != "m2" else None

    evs = _mixed_events(random.Random(5))
    dims = ("model", "provider", "route", "agent", "run", "name") if live else ("model", "name")
    one = make(live=live, breakdowns=dims, rates=rates, predicate=lambda ev: ev.run != "r-4")
    many = make(live=live, breakdowns=dims, rates=rates, predicate=lambda ev: ev.run != "r-4")
    kept_one = []
    for ev in evs:
        before = one.duplicates
        one.add(ev)
        if one.duplicates == before:
            kept_one.append(ev)
    kept_many = []
    for start in range(0, len(evs), 128):
        kept_many += many.add_many(evs[start : start + 128])
    assert kept_many == kept_one
    a, b = one.snapshot(), many.snapshot()
    assert a.to_json() == b.to_json()
    assert a.total.calls > 2000 and a.duplicates > 0 and a.rejected > 0


def test_tiered_prices_save_at_the_tier_of_the_prompt() -> None:
    from flightdeck.core.pricing import Rates

    over = Rates(Decimal("2.5"), Decimal("10"), Decimal("0.5"), Decimal("0"), Decimal("0"))
    base = Rates(Decimal("1.25"), Decimal("10"), Decimal("0.25"), Decimal("0"), Decimal("0"),
                 tiers=((200_000, over),))
    agg = make(rates=lambda p, m, t: base)
    small = Usage(input_tokens=100, output_tokens=1, cache_read_tokens=100_000)
    big = Usage(input_tokens=100, output_tokens=1, cache_read_tokens=300_000)
    agg.add(call(usage=small))  # 100k x (1.25 - 0.25) $/MTok = 0.1
    agg.add(call(usage=big))  # prompt 300,100 > 200k: 300k x (2.5 - 0.5) = 0.6
    many = make(rates=lambda p, m, t: base)
    many.add_many([call(usage=small), call(usage=big)])
    assert agg.snapshot().total.cache_saved_usd == Decimal("0.7")
    assert many.snapshot().total.cache_saved_usd == Decimal("0.7")


def test_default_rates_get_the_route_and_dated_rates_are_asked_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from flightdeck.core.pricing import Rates

    asked: list[tuple[str, str, str | None, int]] = []

    def fake(provider: str, model: str, ts: float, route: str | None = None, *tier_speed: Any) -> Rates:
        day = int(ts // 86400)
        asked.append((provider, model, route, day))
        cache = Decimal("0.3") if day % 2 else Decimal("0.1")  # the rate changes with the date
        return Rates(Decimal("1.1"), Decimal("5"), cache, Decimal("0"), Decimal("0"), date_matters=True)

    monkeypatch.setattr(aggregator_mod, "_default_rates", fake)
    agg = Aggregator(clock=Clock())
    u = Usage(input_tokens=1, output_tokens=1, cache_read_tokens=1_000_000)
    agg.add(call(T0, usage=u, route="proxy"))
    agg.add(call(T0 + 86400, usage=u, route="proxy"))
    assert {(p, m, r) for p, m, r, _ in asked} == {("anthropic", "claude-3-5-sonnet", "proxy")}
    assert len(asked) == 2  # dated: asked again for the second call
    day0 = Decimal("1.1") - (Decimal("0.1") if (T0 // 86400) % 2 == 0 else Decimal("0.3"))
    day1 = Decimal("1.1") - (Decimal("0.3") if (T0 // 86400) % 2 == 0 else Decimal("0.1"))
    assert agg.snapshot(now=T0 + 86400).total.cache_saved_usd == day0 + day1
    # The marker survives the trip back from a parallel worker.
    again = pickle.loads(pickle.dumps(agg))
    again._rates_fn = fake
    again.add(call(T0, usage=u, route="proxy"))
    assert len(asked) == 3


def test_live_groups_settled_between_snapshots_equal_report_mode_groups() -> None:
    # Live mode counts calls per key combination and folds them into the groups
    # when read; report mode merges its combinations at snapshot time. Two
    # independent paths to the same figures (means aside: float sums in
    # another order).
    dims = ("model", "provider", "route", "agent", "run", "name")
    evs = [ev for ev in _mixed_events(random.Random(11)) if ev.usage is not None]
    live = make(live=True, breakdowns=dims)
    report = make(live=False, breakdowns=dims)
    for i, ev in enumerate(evs):
        live.add(ev)
        if i % 97 == 0:
            live.snapshot()  # a read in between settles what came so far
    live.add_many([])
    report.add_many(evs)

    def rows(agg: Aggregator) -> dict[str, list[Any]]:
        out = {}
        for dim, groups in agg.snapshot(now=T0).breakdowns.items():
            out[dim] = [(g.key, g.figures.calls, g.figures.cost_usd, g.figures.tokens, g.figures.cache_saved_usd,
                         [(q.count, q.p50, q.p90, q.p99) for q in g.figures.stages.values()]) for g in groups]
        return out

    assert rows(live) == rows(report)
    assert len(rows(live)["run"]) == 5
    # A pickled (worker) live aggregator carries its unsettled calls along.
    again = pickle.loads(pickle.dumps(live))
    assert rows(again) == rows(live)


def test_event_cost_is_cost_units_for_every_spelling() -> None:
    from flightdeck.core.aggregate.aggregator import event_cost
    from flightdeck.core.money import cost_units

    for text in ("0", "1", "0.5", "12.000000000001", "0.0000000000001", "3.141592653589793238", "1e-3", "-1",
                 "1.2.3", "abc", ".5", "5.", "007.25", "１２"):
        try:
            want = cost_units(text)
        except ValueError:
            want = None
        assert event_cost(text) == want, text
