"""The ev/s figure (ingest.rate) stays true at any batch size."""

from __future__ import annotations

from pathlib import Path

from flightdeck.ingest.rate import EventRate


class FakeWall:
    def __init__(self, t: float = 1_764_216_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_rate_at_twenty_thousand_single_event_batches_a_second() -> None:
    wall = FakeWall()
    rate = EventRate(5.0, clock=wall)
    for _ in range(10 * 20_000):  # ten seconds of 20,000 one-event batches a second
        rate.add(1)
        wall.t += 1 / 20_000
    assert abs(rate.per_second() - 20_000) <= 20_000 * 0.03


def test_rate_forgets_what_is_older_than_its_span() -> None:
    wall = FakeWall()
    rate = EventRate(5.0, clock=wall)
    rate.add(500)
    assert rate.per_second() == 100.0
    wall.t += 5.0
    assert rate.per_second() == 0.0
    rate.add(0)
    assert rate.per_second() == 0.0


def test_engine_reports_the_true_socket_rate(tmp_path: Path) -> None:
    from flightdeck.core.events import decode_line
    from flightdeck.ingest.engine import Engine
    from tests.ingest.test_engine import v1

    eng = Engine(socket_path=tmp_path / "s.sock")
    wall = FakeWall()
    eng._tracker._rate = EventRate(5.0, clock=wall)  # the live arrival rate lives in the tracker
    events = [decode_line(v1()) for _ in range(100_000)]
    for event in events:  # five seconds of 20,000/s, one event per batch as a busy socket delivers them
        eng._on_socket_batch([event], [])  # type: ignore[list-item]
        wall.t += 1 / 20_000
    assert abs(eng.snapshot().source.events_per_second - 20_000) <= 20_000 * 0.03
