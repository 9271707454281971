"""A mergeable quantile sketch with 1 % relative error (DDSketch-style).

Latencies span five orders of magnitude (a 2 ms cache hit, a 90 s reasoning
call), so fixed-width histograms are either coarse or huge. Log-spaced bins
give every value the same *relative* accuracy: bin ``k`` holds the values in
``[gamma**k, gamma**(k+1))`` with ``gamma = (1+a)/(1-a)``, and answering with
``2*gamma**(k+1)/(gamma+1)`` is within ``a`` of any of them. Two sketches with
the same ``a`` merge by adding bin counts, which is what per-minute buckets,
rolling windows and parallel report workers need.

Memory is bounded: past ``max_bins`` the lowest bins are folded together, so
only the smallest values lose accuracy (the high quantiles, which matter for
latency, never do). With a = 1 % a range of 1 µs .. 1 day needs ~1 300 bins.

Speed: ``add`` only appends to a pending list; every ``FLUSH_AT`` values (and
before any read) the batch is binned with ``map``/``Counter`` machinery that
runs in C, about three times cheaper per value than binning one at a time.
The aggregator extends ``pending`` in bulk and lets the sketch flush.

Quantiles are nearest-rank (SPEC 5.1): the value of rank ``ceil(q * n)``,
the smallest sample with at least that share of the samples at or below it;
at 2 samples p90 is the larger one. Up to ``EXACT_MAX`` samples the sketch
also keeps the samples themselves (8 bytes each, in an ``array``) and answers
exactly; beyond, within the 1 % relative error of the bins.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import mul
from typing import Final

try:  # the C helper behind Counter.update: counts an iterable into a plain dict
    from collections import _count_elements  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Pythons
    def _count_elements(mapping: dict[int, int], iterable: Iterable[int]) -> None:
        get = mapping.get
        for k in iterable:
            mapping[k] = get(k, 0) + 1

DEFAULT_ACCURACY = 0.01
DEFAULT_MAX_BINS = 2048
# Values at or below this are counted as zero: below it log() would need bins
# no latency ever uses, and a 1e-9 ms difference is not a difference.
MIN_POSITIVE = 1e-9

FLUSH_AT = 1024
EXACT_MAX: Final = 256  # samples kept for exact quantiles; beyond, the bins answer
# Bins are floor(log2(x) / log2(gamma)), the same bins as with the natural log:
# math.log (which takes an optional base) costs two to three times math.log2
# per call (timeit, 1024 values: 280-500 vs 100-180 ns on a loaded 2-core
# machine), and it was half of what binning a value cost.
_log2 = math.log2
_floor = math.floor
_isfinite = math.isfinite


def _constants(accuracy: float) -> tuple[float, float]:
    """(gamma, 1 / log2(gamma)) of a relative accuracy."""
    gamma = (1.0 + accuracy) / (1.0 - accuracy)
    return gamma, 1.0 / math.log2(gamma)


_DEFAULT_CONSTANTS: Final = _constants(DEFAULT_ACCURACY)



def nearest_rank(q: float, n: int) -> int:
    """The 1-based rank of quantile ``q`` among ``n`` sorted samples (SPEC 5.1's nearest rank).

    The smallest rank with at least ``q`` of the samples at or below it:
    ``max(1, ceil(q * n))``, the float product rounded to 12 places first so
    that 0.55 * 100 counts as 55, not 55.00000000000001 (rank 56). The one
    rule for every quantile flightdeck shows (sketch, guardrails, live rows).

    Args:
        q: the quantile, 0..1.
        n: how many samples (at least 1).
    """
    return min(n, max(1, math.ceil(round(q * n, 12))))


def nearest_rank_value(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of already sorted samples; None when there are none.

    Args:
        ordered: the samples, ascending.
        q: the quantile, 0..1.
    """
    return ordered[nearest_rank(q, len(ordered)) - 1] if ordered else None

class Sketch:
    """Quantiles of non-negative values, to a relative accuracy.

    ``add`` is the hot path (several calls per ingested event): an append.
    Values that are negative, NaN or infinite are not latencies; ``add``
    refuses them with ValueError, and values appended to ``pending`` directly
    that turn out so are dropped at flush and counted in ``invalid``. A None
    in ``pending`` (a stage that was not measured: the accumulator hands on
    whole stage columns) is skipped, not counted.
    """

    __slots__ = (
        "_count",
        "_inv_log2_gamma",
        "_max",
        "_min",
        "_sum",
        "_zeros",
        "accuracy",
        "bins",
        "gamma",
        "invalid",
        "max_bins",
        "pending",
        "samples",
    )

    def __init__(self, accuracy: float = DEFAULT_ACCURACY, max_bins: int = DEFAULT_MAX_BINS) -> None:
        if not 0.0 < accuracy < 1.0:
            raise ValueError(f"accuracy {accuracy!r} must be between 0 and 1")
        if max_bins < 2:
            raise ValueError(f"max_bins {max_bins!r} must be at least 2")
        self.accuracy = accuracy
        # Reports make hundreds of thousands of sketches (five per minute and
        # model), nearly all of the default accuracy: its constants are computed once.
        self.gamma, self._inv_log2_gamma = _DEFAULT_CONSTANTS if accuracy == DEFAULT_ACCURACY else _constants(accuracy)
        self.max_bins = max_bins
        self.bins: dict[int, int] = {}
        self._zeros = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self.pending: list[float] = []
        self.invalid = 0
        # The values themselves while there are at most EXACT_MAX of them (None after).
        self.samples: array[float] | None = array("d")

    # -- building -------------------------------------------------------------

    def add(self, x: float) -> None:
        """Count one value (>= 0, finite); ValueError otherwise."""
        if not 0.0 <= x < math.inf:
            raise ValueError(f"sketch value {x!r} is negative, NaN or infinite")
        p = self.pending
        p.append(x)
        if len(p) >= FLUSH_AT:
            self.flush()

    def extend(self, values: Iterable[float]) -> None:
        for x in values:
            self.add(x)

    def flush(self) -> None:
        """Bin the pending values."""
        batch = self.pending
        if not batch:
            return
        # Cleared in place: holders of the list (the aggregator) keep appending to it.
        p = batch[:]
        batch.clear()
        try:
            total = sum(p)
        except TypeError:  # a None among them (anything else raises again, as min() did)
            p = [x for x in p if x is not None]
            if not p:
                return
            total = sum(p)
        lo = min(p)
        if not (lo > MIN_POSITIVE and _isfinite(total)):
            # Rare: zeros or bad values in the batch; sort them out one by one.
            good = [x for x in p if 0.0 <= x < math.inf]
            self.invalid += len(p) - len(good)
            positive = [x for x in good if x > MIN_POSITIVE]
            self._zeros += len(good) - len(positive)
            if not good:
                return
            lo = min(good)
            total = sum(good)
            p, keys_from = good, positive
        else:
            keys_from = p
        if keys_from:
            _count_elements(self.bins, map(_floor, map(mul, map(_log2, keys_from), repeat(self._inv_log2_gamma))))
            if len(self.bins) > self.max_bins:
                self._collapse()
        samples = self.samples
        if samples is not None:
            if len(samples) + len(p) <= EXACT_MAX:
                samples.extend(p)
            else:
                self.samples = None
        self._count += len(p)
        self._sum += total
        hi = max(p)
        if lo < self._min:
            self._min = lo
        if hi > self._max:
            self._max = hi

    def merge(self, other: Sketch, *, bin_other: bool = True) -> None:
        """Add ``other``'s values to this sketch (same accuracy required).

        ``bin_other=False`` copies ``other``'s unbinned values into this
        sketch's pending list instead of binning them in ``other`` first: the
        cheaper way when ``other`` is about to be dropped (a minute folded into
        the archive), since each value is then binned once, here.
        """
        if other.gamma != self.gamma:
            raise ValueError("cannot merge sketches of different accuracy")
        if bin_other or len(other.pending) + len(self.pending) >= FLUSH_AT:
            other.flush()
        else:
            self.pending.extend(other.pending)
        if other._count == 0:
            return
        mine, theirs = self.samples, other.samples
        if mine is not None:
            if theirs is not None and len(mine) + len(theirs) <= EXACT_MAX:
                mine.extend(theirs)
            else:
                self.samples = None
        bins = self.bins
        if not bins:
            bins.update(other.bins)
        else:
            get = bins.get
            for k, c in other.bins.items():
                bins[k] = get(k, 0) + c
            if len(bins) > self.max_bins:
                self._collapse()
        self._zeros += other._zeros
        self._count += other._count
        self._sum += other._sum
        self.invalid += other.invalid
        if other._min < self._min:
            self._min = other._min
        if other._max > self._max:
            self._max = other._max

    def copy(self) -> Sketch:
        self.flush()
        new = Sketch.__new__(Sketch)
        new.accuracy = self.accuracy
        new.gamma = self.gamma
        new._inv_log2_gamma = self._inv_log2_gamma
        new.max_bins = self.max_bins
        new.bins = dict(self.bins)
        new._zeros = self._zeros
        new._count = self._count
        new._sum = self._sum
        new._min = self._min
        new._max = self._max
        new.pending = []
        new.invalid = self.invalid
        new.samples = None if self.samples is None else array("d", self.samples)
        return new

    def _collapse(self) -> None:
        # Fold the lowest bins into the lowest one kept: small values lose
        # accuracy, the tail (p90, p99) keeps it.
        keys = sorted(self.bins)
        excess = len(keys) - self.max_bins
        if excess <= 0:
            return
        bins = self.bins
        target = keys[excess]
        folded = 0
        for k in keys[:excess]:
            folded += bins.pop(k)
        bins[target] += folded

    # -- reading --------------------------------------------------------------

    @property
    def zeros(self) -> int:
        """Values counted as zero (at or below MIN_POSITIVE)."""
        self.flush()
        return self._zeros

    @property
    def count(self) -> int:
        self.flush()
        return self._count

    @property
    def sum(self) -> float:
        self.flush()
        return self._sum

    @property
    def min(self) -> float | None:
        self.flush()
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        self.flush()
        return self._max if self._count else None

    @property
    def mean(self) -> float | None:
        self.flush()
        return self._sum / self._count if self._count else None

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within the relative accuracy; None if empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Several nearest-rank quantiles with one sort. ``qs`` (each 0..1) need not be ordered.

        The value of rank ``max(1, ceil(q * n))`` in the sorted values:
        exact while the samples are kept, else within the relative accuracy.
        """
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile {q!r} is not between 0 and 1")
        self.flush()
        n = self._count
        if n == 0:
            return [None] * len(qs)
        ranks = [nearest_rank(q, n) for q in qs]
        samples = self.samples
        if samples is not None:
            ordered = sorted(samples)
            return [ordered[r - 1] for r in ranks]
        order = sorted(range(len(qs)), key=lambda i: ranks[i])
        out: list[float | None] = [None] * len(qs)
        keys = sorted(self.bins)
        bins = self.bins
        seen = self._zeros
        j = 0  # next bin to take
        for i in order:
            rank = ranks[i]
            if rank == n:
                out[i] = self._max  # the extremes are known exactly
                continue
            if rank <= self._zeros:
                out[i] = 0.0
                continue
            if rank == 1:
                out[i] = self._min
                continue
            while seen < rank:
                seen += bins[keys[j]]
                j += 1
            out[i] = self._value(keys[j - 1])
        return out

    def _value(self, k: int) -> float:
        # Midpoint in the relative sense of [gamma**k, gamma**(k+1)), kept inside
        # [min, max] (which can only bring it closer to the true value).
        estimate = 2.0 * self.gamma ** (k + 1) / (self.gamma + 1.0)
        return min(max(estimate, self._min), self._max)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, bins={len(self.bins)}, zeros={self._zeros})"

    def __getstate__(self) -> tuple[object, ...]:
        self.flush()
        return (self.accuracy, self.max_bins, self.bins, self._zeros, self._count, self._sum,
                self._min, self._max, self.invalid, self.samples)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        accuracy, max_bins, bins, zeros, count, total, lo, hi, invalid, samples = state
        self.accuracy = float(accuracy)  # type: ignore[arg-type]
        self.gamma, self._inv_log2_gamma = _constants(self.accuracy)
        self.max_bins = int(max_bins)  # type: ignore[call-overload]
        self.bins = bins  # type: ignore[assignment]
        self._zeros = zeros  # type: ignore[assignment]
        self._count = count  # type: ignore[assignment]
        self._sum = total  # type: ignore[assignment]
        self._min = lo  # type: ignore[assignment]
        self._max = hi  # type: ignore[assignment]
        self.pending = []
        self.invalid = invalid  # type: ignore[assignment]
        self.samples = samples  # type: ignore[assignment]
