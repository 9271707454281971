"""The Aggregator: events in, Snapshot out.

One Aggregator holds everything the monitor shows: run totals, rolling
windows, breakdowns, recent calls, alerts, control round trips. It is fed by
the ingest engine (live) and by ``report`` (whole logs, in parallel workers
whose Aggregators are merged).

Layout, chosen so that ``add`` touches as little as possible:

* Figures are kept per **minute of event time** (``floor(ts / 60)``). A late
  event lands in its own minute. Minutes more than an hour (plus slack) older
  than the newest event are folded into an *archive*, so memory stays flat
  however long the run; events older than that go straight to the archive
  and only count in the totals.
* The run totals are not kept separately: they are the archive plus the live
  minutes, merged at snapshot time.
* Breakdowns, live (``live=True``): one accumulator per group per dimension,
  updated as events arrive, so a snapshot a few times a second only re-reads
  the groups that changed. Report (``live=False``): each minute is split by
  the *combination* of the breakdown keys (e.g. the model), and a group's
  figures are merged from the combinations at snapshot time, so ``add``
  touches one accumulator per event whatever the number of dimensions.
* Windows (1/5/15/60 min) are the last N minute buckets ending at ``now``'s
  minute, merged newest first in one pass at snapshot time.
* Money is summed as integers in units of 1e-12 USD (a cost string with more
  than 12 decimals turns that sum into a Decimal): exact either way, and an
  int add is far cheaper than a Decimal one.
* Latencies are binned in batches (see ``_Acc``). Cache savings: cache-read
  tokens x (input - cache_read rate), the rate resolved once per
  (provider, model, route) and cached, unless the price is dated (asked of
  the pricer, which caches per day, for each call); tiered prices pick the
  tier of the call's whole prompt, as ``Rates.for_prompt`` does.
* ``add_many`` is ``add`` over a batch with the per-call work inlined: what
  ``report`` and the monitor's backfill use.
* The day's spend for the projection: minutes folded into the archive add
  their cost to a per-UTC-day sum; live minutes are summed at snapshot time.

Projection rule: spend so far this UTC hour (or day), up to ``now``, plus the
15-minute window's burn rate times the time left in the hour (or day).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from operator import attrgetter, is_not
from typing import Any, Final

from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import (
    KIND_ALERT,
    KIND_LLM_CALL,
    KIND_RUN_END,
    KIND_RUN_START,
    KIND_SIGNAL_ACK,
    STAGES,
    Command,
    Event,
    Latency,
    Usage,
    parse_ts,
)
from flightdeck.core.sketch import FLUSH_AT, Sketch
from flightdeck.core.snapshot import (
    BREAKDOWN_DIMS,
    WINDOW_NAMES,
    WINDOW_SECONDS,
    AgentState,
    AlertRow,
    Budget,
    CallRow,
    ControlRow,
    Figures,
    Group,
    MinutePoint,
    Projection,
    Quantiles,
    Snapshot,
    SourceStatus,
    Tokens,
    WindowFigures,
)

# (provider, model, ts) -> (input, cache_read) USD per MTok, or a pricing ``Rates``
# (whose tiers then count), or None when unknown.
RatesFn = Callable[[str, str, float], Any]
Money = int | Decimal  # units of 1e-12 USD

UNIT: Final = 10**12
_POW10: Final = tuple(10**i for i in range(13))
SERIES_MINUTES: Final = 60
# Minutes kept beyond the longest window, so a slightly late event still lands
# in its bucket and a report's last hour is complete.
BUCKET_SLACK_MINUTES: Final = 5
MAX_GROUPS: Final = 500  # per breakdown dimension; the rest share OTHER
MAX_COMBOS: Final = 5000  # report mode: key combinations beyond this share all-OTHER
OTHER: Final = "(other)"
NONE_KEY: Final = "(none)"
MAX_REASONS: Final = 64
MAX_AGENTS: Final = 1000
MAX_COMMANDS: Final = 200
MAX_ALERTS: Final = 200
MAX_RECENT_REJECTS: Final = 50
QUANTILES: Final = (0.5, 0.9, 0.99)
_SIX_PLACES: Final = Decimal("0.000001")
_DAYS_KEPT: Final = 8


def cost_units(text: str) -> Money:
    """A decimal cost string as exact units of 1e-12 USD (Decimal beyond 12 places).

    ValueError when the text is not a non-negative decimal.
    """
    whole, _, frac = text.partition(".")
    n = len(frac)
    if n <= 12 and whole.isdigit() and (not frac or frac.isdigit()):
        return int(whole + frac) * _POW10[12 - n]
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"cost {text!r} is not a decimal") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"cost {text!r} is not a non-negative amount")
    return amount.scaleb(12)


def units_to_usd(units: Money) -> Decimal:
    """Units of 1e-12 USD as a Decimal with at least six places and no needless zeros."""
    amount = Decimal(units).scaleb(-12)
    short = amount.quantize(_SIX_PLACES)
    if short == amount:
        return short
    text = format(amount, "f").rstrip("0")
    return Decimal(text)


class _Acc:
    """Mutable figures of one slice of calls (a minute, a group, the archive).

    Latencies are not binned per call: the call's ``Latency`` struct is kept
    in ``lats`` (streamed calls) or ``lats_ns`` (the others: their ttft does
    not count), and every ``FLUSH_AT`` calls, or before any read, the stage
    values are pulled out and binned with C-level ``map``/``filter``. One
    append per call instead of five sketch updates.
    """

    __slots__ = (
        "_cached",
        "_cached_calls",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "calls",
        "cost",
        "errors",
        "gen",
        "input",
        "lats",
        "lats_ns",
        "output",
        "post",
        "pre",
        "reasoning",
        "saved",
        "total",
        "ttft",
        "unpriced",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.cost: Money = 0
        self.unpriced = 0
        self.input = 0
        self.output = 0
        self.cache_read = 0
        self.cache_write = 0
        self.reasoning = 0
        self.cache_write_1h = 0
        self.saved: Money = 0
        self.pre = Sketch()
        self.ttft = Sketch()
        self.gen = Sketch()
        self.post = Sketch()
        self.total = Sketch()
        self.lats: list[Latency] = []
        self.lats_ns: list[Latency] = []
        self._cached: Figures | None = None
        self._cached_calls = -1

    def flush(self) -> None:
        """Bin the latencies kept since the last flush."""
        streamed, other = self.lats, self.lats_ns
        if streamed or other:
            for sk, get in ((self.pre, _PRE), (self.gen, _GEN), (self.post, _POST), (self.total, _TOTAL)):
                pending = sk.pending
                pending.extend(filter(_not_none, map(get, streamed)))
                pending.extend(filter(_not_none, map(get, other)))
            self.ttft.pending.extend(filter(_not_none, map(_TTFT, streamed)))
            streamed.clear()
            other.clear()
        for sk in (self.pre, self.ttft, self.gen, self.post, self.total):
            sk.flush()

    def merge(self, o: _Acc, *, bin_other: bool = True) -> None:
        """Add ``o``'s figures. ``bin_other=False``: take ``o``'s unbinned
        latencies as they are (cheaper when ``o`` is about to be dropped)."""
        self.calls += o.calls
        self.errors += o.errors
        self.cost += o.cost
        self.unpriced += o.unpriced
        self.input += o.input
        self.output += o.output
        self.cache_read += o.cache_read
        self.cache_write += o.cache_write
        self.reasoning += o.reasoning
        self.cache_write_1h += o.cache_write_1h
        self.saved += o.saved
        if bin_other:
            o.flush()
        else:
            self.lats.extend(o.lats)
            self.lats_ns.extend(o.lats_ns)
        self.pre.merge(o.pre, bin_other=bin_other)
        self.ttft.merge(o.ttft, bin_other=bin_other)
        self.gen.merge(o.gen, bin_other=bin_other)
        self.post.merge(o.post, bin_other=bin_other)
        self.total.merge(o.total, bin_other=bin_other)
        if len(self.lats) + len(self.lats_ns) >= FLUSH_AT:
            self.flush()
        self._cached_calls = -1

    def copy(self) -> _Acc:
        new = _Acc()
        new.merge(self)
        return new

    def sketches(self) -> tuple[Sketch, ...]:
        self.flush()
        return (self.pre, self.ttft, self.gen, self.post, self.total)

    def figure_fields(self) -> dict[str, Any]:
        stages = {name: _quantiles(sk) for name, sk in zip(STAGES, self.sketches())}
        prompt = self.input + self.cache_read + self.cache_write
        return {
            "calls": self.calls,
            "errors": self.errors,
            "cost_usd": units_to_usd(self.cost),
            "unpriced": self.unpriced,
            "tokens": Tokens(self.input, self.output, self.cache_read, self.cache_write,
                             self.reasoning, self.cache_write_1h),
            "cache_hit_rate": self.cache_read / prompt if prompt else None,
            "cache_saved_usd": units_to_usd(self.saved),
            "stages": stages,
            "mean_prompt_tokens": prompt / self.calls if self.calls else None,
        }

    def figures(self) -> Figures:
        """Figures, cached until the next call lands here (snapshots reuse them)."""
        if self._cached is None or self._cached_calls != self.calls:
            self._cached = Figures(**self.figure_fields())
            self._cached_calls = self.calls
        return self._cached

    def __getstate__(self) -> tuple[Any, ...]:
        self.flush()
        return (self.calls, self.errors, self.cost, self.unpriced, self.input, self.output,
                self.cache_read, self.cache_write, self.reasoning, self.cache_write_1h, self.saved,
                self.pre, self.ttft, self.gen, self.post, self.total)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.calls, self.errors, self.cost, self.unpriced, self.input, self.output,
         self.cache_read, self.cache_write, self.reasoning, self.cache_write_1h, self.saved,
         self.pre, self.ttft, self.gen, self.post, self.total) = state
        self.lats = []
        self.lats_ns = []
        self._cached = None
        self._cached_calls = -1


_PRE, _TTFT, _GEN, _POST, _TOTAL = (attrgetter(stage) for stage in STAGES)
_not_none = partial(is_not, None)


def _quantiles(sk: Sketch) -> Quantiles:
    if sk.count == 0:
        return Quantiles()
    p50, p90, p99 = sk.quantiles(QUANTILES)
    return Quantiles(count=sk.count, p50=p50, p90=p90, p99=p99, mean=sk.sum / sk.count)


def _add_call(acc: _Acc, err: bool, cost: Money | None, u: Any, saved: Money,
              lat: Latency | None, stream: bool | None) -> None:
    # Live mode's per-group update (report mode inlines the same in Aggregator._add_call).
    acc.calls += 1
    if err:
        acc.errors += 1
    if cost is None:
        acc.unpriced += 1
    else:
        acc.cost += cost
    acc.input += u.input_tokens
    acc.output += u.output_tokens
    acc.cache_read += u.cache_read_tokens
    acc.cache_write += u.cache_write_tokens
    acc.reasoning += u.reasoning_tokens
    acc.cache_write_1h += u.cache_write_1h_tokens
    if saved:
        acc.saved += saved
    if lat is not None:
        (acc.lats if stream else acc.lats_ns).append(lat)
        if not acc.calls & 1023:
            acc.flush()


def _default_rates(provider: str, model: str, ts: float, route: str | None = None) -> Any:
    """The pricing module's ``Rates`` for the call (tiers included); None if unknown."""
    try:
        from flightdeck.core.pricing import default_pricer
    except ImportError:
        return None
    return default_pricer().rates(provider, model, ts, route=route)


