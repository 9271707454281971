from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.sketch import EXACT_MAX, FLUSH_AT, Sketch

QS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)


def exact(values: list[float], q: float) -> float:
    """Nearest rank (SPEC 5.1): the smallest value with at least a share q of the values at or below it."""
    ordered = sorted(values)
    n = len(ordered)
    rank = max(1, math.ceil(round(q * n, 12)))
    return ordered[rank - 1]


def assert_accurate(sk: Sketch, values: list[float], accuracy: float = 0.01) -> None:
    for q in QS:
        want = exact(values, q)
        got = sk.quantile(q)
        assert got is not None
        assert abs(got - want) <= accuracy * want + 1e-12, (q, got, want)


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: r.lognormvariate(6.0, 1.2),  # latencies
        lambda r: r.uniform(0.5, 5000.0),
        lambda r: r.paretovariate(1.1) * 10.0,  # heavy tail
        lambda r: r.expovariate(0.01),
    ],
    ids=["lognormal", "uniform", "pareto", "exponential"],
)
def test_quantiles_within_one_percent(draw) -> None:
    rng = random.Random(42)
    values = [draw(rng) for _ in range(20_000)]
    sk = Sketch()
    for v in values:
        sk.add(v)
    assert_accurate(sk, values)
    assert sk.count == len(values)
    assert sk.sum == pytest.approx(math.fsum(values))
    assert sk.min == min(values)
    assert sk.max == max(values)
    assert sk.mean == pytest.approx(sum(values) / len(values))


def test_merge_equals_adding_everything() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(5, 2) for _ in range(5000)] + [0.0] * 30
    whole = Sketch()
    whole.extend(values)
    parts = [Sketch() for _ in range(4)]
    for i, v in enumerate(values):
        parts[i % 4].add(v)
    merged = Sketch()
    for p in parts:
        merged.merge(p)
    whole.flush()
    assert merged.count == whole.count
    assert merged.zeros == whole.zeros == 30
    assert merged.bins == whole.bins
    assert merged.quantiles(QS) == whole.quantiles(QS)
    assert merged.min == whole.min and merged.max == whole.max


def test_zeros_are_counted_and_answered_as_zero() -> None:
    sk = Sketch()
    sk.extend([0.0] * 60 + [10.0] * 40)
    assert sk.zeros == 60
    assert sk.quantile(0.5) == 0.0
    assert sk.quantile(0.9) == pytest.approx(10.0, rel=0.01)
    assert sk.min == 0.0


def test_bad_values_are_refused_by_add_and_dropped_from_pending() -> None:
    sk = Sketch()
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            sk.add(bad)
    # The aggregator's hot path appends straight to ``pending``; bad values
    # there are dropped at flush and counted, never binned.
    sk.pending.extend([5.0, -3.0, math.nan, 0.0, 7.0])
    assert sk.count == 3
    assert sk.invalid == 2
    assert sk.zeros == 1


def test_empty_sketch_has_no_quantiles() -> None:
    sk = Sketch()
    assert sk.quantile(0.5) is None
    assert sk.mean is None and sk.min is None and sk.max is None
    with pytest.raises(ValueError):
        sk.quantile(1.5)


def test_bins_are_bounded_and_the_tail_keeps_its_accuracy() -> None:
    sk = Sketch(max_bins=64)
    values = [1.01**i for i in range(2000)]  # ~1000 distinct bins
    sk.extend(values)
    assert len(sk.bins) <= 64
    assert sk.count == len(values)
    for q in (0.99, 0.999, 1.0):
        want = exact(values, q)
        assert abs(sk.quantile(q) - want) <= 0.01 * want  # type: ignore[operator]


def test_pending_is_flushed_in_batches() -> None:
    sk = Sketch()
    for i in range(FLUSH_AT - 1):
        sk.add(float(i + 1))
    assert len(sk.pending) == FLUSH_AT - 1
    sk.add(1.0)
    assert sk.pending == [] and sum(sk.bins.values()) == FLUSH_AT


def test_copy_and_pickle_are_independent_and_equal() -> None:
    sk = Sketch()
    sk.extend([1.0, 2.0, 3.0, 0.0])
    clone = pickle.loads(pickle.dumps(sk))
    dup = sk.copy()
    sk.add(1000.0)
    for other in (clone, dup):
        assert other.count == 4
        assert other.quantile(1.0) == 3.0
        other.add(5.0)
        assert other.count == 5
    assert sk.count == 5


