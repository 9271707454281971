from __future__ import annotations

import pickle
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import IdSource


def test_a_writers_ids_take_one_range_however_many() -> None:
    seen = SeenIds()
    sources = [IdSource() for _ in range(3)]
    for _ in range(20_000):
        for src in sources:
            assert seen.add(src())
    assert seen.range_count == 3
    assert seen.hashed_count == 0
    assert len(seen) == 60_000


def test_repeats_are_refused() -> None:
    seen = SeenIds()
    src = IdSource("abcdef012345")
    ids = [src() for _ in range(100)]
    assert all(seen.add(i) for i in ids)
    assert not any(seen.add(i) for i in ids)
    assert ids[50] in seen
    assert "abcdef012345-64" not in seen  # 100, never issued


def test_out_of_order_arrivals_merge_back_into_one_range() -> None:
    src = IdSource()
    ids = [src() for _ in range(5000)]
    random.Random(3).shuffle(ids)
    seen = SeenIds()
    assert all(seen.add(i) for i in ids)
    assert seen.range_count == 1
    random.Random(4).shuffle(ids)
    assert not any(seen.add(i) for i in ids)


def test_non_canonical_counters_are_distinct_ids() -> None:
    # int() reads all of these as 10; as ids they are different strings.
    seen = SeenIds()
    for id_ in ("p-a", "p-0a", "p-A", "p-0xa", "p- a", "p-1_0", "p-+a"):
        assert seen.add(id_), id_
    for id_ in ("p-a", "p-0a", "p-A", "p-0xa", "p- a", "p-1_0", "p-+a"):
        assert not seen.add(id_), id_
    assert seen.range_count == 1  # only "p-a" is stored as a range


def test_foreign_ids_fall_back_to_hashes() -> None:
    seen = SeenIds()
    ids = [f"msg_01ABC{i}:req_{i * 7}" for i in range(1000)]
    assert all(seen.add(i) for i in ids)
    assert not any(seen.add(i) for i in ids)
    assert seen.hashed_count == 1000
    assert seen.range_count == 0


def test_merge_and_intersects() -> None:
    src = IdSource()
    ids = [src() for _ in range(1000)]
    a, b = SeenIds(), SeenIds()
    for i in ids[:500]:
        a.add(i)
    for i in ids[500:]:
        b.add(i)
    b.add("foreign-id-x")
    assert not a.intersects(b)
    a.merge(b)
    assert a.range_count == 1
    assert len(a) == 1001
    assert not any(a.add(i) for i in ids)
    c = SeenIds()
    c.add(ids[700])
    assert a.intersects(c) and c.intersects(a)
    d = SeenIds()
    d.add("foreign-id-x")
    assert a.intersects(d)


def test_pickle_round_trip_keeps_everything() -> None:
    seen = SeenIds()
    src = IdSource()
    for _ in range(10):
        seen.add(src())
    seen.add("x:y")
    back = pickle.loads(pickle.dumps(seen))
    assert len(back) == 11
    assert not back.add("x:y")
    assert back.add(src())


ids = st.one_of(
    st.builds(lambda p, n: f"{p}-{n:x}", st.sampled_from(["aaaaaaaaaaaa", "bbbbbbbbbbbb", "w"]),
              st.integers(0, 60)),
    st.text(max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, max_size=200), st.lists(ids, max_size=200))
def test_behaves_like_a_set(first: list[str], second: list[str]) -> None:
    model: set[str] = set()
    seen = SeenIds()
    for i in first:
        assert seen.add(i) == (i not in model)
        model.add(i)
    other = SeenIds()
    for i in second:
        other.add(i)
    assert seen.intersects(other) == bool(model & set(second))
    seen.merge(other)
    model |= set(second)
    for i in first + second:
        assert i in seen
        assert not seen.add(i)
    assert len(seen) == len(model)
