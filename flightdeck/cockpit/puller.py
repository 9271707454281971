"""Pulls snapshots from the feed on a thread of its own.

Building a snapshot takes the engine's lock, which the ingest thread also
holds while it adds a batch. Pulled on the UI thread, a long batch would
freeze the keys with it; pulled here, the UI only ever reads the newest
finished snapshot, so a key is handled at once whatever ingest is doing.
"""

from __future__ import annotations

import threading

from flightdeck.cockpit.feed import Feed
from flightdeck.core.snapshot import Snapshot


class SnapshotPuller:
    """``latest`` is the newest snapshot; ``error`` the last failure, cleared by a success."""

    def __init__(self, feed: Feed, interval: float) -> None:
        self.feed = feed
        self.interval = interval
        self.latest: Snapshot | None = None
        self.error: str | None = None
        self.pulls = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def pull_now(self) -> Snapshot | None:
        """One pull on the caller's thread (the first frame, and tests)."""
        try:
            snap = self.feed.snapshot()
        except Exception as exc:  # shown in the header, the last snapshot stays
            self.error = f"{type(exc).__name__}: {exc}"
            return self.latest
        self.pulls += 1
        self.latest, self.error = snap, None
        return snap

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flightdeck-cockpit-pull", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Pull again now (after a key or a filter change) rather than at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.pull_now()
