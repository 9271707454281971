"""What the monitor sends on: Prometheus metrics (``prometheus``) and OTLP (``otlp``).

``Fanout`` is the one place the engine hands every ingested call to them:
each ``llm_call`` once (by id, whatever source and however often it was read:
a filter change re-reads history), outside the aggregator's lock, and an
exporter that fails is reported as a notice, never raised into ingest.
Nothing here imports opentelemetry or prometheus_client; the modules that do
are imported only when their option is given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import KIND_LLM_CALL, Event

__all__ = ["EventExporter", "Fanout"]


class EventExporter(Protocol):
    """Anything that takes calls as they are ingested. ``observe`` must not block for long."""

    def observe(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...

    def notices(self) -> list[str]: ...


class Fanout:
    """Hands each new ``llm_call`` to every exporter, once. Thread-safe (sources ingest on several threads)."""

    def __init__(self, exporters: Iterable[EventExporter],
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.exporters = list(exporters)
        self.on_notice = on_notice
        self._seen = SeenIds()
        self._lock = threading.Lock()
        self.calls = 0

    def offer(self, events: Iterable[Event]) -> None:
        """Pass on the calls among ``events`` not offered before. Never raises."""
        with self._lock:
            seen_add = self._seen.add
            fresh = [ev for ev in events if ev.kind == KIND_LLM_CALL and seen_add(ev.id)]
            if not fresh:
                return
            self.calls += len(fresh)
            for exporter in self.exporters:
                try:
                    exporter.observe(fresh)
                except Exception as exc:  # an exporter's bug must not stop ingest
                    if self.on_notice is not None:
                        self.on_notice(f"{type(exporter).__name__} failed: {type(exc).__name__}: {exc}")

    def notices(self) -> list[str]:
        """The exporters' own notices (drops, failures), for the snapshot."""
        out: list[str] = []
        for exporter in self.exporters:
            try:
                out.extend(exporter.notices())
            except Exception:
                pass
        return out

    def close(self) -> None:
        for exporter in self.exporters:
            try:
                exporter.close()
            except Exception as exc:
                if self.on_notice is not None:
                    self.on_notice(f"closing {type(exporter).__name__}: {exc}")
