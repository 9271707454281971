"""What the recorder's per-call path does in integers for speed is pinned to the plain versions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
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


_MARK = st.one_of(st.none(), st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
                  st.sampled_from([0.0, 1e6, 2e6, math.inf]))


@settings(max_examples=1000, deadline=None)
@given(_MARK, _MARK, _MARK, _MARK, _MARK, _MARK, _MARK, st.booleans())
def test_stage_latency_is_ms_between_per_stage(pre_from: float | None, sent: float | None, first: float | None,
                                               recv: float | None, post_to: float | None,
                                               total_from: float | None, total_to: float | None,
                                               stream: bool) -> None:
    """The inlined stage arithmetic (``stage_latency``) against the five ``ms_between`` calls it replaced."""
    from flightdeck.core.events import Latency
    from flightdeck.recorder.recorder import stage_latency

    if stream and first is not None:
        ttft, gen = ms_between(sent, first), ms_between(first, recv)
    else:
        ttft, gen = None, ms_between(sent, recv)
    plain = Latency(pre=ms_between(pre_from, sent), ttft=ttft, gen=gen, post=ms_between(recv, post_to),
                    total=ms_between(total_from, total_to))
    ours = stage_latency(pre_from, sent, first, recv, post_to, total_from, total_to, stream)
    assert ours == plain


_NEAR = st.one_of(st.none(), st.floats(min_value=-5.0, max_value=5.0, allow_nan=False),
                  st.sampled_from([0.0, 1e6, 2e6, -1e6, math.inf]))


@settings(max_examples=600, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), _NEAR, _NEAR, _NEAR, _NEAR, st.booleans())
def test_a_with_block_s_stages_are_stage_latency_s(t0: float, sent: float | None, first: float | None,
                                                   recv: float | None, end: float | None, stream: bool) -> None:
    """``Call._latency``'s inlined usual case against ``stage_latency`` with the with block's marks."""
    import tempfile

    from flightdeck.recorder.recorder import Call, Recorder, stage_latency

    with tempfile.TemporaryDirectory() as folder:
        rec = Recorder(Path(folder) / "run.jsonl", run="r", stats=False)
        call = Call(rec, "anthropic", "m", None, None, stream, None, None, None)
        rec.close()
    marks = [t0 if d is None else t0 + d for d in (sent, first, recv, end)]
    call._t0 = t0
    call._t_sent = None if sent is None else marks[0]
    call._t_first = None if first is None else marks[1]
    call._t_recv = None if recv is None else marks[2]
    t_end = marks[3]
    want = stage_latency(t0, call._t_sent, call._t_first, call._t_recv, t_end, t0, t_end, stream)
    assert call._latency(t_end) == want


_COUNT = st.one_of(st.integers(min_value=-3, max_value=2**60), st.sampled_from([0, 10**15 - 1, 10**15, 2**49]))
_STAGE = st.one_of(st.none(), st.floats(min_value=-1.0, max_value=2e12), st.sampled_from([math.inf, math.nan, 1e12]))


@settings(max_examples=1500, deadline=None)
@given(st.floats(min_value=9e8, max_value=8e9), st.lists(_COUNT, min_size=6, max_size=6),
       # Costs as pricing writes them (format_usd, money._digits): plain digits, no leading zeros.
       st.one_of(st.none(), st.from_regex(r"\A(0|[1-9][0-9]{0,11})\.[0-9]{6,30}\Z"), st.just("0.000000")),
       st.lists(_STAGE, min_size=5, max_size=5))
def test_the_quick_bounds_accept_only_what_check_event_accepts(ts: float, counts: list[int], cost: str | None,
                                                               stages: list[float | None]) -> None:
    """``_surely_bounded`` (the recorder's quick accept) never passes an event ``check_event`` rejects
    (for the costs pricing writes: the recorder's only source of them)."""
    from flightdeck.core.events import Event, Latency, Usage, check_event
    from flightdeck.recorder.recorder import _surely_bounded

    usage = Usage(**dict(zip(("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                              "reasoning_tokens", "cache_write_1h_tokens"), counts)))
    lat = Latency(**dict(zip(("pre", "ttft", "gen", "post", "total"), stages)))
    ev = Event(v=1, ts=ts, kind="llm_call", id="x", run="r", provider="p", model="m", usage=usage,
               cost_usd=cost, latency_ms=lat)
    if _surely_bounded(ts, usage, cost, lat):
        assert check_event(ev) is None


def test_the_quick_bounds_pass_the_usual_call_and_refuse_odd_ones() -> None:
    from flightdeck.core.events import Latency, Usage
    from flightdeck.recorder.recorder import _surely_bounded

    lat = Latency(pre=1.0, ttft=None, gen=800.0, post=0.5, total=801.5)
    usual = Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000)
    assert _surely_bounded(1_764_216_000.0, usual, "0.011250", lat)
    assert _surely_bounded(1_764_216_000.0, usual, None, lat)
    assert not _surely_bounded(1_764_216_000.0, Usage(input_tokens=10**15), "0.1", lat)
    assert not _surely_bounded(1_764_216_000.0, Usage(output_tokens=-1), "0.1", lat)
    assert not _surely_bounded(1_764_216_000.0, Usage(output_tokens=1.5), "0.1", lat)  # type: ignore[arg-type]
    assert not _surely_bounded(1_764_216_000.0, usual, "1000000000.000000", lat)
    assert not _surely_bounded(1_764_216_000.0, usual, "0.1", Latency(total=math.inf))
    assert not _surely_bounded(1.0, usual, "0.1", lat)


def test_every_field_of_a_call_reaches_its_line(tmp_path: Path) -> None:
    """The event copied from the recorder's template carries what the 22-keyword constructor did."""
    from flightdeck.core.events import Event, decode_line
    from flightdeck.recorder.recorder import Recorder

    rec = Recorder(tmp_path / "run.jsonl", run="r-1", agent="a-1", stats=False)
    with rec.call(provider="openai", model="gpt-5", name="plan", step=3, stream=False, tags={"k": "v"}) as call:
        call.set_prompt([{"role": "user", "content": "hi"}])
        call.sent()
        call.received()
        call.set_usage({"usage": {"prompt_tokens": 100, "completion_tokens": 10}, "service_tier": "flex"})
    try:
        with rec.call(provider="anthropic", model="claude-opus-4-6", stream=True) as call:
            call.set_usage({"input_tokens": 5, "output_tokens": 1, "speed": "fast"})
            raise KeyError("boom")
    except KeyError:
        pass
    with rec.call(provider="nobody", model="no-such-model"):
        pass
    rec.close()
    calls = [ev for ev in (decode_line(x) for x in (tmp_path / "run.jsonl").read_bytes().splitlines())
             if isinstance(ev, Event) and ev.kind == "llm_call"]
    first, second, third = calls
    for ev in calls:
        assert (ev.v, ev.run, ev.agent) == (1, "r-1", "a-1")
        assert ev.latency_ms is not None and ev.latency_ms.total is not None
    assert (first.provider, first.route, first.model, first.name, first.step, first.stream) == (
        "openai", "direct", "gpt-5", "plan", 3, False)
    assert first.tags == {"k": "v"} and first.prompt_hash and first.service_tier == "flex"
    assert first.cost_status == "priced" and first.cost_usd and first.price_source
    assert first.usage is not None and first.usage.input_tokens == 100 and first.error is None
    assert second.error == "KeyError: 'boom'" and second.speed == "fast" and second.stream is True
    assert second.name is None and second.step is None and second.tags is None and second.prompt_hash is None
    assert third.cost_usd is None and third.cost_status == "unknown" and third.message
    assert len({ev.id for ev in calls}) == 3


def _call_shapes(rec: object) -> None:
    """Calls of every shape the recorder's quick paths meet, and the ones they must leave alone."""
    from anthropic.types import Usage as AnthropicUsage

    from flightdeck.core.events import Usage

    shapes: list[tuple[str, str, object, dict]] = [
        ("anthropic", "claude-3-5-sonnet-20241022", {"input_tokens": 1200, "output_tokens": 350,
                                                    "cache_read_input_tokens": 8000,
                                                    "cache_creation_input_tokens": 0}, {}),
        ("anthropic", "claude-opus-4-6", {"input_tokens": 5, "output_tokens": 1, "speed": "fast",
                                          "cache_creation": {"ephemeral_5m_input_tokens": 3,
                                                             "ephemeral_1h_input_tokens": 4}}, {}),
        ("anthropic", "claude-opus-4-5", {"input_tokens": 5, "output_tokens": 1, "service_tier": "batch"}, {}),
        ("anthropic", "claude-opus-4-5", {"input_tokens": 5, "output_tokens": 1, "service_tier": "flex"}, {}),
        ("anthropic", "claude-haiku-4-5", AnthropicUsage(input_tokens=10, output_tokens=2,
                                                         cache_read_input_tokens=30), {}),
        ("anthropic", "claude-haiku-4-5", {"input_tokens": "10", "output_tokens": 2}, {}),  # a bad count
        ("anthropic", "claude-haiku-4-5", {"input_tokens": 10, "output_tokens": 2, "novel": 1}, {}),
        ("openai", "gpt-4o", {"prompt_tokens": 100, "completion_tokens": 10,
                              "prompt_tokens_details": {"cached_tokens": 40}}, {"api": "chat"}),
        ("openai", "o4-mini", {"usage": {"input_tokens": 100, "output_tokens": 50,
                                         "output_tokens_details": {"reasoning_tokens": 20}},
                               "service_tier": "priority"}, {"api": "responses"}),
        ("openrouter", "anthropic/claude-sonnet-4", {"prompt_tokens": 10, "completion_tokens": 2,
                                                     "cost": 0.00042}, {}),
        ("ollama", "llama3", {"prompt_eval_count": 10, "eval_count": 3}, {}),
        ("nobody", "no-such-model", {"input_tokens": 1, "output_tokens": 1}, {}),
        ("anthropic", "claude-haiku-4-5", Usage(input_tokens=-5, output_tokens=1), {}),
        ("anthropic", "claude-haiku-4-5", Usage(input_tokens=10**15, output_tokens=1), {}),
        ("anthropic", "claude-haiku-4-5", None, {}),
    ]
    for round_ in range(2):  # the second round finds every quote and canonical name kept
        for provider, model, usage, kw in shapes:
            with rec.call(provider=provider, model=model, name=f"s{round_}", **kw) as call:  # type: ignore[attr-defined]
                call.sent()
                call.received()
                if usage is not None:
                    call.set_usage(usage)


def test_the_quick_usage_and_price_paths_write_the_lines_the_full_paths_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Call.set_usage``'s quick reading and ``_record_call``'s kept ``TextQuote`` against
    ``_read_usage`` and ``_price`` (what they stand for), line by line, on every shape."""
    import msgspec

    from flightdeck.core.events import decode_line
    from flightdeck.recorder import recorder
    from flightdeck.recorder.recorder import Recorder

    def lines(path: Path, *, quick: bool) -> list[dict]:
        ticks = iter(range(10_000))
        rec = Recorder(path, run="r", agent="a", stats=False, clock=lambda: 1_764_216_000.0 + next(ticks),
                       monotonic=lambda: 100.0 + next(ticks) / 8)
        if not quick:
            monkeypatch.setattr(recorder, "_QUICK", None)
            monkeypatch.setattr(rec, "_quote", lambda key, ts: None)
        _call_shapes(rec)
        if quick:  # the quick paths were taken (their answers are compared below)
            assert ("anthropic", "claude-3-5-sonnet-20241022", "direct", None, None) in rec._quotes
            assert recorder._CANONICAL_OF.get("anthropic") == "anthropic"
        rec.close()
        monkeypatch.undo()
        out = []
        for raw in path.read_bytes().splitlines():
            ev = decode_line(raw)
            if getattr(ev, "kind", None) == "llm_call":
                row = msgspec.to_builtins(ev)
                row.pop("id")
                out.append(row)
        return out

    recorder._normalizer()  # the quick reading is there from the first call on
    fast = lines(tmp_path / "fast.jsonl", quick=True)
    full = lines(tmp_path / "full.jsonl", quick=False)
    assert len(fast) == 30 and fast == full
    assert sum(row["cost_status"] == "priced" for row in fast) >= 12
    negative = [row for row in fast if "out of bounds" in (row.get("message") or "")]
    assert len(negative) == 4 and all(row["cost_status"] == "unknown" for row in negative)
