"""The Aggregator: events in, ``Snapshot`` out. It composes the other parts.

* ``accumulator``: ``Acc`` and ``add_call``, the one way a call is counted.
* ``windows``: the last hour by second of event time (sliding windows,
  burn, the minute series, the projections).
* ``ledger``: commands, acks, alerts, rejects (not subject to the filter).
* ``core.money``: money units and compiled integer rates (cache savings).

A call is counted twice, in two slices: its second (``Windows``) and its
*combination* of breakdown keys (a "delta"). Reads fold the deltas into the
run total and into one group per key of each breakdown (``_settle``), so a
call costs two ``add_call`` whatever the number of breakdowns, and a
snapshot a few times a second only re-reads what changed.

Live mode (``live=True``) caps each breakdown at ``MAX_GROUPS`` keys and
folds the rest into "(other)", counting the keys folded; report mode keeps
every group (SPEC 5.1). "Now" is ``clock()`` when live and the newest call's
time for a report. A call dated more than ``FUTURE_SKEW`` seconds after
``clock()`` (a writer whose clock runs ahead) counts in the run totals and
breakdowns but never in a window, so it cannot move the windows' "now";
``future_events`` counts them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final, NamedTuple

from flightdeck.core.aggregate.accumulator import NO_USAGE, Acc, add_call
from flightdeck.core.aggregate.ledger import OTHER, Ledger
from flightdeck.core.aggregate.windows import PROJECTION_WINDOW, Windows
from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import KIND_LLM_CALL, Command, Event, Usage, parse_ts
from flightdeck.core.money import POW10, UNIT_PLACES, IntRates, Money, compile_rates, cost_units
from flightdeck.core.plan_windows import ClaudeBlocks
from flightdeck.core.sketch import FLUSH_AT
from flightdeck.core.snapshot import (
    BREAKDOWN_DIMS,
    PERIOD_DIMS,
    REPORT_DIMS,
    WINDOW_NAMES,
    WINDOW_SECONDS,
    AlertRow,
    Budget,
    CallRow,
    Group,
    MinutePoint,
    Projection,
    Snapshot,
    SourceStatus,
    WindowFigures,
    call_row,
)

# (provider, model, ts) -> a pricing ``Rates`` (tiers count), an (input,
# cache_read) USD-per-MTok pair, or None when unknown.
RatesFn = Callable[[str, str, float], Any]

MAX_GROUPS: Final = 500  # per breakdown, live mode only; the rest share OTHER
MAX_COMBOS: Final = 5000  # deltas held before they are folded into the groups
MAX_FOLDED_KEYS: Final = 100_000  # folded keys remembered per breakdown (beyond: a lower bound)
NONE_KEY: Final = "(none)"
_RAW_DELTA: Final = 64  # latencies a delta hands on unbinned (see _settle)
FUTURE_SKEW: Final = 120.0  # seconds a writer's clock may run ahead before its calls are "future"


_MONTHS: dict[int, str] = {}  # UTC day number -> "YYYY-MM" (a few thousand days at most)
_EPOCH: Final = date(1970, 1, 1)


def _month(day: int) -> str:
    label = _MONTHS.get(day)
    if label is None:
        if len(_MONTHS) > 100_000:
            _MONTHS.clear()
        label = _MONTHS[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m")
    return label


def _period_getter(dim: str) -> Callable[[float], Any]:
    """A UTC period's key from a ts: the day number, the Monday-start week number, or "YYYY-MM"."""
    if dim == "day":
        return lambda ts: int(ts // 86400)
    if dim == "week":
        return lambda ts: (int(ts // 86400) - 4) // 7  # day 4, 1970-01-05, is a Monday
    return lambda ts: _month(int(ts // 86400))


def _label(dim: str, key: Any) -> str:
    """A group key as shown: dates for days and weeks (the week's Monday), text otherwise."""
    if dim == "day":
        return (_EPOCH + timedelta(days=key)).isoformat()
    if dim == "week":
        return (_EPOCH + timedelta(days=key * 7 + 4)).isoformat()
    return NONE_KEY if key is None else str(key)


def _make_key_fns(dims: tuple[str, ...]) -> tuple[Callable[[Event], Any] | None,
                                                   Callable[[Event, float], Any] | None]:
    """(key of ev, key of ev and its ts): a call's combination of breakdown keys; one of them is set.

    Plain dimensions read the event's attributes (``session`` is the run);
    the periods need the call's time, so they take the second form.
    """
    if not dims:
        return None, None
    attrs = ["run" if d == "session" else d for d in dims]
    if not any(d in PERIOD_DIMS for d in dims):
        return attrgetter(*attrs), None
    getters: list[Callable[[Event, float], Any]] = []
    for dim, attr in zip(dims, attrs):
        if dim in PERIOD_DIMS:
            period = _period_getter(dim)
            getters.append(lambda ev, ts, period=period: period(ts))  # type: ignore[misc]
        else:
            getters.append(lambda ev, ts, attr=attr: getattr(ev, attr))  # type: ignore[misc]
    if len(getters) == 1:
        return None, getters[0]
    return None, lambda ev, ts: tuple(get(ev, ts) for get in getters)


class _PairRates(NamedTuple):
    """An (input, cache_read) pair from a rates function, as the attributes ``compile_rates`` reads."""

    input: Decimal
    cache_read: Decimal
    output: Decimal = Decimal(0)
    cache_write: Decimal = Decimal(0)
    cache_write_1h: Decimal = Decimal(0)
    reasoning: Decimal | None = None
    per_request: Decimal = Decimal(0)
    tiers: tuple[tuple[int, Any], ...] = ()


def _default_rates(provider: str, model: str, ts: float, route: str | None = None,
                   service_tier: str | None = None, speed: str | None = None) -> Any:
    """The pricing module's ``Rates`` for the call (tiers included); None if unknown."""
    try:
        from flightdeck.core.pricing import default_pricer
    except ImportError:
        return None
    return default_pricer().rates(provider, model, ts, route=route, service_tier=service_tier, speed=speed)


class _DATED:
    """Marks a rates key whose rates change with the date or time of day: asked per call."""


_SavingKey = tuple[str | None, str | None, str | None, str | None, str | None]


def event_cost(text: str) -> Money | None:
    """An event's ``cost_usd`` in money units; None for a cost that is not a decimal (unknown, never 0).

    ``cost_units``' fast path (plain digits, at most 12 places) without its
    checks, for the per-event loops of ``_add`` and ``_add_many_report``; any
    other spelling goes through ``cost_units`` itself (a test pins both).

    ``_add_many_report`` inlines the fast path (a test pins both on odd spellings).

    Args:
        text: the event's ``cost_usd`` (not empty).
    """
    whole, _, frac = text.partition(".")
    places = len(frac)
    digits = whole + frac
    # isdecimal: exactly the digits int() reads (isdigit also passes "²", which int() refuses).
    if places <= UNIT_PLACES and whole and digits.isdecimal():
        return int(digits) * POW10[UNIT_PLACES - places]
    try:
        return cost_units(text)
    except ValueError:
        return None


class Aggregator:
    """Events in, ``Snapshot`` out. Not thread-safe: one thread feeds it."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        breakdowns: Sequence[str] = BREAKDOWN_DIMS,
        recent: int = 200,
        predicate: Callable[[Event], bool] | None = None,
        rates: RatesFn | None = None,
        live: bool = True,
    ) -> None:
        """Args:
        clock: wall time; "now" of the live windows, and the line beyond which a call is "future".
        breakdowns: the dimensions to group calls by (of ``BREAKDOWN_DIMS``).
        recent: how many recent calls to keep for the events panel.
        predicate: only llm_calls it accepts are counted (the ledger sees every event).
        rates: where cache savings' rates come from (default: the pricing module).
        live: True for the monitor (clock time, capped groups); False for a report.
        """
        for dim in breakdowns:
            if dim not in REPORT_DIMS:
                raise ValueError(f"unknown breakdown {dim!r}; choose from {', '.join(REPORT_DIMS)}")
        self.clock = clock
        self.live = live
        self.predicate = predicate
        self._rates_fn: RatesFn = rates if rates is not None else _default_rates
        self._dims: tuple[str, ...] = tuple(dict.fromkeys(breakdowns))
        self.seen = SeenIds()
        self.events = 0
        self.duplicates = 0
        self.dropped = 0
        self.future_events = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.ledger = Ledger(clock)
        # A report summarises the whole log: the sliding windows are the live monitor's.
        self.windows: Windows | None = Windows() if live else None
        self._total = Acc()
        self._groups: dict[str, dict[str, Acc]] = {dim: {} for dim in self._dims}
        self._folded: dict[str, set[str]] = {dim: set() for dim in self._dims}
        # Calls since the last read, per combination of the breakdown keys.
        self._deltas: dict[Any, Acc] = {}
        self._recent: deque[Event] = deque(maxlen=max(recent, 0))
        self._saving: dict[_SavingKey, Any] = {}
        self._combo_key, self._combo_key_ts = _make_key_fns(self._dims)
        # Period and session rows list their models (when "model" is a breakdown
        # too), and a session its last day (when "day" is): read from the combinations.
        self._models: dict[str, dict[Any, set[str]]] = {
            d: {} for d in self._dims if (d in PERIOD_DIMS or d == "session") and "model" in self._dims}
        self._last_day: dict[Any, int] = {}
        # Claude's 5-hour blocks, for a report (the live engine keeps its own across filters).
        self.claude_blocks: ClaudeBlocks | None = None if live else ClaudeBlocks()

    # -- the ledger's counters, read as before ------------------------------------------

    @property
    def rejected(self) -> int:
        return self.ledger.rejected

    @property
    def unknown_kinds(self) -> int:
        return self.ledger.unknown_kinds

    @property
    def runs_started(self) -> int:
        return self.ledger.runs_started

    @property
    def runs_ended(self) -> int:
        return self.ledger.runs_ended

    # -- input ------------------------------------------------------------------------

    def add(self, ev: Event) -> None:
        """Count one decoded event of any kind (``ev.ts`` a float, or anything ``parse_ts`` reads).

        Args:
            ev: the event; a repeated id is counted once (in ``duplicates``).
        """
        if self._add(ev, self.clock() + FUTURE_SKEW) and self.claude_blocks is not None:
            self.claude_blocks.add_calls((ev,))

    def add_many(self, events: Iterable[Event]) -> list[Event]:
        """``add`` each event, in order, with the same result (the clock is read once).

        Args:
            events: decoded events, as a report or a monitor backfill reads them.

        Returns:
            The events that were not duplicates (what a caller watching
            ``duplicates`` around ``add`` would keep).
        """
        future_at = self.clock() + FUTURE_SKEW
        kept: list[Event]
        if self.windows is None and self.predicate is None and self.LEAN:
            kept = self._add_many_report(events, future_at)
        else:
            count = self._add
            kept = []
            keep = kept.append
            for ev in events:
                if count(ev, future_at):
                    keep(ev)
        if self.claude_blocks is not None:
            self.claude_blocks.add_calls(kept)  # after the loop: the hot path stays as it was
        return kept

    # The report's add_many (_add_many_report); False: every event through _add.
    LEAN = True

    def _add_many_report(self, events: Iterable[Event], future_at: float) -> list[Event]:
        """``_add`` for each event of a report (no windows, no predicate), inlined: the same counts.

        Measured alone (add_many over decoded events, in batches, LEAN on
        and off interleaved, min of 7, a loaded 2-core machine): 200k v1
        events 1.85 -> 1.38 s CPU, 33k Claude Code events 0.29 -> 0.25 s;
        between 6 % and 25 % over several runs. This loop does ``_add``'s work
        for the usual call (a float ts, no ``dropped``) with locals, one
        delta lookup and the integer adds of ``add_call`` for its one slice,
        and hands only the last ``recent`` calls to the deque; any other
        event goes through ``_add`` itself. ``LEAN = False`` is the plain
        version, which a test compares with this one figure by figure.
        """
        count = self._add
        kept: list[Event] = []
        keep = kept.append
        recent: list[Event] = []
        seen_add = self.seen.add
        deltas = self._deltas
        combo, combo_ts = self._combo_key, self._combo_key_ts
        cache_saving = self._cache_saving
        first, last = self.first_ts, self.last_ts
        calls = dups = future_n = 0
        for ev in events:
            ts = ev.ts
            if type(ts) is not float or ev.kind != KIND_LLM_CALL or ev.dropped:
                # Anything unusual: _add, with this loop's counts handed over and back.
                self.first_ts, self.last_ts = first, last
                self._recent.extend(recent)
                recent.clear()
                if count(ev, future_at):
                    keep(ev)
                first, last = self.first_ts, self.last_ts
                continue
            if not seen_add(ev.id):
                dups += 1
                continue
            keep(ev)
            if ts > future_at:
                future_n += 1  # counted, but it must not move "now"
            else:
                if first is None or ts < first:
                    first = ts
                if last is None or ts > last:
                    last = ts
            calls += 1
            text = ev.cost_usd
            if text:
                # event_cost's fast path, inlined: 4.3k -> 3.7k instructions a
                # cost (valgrind, v1 events' costs); anything else goes to it.
                whole, _, frac = text.partition(".")
                places = len(frac)
                digits = whole + frac
                if places <= UNIT_PLACES and whole and digits.isdecimal():
                    cost = int(digits) * POW10[UNIT_PLACES - places]
                else:
                    cost = event_cost(text)
            else:
                cost = None
            u = ev.usage
            if u is None:
                u = NO_USAGE
            if combo is not None:
                key = combo(ev)
            elif combo_ts is not None:
                key = combo_ts(ev, ts)
            else:
                key = None
            acc = deltas.get(key)
            if acc is None:
                acc = self._new_delta(key)
            # add_call for one slice, inlined.
            acc.calls += 1
            if ev.error is not None:
                acc.errors += 1
            if cost is None:
                acc.unpriced += 1
            else:
                acc.cost += cost
            acc.input += u.input_tokens
            acc.output += u.output_tokens
            read = u.cache_read_tokens
            acc.cache_read += read
            acc.cache_write += u.cache_write_tokens
            acc.reasoning += u.reasoning_tokens
            acc.cache_write_1h += u.cache_write_1h_tokens
            if read and ev.cost_status != "local":
                acc.saved += cache_saving(ev, u, ts)
            lat = ev.latency_ms
            if lat is not None:
                (acc.lats if ev.stream else acc.lats_ns).append(lat)
                if not acc.calls & (FLUSH_AT - 1):
                    acc.flush()
            recent.append(ev)
        self.first_ts, self.last_ts = first, last
        self.events += calls
        self.duplicates += dups
        self.future_events += future_n
        maxlen = self._recent.maxlen
        self._recent.extend(recent[-maxlen:] if maxlen else ())
        return kept

    def _add(self, ev: Event, future_at: float) -> bool:
        """The one path of every event; False for a duplicate.

        This runs once per event of a report (millions): plain attribute and
        dict work, and ``add_call`` for each slice the call lands in.
        """
        is_call = ev.kind == KIND_LLM_CALL
        if is_call and self.predicate is not None and not self.predicate(ev):
            return True
        if not self.seen.add(ev.id):
            self.duplicates += 1
            return False
        ts = ev.ts
        if type(ts) is not float:
            # decode_line always gives a float; an Event built by other code may not.
            try:
                ts = parse_ts(ts)
            except (TypeError, ValueError, OverflowError):
                self.ledger.reject("bad ts", f"ts {ts!r} is not a time")
                return True
        future = ts > future_at
        if future:
            self.future_events += 1  # counted, but it must not move "now" nor land in a window
        else:
            if self.first_ts is None or ts < self.first_ts:
                self.first_ts = ts
            if self.last_ts is None or ts > self.last_ts:
                self.last_ts = ts
        if ev.dropped:
            self.dropped += ev.dropped
        if not is_call:
            self.ledger.add(ev, ts)
            return True
        self.events += 1
        text = ev.cost_usd
        cost = event_cost(text) if text else None
        u = ev.usage
        if u is None:  # decode_line refuses such a call; an Event built by other code may not
            u = NO_USAGE
        saved: Money = 0
        if u.cache_read_tokens and ev.cost_status != "local":
            saved = self._cache_saving(ev, u, ts)
        lat = ev.latency_ms
        stream = ev.stream
        err = ev.error is not None
        combo = self._combo_key
        if combo is not None:
            key = combo(ev)
        elif self._combo_key_ts is not None:
            key = self._combo_key_ts(ev, ts)
        else:
            key = None
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._new_delta(key)
        windows = self.windows
        slices: tuple[Acc, ...] = (delta,)
        if not future and windows is not None:
            # Most calls land in the newest second: no lookup for those.
            slot = windows.top_acc if int(ts // 1) == windows.top else windows.slot(ts)
            if slot is None:
                windows.late(ts, cost)
            else:
                slices = (slot, delta)
        add_call(slices, err, cost, u, saved, lat, stream)
        self._recent.append(ev)
        return True

    def _new_delta(self, key: Any) -> Acc:
        if len(self._deltas) >= MAX_COMBOS:
            self._settle()  # a fresh run per call must not grow memory
        delta = self._deltas[key] = Acc()
        return delta

    def settle(self) -> None:
        """Fold the calls counted so far into the figures now (``_settle``).

        A caller that stores the aggregator (the live index) settles at the
        same point of the read whether or not it stores, so float sums group
        the same way and the figures agree to the last bit.
        """
        self._settle()

    def _settle(self) -> None:
        """Fold the calls since the last read into the total and each breakdown's groups.

        Each combination's latencies are binned once, then merged as bins.
        Groups are created in the order their keys first appeared.
        """
        deltas = self._deltas
        if not deltas:
            return
        many = len(self._dims) > 1
        dims = tuple(self._groups.items())
        total = self._total
        companions = self._companions() if self._models or ("session" in self._dims and "day" in self._dims) else None
        for key, delta in deltas.items():
            # A small delta (one combination of keys seen a few times: the usual
            # case between two reads, and every call of a log whose runs are all
            # new) hands its raw latencies on, to be binned in bulk by each
            # target; a large one is binned once and merged as bins.
            raw = delta.sk is None and len(delta.lats) + len(delta.lats_ns) <= _RAW_DELTA
            if not raw:
                delta.flush()
            total.merge(delta, bin_other=not raw)
            if not dims:
                continue
            values = key if many else (key,)
            for (dim, groups), value in zip(dims, values):
                name = NONE_KEY if value is None else value
                g = groups.get(name)
                if g is None:
                    g = self._new_group(dim, groups, name)
                g.merge(delta, bin_other=not raw)
            if companions is not None:
                companions(values)
        deltas.clear()

    def _companions(self) -> Callable[[tuple[Any, ...]], None]:
        """What a combination tells about its period and session rows: their models, a session's last day."""
        dims = self._dims
        model_at = dims.index("model") if "model" in dims else None
        rows = [(dims.index(d), seen) for d, seen in self._models.items()]
        session_at = dims.index("session") if "session" in dims else None
        day_at = dims.index("day") if "day" in dims else None
        last_day = self._last_day

        def note(values: tuple[Any, ...]) -> None:
            if model_at is not None:
                model = values[model_at]
                if model is not None:
                    for at, seen in rows:
                        seen.setdefault(values[at], set()).add(model)
            if session_at is not None and day_at is not None:
                session, day = values[session_at], values[day_at]
                if day > last_day.get(session, -1 << 62):
                    last_day[session] = day

        return note

    def _new_group(self, dim: str, groups: dict[str, Acc], key: str) -> Acc:
        if self.live and len(groups) >= MAX_GROUPS:
            # The monitor holds at most MAX_GROUPS per breakdown, and says how many it folded.
            folded = self._folded[dim]
            if len(folded) < MAX_FOLDED_KEYS:
                folded.add(key)
            g = groups.get(OTHER)
            if g is None:
                g = groups[OTHER] = Acc()
            return g
        g = groups[key] = Acc()
        return g

    def reject(self, reason: str, detail: str = "") -> None:
        """Count a line that was not an event (see ``Ledger.reject``).

        Args:
            reason: short, names the field.
            detail: the full message.
        """
        self.ledger.reject(reason, detail)

    def note(self, reason: str, n: int = 1) -> None:
        """Count lines that were accepted but not read whole (see ``Ledger.note``).

        Args:
            reason: short, names what was not read.
            n: how many lines.
        """
        self.ledger.note(reason, n)

    def note_command(self, cmd: Command, sent_at: float) -> None:
        """A command the monitor sent; its signal_ack fills in the round trip.

        Args:
            cmd: the command.
            sent_at: wall time it was sent.
        """
        self.ledger.note_command(cmd, sent_at)

    def note_alert(self, row: AlertRow) -> None:
        """A firing of the monitor's own rules.

        Args:
            row: the alert as shown.
        """
        self.ledger.alerts.append(row)

    # -- cache savings: cache_read x (input - cache_read rate) of the call's tier ----------

    def _saving_rates(self, key: _SavingKey, ts: float) -> IntRates | None:
        """The compiled rates of a rates key at ``ts``; cached unless they are dated."""
        provider, model, route, tier, speed = key
        dated = False
        compiled: IntRates | None = None
        try:
            if self._rates_fn is _default_rates:
                found = _default_rates(provider or "", model or "", ts, route, tier, speed)
            else:
                found = self._rates_fn(provider or "", model or "", ts)
            if isinstance(found, tuple) and not hasattr(found, "tiers"):
                found = _PairRates(Decimal(found[0]), Decimal(found[1]))
            if found is not None:
                dated = getattr(found, "date_matters", False) is True
                compiled = compile_rates(found)
        except Exception:  # any pricing failure means "no savings known", never a crash
            compiled = None
        if len(self._saving) >= MAX_COMBOS:
            self._saving.clear()  # a fresh model per call must not grow memory
        # A known "no rates" is kept as 0: None would mean "not looked up yet".
        self._saving[key] = _DATED if dated else (compiled or 0)
        return compiled

    def _cache_saving(self, ev: Event, u: Usage, ts: float) -> Money:
        """What one call's cache reads saved: the one savings rule of every add path.

        Args:
            ev: a call with cache reads whose cost is not local (the callers test that,
                so the common call without cache reads costs no method call).
            u: its usage.
            ts: its time (dated rates are looked up for it).
        """
        rates_key = (ev.provider, ev.model, ev.route, ev.service_tier, ev.speed)
        rates = self._saving.get(rates_key)
        if rates is None or rates is _DATED:  # not looked up yet, or dated: ask pricing
            rates = self._saving_rates(rates_key, ts)
        if not rates:
            return 0
        # Untiered rates: one multiply (saving_units does the tier pick).
        return rates.saving_units(u) if rates.tiers else u.cache_read_tokens * rates.saving_per_token

    def add_window_calls(self, events: Sequence[Event]) -> None:
        """Count a writer's own llm_call events into the sliding windows only: what ``window()`` reads.

        For ``Recorder.stats()`` (the recorder's aggregator is only ever read by
        ``window()``): its events are llm_calls with unique ids and a float ``ts``,
        so there is no duplicate check, no predicate, no ledger, and neither the
        run totals, the breakdowns, ``events`` nor ``first_ts``/``last_ts`` are
        kept. The windows end as ``add_many`` leaves them, so ``window()`` gives
        the same figures (pinned in tests/recorder/test_recorder_speed.py). Per
        call: one slice instead of two, no id bookkeeping: 9.9 -> 3.5 us a call
        (timeit over 3,000 of the recorder's events, shared 2-core machine).
        The savings rule is ``_add``'s (same rates key, same cache).

        Args:
            events: the recorder's llm_call events, in the order written.
        """
        windows = self.windows
        if windows is None:
            return
        future_at = self.clock() + FUTURE_SKEW
        cache_saving = self._cache_saving
        for ev in events:
            ts = ev.ts
            if type(ts) is not float:
                self._add(ev, future_at)  # a clock of the caller's that gives ints: the full path
                continue
            if ts > future_at:
                self.future_events += 1  # counted, but it must not land in a window
                continue
            text = ev.cost_usd
            cost = event_cost(text) if text else None
            u = ev.usage
            if u is None:
                u = NO_USAGE
            saved: Money = 0
            if u.cache_read_tokens and ev.cost_status != "local":
                saved = cache_saving(ev, u, ts)
            slot = windows.top_acc if int(ts // 1) == windows.top else windows.slot(ts)
            if slot is None:
                windows.late(ts, cost)
            else:
                add_call((slot,), ev.error is not None, cost, u, saved, ev.latency_ms, ev.stream)

    # -- output -----------------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        if self.live:
            return self.clock()
        return self.last_ts if self.last_ts is not None else 0.0

    def window(self, seconds: int, now: float | None = None) -> WindowFigures:
        """Figures of the calls in ``(now - seconds, now]``, to the second.

        Args:
            seconds: the window's length.
            now: its end (default: the clock when live, the newest call for a report).
        """
        now = self._now(now)
        if self.windows is None:
            return WindowFigures(seconds=seconds)
        (fields,) = self.windows.spans(now, (seconds,))
        return self.windows.figures(fields, seconds, now)

    def snapshot(self, now: float | None = None, *, source: SourceStatus | None = None,
                 budget: tuple[Decimal, int] | None = None) -> Snapshot:
        """Everything at one instant.

        Args:
            now: the windows' end (default as in ``window``).
            source: what is watched (filled by the engine).
            budget: (limit USD, window seconds) of a spend gauge.
        """
        now = self._now(now)
        sizes = sorted({*WINDOW_SECONDS, *((budget[1],) if budget else ())})
        w = self.windows
        windows: dict[str, WindowFigures] = {}
        series: tuple[MinutePoint, ...] = ()
        projection = Projection()
        budget_spent = Decimal(0)
        if w is not None:
            spans = dict(zip(sizes, w.spans(now, sizes)))
            windows = {WINDOW_NAMES[s]: w.figures(spans[s], s, now) for s in WINDOW_SECONDS}
            series = w.series(now)
            projection = w.projection(now, windows[WINDOW_NAMES[PROJECTION_WINDOW]])
            if budget:
                budget_spent = spans[budget[1]]["cost_usd"]
        self._settle()
        ledger = self.ledger
        return Snapshot(
            now=now,
            events=self.events,
            rejected=ledger.rejected,
            rejected_reasons=dict(ledger.reasons),
            notes=dict(ledger.notes),
            duplicates=self.duplicates,
            unknown_kinds=ledger.unknown_kinds,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            total=self._total.figures(),
            windows=windows,
            breakdowns=self._breakdowns(),
            series=series,
            projection=projection,
            recent=tuple(_call_row(ev) for ev in self._recent),
            alerts=tuple(ledger.alerts),
            commands=tuple(ledger.commands.values()),
            agents=tuple(ledger.agents.values()),
            recent_rejects=tuple(ledger.recent_rejects),
            budget=(Budget(limit_usd=budget[0], seconds=budget[1], spent_usd=budget_spent)
                    if budget else None),
            dropped=self.dropped,
            source=source if source is not None else SourceStatus(),
            runs_started=ledger.runs_started,
            runs_ended=ledger.runs_ended,
            future_events=self.future_events,
            folded_groups={dim: len(keys) for dim, keys in self._folded.items() if keys},
        )

    def _breakdowns(self) -> dict[str, tuple[Group, ...]]:
        out: dict[str, tuple[Group, ...]] = {}
        for dim, groups in self._groups.items():
            models = self._models.get(dim, {})
            if dim in PERIOD_DIMS:  # a calendar: oldest first, as ccusage prints it
                ordered = sorted(groups.items(), key=lambda kv: kv[0])
                out[dim] = tuple(Group(dim=dim, key=_label(dim, key), figures=acc.figures(),
                                       models=tuple(sorted(models.get(key, ())))) for key, acc in ordered)
                continue
            rows = []
            for key, acc in groups.items():
                last = self._last_day.get(key) if dim == "session" else None
                rows.append(Group(dim=dim, key=_label(dim, key), figures=acc.figures(),
                                  models=tuple(sorted(models.get(key, ()))),
                                  last_activity=None if last is None else _label("day", last)))
            rows.sort(key=lambda g: (-g.figures.cost_usd, -g.figures.calls, g.key))
            out[dim] = tuple(rows)
        return out

    # -- parallel report ----------------------------------------------------------------

    def merge(self, other: Aggregator, *, ids: bool = True) -> None:
        """Add ``other``'s events, which came *after* this one's (for recency).

        Both must be in the same mode with the same breakdowns. Ids are assumed
        disjoint: figures cannot be un-added, so a caller whose parts may share
        ids checks ``seen.intersects`` first (see ingest.scan).

        Args:
            other: an aggregator over later events.
            ids: False when the caller has already merged ``other.seen`` into
                ``self.seen`` (ingest.scan keeps one set for both jobs).
        """
        if other.live != self.live or other._dims != self._dims:
            raise ValueError("cannot merge aggregators of different modes or breakdowns")
        self._settle()
        other._settle()
        if ids:
            self.seen.merge(other.seen)
        self.events += other.events
        self.duplicates += other.duplicates
        self.dropped += other.dropped
        self.future_events += other.future_events
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                if self.first_ts is None or ts < self.first_ts:
                    self.first_ts = ts
                if self.last_ts is None or ts > self.last_ts:
                    self.last_ts = ts
        self.ledger.merge(other.ledger)
        if self.windows is not None and other.windows is not None:
            self.windows.merge(other.windows)
        self._total.merge(other._total)
        for dim, theirs in other._groups.items():
            mine = self._groups[dim]
            for key, acc in theirs.items():
                g = mine.get(key)
                if g is None:
                    g = self._new_group(dim, mine, key)
                g.merge(acc)
            folded = self._folded[dim]
            for name in other._folded[dim]:
                if len(folded) < MAX_FOLDED_KEYS:
                    folded.add(name)
        for dim, theirs_models in other._models.items():
            mine_models = self._models[dim]
            for gkey, names in theirs_models.items():
                mine_models.setdefault(gkey, set()).update(names)
        for session, day in other._last_day.items():
            if day > self._last_day.get(session, -1 << 62):
                self._last_day[session] = day
        self._recent.extend(other._recent)
        if self.claude_blocks is not None and other.claude_blocks is not None:
            self.claude_blocks.merge(other.claude_blocks)
        for rates_key, rate in other._saving.items():
            self._saving.setdefault(rates_key, rate)

    def __getstate__(self) -> dict[str, Any]:
        # Parallel workers send their Aggregator back pickled; the clock,
        # predicate and rates callables stay behind (they may be lambdas).
        self._settle()
        state = {k: getattr(self, k) for k in _PICKLED}
        state["_recent"] = list(self._recent)
        state["_recent_maxlen"] = self._recent.maxlen
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.clock = time.time
        self.predicate = None
        self._rates_fn = _default_rates
        for k in _PICKLED:
            setattr(self, k, state[k])
        self.ledger.clock = self.clock
        self._recent = deque(state["_recent"], maxlen=state["_recent_maxlen"])
        self._deltas = {}
        self._combo_key, self._combo_key_ts = _make_key_fns(self._dims)


_PICKLED: Final = (
    "live", "_dims", "seen", "events", "duplicates", "dropped", "future_events", "first_ts", "last_ts",
    "ledger", "windows", "_total", "_groups", "_folded", "_saving", "_models", "_last_day", "claude_blocks",
)


def _call_row(ev: Event) -> CallRow:
    """The recent-calls row of one event (``snapshot.call_row``, the one way to build it)."""
    cost: Decimal | None
    try:
        cost = Decimal(ev.cost_usd) if ev.cost_usd else None
    except ArithmeticError:
        cost = None
    return call_row(ev, cost)
