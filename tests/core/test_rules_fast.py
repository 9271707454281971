"""The rules' per-call trackers and firing logic against their first (plain) version.

``core.rules`` keeps spend in integers, precomputes ranks and rule levels,
and skips empty work (``_Spend``, ``_LatencyP90``, ``RuleEngine.observe``).
The plain version below is the code as it was before (Decimal sums, a
``nearest_rank_value`` per call, properties read per call); both engines
are fed the same varied event streams and must fire the same rules with
the same values at the same events.
"""

from __future__ import annotations

import bisect
import collections
import random
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.events import KIND_LLM_CALL, Event, Latency, Usage
from flightdeck.core.rules import _TRACKERS as FAST_TRACKERS
from flightdeck.core.rules import Firing, Rule, RuleEngine, RuleSet, _amount, _describe
from flightdeck.core.sketch import nearest_rank_value

# -- the plain version (core/rules.py before the fast trackers) -------------------------

class _Tracker:
    def update(self, ev: Event) -> float | None:
        """Feed one llm_call; the metric after it, or None when not measurable yet."""
        raise NotImplementedError


class _Spend(_Tracker):
    def __init__(self, rule: Rule) -> None:
        self.window = rule.window
        self.items: collections.deque[tuple[float, Decimal]] = collections.deque()
        self.total = Decimal(0)

    def update(self, ev: Event) -> float | None:
        now = float(ev.ts)
        cost = ev.cost
        if cost:
            self.items.append((now, cost))
            self.total += cost
        self._expire(now)
        return float(self.total)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        items = self.items
        while items and items[0][0] <= horizon:
            self.total -= items.popleft()[1]


class _LatencyP90(_Tracker):
    def __init__(self, rule: Rule) -> None:
        self.stage = rule.stage
        self.calls = rule.calls
        self.min_calls = rule.min_calls
        self.order: collections.deque[float] = collections.deque()
        self.sorted: list[float] = []

    def update(self, ev: Event) -> float | None:
        lat = ev.latency_ms
        value = getattr(lat, self.stage, None) if lat is not None else None
        if value is None:
            return None
        self.order.append(value)
        bisect.insort(self.sorted, value)
        if len(self.order) > self.calls:
            old = self.order.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]
        n = len(self.sorted)
        if n < self.min_calls:
            return None
        return nearest_rank_value(self.sorted, 0.9)  # the smallest value with 90 % at or below it


class _TokenSpike(_Tracker):
    def __init__(self, rule: Rule) -> None:
        pass

    def update(self, ev: Event) -> float | None:
        return float(ev.usage.prompt_tokens) if ev.usage is not None else None


class _Loop(_Tracker):
    def __init__(self, rule: Rule) -> None:
        self.window = rule.window
        self.items: collections.deque[tuple[float, str]] = collections.deque()
        self.counts: collections.Counter[str] = collections.Counter()

    def update(self, ev: Event) -> float | None:
        now = float(ev.ts)
        horizon = now - self.window
        items, counts = self.items, self.counts
        while items and items[0][0] <= horizon:
            _, old = items.popleft()
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        key = ev.prompt_hash
        if not key:
            return None
        items.append((now, key))
        counts[key] += 1
        return float(counts[key])


class _CacheHitRate(_Tracker):
    def __init__(self, rule: Rule) -> None:
        self.calls = rule.calls
        self.min_calls = rule.min_calls
        self.min_prompt = rule.min_prompt_tokens
        self.items: collections.deque[tuple[int, int]] = collections.deque()
        self.read = 0
        self.prompt = 0

    def update(self, ev: Event) -> float | None:
        usage = ev.usage
        if usage is None:
            return None
        item = (usage.cache_read_tokens, usage.prompt_tokens)
        self.items.append(item)
        self.read += item[0]
        self.prompt += item[1]
        if len(self.items) > self.calls:
            r, p = self.items.popleft()
            self.read -= r
            self.prompt -= p
        if len(self.items) < self.min_calls or self.prompt < self.min_prompt:
            return None
        return self.read / self.prompt


_TRACKERS: dict[str, Callable[[Rule], _Tracker]] = {
    "spend": _Spend,
    "latency_p90": _LatencyP90,
    "token_spike": _TokenSpike,
    "loop": _Loop,
    "cache_hit_rate": _CacheHitRate,
}


class _PlainArmed:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.tracker = _TRACKERS[rule.type](rule)
        self.armed = True
        self.last_fired: float | None = None