def _units_per_token(input_rate: Any, cache_rate: Any) -> Money | None:
    """(input - cache_read) USD per MTok as 1e-12 USD units per token; None if no saving."""
    diff = (Decimal(input_rate) - Decimal(cache_rate)) * 1_000_000
    if diff > 0:
        return int(diff) if diff == diff.to_integral_value() else diff
    return None


class _Tiered:
    """A saving rate that depends on the call's whole prompt (tiered prices).

    ``tiers`` are (threshold, units per token), descending: a prompt above a
    threshold pays that tier (the rule of ``Rates.for_prompt``)."""

    __slots__ = ("base", "tiers")

    def __init__(self, base: Money | None, tiers: tuple[tuple[int, Money | None], ...]) -> None:
        self.base = base
        self.tiers = tiers

    def at(self, prompt_tokens: int) -> Money | None:
        for threshold, rate in self.tiers:
            if prompt_tokens > threshold:
                return rate
        return self.base


def _saving_entry(found: Any) -> Money | _Tiered | None:
    """A rates function's answer as a saving rate: a (input, cache_read) pair, or Rates."""
    if found is None:
        return None
    if isinstance(found, tuple):
        return _units_per_token(found[0], found[1])
    base = _units_per_token(found.input, found.cache_read)
    tiers = getattr(found, "tiers", ())
    if not tiers:
        return base
    return _Tiered(base, tuple((int(t), _units_per_token(r.input, r.cache_read)) for t, r in reversed(tiers)))


