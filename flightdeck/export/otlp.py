"""``tail ... --otlp-export URL``: every ingested call to an OTLP/HTTP endpoint.

Spans and metrics are built by ``recorder.otel_emit.emit_call``'s emitter (the
same mapping as ``Recorder(otel=True)``) on private providers, so nothing
global in the process changes:

- spans go through a bounded buffer (``BoundedSpanProcessor``) to the SDK's
  ``OTLPSpanExporter`` (OTLP/HTTP protobuf, no gRPC) in batches of
  ``batch_size``; the exporter retries 429/503 and connection errors with
  backoff. A full buffer drops the new span and counts it; a batch the
  endpoint never took is counted as failed. Both show in the snapshot notices.
- metrics (``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``)
  go through a ``PeriodicExportingMetricReader`` and ``OTLPMetricExporter``
  with DELTA temporality, so a restart of the monitor does not look like a
  reset to the backend.

``URL`` is the endpoint's base (``http://collector:4318``); ``/v1/traces``
and ``/v1/metrics`` are appended. A URL already ending in ``/v1/traces`` is
taken as the trace endpoint and its base used for metrics.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from flightdeck.core.events import Event
from flightdeck.recorder.otel_emit import INSTALL_HINT, OtelEmitter, OtelMissing

DEFAULT_BUFFER = 8192
DEFAULT_BATCH = 512
EXPORT_INTERVAL_S = 1.0


def endpoints(url: str) -> tuple[str, str]:
    """(traces URL, metrics URL) from the ``--otlp-export`` value; ValueError if it is not http(s)."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"--otlp-export {url!r}: give an http:// or https:// URL, e.g. http://127.0.0.1:4318")
    base = url.strip().rstrip("/")
    for suffix in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base + "/v1/traces", base + "/v1/metrics"


class BoundedSpanProcessor:
    """A ``SpanProcessor``: finished spans into a bounded buffer, exported in batches on one thread.

    Like the SDK's ``BatchSpanProcessor``, but it counts what it drops (buffer
    full) and what failed to send, so the monitor can say so.
    """

    def __init__(self, exporter: Any, *, max_buffer: int = DEFAULT_BUFFER, batch_size: int = DEFAULT_BATCH,
                 interval: float = EXPORT_INTERVAL_S) -> None:
        self.exporter = exporter
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.interval = interval
        self._buffer: deque[Any] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._idle = threading.Event()
        self._idle.set()
        self.dropped = 0
        self.failed = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="flightdeck-otlp-export", daemon=True)
        self._thread.start()

    # SpanProcessor protocol
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self.dropped += 1
                return
            self._buffer.append(span)
            self._idle.clear()
            full = len(self._buffer) >= self.batch_size
        if full:
            self._wake.set()

    def _take(self) -> list[Any]:
        with self._lock:
            n = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(n)]
            if not self._buffer and not batch:
                self._idle.set()
            return batch

    def _run(self) -> None:
        from opentelemetry.sdk.trace.export import SpanExportResult

        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            while True:
                batch = self._take()
                if not batch:
                    break
                try:
                    ok = self.exporter.export(batch) == SpanExportResult.SUCCESS
                except Exception:
                    ok = False
                with self._lock:
                    if ok:
                        self.sent += len(batch)
                    else:
                        self.failed += len(batch)
            with self._lock:
                if not self._buffer:
                    self._idle.set()
            if self._stop:
                return

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait until the buffer is empty and its last batch was sent (or failed)."""
        self._wake.set()
        return self._idle.wait(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        try:
            self.exporter.shutdown()
        except Exception:
            pass


class OtlpExporter:
    """The ``--otlp-export`` sink the engine's fan-out feeds."""

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None,
                 resource: Mapping[str, str] | None = None, max_buffer: int = DEFAULT_BUFFER,
                 batch_size: int = DEFAULT_BATCH, export_interval: float = EXPORT_INTERVAL_S,
                 timeout: float = 10.0) -> None:
        traces_url, metrics_url = endpoints(url)
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics import (
                Counter,
                Histogram,
                MeterProvider,
                ObservableCounter,
                ObservableGauge,
                ObservableUpDownCounter,
                UpDownCounter,
            )
            from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
        except ImportError as exc:
            raise OtelMissing(INSTALL_HINT) from exc
        from flightdeck import __version__

        self.url = url
        res = Resource.create({"service.name": "flightdeck", "service.version": __version__, **(resource or {})})
        self.processor = BoundedSpanProcessor(
            OTLPSpanExporter(endpoint=traces_url, headers=dict(headers or {}), timeout=timeout),
            max_buffer=max_buffer, batch_size=batch_size, interval=export_interval)
        self.tracer_provider = TracerProvider(resource=res)
        self.tracer_provider.add_span_processor(self.processor)  # type: ignore[arg-type]
        delta = AggregationTemporality.DELTA
        temporality: dict[type, AggregationTemporality] = {
            Counter: delta, UpDownCounter: AggregationTemporality.CUMULATIVE, Histogram: delta,
            ObservableCounter: delta, ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableGauge: AggregationTemporality.CUMULATIVE,
        }
        self.reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=metrics_url, headers=dict(headers or {}), timeout=timeout,
                               preferred_temporality=temporality),
            export_interval_millis=export_interval * 1000.0)
        self.meter_provider = MeterProvider(resource=res, metric_readers=[self.reader])
        self.emitter = OtelEmitter(self.tracer_provider, self.meter_provider, root=True)
        self._closed = False

    def observe(self, events: Sequence[Event]) -> None:
        if self._closed:
            return
        for ev in events:
            self.emitter.emit(ev)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what is buffered now (spans and metrics); True if it all went out in time."""
        ok = self.processor.force_flush(int(timeout * 1000))
        return bool(self.meter_provider.force_flush(int(timeout * 1000))) and ok

    def notices(self) -> list[str]:
        p = self.processor
        out = []
        if p.dropped:
            out.append(f"--otlp-export: {p.dropped} spans dropped (buffer of {p.max_buffer} full)")
        if p.failed:
            out.append(f"--otlp-export: {p.failed} spans not accepted by {self.url}")
        return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(5.0)
        finally:
            self.tracer_provider.shutdown()
            self.meter_provider.shutdown()
