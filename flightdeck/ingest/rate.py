"""Events per second over a sliding span of wall time, in constant memory.

Counts go into buckets of a tenth of a second, so the figure stays true at
any batch size: a deque of one entry per batch (the engine's first way)
held the last 10,000 batches, which at a socket's many small batches is
less than the span, and the figure capped near 4,000/s at a real 20,000/s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

BUCKETS_PER_SECOND: Final = 10


class EventRate:
    """Events per second over the last ``span`` seconds of wall time. Thread-safe."""

    def __init__(self, span: float = 5.0, *, clock: Callable[[], float] = time.time) -> None:
        """
        Args:
            span: the seconds the rate is averaged over.
            clock: wall time in seconds (a fake one in tests).
        """
        self.span = span
        self.clock = clock
        self._buckets: deque[list[int]] = deque()  # [bucket number, count], oldest first
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        """Count ``n`` events now.

        Args:
            n: how many events arrived.
        """
        if n <= 0:
            return
        key = int(self.clock() * BUCKETS_PER_SECOND)
        with self._lock:
            buckets = self._buckets
            if buckets and buckets[-1][0] == key:
                buckets[-1][1] += n
            else:
                buckets.append([key, n])
                self._prune(key)

    def per_second(self) -> float:
        """The mean rate over the last ``span`` seconds."""
        key = int(self.clock() * BUCKETS_PER_SECOND)
        with self._lock:
            self._prune(key)
            total = sum(count for _key, count in self._buckets)
        return total / self.span

    def _prune(self, key: int) -> None:
        # Keep the buckets of (now - span, now]: span * BUCKETS_PER_SECOND of them.
        oldest = key - int(self.span * BUCKETS_PER_SECOND) + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