# Dated rates are asked of the pricer for each call, and it answers with the
# same Rates object for the same period: their saving entries (Decimal work)
# are kept by that object's identity. The object is held too, so its id
# cannot be reused while the entry lives.
_ENTRY_MEMO: dict[int, tuple[Any, Money | _Tiered | None]] = {}
_ENTRY_MEMO_MAX: Final = 1024


def _memo_saving_entry(found: Any) -> Money | _Tiered | None:
    hit = _ENTRY_MEMO.get(id(found))
    if hit is not None and hit[0] is found:
        return hit[1]
    entry = _saving_entry(found)
    if len(_ENTRY_MEMO) >= _ENTRY_MEMO_MAX:
        _ENTRY_MEMO.clear()
    _ENTRY_MEMO[id(found)] = (found, entry)
    return entry


# A (provider, model, route) whose rates change with the date or time of day:
# its saving rate is asked of the pricer (which caches per day) for each call.
class _DATED:
    pass


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
        for dim in breakdowns:
            if dim not in BREAKDOWN_DIMS:
                raise ValueError(f"unknown breakdown {dim!r}; choose from {', '.join(BREAKDOWN_DIMS)}")
        self.clock = clock
        self.live = live
        self.predicate = predicate
        self._rates_fn: RatesFn = rates if rates is not None else _default_rates
        self._dims: tuple[str, ...] = tuple(dict.fromkeys(breakdowns))
        self.seen = SeenIds()
        self.events = 0
        self.duplicates = 0
        self.unknown_kinds = 0
        self.rejected = 0
        self.runs_started = 0
        self.runs_ended = 0
        self.dropped = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._reasons: dict[str, int] = {}
        self._recent_rejects: deque[tuple[float, str, str]] = deque(maxlen=MAX_RECENT_REJECTS)
        # minute -> {combination key -> figures}; live mode has the one key None.
        self._buckets: dict[int, dict[Any, _Acc]] = {}
        self._archive: dict[Any, _Acc] = {}
        self._max_minute: int | None = None
        self._day_cost: dict[int, Money] = {}
        # Live mode: per-dimension groups, updated per event.
        self._groups: dict[str, dict[str, _Acc]] = {dim: {} for dim in self._dims} if live else {}
        # Live mode: calls since the groups were last read, per combination of
        # the breakdown keys. A call updates one of these instead of one group
        # per dimension; _settle() folds them into the groups before any read.
        self._deltas: dict[Any, _Acc] = {}
        # Report mode: distinct values seen per dimension (for the caps) and combinations made.
        self._dim_values: list[set[str]] = [set() for _ in self._dims]
        self._combos: set[Any] = set()
        self._recent: deque[Event] = deque(maxlen=max(recent, 0))
        self._alerts: deque[AlertRow] = deque(maxlen=MAX_ALERTS)
        self._commands: dict[str, ControlRow] = {}
        self._agents: dict[tuple[str, str | None], AgentState] = {}
        self._saving: dict[tuple[str | None, str | None, str | None], Any] = {}
        self._point_cache: dict[int, tuple[int, MinutePoint]] = {}
        self._key_fn = self._make_key_fn()
        self._combo_key_fn = self._make_combo_key_fn()

    def _make_combo_key_fn(self) -> Callable[[Event], Any] | None:
        # add_many groups calls by the combination of the breakdown keys in
        # both modes (live mode then fans each group out to its dimensions).
        if not self._dims:
            return None
        return attrgetter(*self._dims)

    def _make_key_fn(self) -> Callable[[Event], Any] | None:
        # An event's combination key in report mode (a value, or a tuple for
        # several dimensions); live mode keeps one accumulator per minute.
        if self.live or not self._dims:
            return None
        return attrgetter(*self._dims)

    # -- input ------------------------------------------------------------------

    def add(self, ev: Event) -> None:
        """Count one decoded event of any kind (``ev.ts`` a float)."""
        if self.predicate is not None and not self.predicate(ev):
            return
        if not self.seen.add(ev.id):
            self.duplicates += 1
            return
        ts = ev.ts
        if type(ts) is not float:
            # decode_line always gives a float; an Event built by other code may not.
            try:
                ts = parse_ts(ts)  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                self.reject("bad ts", f"ts {ts!r} is not a time")
                return
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        if ev.dropped:
            self.dropped += ev.dropped
        if ev.kind == KIND_LLM_CALL:
            self._add_call(ev, ts)
        else:
            self._add_other(ev, ts)

    def _add_other(self, ev: Event, ts: float) -> None:
        kind = ev.kind
        if kind == KIND_SIGNAL_ACK:
            self._add_ack(ev)
        elif kind == KIND_ALERT:
            self._alerts.append(AlertRow(
                ts=ts, rule=ev.rule or "", metric=ev.metric, value=ev.value,
                threshold=ev.threshold, action=ev.action, source="agent",
                run=ev.run, agent=ev.agent, message=ev.message))
        elif kind == KIND_RUN_START:
            self.runs_started += 1
        elif kind == KIND_RUN_END:
            self.runs_ended += 1
        else:
            self.unknown_kinds += 1

    def _add_call(self, ev: Event, ts: float) -> None:
        # The hot path of a report: keep it to plain attribute and dict work.
        self.events += 1
        text = ev.cost_usd
        cost: Money | None = None
        if text:
            try:
                cost = cost_units(text)  # type: ignore[arg-type]
            except ValueError:
                pass
        u = ev.usage
        if u is None:  # decode_line refuses such a call; an Event built by other code may not
            u = _NO_USAGE
        saved: Money = 0
        if u.cache_read_tokens and ev.cost_status != "local":  # type: ignore[union-attr]
            saved = self._saved(ev, u, ts)
        lat = ev.latency_ms
        err = ev.error is not None

        minute = int(ts // 60)
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._bucket_for(minute)
        key_of = self._key_fn
        key = key_of(ev) if key_of is not None else None
        acc = bucket.get(key)
        if acc is None:
            acc = self._combo(bucket, key)
        # _add_call(acc, ...) inlined: this runs once per event of a report.
        acc.calls += 1
        if err:
            acc.errors += 1
        if cost is None:
            acc.unpriced += 1
        else:
            acc.cost += cost
        acc.input += u.input_tokens  # type: ignore[union-attr]
        acc.output += u.output_tokens  # type: ignore[union-attr]
        acc.cache_read += u.cache_read_tokens  # type: ignore[union-attr]
        acc.cache_write += u.cache_write_tokens  # type: ignore[union-attr]
        acc.reasoning += u.reasoning_tokens  # type: ignore[union-attr]
        acc.cache_write_1h += u.cache_write_1h_tokens  # type: ignore[union-attr]
        if saved:
            acc.saved += saved
        if lat is not None:
            (acc.lats if ev.stream else acc.lats_ns).append(lat)
            if not acc.calls & 1023:
                acc.flush()
        if self._groups:
            key = self._combo_key_fn(ev)  # type: ignore[misc]
            delta = self._deltas.get(key)
            if delta is None:
                delta = self._new_delta(key)
            _add_call(delta, err, cost, u, saved, lat, ev.stream)
        if cost and bucket is self._archive:  # a very late call: its day is not in any bucket
            self._add_day_cost(minute // 1440, cost)
        self._recent.append(ev)

    def add_many(self, events: Iterable[Event]) -> list[Event]:
        """``add`` each event, in order, with the same result, cheaper per event.

        The per-call work of ``add`` inlined with its lookups hoisted out of
        the loop (this is what a report or a monitor backfill runs a million
        times). Returns the events that were not duplicates (what a caller
        watching ``duplicates`` around ``add`` would keep).
        """
        kept: list[Event] = []
        predicate = self.predicate
        seen_add = self.seen.add
        buckets = self._buckets
        bucket_for = self._bucket_for
        key_of = self._key_fn
        combo = self._combo
        saving_get = self._saving.get
        saved_of = self._saved
        recent_append = self._recent.append
        group_dims = bool(self._groups)
        combo_key = self._combo_key_fn
        deltas = self._deltas
        archive = self._archive
        pow10 = _POW10
        first, last = self.first_ts, self.last_ts
        calls = 0
        try:
            for ev in events:
                if predicate is not None and not predicate(ev):
                    kept.append(ev)
                    continue
                if not seen_add(ev.id):
                    self.duplicates += 1
                    continue
                kept.append(ev)
                ts = ev.ts
                if type(ts) is not float:
                    try:
                        ts = parse_ts(ts)  # type: ignore[arg-type]
                    except (TypeError, ValueError, OverflowError):
                        self.reject("bad ts", f"ts {ts!r} is not a time")
                        continue
                if first is None or ts < first:
                    first = ts
                if last is None or ts > last:
                    last = ts
                if ev.dropped:
                    self.dropped += ev.dropped
                if ev.kind != KIND_LLM_CALL:
                    self.first_ts, self.last_ts = first, last
                    self._add_other(ev, ts)
                    continue
                calls += 1
                text = ev.cost_usd
                cost: Money | None = None
                if text:
                    # cost_units' fast path inlined: plain digits, <= 12 places.
                    whole, _, frac = text.partition(".")  # type: ignore[union-attr]
                    places = len(frac)
                    if places <= 12 and whole.isdigit() and (not frac or frac.isdigit()):
                        cost = int(whole + frac) * pow10[12 - places]
                    else:
                        try:
                            cost = cost_units(text)  # type: ignore[arg-type]
                        except ValueError:
                            pass
                u = ev.usage
                if u is None:
                    u = _NO_USAGE
                inp = u.input_tokens
                out = u.output_tokens
                cr = u.cache_read_tokens
                cw = u.cache_write_tokens
                rs = u.reasoning_tokens
                cw1h = u.cache_write_1h_tokens
                saved: Money = 0
                if cr and ev.cost_status != "local":
                    rate = saving_get((ev.provider, ev.model, ev.route))
                    if rate is None or rate is _DATED:  # not looked up yet, or dated
                        saved = saved_of(ev, u, ts)
                    elif type(rate) is _Tiered:  # _saved's tier pick, inlined
                        rate = rate.at(inp + cr + cw)
                        if rate:
                            saved = cr * rate
                    else:
                        saved = cr * rate
                lat = ev.latency_ms
                stream = ev.stream
                err = ev.error is not None
                minute = int(ts // 60)
                bucket = buckets.get(minute)
                if bucket is None:
                    bucket = bucket_for(minute)
                key = key_of(ev) if key_of is not None else None
                acc = bucket.get(key)
                if acc is None:
                    acc = combo(bucket, key)
                if group_dims:  # live mode: the minute's accumulator and the combination's delta
                    gkey = combo_key(ev)  # type: ignore[misc]
                    delta = deltas.get(gkey)
                    if delta is None:
                        delta = self._new_delta(gkey)
                    accs: tuple[_Acc, ...] = (acc, delta)
                else:  # report mode: the one accumulator
                    accs = (acc,)
                for acc in accs:
                    acc.calls += 1
                    if err:
                        acc.errors += 1
                    if cost is None:
                        acc.unpriced += 1
                    else:
                        acc.cost += cost
                    acc.input += inp
                    acc.output += out
                    acc.cache_read += cr
                    acc.cache_write += cw
                    acc.reasoning += rs
                    acc.cache_write_1h += cw1h
                    if saved:
                        acc.saved += saved
                    if lat is not None:
                        (acc.lats if stream else acc.lats_ns).append(lat)
                        if not acc.calls & 1023:
                            acc.flush()
                if cost and bucket is archive:  # a very late call: its day is not in any bucket
                    self._add_day_cost(minute // 1440, cost)
                recent_append(ev)
        finally:
            self.first_ts, self.last_ts = first, last
            self.events += calls
        return kept

    def _bucket_for(self, minute: int) -> dict[Any, _Acc]:
        top = self._max_minute
        if top is None or minute > top:
            self._max_minute = minute
            bucket = self._buckets[minute] = {}
            self._evict()
            return bucket
        if minute < top - SERIES_MINUTES - BUCKET_SLACK_MINUTES:
            return self._archive  # too late for any window: totals only
        bucket = self._buckets[minute] = {}
        return bucket

    def _combo(self, bucket: dict[Any, _Acc], key: Any) -> _Acc:
        """A new combination's accumulator in ``bucket``, its key within the caps."""
        canon = self._canonical(key)
        acc = bucket.get(canon)
        if acc is None:
            acc = bucket[canon] = _Acc()
        return acc

    def _canonical(self, key: Any) -> Any:
        if key is None or key in self._combos:
            return key
        many = len(self._dims) > 1
        parts = list(key) if many else [key]
        if len(self._combos) >= MAX_COMBOS:
            parts = [OTHER] * len(parts)
        for i, value in enumerate(parts):
            seen = self._dim_values[i]
            if value not in seen:
                if len(seen) >= MAX_GROUPS:
                    parts[i] = OTHER  # hostile logs (a fresh run id per call) must not grow memory
                else:
                    seen.add(value)
        canon = tuple(parts) if many else parts[0]
        self._combos.add(canon)
        return canon

    def _evict(self) -> None:
        if self._max_minute is None:
            return
        horizon = self._max_minute - SERIES_MINUTES - BUCKET_SLACK_MINUTES
        old = [m for m in self._buckets if m < horizon]
        for m in old:
            parts = self._buckets.pop(m)
            self._add_day_cost(m // 1440, sum(a.cost for a in parts.values()))
            self._merge_combos(self._archive, parts)
            self._point_cache.pop(m, None)

    def _add_day_cost(self, day: int, cost: Money) -> None:
        # Spend per UTC day of the minutes folded into the archive (the live
        # minutes are summed at snapshot time): what the day projection needs.
        days = self._day_cost
        days[day] = days.get(day, 0) + cost
        if len(days) > _DAYS_KEPT:
            del days[min(days)]

    @staticmethod
    def _new_group(groups: dict[str, _Acc], key: str) -> _Acc:
        if len(groups) >= MAX_GROUPS and key not in groups:
            # Hostile or runaway logs (a fresh run id per call) must not grow memory.
            key = OTHER
            g = groups.get(key)
            if g is not None:
                return g
        g = groups[key] = _Acc()
        return g

    def _saved(self, ev: Event, u: Any, ts: float) -> Money:
        """What the call's cache reads saved, in 1e-12 USD units (0 if unknown)."""
        key = (ev.provider, ev.model, ev.route)
        rate = self._saving.get(key, _MISSING)
        if rate is _MISSING or rate is _DATED:
            rate = self._saving_rate(key, ts)
        if rate is not None and type(rate) is _Tiered:
            rate = rate.at(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens)
        return u.cache_read_tokens * rate if rate else 0  # type: ignore[no-any-return]

    def _saving_rate(self, key: tuple[str | None, str | None, str | None], ts: float) -> Any:
        """The saving rate of a (provider, model, route) at ``ts``; cached unless dated."""
        provider, model, route = key
        dated = False
        try:
            if self._rates_fn is _default_rates:
                found = _default_rates(provider or "", model or "", ts, route)
            else:
                found = self._rates_fn(provider or "", model or "", ts)
            dated = getattr(found, "date_matters", False) is True
            rate = _memo_saving_entry(found) if dated else _saving_entry(found)
        except Exception:  # any pricing failure means "no savings known", never a crash
            rate = None
        if len(self._saving) >= MAX_COMBOS:
            self._saving.clear()  # hostile logs (a fresh model per call) must not grow memory
        # A known "no saving" is kept as 0, not None: add_many takes None as
        # "not looked up yet" and would come back here for every such call.
        self._saving[key] = _DATED if dated else (0 if rate is None else rate)
        return rate

    def _add_ack(self, ev: Event) -> None:
        ref = ev.ref
        if ref is not None and ref in self._commands:
            row = self._commands[ref]
            if row.acked_at is None:
                acked_at = self.clock()
                self._commands[ref] = replace(row, acked_at=acked_at,
                                              ack_ms=(acked_at - row.sent_at) * 1000.0,
                                              ack_message=ev.message)
        state = ev.state
        if isinstance(state, dict):
            models_raw = state.get("models")
            models = ({k: v for k, v in models_raw.items() if isinstance(k, str) and isinstance(v, str)}
                      if isinstance(models_raw, dict) else {})
            key = (ev.run, ev.agent)
            if key not in self._agents and len(self._agents) >= MAX_AGENTS:
                return
            self._agents[key] = AgentState(run=ev.run, agent=ev.agent,
                                           paused=state.get("paused") is True, models=models)

    def reject(self, reason: str, detail: str = "") -> None:
        """Count a line that was not an event, under a short reason."""
        self.rejected += 1
        reasons = self._reasons
        if reason not in reasons and len(reasons) >= MAX_REASONS:
            reason = OTHER
        reasons[reason] = reasons.get(reason, 0) + 1
        self._recent_rejects.append((self.clock(), reason, detail[:300]))

    def note_command(self, cmd: Command, sent_at: float) -> None:
        """A command the monitor sent; its signal_ack fills in the round trip."""
        self._commands[cmd.id] = ControlRow(id=cmd.id, cmd=cmd.cmd, origin=cmd.origin,
                                            sent_at=sent_at, reason=cmd.reason)
        while len(self._commands) > MAX_COMMANDS:
            del self._commands[next(iter(self._commands))]

    def note_alert(self, row: AlertRow) -> None:
        self._alerts.append(row)

    # -- output -----------------------------------------------------------------

    def _now(self, now: float | None) -> float:
        if now is not None:
            return now
        if self.live:
            return self.clock()
        return self.last_ts if self.last_ts is not None else 0.0

    def window(self, seconds: int, now: float | None = None) -> WindowFigures:
        """Figures of the minute buckets in the last ``seconds`` ending at ``now``'s minute.

        Windows are minute aligned: the 5m window is the current (partial)
        minute and the four before it.
        """
        cur = int(self._now(now) // 60)
        n = max(1, math.ceil(seconds / 60))
        acc = _Acc()
        for m in range(cur - n + 1, cur + 1):
            b = self._buckets.get(m)
            if b is not None:
                _merge_parts(acc, b)
        return _window_figures(acc, seconds)

    def snapshot(self, now: float | None = None, *, source: SourceStatus | None = None,
                 budget: tuple[Decimal, int] | None = None) -> Snapshot:
        now = self._now(now)
        cur = int(now // 60)
        buckets = self._buckets
        # One pass, newest minute first: each window is the running merge at its size.
        acc = _Acc()
        windows: dict[str, WindowFigures] = {}
        sizes = {s // 60: s for s in WINDOW_SECONDS}
        budget_minutes = max(1, math.ceil(budget[1] / 60)) if budget else 0
        budget_spent: Decimal | None = None
        longest = max(max(sizes), budget_minutes)
        for i in range(longest):
            b = buckets.get(cur - i)
            if b is not None:
                _merge_parts(acc, b)
            if i + 1 in sizes:
                seconds = sizes[i + 1]
                windows[WINDOW_NAMES[seconds]] = _window_figures(acc, seconds)
            if i + 1 == budget_minutes:
                budget_spent = units_to_usd(acc.cost)
        # The totals: the windows' minutes, the rest of the buckets, the archive.
        covered = range(cur - longest + 1, cur + 1)
        for m, b in buckets.items():
            if m not in covered:
                _merge_parts(acc, b)
        _merge_parts(acc, self._archive)
        total = Figures(**acc.figure_fields())
        return Snapshot(
            now=now,
            events=self.events,
            rejected=self.rejected,
            rejected_reasons=dict(self._reasons),
            duplicates=self.duplicates,
            unknown_kinds=self.unknown_kinds,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            total=total,
            windows=windows,
            breakdowns=self._breakdowns(),
            series=self._series(cur),
            projection=self._projection(now, windows.get("15m")),
            recent=tuple(_call_row(ev) for ev in self._recent),
            alerts=tuple(self._alerts),
            commands=tuple(self._commands.values()),
            agents=tuple(self._agents.values()),
            recent_rejects=tuple(self._recent_rejects),
            budget=(Budget(limit_usd=budget[0], seconds=budget[1], spent_usd=budget_spent or Decimal(0))
                    if budget else None),
            dropped=self.dropped,
            source=source if source is not None else SourceStatus(),
            runs_started=self.runs_started,
            runs_ended=self.runs_ended,
        )

    def _new_delta(self, key: Any) -> _Acc:
        if len(self._deltas) >= MAX_COMBOS:
            self._settle()  # hostile logs (a fresh run per call) must not grow memory
        delta = self._deltas[key] = _Acc()
        return delta

    def _settle(self) -> None:
        """Fold the per-combination calls since the last read into each dimension's groups.

        Each combination's latencies are binned once, then merged as bins. Groups
        are created in the order their keys first appeared, as if added per call.
        """
        deltas = self._deltas
        if not deltas:
            return
        many = len(self._dims) > 1
        dims = tuple(self._groups.items())
        new_group = self._new_group
        for key, delta in deltas.items():
            delta.flush()
            values = key if many else (key,)
            for (_, groups), value in zip(dims, values):
                name = NONE_KEY if value is None else value
                g = groups.get(name)
                if g is None:
                    g = new_group(groups, name)
                g.merge(delta)
        deltas.clear()

    def _group_accs(self) -> dict[str, dict[str, _Acc]]:
        if self.live or not self._dims:
            self._settle()
            return self._groups
        # Report mode: merge each combination into its group in every dimension.
        out: dict[str, dict[str, _Acc]] = {dim: {} for dim in self._dims}
        many = len(self._dims) > 1
        for parts in (self._archive, *self._buckets.values()):
            for key, acc in parts.items():
                values = key if many else (key,)
                for dim, value in zip(self._dims, values):
                    name = NONE_KEY if value is None else value
                    g = out[dim].get(name)
                    if g is None:
                        g = out[dim][name] = _Acc()
                    g.merge(acc)
        return out

    def _breakdowns(self) -> dict[str, tuple[Group, ...]]:
        out: dict[str, tuple[Group, ...]] = {}
        for dim, groups in self._group_accs().items():
            rows = [Group(dim=dim, key=key, figures=acc.figures()) for key, acc in groups.items()]
            rows.sort(key=lambda g: (-g.figures.cost_usd, -g.figures.calls, g.key))
            out[dim] = tuple(rows)
        return out

    def _series(self, cur: int) -> tuple[MinutePoint, ...]:
        points = []
        cache = self._point_cache
        for m in range(cur - SERIES_MINUTES + 1, cur + 1):
            parts = self._buckets.get(m)
            if parts is None:
                points.append(MinutePoint(start=m * 60.0))
                continue
            calls = sum(a.calls for a in parts.values())
            hit = cache.get(m)
            if hit is not None and hit[0] == calls:
                points.append(hit[1])
                continue
            b = _Acc()
            _merge_parts(b, parts)
            p50, p90 = b.ttft.quantiles((0.5, 0.9)) if b.ttft.count else (None, None)
            prompt = b.input + b.cache_read + b.cache_write
            point = MinutePoint(start=m * 60.0, calls=b.calls, cost_usd=units_to_usd(b.cost),
                                cache_hit_rate=b.cache_read / prompt if prompt else None,
                                ttft_p50=p50, ttft_p90=p90,
                                cache_read_tokens=b.cache_read, cache_write_tokens=b.cache_write)
            cache[m] = (calls, point)
            points.append(point)
        return tuple(points)

    def _projection(self, now: float, w15: WindowFigures | None) -> Projection:
        """Spend so far this UTC hour/day plus the 15m burn rate over the time left.

        The hour's spend comes from the minute buckets, the day's from a per-day
        sum; both stop at ``now``'s hour/day (later events are not "so far").
        """
        burn = w15.burn_usd_per_hour if w15 is not None else Decimal(0)
        hour_start_min = int(now // 3600) * 60
        cur = int(now // 60)
        hour_units: Money = 0
        for m in range(hour_start_min, cur + 1):
            parts = self._buckets.get(m)
            if parts is not None:
                for a in parts.values():
                    hour_units += a.cost
        day = int(now // 86400)
        day_units: Money = self._day_cost.get(day, 0)
        for m, parts in self._buckets.items():
            if m // 1440 == day and m <= cur:
                for a in parts.values():
                    day_units += a.cost
        left_hour = Decimal(max(0, (int(now // 3600) + 1) * 3600 - math.ceil(now)))
        left_day = Decimal(max(0, (day + 1) * 86400 - math.ceil(now)))
        hour_end = units_to_usd(hour_units) + burn * left_hour / 3600
        day_end = units_to_usd(day_units) + burn * left_day / 3600
        return Projection(hour_end_usd=hour_end.quantize(_SIX_PLACES, ROUND_HALF_UP),
                          day_end_usd=day_end.quantize(_SIX_PLACES, ROUND_HALF_UP))

    # -- parallel report ----------------------------------------------------------

    def merge(self, other: Aggregator) -> None:
        """Add ``other``'s events, which came *after* this one's (for recency).

        Both must be in the same mode with the same breakdowns. Ids are assumed
        disjoint: figures cannot be un-added, so a caller whose parts may share
        ids checks ``seen.intersects`` first (see ingest.scan).
        """
        if other.live != self.live or other._dims != self._dims:
            raise ValueError("cannot merge aggregators of different modes or breakdowns")
        self._settle()
        other._settle()
        self.seen.merge(other.seen)
        self.events += other.events
        self.duplicates += other.duplicates
        self.unknown_kinds += other.unknown_kinds
        self.rejected += other.rejected
        self.runs_started += other.runs_started
        self.runs_ended += other.runs_ended
        self.dropped += other.dropped
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                if self.first_ts is None or ts < self.first_ts:
                    self.first_ts = ts
                if self.last_ts is None or ts > self.last_ts:
                    self.last_ts = ts
        for reason, n in other._reasons.items():
            if reason not in self._reasons and len(self._reasons) >= MAX_REASONS:
                reason = OTHER
            self._reasons[reason] = self._reasons.get(reason, 0) + n
        self._recent_rejects.extend(other._recent_rejects)
        self._merge_combos(self._archive, other._archive)
        for m, parts in other._buckets.items():
            mine = self._buckets.get(m)
            if mine is None:
                mine = self._buckets[m] = {}
            self._merge_combos(mine, parts)
            self._point_cache.pop(m, None)
        if other._max_minute is not None and (self._max_minute is None or other._max_minute > self._max_minute):
            self._max_minute = other._max_minute
        self._evict()
        for day, units in other._day_cost.items():
            self._day_cost[day] = self._day_cost.get(day, 0) + units
        while len(self._day_cost) > _DAYS_KEPT:
            del self._day_cost[min(self._day_cost)]
        for dim, theirs in other._groups.items():
            mine_groups = self._groups[dim]
            for key, acc in theirs.items():
                g = mine_groups.get(key)
                if g is None:
                    g = self._new_group(mine_groups, key)
                g.merge(acc)
        self._recent.extend(other._recent)
        self._alerts.extend(other._alerts)
        for cid, row in other._commands.items():
            self._commands[cid] = row
        for key, state in other._agents.items():
            if key in self._agents or len(self._agents) < MAX_AGENTS:
                self._agents[key] = state
        for key, rate in other._saving.items():
            self._saving.setdefault(key, rate)

    def _merge_combos(self, mine: dict[Any, _Acc], theirs: dict[Any, _Acc]) -> None:
        for key, acc in theirs.items():
            canon = self._canonical(key)
            target = mine.get(canon)
            if target is None:
                target = mine[canon] = _Acc()
            target.merge(acc, bin_other=False)

    def __getstate__(self) -> dict[str, Any]:
        # Parallel workers send their Aggregator back pickled; the clock,
        # predicate and rates callables stay behind (they may be lambdas).
        self._settle()
        state = {k: getattr(self, k) for k in _PICKLED}
        state["_recent"] = list(self._recent)
        state["_recent_maxlen"] = self._recent.maxlen
        state["_recent_rejects"] = list(self._recent_rejects)
        state["_alerts"] = list(self._alerts)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.clock = time.time
        self.predicate = None
        self._rates_fn = _default_rates
        self._point_cache = {}
        for k in _PICKLED:
            setattr(self, k, state[k])
        self._recent = deque(state["_recent"], maxlen=state["_recent_maxlen"])
        self._recent_rejects = deque(state["_recent_rejects"], maxlen=MAX_RECENT_REJECTS)
        self._alerts = deque(state["_alerts"], maxlen=MAX_ALERTS)
        self._key_fn = self._make_key_fn()
        self._combo_key_fn = self._make_combo_key_fn()
        self._deltas = {}


_PICKLED: Final = (
    "live", "_dims", "seen", "events", "duplicates", "unknown_kinds", "rejected", "runs_started",
    "runs_ended", "dropped", "first_ts", "last_ts", "_reasons", "_buckets", "_archive",
    "_max_minute", "_day_cost", "_groups", "_dim_values", "_combos", "_commands", "_agents", "_saving",
)
_MISSING: Final = object()
_NO_USAGE: Final = Usage()


def _merge_parts(acc: _Acc, parts: dict[Any, _Acc]) -> None:
    for part in parts.values():
        acc.merge(part)


def _window_figures(acc: _Acc, seconds: int) -> WindowFigures:
    fields = acc.figure_fields()
    burn = (fields["cost_usd"] * 3600 / seconds).quantize(_SIX_PLACES, ROUND_HALF_UP)
    return WindowFigures(**fields, seconds=seconds, burn_usd_per_hour=burn)


def _call_row(ev: Event) -> CallRow:
    u = ev.usage
    lat = ev.latency_ms
    cost: Decimal | None
    try:
        cost = Decimal(ev.cost_usd) if ev.cost_usd else None  # type: ignore[arg-type]
    except InvalidOperation:
        cost = None
    return CallRow(
        ts=ev.ts,  # type: ignore[arg-type]
        run=ev.run,
        agent=ev.agent,
        name=ev.name,
        model=ev.model or "",
        provider=ev.provider or "",
        route=ev.route,
        input_tokens=u.input_tokens if u else 0,
        output_tokens=u.output_tokens if u else 0,
        cache_read_tokens=u.cache_read_tokens if u else 0,
        cost_usd=cost,
        cost_status=ev.cost_status,
        total_ms=lat.total if lat else None,
        error=ev.error,
    )
