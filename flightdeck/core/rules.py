"""Guardrail rules: a TOML file of limits, and the engine that checks them per event.

The same ``RuleEngine`` runs inside the agent (``Recorder(rules=...)``, so hard
limits hold with no monitor running) and inside the monitor (``tail --rules``,
which turns a firing into a control command with ``origin: "rule:NAME"``).

File format
-----------
One ``[[rule]]`` table per rule::

    [[rule]]
    name = "spend"            # shown in alerts; a command's origin is "rule:spend"
    type = "spend"            # what is measured, see below
    threshold = 2.00          # fires when the metric goes past this
    window = "10m"            # seconds as a number, or "30s", "10m", "2h"
    action = "pause"          # alert | pause | downgrade
    cooldown = "5m"           # at least this long between two firings (default 60s)
    clear = 1.50              # hysteresis: re-armed only once the metric is back past this
    to = { "gpt-4o" = "gpt-4o-mini" }   # downgrade only: an explicit mapping (else the agent's ladder)

Rule types (``metric`` in the alert is the type name):

``spend``
    US dollars spent by ``llm_call`` events in the last ``window`` (default 10m),
    summed exactly (in integers). Fires when above ``threshold``.
``latency_p90``
    The p90 of a stage (``stage``: pre, ttft, gen, post or total; default total),
    in ms, over the last ``calls`` calls (default 20), once at least
    ``min_calls`` (default 5, or ``calls`` if fewer) have it. Fires when above ``threshold``.
``token_spike``
    The prompt size of one call (input + cache read + cache write tokens).
    Fires when above ``threshold``. In the agent, ``on_token_spike`` is called too.
``loop``
    How many times the same ``prompt_hash`` was seen in the last ``window``
    (default 5m). Fires when it reaches ``threshold`` (an integer K).
``cache_hit_rate``
    The token-weighted cache hit rate of the last ``calls`` calls (default 20),
    once there are ``min_calls`` of them (default: all ``calls``, as a cache is
    cold at start) holding at least ``min_prompt_tokens`` (default 1000) prompt tokens.
    Fires when *below* ``threshold`` (a fraction, 0.3 = 30 %).

Firing, cooldown and hysteresis: a rule is *armed* at start. It fires when the
metric goes past ``threshold`` while armed and its ``cooldown`` has passed
since its last firing; it is then disarmed until the metric comes back past
``clear`` (default: 90 % of the threshold for "above" rules, for a loop
``threshold - 1``, and threshold + 0.05 for the cache hit rate). So a metric
hovering around its threshold fires once, not on every event.

Windows are measured in event time (``Event.ts``); cooldowns with the
engine's ``clock``. ``RuleEngine.observe`` is O(1) amortised per event except
``latency_p90``, which is O(calls) with a small constant (a sorted window).
"""

from __future__ import annotations

import bisect
import collections
import math
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flightdeck.core.events import KIND_LLM_CALL, STAGES, Event
from flightdeck.core.sketch import nearest_rank

__all__ = ["ACTIONS", "RULE_TYPES", "Firing", "Rule", "RuleEngine", "RuleError", "RuleSet", "parse_duration"]

RULE_TYPES = ("spend", "latency_p90", "token_spike", "loop", "cache_hit_rate")
ACTIONS = ("alert", "pause", "downgrade")
_DEFAULT_WINDOW = {"spend": 600.0, "loop": 300.0}
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_KNOWN_KEYS = frozenset(
    {"name", "type", "threshold", "window", "action", "cooldown", "clear", "to", "stage",
     "calls", "min_calls", "min_prompt_tokens", "message", "enabled"}
)


