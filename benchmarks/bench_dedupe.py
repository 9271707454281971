"""Seen-id set for foreign ids: compact digest buckets against the old Python set.

Claude Code's event id is ``message.id:requestId``; every response is written
once per content block, so a log repeats each id about twice, on adjacent
lines. This measures, in one run, for ``--distinct`` such ids each added
``--repeats`` times:

- memory kept (tracemalloc, after the adds) and peak while adding;
- time per ``add``, repeats adjacent (as Claude Code writes them) and
  shuffled (every repeat far from its first: no last-id shortcut);
- ``merge``, ``intersects`` and pickle size for two halves;
- memory for UUID ids (Claude Code's fallback id, ``chatcmpl-<uuid>``);

against the set-based ``SeenIds`` this module replaced (copied below as the
baseline), and prints the ratios (new / old: below 1 is better).

    python benchmarks/bench_dedupe.py [--distinct 350000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any

from flightdeck.core.dedupe import SeenIds, _Ranges


# -- the baseline: SeenIds as it was (ranges + a set of BLAKE2b ints) ----------------

def _old_split(id_: str) -> tuple[str, int] | None:
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


def _old_digest(id_: str) -> int:
    return int.from_bytes(blake2b(id_.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class OldSeenIds:
    __slots__ = ("_ranges", "_hashed")

    def __init__(self) -> None:
        self._ranges: dict[str, _Ranges] = {}
        self._hashed: set[int] = set()

    def add(self, id_: str) -> bool:
        prefix, sep, rest = id_.rpartition("-")
        if sep:
            ranges = self._ranges.get(prefix)
            if ranges is not None:
                ends = ranges.ends
                if ends and rest == format(ends[-1], "x"):
                    ends[-1] += 1
                    return True
        split = _old_split(id_)
        if split is None:
            h = _old_digest(id_)
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

    def merge(self, other: OldSeenIds) -> None:
        for prefix, theirs in other._ranges.items():
            mine = self._ranges.get(prefix)
            if mine is None:
                self._ranges[prefix] = theirs.copy()
            else:
                mine.union(theirs)
        self._hashed |= other._hashed

    def intersects(self, other: OldSeenIds) -> bool:
        if not self._hashed.isdisjoint(other._hashed):
            return True
        for prefix, theirs in other._ranges.items():
            mine = self._ranges.get(prefix)
            if mine is not None and mine.intersects(theirs):
                return True
        return False

    def __len__(self) -> int:
        return sum(e - s for r in self._ranges.values() for s, e in zip(r.starts, r.ends)) + len(self._hashed)


# -- inputs ---------------------------------------------------------------------------

def claude_ids(n: int, rng: random.Random) -> list[str]:
    """Shaped like bench_claude_code's (and Claude Code's): msg_01...:req_011C..."""
    return ["msg_01" + uuid.UUID(int=rng.getrandbits(128)).hex[:22]
            + ":req_011C" + uuid.UUID(int=rng.getrandbits(128)).hex[:20] for _ in range(n)]


def adjacent(ids: list[str], repeats: int) -> list[str]:
    # Equal strings but distinct objects, as decoding separate lines gives.
    return [(i + "#")[:-1] for i in ids for _ in range(repeats)]


def shuffled(ids: list[str], repeats: int, rng: random.Random) -> list[str]:
    seq = [(i + "#")[:-1] for _ in range(repeats) for i in ids]
    rng.shuffle(seq)
    return seq


# -- measuring ------------------------------------------------------------------------

Factory = Callable[[], Any]


def fill(factory: Factory, seq: Sequence[str]) -> Any:
    s = factory()
    add = s.add
    for i in seq:
        add(i)
    return s


def memory(factory: Factory, seq: Sequence[str]) -> tuple[int, int]:
    """(bytes kept, peak bytes) while adding seq."""
    gc.collect()
    tracemalloc.start()
    s = fill(factory, seq)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del s
    return kept, peak


def per_add(factory: Factory, seq: Sequence[str], runs: int = 3) -> float:
    """Best-of-runs seconds per add."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fill(factory, seq)
        best = min(best, time.perf_counter() - t0)
    return best / len(seq)


def timed(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def row(label: str, new: float, old: float, unit: str) -> None:
    print(f"{label:<44} new {new:>10.3f} {unit:<6} old {old:>10.3f} {unit:<6} ratio {new / old:6.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--distinct", type=int, default=350_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    ids = claude_ids(args.distinct, rng)
    near = adjacent(ids, args.repeats)
    far = shuffled(ids, args.repeats, rng)
    mib = 1 << 20
    print(f"{args.distinct:,} distinct Claude Code ids, each added {args.repeats}x ({len(near):,} adds)")

    kept_new, peak_new = memory(SeenIds, near)
    kept_old, peak_old = memory(OldSeenIds, near)
    row("memory kept", kept_new / mib, kept_old / mib, "MiB")
    row("memory peak while adding", peak_new / mib, peak_old / mib, "MiB")
    print(f"{'  bytes per distinct id (kept)':<44} new {kept_new / args.distinct:>10.1f}        "
          f"old {kept_old / args.distinct:>10.1f}")

    row("add, repeats adjacent (Claude Code)", per_add(SeenIds, near) * 1e9,
        per_add(OldSeenIds, near) * 1e9, "ns")
    row("add, repeats shuffled (worst case)", per_add(SeenIds, far) * 1e9,
        per_add(OldSeenIds, far) * 1e9, "ns")
    check_new, check_old = fill(SeenIds, far), fill(OldSeenIds, far)
    assert len(check_new) == len(check_old) == args.distinct, (len(check_new), len(check_old))

    # Parallel report: two workers' halves, checked for overlap, then merged.
    half = len(ids) // 2
    parts_new = fill(SeenIds, ids[:half]), fill(SeenIds, ids[half:])
    parts_old = fill(OldSeenIds, ids[:half]), fill(OldSeenIds, ids[half:])
    row("intersects (disjoint halves)", timed(lambda: parts_new[0].intersects(parts_new[1])) * 1e3,
        timed(lambda: parts_old[0].intersects(parts_old[1])) * 1e3, "ms")

    def merged(a: Any, b: Any) -> Any:
        a = pickle.loads(pickle.dumps(a))  # a fresh copy each run (merge changes it)
        a.merge(b)
        assert len(a) == args.distinct
        return a
    row("pickle copy + merge of the halves", timed(lambda: merged(*parts_new)) * 1e3,
        timed(lambda: merged(*parts_old)) * 1e3, "ms")
    row("pickle size of one half", len(pickle.dumps(parts_new[0])) / mib,
        len(pickle.dumps(parts_old[0])) / mib, "MiB")

    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50_000)]
    u_new, _ = memory(SeenIds, uuids)
    u_old, _ = memory(OldSeenIds, uuids)
    row("memory kept, 50,000 UUID ids", u_new / mib, u_old / mib, "MiB")


if __name__ == "__main__":
    main()
