"""The accumulator: the figures of one slice of calls, and the ONE way a call is counted.

An ``Acc`` holds a slice's sums (calls, errors, money units, the six token
buckets, cache savings) and its five latency sketches. ``add_call`` is the
only code that counts a call into an ``Acc``: ``Aggregator.add`` and
``Aggregator.add_many`` both go through it, for every slice a call lands in.

Latencies are not binned per call: the call's ``Latency`` struct is kept in
``lats`` (streamed calls) or ``lats_ns`` (the others: their ttft does not
count), and every ``FLUSH_AT`` calls, or before any read, the stage values
are pulled out in columns (``msgspec.structs.astuple`` and ``zip``, in C)
and binned in bulk: one append per call instead of five sketch updates.

The five sketches are made on first need: the windows make one ``Acc`` per
second of event time, most of which are dropped unread (a report only reads
the last hour), and five empty sketches cost more than the calls they hold.
"""

from __future__ import annotations

from typing import Any, Final, cast

from msgspec.structs import astuple

from flightdeck.core.events import STAGES, Latency, Usage
from flightdeck.core.money import Money, units_to_usd
from flightdeck.core.sketch import FLUSH_AT, Sketch
from flightdeck.core.snapshot import Figures, Quantiles, Tokens

QUANTILES: Final = (0.5, 0.9, 0.99)
NO_USAGE: Final = Usage()
_PICKLE_RAW: Final = 64  # latencies an unbinned Acc pickles as they are
_TTFT_AT: Final = STAGES.index("ttft")  # the column a call that is not streamed has no say in
_COLUMN_ROWS: Final = 4096  # latencies turned into columns at a time (zip(*rows) takes them as arguments)


def _columns(lats: list[Latency]) -> list[tuple[tuple[float | None, ...], ...]]:
    """The stage columns (in ``STAGES`` order, None where not measured) of ``lats``, in slices.

    ``astuple`` reads a Latency's fields in declaration order, which is
    ``STAGES`` (a test pins it); ``zip(*rows)`` turns rows into columns.
    """
    return [tuple(zip(*map(astuple, lats[at:at + _COLUMN_ROWS]))) for at in range(0, len(lats), _COLUMN_ROWS)]


class Acc:
    """Mutable figures of one slice of calls (a second, a group, the run)."""

    __slots__ = (
        "_cached",
        "_cached_calls",
        "cache_read",
        "cache_write",
        "cache_write_1h",
        "calls",
        "cost",
        "errors",
        "input",
        "lats",
        "lats_ns",
        "output",
        "reasoning",
        "saved",
        "sk",
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
        self.lats: list[Latency] = []
        self.lats_ns: list[Latency] = []
        self.sk: tuple[Sketch, Sketch, Sketch, Sketch, Sketch] | None = None  # pre, ttft, gen, post, total
        self._cached: Figures | None = None
        self._cached_calls = -1

    def sketches(self) -> tuple[Sketch, Sketch, Sketch, Sketch, Sketch]:
        """The five stage sketches (pre, ttft, gen, post, total), every kept latency binned."""
        self.flush()
        sk = self.sk
        if sk is None:
            sk = self.sk = (Sketch(), Sketch(), Sketch(), Sketch(), Sketch())
        return sk

    def flush(self) -> None:
        """Bin the latencies kept since the last flush."""
        streamed, other = self.lats, self.lats_ns
        if streamed or other:
            sk = self.sk
            if sk is None:
                sk = self.sk = (Sketch(), Sketch(), Sketch(), Sketch(), Sketch())
            # Whole columns, Nones included: Sketch.flush skips None (a stage not
            # measured). Each sketch gets the streamed calls' values, then the
            # others', as the map/filter per stage and list did (the same order,
            # so the same float sums): per latency 2.6k -> 1.7k instructions
            # (valgrind, 1,611 latencies of v1 events; the old way is kept in
            # tests/core/test_accumulator_columns.py and pinned against this one).
            cols_s = _columns(streamed)
            cols_o = _columns(other)
            for i, s in enumerate(sk):
                pending = cast("list[float | None]", s.pending)  # Sketch.flush skips the Nones
                for cols in cols_s:
                    pending.extend(cols[i])
                if i != _TTFT_AT:
                    for cols in cols_o:
                        pending.extend(cols[i])
            streamed.clear()
            other.clear()
            for s in sk:
                s.flush()

    def merge(self, o: Acc, *, bin_other: bool = True) -> None:
        """Add ``o``'s figures to these.

        Args:
            o: the slice to add.
            bin_other: False takes ``o``'s unbinned latencies as they are
                (cheaper when ``o`` is about to be dropped).
        """
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
        theirs = o.sk
        if theirs is not None:
            mine = self.sk
            if mine is None:
                mine = self.sk = (Sketch(), Sketch(), Sketch(), Sketch(), Sketch())
            for a, b in zip(mine, theirs):
                a.merge(b, bin_other=bin_other)
        if len(self.lats) + len(self.lats_ns) >= FLUSH_AT:
            self.flush()
        self._cached_calls = -1

    def figure_fields(self) -> dict[str, Any]:
        """The keyword arguments of ``Figures`` for this slice."""
        stages = {name: quantiles_of(s) for name, s in zip(STAGES, self.sketches())}
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
        # A report worker sends back an hour of sparse seconds: a few raw
        # latencies travel (and pickle) lighter than five sketches each.
        if self.sk is not None or len(self.lats) + len(self.lats_ns) > _PICKLE_RAW:
            self.flush()
        return (self.calls, self.errors, self.cost, self.unpriced, self.input, self.output,
                self.cache_read, self.cache_write, self.reasoning, self.cache_write_1h, self.saved, self.sk,
                self.lats, self.lats_ns)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.calls, self.errors, self.cost, self.unpriced, self.input, self.output,
         self.cache_read, self.cache_write, self.reasoning, self.cache_write_1h, self.saved, self.sk,
         self.lats, self.lats_ns) = state
        self._cached = None
        self._cached_calls = -1


def quantiles_of(s: Sketch) -> Quantiles:
    """p50, p90, p99 (nearest rank), mean and count of one sketch."""
    if s.count == 0:
        return Quantiles()
    p50, p90, p99 = s.quantiles(QUANTILES)
    return Quantiles(count=s.count, p50=p50, p90=p90, p99=p99, mean=s.sum / s.count)


def add_call(slices: tuple[Acc, ...], err: bool, cost: Money | None, u: Usage, saved: Money,
             lat: Latency | None, stream: bool | None) -> None:
    """Count one call into each of ``slices``: the only place a call's figures are added.

    One call for all the slices a call lands in (its second, its combination of
    breakdown keys): the per-call Python call overhead is paid once.

    Args:
        slices: the accumulators the call lands in.
        err: the call failed.
        cost: its cost in money units; None when unknown (counted as unpriced, never as 0).
        u: its canonical usage.
        saved: what its cache reads saved, in money units.
        lat: its stage latencies, if measured.
        stream: whether it was streamed (only streamed calls have a ttft).
    """
    inp = u.input_tokens
    out = u.output_tokens
    cr = u.cache_read_tokens
    cw = u.cache_write_tokens
    rs = u.reasoning_tokens
    cw1h = u.cache_write_1h_tokens
    for acc in slices:
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
            if not acc.calls & (FLUSH_AT - 1):
                acc.flush()