class RuleError(ValueError):
    """A rules file or table that cannot be used; the message names the file and field."""


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``"30s"``, ``"10m"``, ``"2h"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"{value!r} is not a duration")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration (use seconds, or e.g. \"30s\", \"10m\", \"2h\")")


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule that fired: what it measured, the limit, and what to do about it.

    ``to`` is the downgrade mapping the rule carries, if any.
    """

    rule: str
    metric: str
    value: float
    threshold: float
    action: str
    message: str
    to: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    type: str
    threshold: float
    action: str = "alert"
    window: float = 600.0
    cooldown: float = 60.0
    clear: float | None = None
    to: dict[str, str] | None = None
    stage: str = "total"
    calls: int = 20
    min_calls: int = 5
    min_prompt_tokens: int = 1000
    message: str | None = None

    @property
    def below(self) -> bool:
        """True for rules that fire when the metric falls (the cache hit rate)."""
        return self.type == "cache_hit_rate"

    @property
    def clear_level(self) -> float:
        if self.clear is not None:
            return self.clear
        if self.type == "cache_hit_rate":
            return self.threshold + 0.05
        if self.type == "loop":
            return self.threshold - 1
        return self.threshold * 0.9

    @classmethod
    def from_table(cls, table: Mapping[str, Any], where: str) -> Rule:
        """Build and check one rule; ``where`` prefixes errors (e.g. ``rules.toml: rule[2]``)."""
        unknown = sorted(set(table) - _KNOWN_KEYS)
        if unknown:
            raise RuleError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_KEYS))})")
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RuleError(f"{where}: field 'name' is required (a non-empty string)")
        where = f"{where} ({name})"
        kind = table.get("type")
        if kind not in RULE_TYPES:
            raise RuleError(f"{where}: field 'type' must be one of {', '.join(RULE_TYPES)}, not {kind!r}")
        action = table.get("action", "alert")
        if action not in ACTIONS:
            raise RuleError(f"{where}: field 'action' must be one of {', '.join(ACTIONS)}, not {action!r}")
        threshold = _number(table, "threshold", where, required=True)
        assert threshold is not None
        kw: dict[str, Any] = {"name": name, "type": kind, "threshold": threshold, "action": action}
        for key in ("window", "cooldown"):
            if key in table:
                try:
                    kw[key] = parse_duration(table[key])
                except ValueError as exc:
                    raise RuleError(f"{where}: field {key!r}: {exc}") from None
        if "window" not in kw:
            kw["window"] = _DEFAULT_WINDOW.get(kind, 600.0)
        if "clear" in table:
            kw["clear"] = _number(table, "clear", where)
        for key in ("calls", "min_calls", "min_prompt_tokens"):
            if key in table:
                value = table[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise RuleError(f"{where}: field {key!r} must be a positive integer, not {value!r}")
                kw[key] = value
        if "min_calls" not in kw:
            # A cache is cold at start: judge its hit rate on a full window only.
            calls = kw.get("calls", 20)
            kw["min_calls"] = calls if kind == "cache_hit_rate" else min(5, calls)
        if "stage" in table:
            if table["stage"] not in STAGES:
                raise RuleError(f"{where}: field 'stage' must be one of {', '.join(STAGES)}")
            kw["stage"] = table["stage"]
        if "to" in table:
            to = table["to"]
            if not isinstance(to, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in to.items()):
                raise RuleError(f"{where}: field 'to' must be a table of model = model")
            if action != "downgrade":
                raise RuleError(f"{where}: field 'to' is only for action = \"downgrade\"")
            kw["to"] = dict(to)
        if "message" in table:
            kw["message"] = str(table["message"])
        if kind == "cache_hit_rate" and not 0 <= threshold <= 1:
            raise RuleError(f"{where}: field 'threshold' is a fraction between 0 and 1 for cache_hit_rate")
        if kind == "loop" and (threshold < 2 or threshold != int(threshold)):
            raise RuleError(f"{where}: field 'threshold' is a whole number of repeats (>= 2) for loop")
        rule = cls(**kw)
        if rule.min_calls > rule.calls:
            raise RuleError(f"{where}: field 'min_calls' ({rule.min_calls}) is more than 'calls' ({rule.calls})")
        return rule


def _number(table: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    if key not in table:
        if required:
            raise RuleError(f"{where}: field {key!r} is required (a number)")
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RuleError(f"{where}: field {key!r} must be a number, not {value!r}")
    try:
        number = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise RuleError(f"{where}: field {key!r} must be a number, not {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise RuleError(f"{where}: field {key!r} must be a non-negative number, not {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    source: str = "<dict>"

    @classmethod
    def load(cls, path: str | Path) -> RuleSet:
        """Read a TOML rules file; RuleError naming the file (and rule and field) when bad."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RuleError(f"{path}: cannot read rules file: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise RuleError(f"{path}: not UTF-8 text: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise RuleError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> RuleSet:
        if not isinstance(data, Mapping):
            raise RuleError(f"{source}: expected a table with [[rule]] entries")
        unknown = sorted(set(data) - {"rule"})
        if unknown:
            raise RuleError(f"{source}: unknown top-level field {unknown[0]!r} (rules go in [[rule]] tables)")
        tables = data.get("rule", [])
        if isinstance(tables, Mapping):
            tables = [tables]
        if not isinstance(tables, list):
            raise RuleError(f"{source}: field 'rule' must be an array of tables ([[rule]])")
        rules: list[Rule] = []
        names: set[str] = set()
        for i, table in enumerate(tables):
            where = f"{source}: rule[{i}]"
            if not isinstance(table, Mapping):
                raise RuleError(f"{where}: expected a table")
            if table.get("enabled", True) is False:
                continue
            rule = Rule.from_table(table, where)
            if rule.name in names:
                raise RuleError(f"{where}: field 'name': {rule.name!r} is used twice")
            names.add(rule.name)
            rules.append(rule)
        return cls(tuple(rules), source)

    @classmethod
    def coerce(cls, value: RuleSet | str | Path | Mapping[str, Any] | None) -> RuleSet:
        """A RuleSet from a RuleSet, a path, a dict, or None (no rules)."""
        if value is None:
            return cls()
        if isinstance(value, RuleSet):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        return cls.load(value)


# ---------------------------------------------------------------------------
# Per-rule state. Each tracker measures one metric cheaply; the shared
# arm/cooldown logic lives in RuleEngine.


class _Tracker:
    def update(self, ev: Event) -> float | None:
        """Feed one llm_call; the metric after it, or None when not measurable yet."""
        raise NotImplementedError


# 10**i for the scales of cost strings (at most MAX_COST_DECIMALS places on the wire).
_P10: tuple[int, ...] = tuple(10**i for i in range(64))


def _amount(text: str) -> tuple[int, int] | None:
    """A cost string as (n, places): ``n * 10**-places`` USD exactly; None for one that is not finite.

    Plain digits (every cost the line format carries) in two ``int`` parses;
    any other spelling through ``Decimal`` (which raises for what is not a
    number, as ``Event.cost`` does).

    Args:
        text: an event's ``cost_usd`` (not empty).
    """
    whole, _, frac = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not frac or (frac.isascii() and frac.isdigit())):
        return int(whole + frac), len(frac)
    sign, digits, exponent = Decimal(text).as_tuple()
    if not isinstance(exponent, int):
        return None  # NaN or infinity: not an amount spent
    n = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent > 0:
        return n * 10**exponent, 0
    return n, -exponent


