from __future__ import annotations

import pickle
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core import dedupe
from flightdeck.core.dedupe import SeenIds, _Digests
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


# -- the compact digest store ----------------------------------------------------------

@contextmanager
def tiny_buckets(fill: int = 2) -> Iterator[None]:
    """Buckets that double after a few digests, so small tests split and merge them."""
    saved = dedupe._MAX_FILL
    dedupe._MAX_FILL = fill
    try:
        yield
    finally:
        dedupe._MAX_FILL = saved


def check_layout(d: _Digests) -> None:
    """Each bucket sorted, distinct, and holding exactly its own top bits."""
    assert len(d.buckets) == 1 << d.bits
    assert sum(len(b) for b in d.buckets) == d.count
    assert d.count <= d.limit
    for i, bucket in enumerate(d.buckets):
        assert list(bucket) == sorted(set(bucket))
        assert all(h >> d.shift == i for h in bucket)


def foreign(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"msg_01{rng.getrandbits(88):022x}:req_011C{rng.getrandbits(80):020x}" for _ in range(n)]


def test_many_foreign_ids_split_into_sorted_buckets() -> None:
    seen = SeenIds()
    ids = foreign(3000)
    assert all(seen.add(i) for i in ids)
    assert seen._hashed.bits >= 3  # 3000 digests > 256 per bucket: doubled
    check_layout(seen._hashed)
    random.Random(1).shuffle(ids)
    assert not any(seen.add(i) for i in ids)
    assert all(i in seen for i in ids)
    assert not any(i in seen for i in foreign(100, seed=9))
    assert seen.hashed_count == len(seen) == 3000


def test_consecutive_repeat_is_refused_without_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = SeenIds()
    assert seen.add("msg_1:req_1")

    def no_hashing(id_: str) -> int:
        raise AssertionError(f"hashed {id_!r}")

    monkeypatch.setattr(dedupe, "_digest", no_hashing)
    assert not seen.add("msg_1:req_" + "1")  # an equal string, another object
    assert "msg_1:req_1" in seen
    with pytest.raises(AssertionError, match="msg_2"):
        seen.add("msg_2:req_2")  # any other id is hashed


def test_last_id_survives_copy_merge_and_pickle() -> None:
    seen = SeenIds()
    seen.add("a:b")
    other = SeenIds()
    other.add("c:d")
    seen.merge(other)
    assert not seen.add("a:b")
    assert not seen.copy().add("a:b")
    back = pickle.loads(pickle.dumps(seen))
    assert not back.add("a:b") and not back.add("c:d")
    assert back.add("e:f")


def test_uuid_ids_are_hashed_not_one_range_each() -> None:
    seen = SeenIds()
    rng = random.Random(5)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(500)]
    ids += [f"chatcmpl-{u}" for u in ids[:100]]
    assert all(seen.add(i) for i in ids)
    assert seen.range_count == 0
    assert seen.hashed_count == 600
    assert not any(seen.add(i) for i in ids)


def test_lone_surrogates_are_ids_too() -> None:
    seen = SeenIds()
    for id_ in ("\ud800", "\udfff", "x\ud800y", "\U0001f600"):
        assert seen.add(id_)
        assert id_ in seen
    for id_ in ("\ud800", "\udfff", "x\ud800y", "\U0001f600"):
        assert not seen.add(id_)
    assert seen.hashed_count == 4


def test_merge_and_intersects_across_bucket_counts() -> None:
    ids = foreign(2000, seed=3)
    big, small = SeenIds(), SeenIds()
    for i in ids[:1800]:
        big.add(i)
    for i in ids[1800:]:
        small.add(i)
    assert big._hashed.bits > small._hashed.bits
    assert not big.intersects(small) and not small.intersects(big)
    probe = SeenIds()
    probe.add(ids[1234])
    assert big.intersects(probe) and probe.intersects(big)
    assert not small.intersects(probe)
    small.merge(big)  # the small one doubles up to the big one's buckets
    check_layout(small._hashed)
    assert len(small) == 2000 and not any(small.add(i) for i in ids)
    big.merge(small)
    check_layout(big._hashed)
    assert len(big) == 2000


def test_pickle_keeps_the_buckets() -> None:
    seen = SeenIds()
    ids = foreign(1500, seed=4)
    for i in ids:
        seen.add(i)
    back = pickle.loads(pickle.dumps(seen))
    assert back._hashed.bits == seen._hashed.bits
    check_layout(back._hashed)
    assert list(back._hashed) == list(seen._hashed)
    assert not any(back.add(i) for i in ids)
    assert back.add("new:one")
    # ~8 bytes a digest in the pickle too (a set of ints took ~5x).
    assert len(pickle.dumps(seen)) < 9 * 1500 + 1000


def test_copy_is_independent() -> None:
    seen = SeenIds()
    for i in foreign(600):
        seen.add(i)
    twin = seen.copy()
    assert twin.add("only:twin")
    assert "only:twin" not in seen
    assert len(twin) == len(seen) + 1


many_ids = st.one_of(
    ids,
    st.builds(lambda n: f"m{n}:r{n * 7}", st.integers(0, 400)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), many_ids), max_size=300),
       st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=6))
def test_sets_with_small_buckets_behave_like_sets(adds: list[tuple[int, str]], merges: list[tuple[int, int]]) -> None:
    with tiny_buckets():
        seens = [SeenIds() for _ in range(3)]
        models: list[set[str]] = [set() for _ in range(3)]
        for k, id_ in adds:
            assert seens[k].add(id_) == (id_ not in models[k])
            models[k].add(id_)
        for a, b in merges:
            assert seens[a].intersects(seens[b]) == bool(models[a] & models[b])
            if a != b:
                seens[a] = pickle.loads(pickle.dumps(seens[a])) if (a + b) % 2 else seens[a].copy()
                seens[a].merge(seens[b])
                models[a] |= models[b]
        for seen, model in zip(seens, models):
            check_layout(seen._hashed)
            assert len(seen) == len(model)
            for id_ in model:
                assert id_ in seen
                assert not seen.add(id_)


def test_a_hostile_counter_of_a_million_digits_is_hashed_not_held() -> None:
    from flightdeck.core.dedupe import _split

    huge = "abcdef012345-" + "f" * 1_000_000
    assert _split(huge) is None  # hashed: 8 bytes
    assert _split("abcdef012345-" + "f" * 16) == ("abcdef012345", 2**64 - 1)
    seen = SeenIds()
    assert seen.add(huge) and not seen.add(huge) and huge in seen
