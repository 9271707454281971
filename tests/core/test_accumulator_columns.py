"""``Acc.flush`` takes the stage values in columns (astuple + zip): the same sketches as map/filter.

The plain version below is the code ``Acc.flush`` had before: per stage, the
streamed calls' values, then the others' (no ttft), Nones filtered out.
"""

from __future__ import annotations

import math
import random
from functools import partial
from operator import attrgetter, is_not

import msgspec
import pytest

from flightdeck.core.aggregate.accumulator import Acc, add_call
from flightdeck.core.events import STAGES, Latency, Usage
from flightdeck.core.sketch import FLUSH_AT, Sketch

_GETTERS = [attrgetter(stage) for stage in STAGES]
_not_none = partial(is_not, None)


def _plain_flush(acc: Acc) -> None:
    """Acc.flush as it was: map/filter per stage."""
    streamed, other = acc.lats, acc.lats_ns
    if streamed or other:
        if acc.sk is None:
            acc.sk = (Sketch(), Sketch(), Sketch(), Sketch(), Sketch())
        pre, ttft, gen, post, total = acc.sk
        for s, get in ((pre, _GETTERS[0]), (gen, _GETTERS[2]), (post, _GETTERS[3]), (total, _GETTERS[4])):
            s.pending.extend(filter(_not_none, map(get, streamed)))
            s.pending.extend(filter(_not_none, map(get, other)))
        ttft.pending.extend(filter(_not_none, map(_GETTERS[1], streamed)))
        streamed.clear()
        other.clear()
        for s in acc.sk:
            s.flush()


def _state(s: Sketch) -> tuple[object, ...]:
    s.flush()
    return (dict(s.bins), s.zeros, s.count, s.sum, s.min, s.max, s.invalid,
            None if s.samples is None else list(s.samples))


def _latency(rng: random.Random) -> Latency:
    def value() -> float | None:
        r = rng.random()
        if r < 0.15:
            return None
        if r < 0.18:
            return 0.0
        if r < 0.19:
            return rng.choice([-1.0, math.nan, math.inf])  # not latencies: counted invalid either way
        return round(rng.lognormvariate(5, 2), 3)

    return Latency(pre=value(), ttft=value(), gen=value(), post=value(), total=value())


def test_astuple_gives_the_stages_in_order() -> None:
    assert Latency.__struct_fields__ == STAGES
    lat = Latency(pre=1.0, ttft=2.0, gen=3.0, post=4.0, total=5.0)
    assert msgspec.structs.astuple(lat) == (1.0, 2.0, 3.0, 4.0, 5.0)


@pytest.mark.parametrize("calls", [1, 7, FLUSH_AT - 1, FLUSH_AT, FLUSH_AT * 3 + 17, 9000])
def test_columns_flush_is_the_plain_flush(calls: int) -> None:
    rng = random.Random(calls)
    lean, plain = Acc(), Acc()
    u = Usage(input_tokens=1)
    for _ in range(calls):
        lat = _latency(rng) if rng.random() < 0.95 else None
        stream = rng.random() < 0.6
        add_call((lean,), False, 1, u, 0, lat, stream)
        # the plain side: the same lists, flushed the plain way at the same points
        plain.calls += 1
        if lat is not None:
            (plain.lats if stream else plain.lats_ns).append(lat)
            if not plain.calls & (FLUSH_AT - 1):
                _plain_flush(plain)
    lean.flush()
    _plain_flush(plain)
    assert lean.sk is not None and plain.sk is not None
    for a, b in zip(lean.sk, plain.sk):
        assert _state(a) == _state(b)


def test_a_merge_of_many_raw_latencies_flushes_as_the_plain_way() -> None:
    """More latencies than one column slice (merge hands them on unbinned)."""
    rng = random.Random(2)
    lean, plain = Acc(), Acc()
    lats = [_latency(rng) for _ in range(10_000)]
    lean.lats.extend(lats[:6000])
    lean.lats_ns.extend(lats[6000:])
    plain.lats.extend(lats[:6000])
    plain.lats_ns.extend(lats[6000:])
    lean.flush()
    _plain_flush(plain)
    assert lean.sk is not None and plain.sk is not None
    for a, b in zip(lean.sk, plain.sk):
        assert _state(a) == _state(b)


def test_sketch_flush_skips_none_and_keeps_refusing_other_junk() -> None:
    s = Sketch()
    s.pending.extend([None, 2.0, None, 3.0])  # type: ignore[list-item]
    assert s.count == 2 and s.sum == 5.0 and s.invalid == 0
    s.pending.extend([None, None])  # type: ignore[list-item]
    assert s.count == 2
    s.pending.extend([1.0, "x"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        s.flush()
