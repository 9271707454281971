"""An exact seen-id set whose memory does not grow with a writer's ids.

A reader must count a repeated event ``id`` once (a recorder may resend after
a reconnect; a log may be read twice through a copy). Keeping every id would
make memory grow with the log. The recorder's ids come from ``IdSource``:
``<12 hex>-<counter in hex>``, contiguous per writer, so one writer's ids are
stored as sorted, disjoint integer ranges: a clean log of any length costs one
range per writer. Out-of-order arrivals open a new range that merges with its
neighbours once the gap fills.

Any other id (Claude Code's ``message.id:requestId``, OTLP span ids, UUIDs, a
hand-written log) is stored as a 64-bit BLAKE2s digest, packed 8 bytes to the
digest in sorted ``array('Q')`` buckets chosen by the digest's top bits
(``_Digests``): about 9 bytes per id, where a Python ``set`` of ints took
about 80 (measured: benchmarks/bench_dedupe.py). Two distinct ids share a
digest with probability about n**2 / 2**65 over n ids: 3e-6 for ten million
ids, so "exact" holds for any log one can realistically feed it. A keyless
hash rather than ``hash()`` because Python's string hash is salted per
process, and the sets of parallel report workers must merge; BLAKE2s because
it was the cheapest on short ids (~10% under BLAKE2b, which beat MD5, SHA-1
and SHA-256).

A lookup in a bucket (a ``bisect`` over an array) costs a few times a set
lookup, so a new foreign id costs ~1.4x what it did with a set; Claude Code's
repeats, on consecutive lines, skip the hashing altogether (``_last``), which
more than pays for it on real logs (benchmarks/bench_dedupe.py).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from hashlib import blake2s


class _Ranges:
    """Sorted, disjoint, non-adjacent half-open ranges [start, end) of ints."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, n: int) -> bool:
        ends = self.ends
        if ends and n == ends[-1]:
            # The common case: the writer's next id extends its newest range.
            ends[-1] = n + 1
            return True
        starts = self.starts
        i = bisect_right(starts, n)  # ranges[:i] start at or before n
        if i and n < ends[i - 1]:
            return False
        join_left = i > 0 and ends[i - 1] == n
        join_right = i < len(starts) and starts[i] == n + 1
        if join_left and join_right:
            ends[i - 1] = ends[i]
            del starts[i]
            del ends[i]
        elif join_left:
            ends[i - 1] = n + 1
        elif join_right:
            starts[i] = n
        else:
            starts.insert(i, n)
            ends.insert(i, n + 1)
        return True

    def __contains__(self, n: int) -> bool:
        i = bisect_right(self.starts, n)
        return i > 0 and n < self.ends[i - 1]

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends))

    def union(self, other: _Ranges) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(self.pairs() + other.pairs()):
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def intersects(self, other: _Ranges) -> bool:
        a, b = self.pairs(), other.pairs()
        i = j = 0
        while i < len(a) and j < len(b):
            if a[i][0] < b[j][1] and b[j][0] < a[i][1]:
                return True
            if a[i][1] <= b[j][1]:
                i += 1
            else:
                j += 1
        return False

    def copy(self) -> _Ranges:
        new = _Ranges()
        new.starts = list(self.starts)
        new.ends = list(self.ends)
        return new

    def __getstate__(self) -> tuple[list[int], list[int]]:
        return (self.starts, self.ends)

    def __setstate__(self, state: tuple[list[int], list[int]]) -> None:
        self.starts, self.ends = state


_MAX_COUNTER_DIGITS = 16  # hex digits of a 64-bit counter


def _split(id_: str) -> tuple[str, int] | None:
    """(prefix, counter) for an id shaped like IdSource's, None for any other id.

    IdSource writes ``<12 hex>-<hex counter>``; any ``<prefix>-<lowercase hex>``
    is accepted (split at the last "-"), which keeps the mapping one-to-one.
    Only the canonical spelling counts: ``int("0a", 16) == int("a", 16)``, and
    ``int`` also accepts "_", "+", whitespace and "0x"; such ids go to the
    hashed set instead. So do ids whose prefix holds a "-", such as UUIDs
    (Claude Code's fallback id, ``chatcmpl-<uuid>``): each would open a range
    of its own under its own prefix, ~400 bytes apiece against 8 as a digest.
    """
    prefix, sep, rest = id_.rpartition("-")
    # A counter past 64 bits is no IdSource's: hashed, so a hostile id of a
    # million hex digits costs 8 bytes, not a million-digit int per range.
    if not sep or not rest or len(rest) > _MAX_COUNTER_DIGITS or "-" in prefix:
        return None
    try:
        n = int(rest, 16)
    except ValueError:
        return None
    if n < 0 or format(n, "x") != rest:
        return None
    return prefix, n



