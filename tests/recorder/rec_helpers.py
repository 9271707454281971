"""Shared helpers for the recorder tests (a plain module: conftest names clash across folders)."""

from __future__ import annotations

from pathlib import Path

from flightdeck.core.events import Event, decode_line


class FakeMono:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def read_events(path: Path) -> list[Event]:
    out = []
    for line in path.read_bytes().splitlines():
        ev = decode_line(line)
        assert isinstance(ev, Event), (line, ev)
        out.append(ev)
    return out


def of_kind(path: Path, kind: str) -> list[Event]:
    return [e for e in read_events(path) if e.kind == kind]