def test_merge_refuses_a_different_accuracy() -> None:
    with pytest.raises(ValueError):
        Sketch(0.01).merge(Sketch(0.02))


# Values at or below MIN_POSITIVE (1e-9) are counted as zero by design.
finite = st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e7))


@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300), st.lists(finite, max_size=300))
def test_any_values_any_split(a: list[float], b: list[float]) -> None:
    whole = Sketch()
    whole.extend(a + b)
    left, right = Sketch(), Sketch()
    left.extend(a)
    right.extend(b)
    left.merge(right)
    assert left.quantiles(QS) == whole.quantiles(QS)
    assert_accurate(whole, a + b)


def test_merge_without_binning_the_other_keeps_every_value() -> None:
    rng = random.Random(11)
    values = [rng.lognormvariate(4, 1) for _ in range(3000)]
    whole = Sketch()
    whole.extend(values)
    target = Sketch()
    for i in range(0, 3000, 30):
        part = Sketch()
        part.extend(values[i:i + 30])
        target.merge(part, bin_other=False)
        assert part.count == 30  # left with its values
    assert target.count == 3000
    assert target.quantiles(QS) == whole.quantiles(QS)


def test_nearest_rank_worked_by_hand() -> None:
    two = Sketch()
    two.extend([100.0, 900.0])
    assert two.quantiles((0.5, 0.9, 0.99)) == [100.0, 900.0, 900.0]  # at 2 samples p90 is the larger
    ten = Sketch()
    ten.extend([float(v) for v in range(10, 110, 10)])  # 10, 20, ..., 100
    # rank ceil(0.5 * 10) = 5 -> 50; ceil(0.9 * 10) = 9 -> 90; ceil(9.9) = 10 -> 100;
    assert ten.quantiles((0.5, 0.9, 0.99, 0.0, 1.0)) == [50.0, 90.0, 100.0, 10.0, 100.0]
    hundred = Sketch()
    hundred.extend([float(v) for v in range(1, 101)])
    assert 0.55 * 100 > 55  # 55.00000000000001 in floats: rank 55 all the same
    assert hundred.quantile(0.55) == 55.0


def test_small_samples_are_exact_and_large_ones_use_the_bins() -> None:
    close = [1000.0 + i * 0.5 for i in range(EXACT_MAX)]  # neighbours 0.05 % apart: one bin would blur them
    sk = Sketch()
    sk.extend(close)
    assert sk.samples is not None
    assert sk.quantiles((0.5, 0.9)) == [exact(close, 0.5), exact(close, 0.9)]
    sk.add(5000.0)  # one more than EXACT_MAX: the samples go, the bins answer within 1 %
    sk.flush()
    assert sk.samples is None
    got = sk.quantile(0.5)
    assert got is not None and abs(got - exact([*close, 5000.0], 0.5)) <= 0.01 * got


def test_merged_samples_stay_exact_until_there_are_too_many() -> None:
    a, b = Sketch(), Sketch()
    a.extend([1.0, 2.0, 3.0])
    b.extend([10.0, 20.0])
    a.merge(b)
    assert a.quantiles((0.5, 0.9)) == [3.0, 20.0]  # ranks 3 and 5 of 1, 2, 3, 10, 20
    assert sorted(pickle.loads(pickle.dumps(a)).samples) == [1.0, 2.0, 3.0, 10.0, 20.0]
    big = Sketch()
    big.extend([float(i) for i in range(1, EXACT_MAX)])
    a.merge(big)
    a.flush()
    assert a.samples is None and a.count == EXACT_MAX + 4


def test_bins_are_the_natural_log_bins() -> None:
    # Sketch.flush bins with math.log2 (cheaper per call than math.log): the same
    # bins as floor(log(x) / log(gamma)), on values of every size and spelling.
    from collections import Counter

    rng = random.Random(7)
    values = [rng.lognormvariate(6, 2.5) for _ in range(20_000)]
    values += [round(rng.uniform(0, 5000), 3) for _ in range(20_000)]
    values += [1.0, 2.0, 0.5, 1000.0, 1e-6, 1e11]
    sk = Sketch()
    sk.pending.extend(values)
    sk.flush()
    gamma = sk.gamma
    inv = 1.0 / math.log(gamma)  # the natural-log binning, as it was
    want = Counter(math.floor(math.log(x) * inv) for x in values if x > 1e-9)
    assert sk.bins == dict(want)