def _digest(id_: str) -> int:
    try:
        data = id_.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): still an id
        data = id_.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2s(data, digest_size=8).digest(), "little")


_MAX_FILL = 256  # digests per bucket, on average, before the buckets double


class _Digests:
    """A set of 64-bit ints in 8 bytes each (plus ~6% array slack).

    Bucket ``i`` of ``2**bits`` holds, sorted, the digests whose top ``bits``
    bits are ``i``: a lookup is one ``bisect`` in a bucket of at most a few
    hundred, an insert moves at most a few KiB, and doubling the buckets
    splits each one at a bisect (digests are uniform, so buckets stay even).
    A single sorted array would cost O(n) per insert; a Python ``set`` of ints
    costs ~80 bytes per digest.
    """

    __slots__ = ("buckets", "count", "limit", "shift")

    def __init__(self, bits: int = 0) -> None:
        self.buckets: list[array[int]] = [array("Q") for _ in range(1 << bits)]
        self.shift = 64 - bits
        self.count = 0
        self.limit = _MAX_FILL << bits  # count that doubles the buckets

    @property
    def bits(self) -> int:
        return 64 - self.shift

    def add(self, h: int) -> bool:
        bucket = self.buckets[h >> self.shift]
        i = bisect_left(bucket, h)
        if i < len(bucket) and bucket[i] == h:
            return False
        bucket.insert(i, h)
        self.count += 1
        if self.count > self.limit:
            self._double()
        return True

    def __contains__(self, h: int) -> bool:
        bucket = self.buckets[h >> self.shift]
        i = bisect_left(bucket, h)
        return i < len(bucket) and bucket[i] == h

    def _double(self) -> None:
        old = self.buckets
        half = self.shift - 1
        new: list[array[int]] = []
        for p in range(len(old)):
            bucket = old[p]
            old[p] = array("Q")  # let the old bucket go as soon as it is split: no 2x peak
            i = bisect_left(bucket, (2 * p + 1) << half)
            new.append(bucket[:i])
            new.append(bucket[i:])
        self.buckets = new
        self.shift = half
        self.limit *= 2

    def _part(self, i: int, bits: int) -> array[int]:
        """The digests whose top ``bits`` bits are ``i`` (bits >= self.bits)."""
        bucket = self.buckets[i >> (bits - self.bits)]
        if bits == self.bits:
            return bucket
        shift = 64 - bits
        return bucket[bisect_left(bucket, i << shift):bisect_left(bucket, (i + 1) << shift)]

    def merge(self, other: _Digests) -> None:
        while self.bits < other.bits:
            self._double()
        bits = self.bits
        for i, mine in enumerate(self.buckets):
            theirs = other._part(i, bits)
            if not theirs:
                continue
            # A bucket at a time: the temporary set is a few hundred ints.
            union = set(mine)
            union.update(theirs)
            if len(union) > len(mine):
                self.count += len(union) - len(mine)
                self.buckets[i] = array("Q", sorted(union))
        while self.count > self.limit:
            self._double()

    def intersects(self, other: _Digests) -> bool:
        if not self.count or not other.count:
            return False
        a, b = (self, other) if self.bits >= other.bits else (other, self)
        bits = a.bits
        for i, mine in enumerate(a.buckets):
            if mine:
                theirs = b._part(i, bits)
                if theirs and not set(theirs).isdisjoint(mine):
                    return True
        return False

    def copy(self) -> _Digests:
        new = _Digests()
        new.buckets = [b[:] for b in self.buckets]
        new.shift = self.shift
        new.count = self.count
        new.limit = self.limit
        return new

    def __iter__(self) -> Iterator[int]:
        for bucket in self.buckets:
            yield from bucket

    def __getstate__(self) -> tuple[int, array[int]]:
        # One array of all digests, in order (buckets are ranges of values):
        # 8 bytes a digest in the pickle too.
        packed = array("Q")
        for bucket in self.buckets:
            packed.extend(bucket)
        return (self.bits, packed)

    def __setstate__(self, state: tuple[int, array[int]]) -> None:
        bits, packed = state
        self.shift = 64 - bits
        self.count = len(packed)
        self.limit = _MAX_FILL << bits
        self.buckets = []
        lo = 0
        for i in range(1 << bits):
            hi = bisect_left(packed, (i + 1) << self.shift, lo)  # 2**64 for the last: the end
            self.buckets.append(packed[lo:hi])
            lo = hi