class PlainEngine:
    def __init__(self, ruleset: RuleSet, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._states = [_PlainArmed(rule) for rule in ruleset.rules]


def plain_observe(self: PlainEngine, ev: Event) -> list[Firing]:
    if not self._states or ev.kind != KIND_LLM_CALL:
        return []
    fired: list[Firing] = []
    now: float | None = None
    for state in self._states:
        value = state.tracker.update(ev)
        if value is None:
            continue
        rule = state.rule
        breached = value < rule.threshold if rule.below else (
            value >= rule.threshold if rule.type == "loop" else value > rule.threshold
        )
        if not breached:
            if not state.armed:
                cleared = value >= rule.clear_level if rule.below else value <= rule.clear_level
                if cleared:
                    state.armed = True
            continue
        if not state.armed:
            continue
        if now is None:
            now = self.clock()
        if state.last_fired is not None and now - state.last_fired < rule.cooldown:
            continue
        state.armed = False
        state.last_fired = now
        fired.append(Firing(rule.name, rule.type, value, rule.threshold, rule.action,
                            _describe(rule, value), rule.to))
    return fired


# -- the comparison -----------------------------------------------------------------------

RULES = [
    {"name": "spend", "type": "spend", "threshold": 2.0, "window": "10m", "cooldown": "5m", "clear": 1.5},
    {"name": "spend-fast", "type": "spend", "threshold": 0.05, "window": 30, "cooldown": 0},
    {"name": "slow", "type": "latency_p90", "stage": "total", "threshold": 1200, "calls": 20, "min_calls": 8,
     "cooldown": "2m"},
    {"name": "ttft", "type": "latency_p90", "stage": "ttft", "threshold": 300, "calls": 7, "cooldown": 0},
    {"name": "spike", "type": "token_spike", "threshold": 6000, "cooldown": "30s", "clear": 4000},
    {"name": "loop", "type": "loop", "threshold": 3, "window": "2m", "cooldown": "1m"},
    {"name": "cache", "type": "cache_hit_rate", "threshold": 0.3, "calls": 10, "min_prompt_tokens": 5000,
     "cooldown": 0},
]


def _cost(rnd: random.Random) -> str | None:
    pick = rnd.random()
    if pick < 0.1:
        return None
    if pick < 0.15:
        return "0.000000"
    places = rnd.choice((0, 1, 2, 6, 6, 6, 9, 12, 15, 20))
    whole = rnd.choice((0, 0, 0, 1))
    if not places:
        return str(whole)
    return f"{whole}.{rnd.randrange(10**places):0{places}d}"


def _stream(seed: int, n: int) -> list[Event]:
    rnd = random.Random(seed)
    t = 1_764_216_000.0
    out = []
    for i in range(n):
        t += rnd.choice((0.0, 0.5, 1.0, 3.0, 20.0, 90.0, 400.0))
        kind = "llm_call" if rnd.random() > 0.05 else rnd.choice(("alert", "signal_ack"))
        read = rnd.choice((0, 0, 3000, 9000))
        lat = None if rnd.random() < 0.1 else Latency(
            total=None if rnd.random() < 0.1 else rnd.choice((5.0, 800.0, 1500.0, 1200.0, rnd.random() * 3000)),
            ttft=None if rnd.random() < 0.3 else rnd.random() * 600)
        out.append(Event(v=1, ts=t, kind=kind, id=f"e{i}", run="r", provider="openai", model="m",
                         usage=None if rnd.random() < 0.03 else Usage(
                             input_tokens=rnd.randrange(8000), cache_read_tokens=read,
                             cache_write_tokens=rnd.choice((0, 500)), output_tokens=5),
                         cost_usd=_cost(rnd), latency_ms=lat,
                         prompt_hash=rnd.choice((None, None, "a", "b", "c"))))
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_each_tracker_measures_what_the_plain_one_did(seed: int) -> None:
    events = [ev for ev in _stream(seed, 120) if ev.kind == "llm_call"]
    for table in RULES:
        rule = RuleSet.from_dict({"rule": [table]}).rules[0]
        fast, plain = FAST_TRACKERS[rule.type](rule), _TRACKERS[rule.type](rule)
        for ev in events:
            assert fast.update(ev) == plain.update(ev), (rule.name, ev)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_the_engine_fires_as_the_plain_one_did(seed: int) -> None:
    rules = RuleSet.from_dict({"rule": RULES})
    now = [0.0]
    fast = RuleEngine(rules, clock=lambda: now[0])
    plain = PlainEngine(rules, clock=lambda: now[0])
    fired = 0
    for ev in _stream(seed, 200):
        now[0] = float(ev.ts) + 0.25
        got = fast.observe(ev)
        assert got == plain_observe(plain, ev), ev
        fired += len(got)
    assert fired  # the stream is varied enough to fire something


@pytest.mark.parametrize("text", ["0", "0.9", "12.000001", "0.000000", "1E-7", "2e3", "-0.5",
                                  "0.0000000000000000000000000000001234", "999999999.99999999999999"])
def test_a_cost_string_is_read_exactly(text: str) -> None:
    found = _amount(text)
    assert found is not None
    n, places = found
    assert Decimal(n).scaleb(-places) == Decimal(text)


def test_a_cost_that_is_not_finite_is_no_spend() -> None:
    assert _amount("NaN") is None and _amount("Infinity") is None
    with pytest.raises(ArithmeticError):
        _amount("lots")  # not a number: raises, as Event.cost did


def test_demo_rules_fire_alike_on_a_long_run() -> None:
    from pathlib import Path

    rules = RuleSet.load(Path(__file__).resolve().parents[2] / "demo" / "rules.toml")
    now = [0.0]
    fast, plain = RuleEngine(rules, clock=lambda: now[0]), PlainEngine(rules, clock=lambda: now[0])
    for ev in _stream(11, 3000):
        now[0] = float(ev.ts)
        assert fast.observe(ev) == plain_observe(plain, ev)