class _Spend(_Tracker):
    """Dollars spent in the last ``window`` seconds, summed exactly in integers.

    The sum is kept as an int at the finest scale of the costs seen
    (``total * 10**-places`` USD) and read as ``total / 10**places``: a
    correctly rounded int division, the float of the exact sum, which is what
    ``float(Decimal sum)`` gave (the Decimal sum is exact below 28 digits).
    0.9 us a call where the Decimal parse, add and float took 3.4 (timeit,
    shared 2-core machine); pinned to the Decimal version in
    tests/core/test_rules_fast.py.
    """

    __slots__ = ("items", "places", "total", "window")

    def __init__(self, rule: Rule) -> None:
        self.window = rule.window
        self.items: collections.deque[tuple[float, int, int]] = collections.deque()  # (ts, n, places)
        self.total = 0
        self.places = 0

    def update(self, ev: Event) -> float | None:
        ts = ev.ts
        now = ts if type(ts) is float else float(ts)
        text = ev.cost_usd
        if text:
            amount = _amount(text)
            if amount is not None and amount[0]:
                n, places = amount
                if places > self.places:
                    self.total *= _P10[places - self.places]
                    self.places = places
                self.total += n * _P10[self.places - places]
                self.items.append((now, n, places))
        horizon = now - self.window
        items = self.items
        while items and items[0][0] <= horizon:
            _, n, places = items.popleft()
            self.total -= n * _P10[self.places - places]
        return self.total / _P10[self.places]


class _LatencyP90(_Tracker):
    """The p90 of a stage over the last ``calls`` calls: a sorted window.

    The nearest rank for each count is worked out once (``nearest_rank``
    rounds a float product to 12 places, 2-3 us a call on its own).
    """

    __slots__ = ("calls", "min_calls", "order", "ranks", "sorted", "stage")

    def __init__(self, rule: Rule) -> None:
        self.stage = rule.stage
        self.calls = rule.calls
        self.min_calls = rule.min_calls
        self.order: collections.deque[float] = collections.deque()
        self.sorted: list[float] = []
        # The smallest value with 90 % at or below it, by the count of values held.
        self.ranks = [0, *(nearest_rank(0.9, n) - 1 for n in range(1, rule.calls + 1))]

    def update(self, ev: Event) -> float | None:
        lat = ev.latency_ms
        value = getattr(lat, self.stage, None) if lat is not None else None
        if value is None:
            return None
        self.order.append(value)
        ordered = self.sorted
        bisect.insort(ordered, value)
        if len(self.order) > self.calls:
            del ordered[bisect.bisect_left(ordered, self.order.popleft())]
        n = len(ordered)
        if n < self.min_calls:
            return None
        return ordered[self.ranks[n]]


class _TokenSpike(_Tracker):
    __slots__ = ()

    def __init__(self, rule: Rule) -> None:
        pass

    def update(self, ev: Event) -> float | None:
        u = ev.usage
        return None if u is None else float(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens)


class _Loop(_Tracker):
    __slots__ = ("counts", "items", "window")

    def __init__(self, rule: Rule) -> None:
        self.window = rule.window
        self.items: collections.deque[tuple[float, str]] = collections.deque()
        self.counts: collections.Counter[str] = collections.Counter()

    def update(self, ev: Event) -> float | None:
        key = ev.prompt_hash
        items = self.items
        if not items and not key:
            return None  # nothing held, nothing to hold: the usual call without a prompt hash
        now = float(ev.ts)
        horizon = now - self.window
        counts = self.counts
        while items and items[0][0] <= horizon:
            _, old = items.popleft()
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        if not key:
            return None
        items.append((now, key))
        counts[key] += 1
        return float(counts[key])