class SeenIds:
    """``add(id) -> True`` the first time an id is seen, False after."""

    __slots__ = ("_hashed", "_last", "_ranges")

    def __init__(self) -> None:
        self._ranges: dict[str, _Ranges] = {}
        self._hashed = _Digests()
        # The last foreign id added. Claude Code writes a response once per
        # content block, on consecutive lines: its repeats are refused without
        # hashing. (An id once added stays in, so the answer is exact.)
        self._last: str | None = None

    def add(self, id_: str) -> bool:
        # Fast path, nearly every event of a clean log: the writer's next id.
        prefix, sep, rest = id_.rpartition("-")
        if sep:
            ranges = self._ranges.get(prefix)
            if ranges is not None:
                ends = ranges.ends
                if ends and rest == format(ends[-1], "x"):
                    ends[-1] += 1
                    return True
        if id_ == self._last:
            return False
        # No "-": no IdSource id (_split would say None after a second rpartition). Claude
        # Code's msg_... ids: about 1.5k instructions an event fewer (valgrind).
        split = _split(id_) if sep else None
        if split is None:
            self._last = id_
            # _Digests.add, inlined: this runs for every foreign id of a report.
            h = _digest(id_)
            hashed = self._hashed
            bucket = hashed.buckets[h >> hashed.shift]
            i = bisect_left(bucket, h)
            if i < len(bucket) and bucket[i] == h:
                return False
            bucket.insert(i, h)
            hashed.count += 1
            if hashed.count > hashed.limit:
                hashed._double()
            return True
        prefix, n = split
        ranges = self._ranges.get(prefix)
        if ranges is None:
            ranges = self._ranges[prefix] = _Ranges()
        return ranges.add(n)

    def __contains__(self, id_: str) -> bool:
        if id_ == self._last:
            return True
        split = _split(id_)
        if split is None:
            return _digest(id_) in self._hashed
        ranges = self._ranges.get(split[0])
        return ranges is not None and split[1] in ranges

    def merge(self, other: SeenIds) -> None:
        """Union with another set (a parallel worker's)."""
        for prefix, theirs in other._ranges.items():
            mine = self._ranges.get(prefix)
            if mine is None:
                self._ranges[prefix] = theirs.copy()
            else:
                mine.union(theirs)
        self._hashed.merge(other._hashed)

    def intersects(self, other: SeenIds) -> bool:
        """Whether some id is in both sets (a duplicate across parallel workers)."""
        if self._hashed.intersects(other._hashed):
            return True
        for prefix, theirs in other._ranges.items():
            mine = self._ranges.get(prefix)
            if mine is not None and mine.intersects(theirs):
                return True
        return False

    def copy(self) -> SeenIds:
        new = SeenIds()
        new._ranges = {p: r.copy() for p, r in self._ranges.items()}
        new._hashed = self._hashed.copy()
        new._last = self._last
        return new

    @property
    def range_count(self) -> int:
        """Stored ranges (memory for IdSource ids is proportional to this)."""
        return sum(len(r.starts) for r in self._ranges.values())

    @property
    def hashed_count(self) -> int:
        """Stored digests of foreign ids (memory grows with these, 8.5 bytes each)."""
        return self._hashed.count

    def __len__(self) -> int:
        return sum(e - s for r in self._ranges.values() for s, e in zip(r.starts, r.ends)) + self._hashed.count

    def __getstate__(self) -> tuple[dict[str, _Ranges], _Digests]:
        return (self._ranges, self._hashed)

    def __setstate__(self, state: tuple[dict[str, _Ranges], _Digests]) -> None:
        self._ranges, self._hashed = state
        self._last = None
