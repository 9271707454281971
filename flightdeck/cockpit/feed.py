"""The one seam between the cockpit and whatever produces its data.

The cockpit depends only on this protocol, so it can be driven by the real
ingest engine (``flightdeck.ingest.engine.Engine``) or, in tests, by a fake
that returns hand-built snapshots.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from flightdeck.core.events import Command
from flightdeck.core.snapshot import Snapshot


@runtime_checkable
class Feed(Protocol):
    def snapshot(self) -> Snapshot:
        """The current aggregates; cheap and thread-safe, called a few times a second."""
        ...

    def send(
        self,
        cmd: str,
        *,
        to: dict[str, str] | None = None,
        target: dict[str, str] | None = None,
        origin: str = "key",
        reason: str | None = None,
    ) -> Command:
        """Send a control command to the agents (sidecar file or socket); returns it."""
        ...

    def set_filter(self, text: str | None) -> None:
        """Restrict the figures to ``agent:x``, ``model:y``, ``run:z``, ``name:w`` or a substring."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...
