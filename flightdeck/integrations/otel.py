"""``FlightdeckSpanExporter(rec)``: GenAI spans from any OpenTelemetry instrumentor -> flightdeck events.

Keep the instrumentation you have (OpenLLMetry, OpenInference, Logfire /
Pydantic AI, opentelemetry-instrumentation-openai-v2, ...) and add this
exporter to your tracer provider::

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from flightdeck.integrations.otel import FlightdeckSpanExporter
    provider.add_span_processor(SimpleSpanProcessor(FlightdeckSpanExporter(rec)))

Each finished model-call span (one with ``gen_ai.usage.*`` or OpenInference
``llm.token_count.*``) becomes one ``llm_call`` through ``ingest.genai_spans``,
the same mapping ``tail --otlp`` uses; other spans are ignored. The call is
written by the recorder (its file or socket, its rolling stats, its rules),
under the recorder's run and agent (the span's ``gen_ai.agent.name`` /
``service.name`` when the recorder has no agent). Spans flightdeck emitted
itself (``Recorder(otel=True)``) are skipped, so the two can be combined.

Never raises into the app's exporter pipeline: a span that cannot be read is
counted in ``rejected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flightdeck.core.events import Event, Rejected
from flightdeck.ingest.genai_spans import ATTR_EVENT_ID, SpanRecord, span_to_event

try:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import StatusCode
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError("flightdeck.integrations.otel needs the otel extra: pip install 'flightdeck[otel]'") from exc

__all__ = ["FlightdeckSpanExporter", "span_record"]


def span_record(span: Any) -> SpanRecord:
    """An SDK ``ReadableSpan`` as the neutral record ``genai_spans`` reads."""
    ctx = span.context
    status = span.status
    resource = getattr(span, "resource", None)
    return SpanRecord(
        name=span.name or "",
        trace_id=format(ctx.trace_id, "032x") if ctx is not None else "",
        span_id=format(ctx.span_id, "016x") if ctx is not None else "",
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        attributes=dict(span.attributes or {}),
        resource=dict(resource.attributes) if resource is not None else {},
        status_error=status is not None and status.status_code == StatusCode.ERROR,
        status_message=(status.description or "") if status is not None else "",
    )


class FlightdeckSpanExporter(SpanExporter):
    """An OpenTelemetry ``SpanExporter`` that records model-call spans on a ``Recorder``."""

    def __init__(self, rec: Any) -> None:
        self.rec = rec
        self.recorded = 0
        self.ignored = 0
        self.rejected: list[Rejected] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        for span in spans:
            try:
                attrs = span.attributes or {}
                if ATTR_EVENT_ID in attrs:  # flightdeck's own span (Recorder(otel=True))
                    self.ignored += 1
                    continue
                result = span_to_event(span_record(span))
            except Exception as exc:  # a foreign span object we cannot read
                result = Rejected("bad span", f"{type(exc).__name__}: {exc}"[:300])
            if result is None:
                self.ignored += 1
            elif isinstance(result, Rejected):
                if len(self.rejected) < 100:
                    self.rejected.append(result)
            else:
                self._record(result)
        return SpanExportResult.SUCCESS

    def _record(self, ev: Event) -> None:
        rec = self.rec
        ev.run = rec.run
        ev.agent = rec.agent or ev.agent
        _emit(rec, ev)
        self.recorded += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _emit(rec: Any, ev: Event) -> None:
    """Write ``ev`` through the recorder's own path, as its ``_record_call`` does once the
    event is built: the sink, the rolling stats, the in-process rules and their callbacks.
    (``rec.record`` times a call from marks; a span already is a finished, priced event.)"""
    with rec._lock:
        ev.id = f"{rec._ids()}"  # the recorder's contiguous ids: its readers store them as ranges
        rec._write(ev)
        if rec._agg is not None:
            rec._agg.add(ev)
        firings = rec.rules.observe(ev)
        for firing in firings:
            rec._fire(firing)
    for firing in firings:
        rec._callbacks(firing)
