"""Sliding windows over event time: one accumulator per second for the last hour.

A window of ``W`` seconds ending at ``now`` holds the calls whose second
``floor(ts)`` lies in ``(floor(now) - W, floor(now)]`` (SPEC 5.1): it slides
with the clock, to the second, and is never a calendar minute.

Memory stays flat over a long run: seconds more than ``HORIZON`` behind the
newest one are dropped (their spend is kept per UTC day, for the day
projection); the run totals never come from here. Reads stay cheap: a whole
minute inside a window is merged once and cached until a call lands in it,
so a 60-minute window is at most 59 cached minutes plus the seconds of its
two edges.

Seconds that end with only a few latencies kept unbinned are binned when the
next second starts (``BIN_AT``), so a long run at a moderate rate does not
hold an hour of raw ``Latency`` structs; a report's thousands of sparse
seconds, nearly all dropped unread, are never binned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from flightdeck.core.aggregate.accumulator import Acc
from flightdeck.core.money import Money, units_to_usd
from flightdeck.core.snapshot import WINDOW_NAMES, MinutePoint, Projection, WindowFigures

SERIES_MINUTES: Final = 60
# Seconds kept behind the newest: the longest window plus slack, so a
# slightly late call still lands in its second.
HORIZON: Final = 3600 + 300
BIN_AT: Final = 16  # a finished second with this many unbinned latencies is binned
DAYS_KEPT: Final = 8
PROJECTION_WINDOW: Final = 300  # the one rate both projections use: the burn the Spend panel shows
PROJECTION_BASIS: Final = f"{WINDOW_NAMES[PROJECTION_WINDOW]} burn"
_SIX_PLACES: Final = Decimal("0.000001")


class Windows:
    """The last hour of calls by second of event time, and the spend per UTC day.

    The hot path is the caller's: a call in the newest second (``top``) is
    counted straight into ``top_acc``; any other second goes through ``slot``.
    """

    __slots__ = ("_minutes", "_points", "_tens", "day_cost", "first", "seconds", "top", "top_acc")

    def __init__(self) -> None:
        self.seconds: dict[int, Acc] = {}
        self.top: int | None = None  # the newest second that holds a call
        self.top_acc: Acc | None = None  # its accumulator
        self.first: float | None = None  # the oldest call's ts (for the burn rate), to the second
        self.day_cost: dict[int, Money] = {}  # UTC day -> spend of the seconds dropped so far
        # Blocks of 10 and 60 seconds merged, cached once they end before ``top``
        # (None: no calls); a call landing in an older second drops its blocks.
        self._tens: dict[int, Acc | None] = {}
        self._minutes: dict[int, Acc | None] = {}
        self._points: dict[int, tuple[Acc, MinutePoint]] = {}

    # -- input ------------------------------------------------------------------------

    def slot(self, ts: float) -> Acc | None:
        """The accumulator of ``ts``'s second; None when it is too old for any window.

        The caller counts the call there (or, for None, calls ``late``). A
        call in the second ``top`` may skip this and use ``top_acc``.

        Args:
            ts: the call's time (not in the future: the caller sorts those out).
        """
        first = self.first
        if first is None or ts < first:
            # Every second's first call passes here, so this is the oldest call
            # to the second (a later call within that same second may be older).
            self.first = ts
        sec = int(ts // 1)
        top = self.top
        if top is None or sec > top:
            if top is not None:
                prev = self.top_acc
                if prev is not None and len(prev.lats) + len(prev.lats_ns) >= BIN_AT:
                    prev.flush()
            acc = self.seconds[sec] = Acc()
            self.top = sec
            self.top_acc = acc
            self._evict(sec - HORIZON)
            return acc
        self._tens.pop(sec // 10, None)
        self._minutes.pop(sec // 60, None)
        found = self.seconds.get(sec)
        if found is not None:
            return found
        if sec < top - HORIZON:
            return None
        acc = self.seconds[sec] = Acc()
        return acc

    def late(self, ts: float, cost: Money | None) -> None:
        """A call too old for any window: only its day's spend is kept here.

        Args:
            ts: the call's time.
            cost: its cost in money units (None when unknown).
        """
        if self.first is None or ts < self.first:
            self.first = ts
        if cost:
            self._add_day(int(ts // 86400), cost)

    def _evict(self, horizon: int) -> None:
        seconds = self.seconds
        # Seconds arrive mostly in order: the oldest are at the front of the dict.
        while seconds:
            oldest = next(iter(seconds))
            if oldest >= horizon:
                break
            self._drop(oldest)
        if len(seconds) > HORIZON + 600:  # late seconds sit further back: sweep now and then
            for sec in [s for s in seconds if s < horizon]:
                self._drop(sec)
        # Blocks read but empty (gaps, or before the first call) are cached too: drop the old ones.
        for cache, size in ((self._tens, 10), (self._minutes, 60), (self._points, 60)):
            if len(cache) > HORIZON // size + 8:
                for key in [k for k in cache if k < horizon // size]:
                    del cache[key]

    def _drop(self, sec: int) -> None:
        acc = self.seconds.pop(sec)
        if acc.cost:
            self._add_day(sec // 86400, acc.cost)
        self._tens.pop(sec // 10, None)
        self._minutes.pop(sec // 60, None)
        self._points.pop(sec // 60, None)

    def _add_day(self, day: int, cost: Money) -> None:
        days = self.day_cost
        days[day] = days.get(day, 0) + cost
        if len(days) > DAYS_KEPT:
            del days[min(days)]

    def merge(self, other: Windows) -> None:
        """Add ``other``'s seconds and day spend (parallel report workers).

        Args:
            other: windows built over other events.
        """
        for sec, acc in other.seconds.items():
            mine = self.seconds.get(sec)
            if mine is None:
                mine = self.seconds[sec] = Acc()
            mine.merge(acc, bin_other=False)
            self._tens.pop(sec // 10, None)
            self._minutes.pop(sec // 60, None)
        for day, cost in other.day_cost.items():
            self._add_day(day, cost)
        if other.first is not None and (self.first is None or other.first < self.first):
            self.first = other.first
        if other.top is not None and (self.top is None or other.top > self.top):
            self.top = other.top
        self.top_acc = None if self.top is None else self.seconds.get(self.top)
        if self.top is not None:
            horizon = self.top - HORIZON
            for sec in [s for s in self.seconds if s < horizon]:
                self._drop(sec)

    # -- reading ----------------------------------------------------------------------

    def _block(self, cache: dict[int, Acc | None], index: int, size: int, part: int) -> Acc | None:
        """Seconds ``[index*size, (index+1)*size)`` merged, from blocks of ``part`` seconds."""
        if index in cache:
            return cache[index]
        start = index * size
        top = self.top
        if top is None or start > top:
            return None
        merged: Acc | None = None
        if part == 1:
            seconds = self.seconds
            pieces = [seconds.get(sec) for sec in range(start, start + size)]
        else:
            pieces = [self._block(self._tens, t, part, 1) for t in range(start // part, (start + size) // part)]
        for acc in pieces:
            if acc is not None:
                if merged is None:
                    merged = Acc()
                # The parts' latencies are binned here, once, not in each part
                # (five sketches for every second would cost more than the calls).
                merged.merge(acc, bin_other=False)
        if start + size - 1 < top:  # complete: no call lands here but through ``slot``, which drops it
            if merged is not None:
                merged.flush()  # binned once: every later read merges bins
            cache[index] = merged
        return merged

    def _ten(self, t: int) -> Acc | None:
        return self._block(self._tens, t, 10, 1)

    def _minute(self, m: int) -> Acc | None:
        return self._block(self._minutes, m, 60, 10)

    def spans(self, now: float, sizes: Sequence[int]) -> list[dict[str, Any]]:
        """For each size (seconds, ascending), the figure fields of the calls in ``(now - size, now]``.

        To the second: a call counts when its second ``floor(ts)`` is in
        ``(floor(now) - size, floor(now)]``. One backward pass from ``now``
        over seconds, then 10-second blocks, then whole minutes, and back
        down at each window's far edge.

        Args:
            now: the windows' end, epoch seconds.
            sizes: window lengths in seconds, ascending.
        """
        out: list[dict[str, Any]] = []
        running = Acc()
        top = self.top
        s_now = math.floor(now)
        p = s_now if top is None else min(s_now, top)
        seconds = self.seconds
        for size in sizes:
            lo = s_now - size + 1
            while top is not None and p >= lo:
                if p % 60 == 59 and p - 59 >= lo:
                    part = self._minute(p // 60)
                    p -= 60
                elif p % 10 == 9 and p - 9 >= lo:
                    part = self._ten(p // 10)
                    p -= 10
                else:
                    part = seconds.get(p)
                    p -= 1
                if part is not None:
                    running.merge(part, bin_other=False)  # raw latencies of the edges binned once, in ``running``
            out.append(running.figure_fields())
        return out

    def figures(self, fields: dict[str, Any], seconds: int, now: float) -> WindowFigures:
        """A window's figures with its burn rate.

        Burn = the window's spend / ``min(window, now - first call's ts)``,
        per hour (SPEC 5.1): a young run's spend is not spread over time it
        did not exist. The observed time is at least one second (the
        windows' resolution).

        Args:
            fields: the window's figure fields (from ``spans``).
            seconds: the window's length.
            now: its end.
        """
        observed = float(seconds)
        if self.first is not None:
            observed = min(observed, max(1.0, now - self.first))
        burn = fields["cost_usd"] * 3600 / Decimal(repr(observed))
        return WindowFigures(**fields, seconds=seconds,
                             burn_usd_per_hour=burn.quantize(_SIX_PLACES, ROUND_HALF_UP))

    def series(self, now: float) -> tuple[MinutePoint, ...]:
        """The last ``SERIES_MINUTES`` calendar minutes up to ``now``'s, oldest first, gaps filled."""
        cur = math.floor(now) // 60
        points = []
        cache = self._points
        for m in range(cur - SERIES_MINUTES + 1, cur + 1):
            b = self._minute(m)
            if b is None:
                points.append(MinutePoint(start=m * 60.0))
                continue
            hit = cache.get(m)
            if hit is not None and hit[0] is b and m in self._minutes:
                points.append(hit[1])
                continue
            ttft = b.sketches()[1]
            p50, p90 = ttft.quantiles((0.5, 0.9)) if ttft.count else (None, None)
            prompt = b.input + b.cache_read + b.cache_write
            point = MinutePoint(start=m * 60.0, calls=b.calls, cost_usd=units_to_usd(b.cost),
                                cache_hit_rate=b.cache_read / prompt if prompt else None,
                                ttft_p50=p50, ttft_p90=p90,
                                cache_read_tokens=b.cache_read, cache_write_tokens=b.cache_write)
            cache[m] = (b, point)
            points.append(point)
        return tuple(points)

    def projection(self, now: float, basis: WindowFigures | None) -> Projection:
        """Spend so far this UTC hour (day), up to ``now``, plus the basis burn over the time left.

        Args:
            now: the projection's instant.
            basis: the ``PROJECTION_WINDOW`` window's figures (its burn rate is the one rate used).
        """
        burn = basis.burn_usd_per_hour if basis is not None else Decimal(0)
        s_now = math.floor(now)
        hour_start = s_now - s_now % 3600
        day = s_now // 86400
        day_start = day * 86400
        hour_units: Money = 0
        day_units: Money = self.day_cost.get(day, 0)
        top = self.top
        if top is not None:
            # Whole minutes from their cached blocks, then the seconds of now's minute.
            cur_min = s_now // 60
            lo = max(day_start, top - HORIZON) // 60
            for m in range(lo, min(cur_min, top // 60 + 1)):
                blk = self._minute(m)
                if blk is not None and blk.cost:
                    day_units += blk.cost
                    if m * 60 >= hour_start:
                        hour_units += blk.cost
            seconds = self.seconds
            for sec in range(max(cur_min * 60, day_start), min(s_now, top) + 1):
                acc = seconds.get(sec)
                if acc is not None and acc.cost:
                    day_units += acc.cost
                    if sec >= hour_start:
                        hour_units += acc.cost
        left_hour = Decimal(max(0, hour_start + 3600 - math.ceil(now)))
        left_day = Decimal(max(0, day_start + 86400 - math.ceil(now)))
        hour_end = units_to_usd(hour_units) + burn * left_hour / 3600
        day_end = units_to_usd(day_units) + burn * left_day / 3600
        return Projection(hour_end_usd=hour_end.quantize(_SIX_PLACES, ROUND_HALF_UP),
                          day_end_usd=day_end.quantize(_SIX_PLACES, ROUND_HALF_UP),
                          basis=PROJECTION_BASIS)

    def __getstate__(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "top": self.top, "first": self.first, "day_cost": self.day_cost}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.seconds = state["seconds"]
        self.top = state["top"]
        self.top_acc = None if self.top is None else self.seconds.get(self.top)
        self.first = state["first"]
        self.day_cost = state["day_cost"]
        self._tens = {}
        self._minutes = {}
        self._points = {}
