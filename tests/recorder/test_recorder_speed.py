"""What the recorder's per-call path does in integers for speed is pinned to the plain versions."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.recorder.recorder import ms_between


def _plain(a: float, b: float) -> float:
    """The rule as first written: ``round(max(0, (b - a) * 1000), 3)``."""
    return round(max(0.0, (b - a) * 1000.0), 3)


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=1e7, allow_nan=False), st.floats(min_value=-10, max_value=2e6))
def test_ms_between_is_the_rounded_rule_to_the_microsecond(a: float, span: float) -> None:
    b = a + span
    ours, plain = ms_between(a, b), _plain(a, b)
    assert ours is not None
    assert abs(ours - plain) <= 0.0010001  # at most one microsecond apart, on an exact half
    assert ours == round(ours, 3)  # whole microseconds, as the plain rule gives
    assert ours >= 0


def test_ms_between_on_exact_values_and_the_odd_ones() -> None:
    assert ms_between(1.0, 1.25) == 250.0
    assert ms_between(10.0, 10.0001234) == 0.123
    assert ms_between(5.0, 4.0) == 0.0  # a clock that went back: never negative
    assert ms_between(None, 1.0) is None and ms_between(1.0, None) is None
    assert ms_between(0.0, math.inf) == math.inf  # out of bounds: left to the bounds check, as before
    assert ms_between(0.0, math.nan) == 0.0
    assert ms_between(0.0, 2e6) == _plain(0.0, 2e6)  # beyond 11 days: the plain rule answers


def test_stats_folded_in_batches_equal_stats_folded_one_by_one(tmp_path: Path) -> None:
    from flightdeck.core.aggregate import Aggregator
    from flightdeck.core.events import Event, decode_line
    from flightdeck.recorder import recorder
    from flightdeck.recorder.recorder import Recorder

    now = [1_764_216_000.0]
    rec = Recorder(tmp_path / "run.jsonl", run="r", clock=lambda: now[0])
    total = recorder._FOLD_EVERY * 2 + 5  # two whole batches and a part
    for i in range(total):
        now[0] += 0.5
        with rec.call(provider="anthropic", model="claude-haiku-4-5", stream=True) as call:
            call.sent()
            call.first_token()
            call.received()
            call.set_usage({"input_tokens": 10 + i, "output_tokens": 3, "cache_read_input_tokens": 100})
    assert 0 < len(rec._agg_pending) < recorder._FOLD_EVERY  # the part not folded yet
    figures = rec.stats(300).figures
    assert rec._agg_pending == [] and figures.calls == total
    rec.close()
    eager = Aggregator(clock=lambda: now[0], breakdowns=(), recent=0)
    for line in (tmp_path / "run.jsonl").read_bytes().splitlines():
        ev = decode_line(line)
        if isinstance(ev, Event) and ev.kind == "llm_call":
            eager.add(ev)
    assert figures == eager.window(300, now=now[0])


def test_a_proxy_reported_cost_is_still_read_from_the_payload(tmp_path: Path) -> None:
    """The per-provider skip of the reported-cost reader (``_proxied``) keeps OpenRouter's usage.cost."""
    from flightdeck.core.events import Event, decode_line
    from flightdeck.recorder.recorder import Recorder

    rec = Recorder(tmp_path / "run.jsonl", run="r", stats=False)
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "cost": 0.0123}
    for provider in ("openrouter", "OpenRouter", "openai"):
        with rec.call(provider=provider, model="openai/gpt-4o") as call:
            call.set_usage(usage)
    rec.close()
    calls = [ev for ev in (decode_line(x) for x in (tmp_path / "run.jsonl").read_bytes().splitlines())
             if isinstance(ev, Event) and ev.kind == "llm_call"]
    assert [(ev.cost_status, ev.cost_usd) for ev in calls[:2]] == [("reported", "0.012300")] * 2
    assert calls[2].cost_status != "reported"  # OpenAI reports no cost: the usage is priced, or unknown


def _varied_calls(n: int) -> list:
    """llm_calls as a recorder writes them, varied: seconds apart or together, late ones, errors,
    unknown costs, local calls, cache reads (savings), tiers, streamed or not, latencies missing."""
    import random

    from flightdeck.core.events import Event, Latency, Usage

    rnd = random.Random(7)
    t = 1_764_216_000.0
    out = []
    models = [("anthropic", "claude-haiku-4-5", "direct"), ("openai", "gpt-4o", "direct"),
              ("ollama", "llama3", "local"), ("openai", "gpt-5", "direct"), ("x", "no-such-model", "direct")]
    for i in range(n):
        t += rnd.choice((0.0, 0.001, 0.3, 1.0, 7.0))
        ts = t - 5000.0 if i % 97 == 0 else t  # now and then a call older than the windows' horizon
        provider, model, route = rnd.choice(models)
        lat = None if i % 13 == 0 else Latency(pre=rnd.random(), ttft=rnd.random() * 400 if i % 2 else None,
                                              gen=rnd.random() * 900, post=rnd.random(), total=rnd.random() * 2000)
        cost = None if i % 11 == 0 else f"0.{rnd.randrange(10**6):06d}"
        out.append(Event(v=1, ts=ts, kind="llm_call", id=f"p-{i:x}", run="r", provider=provider, route=route,
                         model=model, stream=bool(i % 2), error="E" if i % 17 == 0 else None,
                         usage=Usage(input_tokens=rnd.randrange(5000), output_tokens=rnd.randrange(900),
                                     cache_read_tokens=rnd.choice((0, 0, 8000, 150_000)),
                                     cache_write_tokens=rnd.choice((0, 300))),
                         cost_usd=cost, cost_status="unknown" if cost is None else
                         ("local" if route == "local" else "priced"), latency_ms=lat,
                         service_tier="flex" if i % 5 == 0 else None))
    return out


def test_the_windows_only_fold_gives_add_many_s_windows() -> None:
    """``Aggregator.add_window_calls`` (rec.stats()'s fold) against ``add_many``, figure by figure."""
    from flightdeck.core.aggregate import Aggregator
    from flightdeck.core.aggregate.aggregator import FUTURE_SKEW

    events = _varied_calls(3000)
    now = max(ev.ts for ev in events)
    future = events[-1].ts + FUTURE_SKEW + 10
    from flightdeck.core.events import Event, Usage

    events.append(Event(v=1, ts=future, kind="llm_call", id="p-future", run="r", provider="openai",
                        model="gpt-4o", usage=Usage(input_tokens=1), cost_usd="0.000001"))
    plain = Aggregator(clock=lambda: now, breakdowns=(), recent=0)
    plain.add_many(events)
    fast = Aggregator(clock=lambda: now, breakdowns=(), recent=0)
    for i in range(0, len(events), 64):
        fast.add_window_calls(events[i:i + 64])
    assert fast.future_events == plain.future_events == 1
    hour = plain.window(3600, now=now)
    assert hour.cache_saved_usd > 0 and hour.unpriced and hour.errors and hour.stages["ttft"].count  # varied
    for seconds in (1, 10, 60, 300, 900, 3600, 4000):
        assert fast.window(seconds, now=now) == plain.window(seconds, now=now), seconds
    assert fast.windows is not None and plain.windows is not None
    assert fast.windows.day_cost == plain.windows.day_cost
    assert fast.windows.first == plain.windows.first