class _CacheHitRate(_Tracker):
    __slots__ = ("calls", "items", "min_calls", "min_prompt", "prompt", "read")

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
        read = usage.cache_read_tokens
        prompt = usage.input_tokens + read + usage.cache_write_tokens
        items = self.items
        items.append((read, prompt))
        self.read += read
        self.prompt += prompt
        if len(items) > self.calls:
            r, p = items.popleft()
            self.read -= r
            self.prompt -= p
        if len(items) < self.min_calls or self.prompt < self.min_prompt:
            return None
        return self.read / self.prompt


_TRACKERS: dict[str, Callable[[Rule], _Tracker]] = {
    "spend": _Spend,
    "latency_p90": _LatencyP90,
    "token_spike": _TokenSpike,
    "loop": _Loop,
    "cache_hit_rate": _CacheHitRate,
}

_UNITS = {"spend": "USD", "latency_p90": "ms", "token_spike": "tokens", "loop": "repeats", "cache_hit_rate": ""}


def _describe(rule: Rule, value: float) -> str:
    if rule.message:
        return rule.message
    if rule.type == "spend":
        return f"spend {value:.2f} USD in {_fmt_window(rule.window)} > {rule.threshold:.2f}"
    if rule.type == "latency_p90":
        return f"p90 {rule.stage} {value:.0f} ms over last {rule.calls} calls > {rule.threshold:.0f} ms"
    if rule.type == "token_spike":
        return f"prompt {value:.0f} tokens > {rule.threshold:.0f}"
    if rule.type == "loop":
        return f"same prompt {value:.0f} times in {_fmt_window(rule.window)} (limit {rule.threshold:.0f})"
    return f"cache hit rate {value:.0%} over last {rule.calls} calls < {rule.threshold:.0%}"


def _fmt_window(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# How a rule's metric breaches its threshold (``_Armed.mode``).
_ABOVE, _AT_LEAST, _BELOW = 0, 1, 2


class _Armed:
    """A rule's tracker and firing state, with what ``observe`` reads per call copied out of the rule."""

    __slots__ = ("armed", "clear", "cooldown", "last_fired", "mode", "rule", "threshold", "tracker", "update")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.tracker = _TRACKERS[rule.type](rule)
        self.update = self.tracker.update
        self.armed = True
        self.last_fired: float | None = None
        self.threshold = rule.threshold
        self.clear = rule.clear_level
        self.cooldown = rule.cooldown
        self.mode = _BELOW if rule.below else (_AT_LEAST if rule.type == "loop" else _ABOVE)


@dataclass
class RuleEngine:
    """Feeds events to every rule; returns the firings each event caused.

    Only ``llm_call`` events are measured; other kinds return ``[]``. Not
    thread-safe: one engine per consumer thread (the recorder holds its lock).
    """

    ruleset: RuleSet
    clock: Callable[[], float] = time.time
    _states: list[_Armed] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._states = [_Armed(rule) for rule in self.ruleset.rules]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.ruleset.rules

    def observe(self, ev: Event) -> list[Firing]:
        """Feed one event to every rule; the firings it caused (``[]`` for other kinds).

        Per call and rule: the tracker's update and two comparisons. The five
        demo rules cost 5.8 -> 2.5 us a call together (timeit, shared 2-core
        machine); the decisions are pinned to the first version in
        tests/core/test_rules_fast.py.

        Args:
            ev: the event, in event-time order.
        """
        if not self._states or ev.kind != KIND_LLM_CALL:
            return []
        fired: list[Firing] = []
        now: float | None = None
        for state in self._states:
            value = state.update(ev)
            if value is None:
                continue
            mode = state.mode
            if mode == _ABOVE:
                breached = value > state.threshold
            elif mode == _AT_LEAST:
                breached = value >= state.threshold
            else:
                breached = value < state.threshold
            if not breached:
                if not state.armed and (value >= state.clear if mode == _BELOW else value <= state.clear):
                    state.armed = True
                continue
            if not state.armed:
                continue
            if now is None:
                now = self.clock()
            if state.last_fired is not None and now - state.last_fired < state.cooldown:
                continue
            state.armed = False
            state.last_fired = now
            rule = state.rule
            fired.append(Firing(rule.name, rule.type, value, rule.threshold, rule.action,
                                _describe(rule, value), rule.to))
        return fired

    def observe_all(self, events: Iterable[Event]) -> list[Firing]:
        out: list[Firing] = []
        for ev in events:
            out.extend(self.observe(ev))
        return out
