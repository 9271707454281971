"""An exact seen-id set whose memory does not grow with a writer's ids.

A reader must count a repeated event ``id`` once (a recorder may resend after
a reconnect; a log may be read twice through a copy). Keeping every id would
make memory grow with the log. The recorder's ids come from ``IdSource``:
``<12 hex>-<counter in hex>``, contiguous per writer, so one writer's ids are
stored as sorted, disjoint integer ranges: a clean log of any length costs one
range per writer. Out-of-order arrivals open a new range that merges with its
neighbours once the gap fills.

Any other id (Claude Code's ``message.id`` + ``requestId``, OTLP span ids, a
hand-written log) falls back to a set of 64-bit BLAKE2b digests: ~70 bytes per
id, growing with the number of such ids. Two distinct ids share a digest with
probability about n**2 / 2**65 over n ids: 3e-6 for ten million ids, so "exact"
holds for any log one can realistically feed it. BLAKE2b rather than
``hash()`` because Python's string hash is salted per process, and the sets of
parallel report workers must merge.
"""

from __future__ import annotations

from bisect import bisect_right
from hashlib import blake2b



class _Ranges:
    """Sorted, disjoint, non-adjacent half-open ranges [start, end) of ints."""

    __slots__ = ("starts", "ends")

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


def _split(id_: str) -> tuple[str, int] | None:
    """(prefix, counter) for an id shaped like IdSource's, None for any other id.

    IdSource writes ``<12 hex>-<hex counter>``; any ``<prefix>-<lowercase hex>``
    is accepted (split at the last "-"), which keeps the mapping one-to-one.
    Only the canonical spelling counts: ``int("0a", 16) == int("a", 16)``, and
    ``int`` also accepts "_", "+", whitespace and "0x"; such ids go to the
    hashed set instead.
    """
    prefix, sep, rest = id_.rpartition("-")
    if not sep or not rest:
        return None
    try:
        n = int(rest, 16)
    except ValueError:
        return None
    if n < 0 or format(n, "x") != rest:
        return None
    return prefix, n


def _digest(id_: str) -> int:
    return int.from_bytes(blake2b(id_.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class SeenIds:
    """``add(id) -> True`` the first time an id is seen, False after."""

    __slots__ = ("_ranges", "_hashed")

    def __init__(self) -> None:
        self._ranges: dict[str, _Ranges] = {}
        self._hashed: set[int] = set()

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
        split = _split(id_)
        if split is None:
            h = _digest(id_)
            hashed = self._hashed
            if h in hashed:
                return False
            hashed.add(h)
            return True
        prefix, n = split
        ranges = self._ranges.get(prefix)
        if ranges is None:
            ranges = self._ranges[prefix] = _Ranges()
        return ranges.add(n)

    def __contains__(self, id_: str) -> bool:
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
        self._hashed |= other._hashed

    def intersects(self, other: SeenIds) -> bool:
        """Whether some id is in both sets (a duplicate across parallel workers)."""
        if not self._hashed.isdisjoint(other._hashed):
            return True
        for prefix, theirs in other._ranges.items():
            mine = self._ranges.get(prefix)
            if mine is not None and mine.intersects(theirs):
                return True
        return False

    def copy(self) -> SeenIds:
        new = SeenIds()
        new._ranges = {p: r.copy() for p, r in self._ranges.items()}
        new._hashed = set(self._hashed)
        return new

    @property
    def range_count(self) -> int:
        """Stored ranges (memory for IdSource ids is proportional to this)."""
        return sum(len(r.starts) for r in self._ranges.values())

    @property
    def hashed_count(self) -> int:
        """Stored digests of foreign ids (memory grows with these)."""
        return len(self._hashed)

    def __len__(self) -> int:
        return sum(e - s for r in self._ranges.values() for s, e in zip(r.starts, r.ends)) + len(self._hashed)

    def __getstate__(self) -> tuple[dict[str, _Ranges], set[int]]:
        return (self._ranges, self._hashed)

    def __setstate__(self, state: tuple[dict[str, _Ranges], set[int]]) -> None:
        self._ranges, self._hashed = state
