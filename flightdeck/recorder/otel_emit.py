"""``Recorder(otel=True)`` and ``--otlp-export``: one call as a GenAI client span plus the GenAI metrics.

``emit_call`` is the one function that turns an ``llm_call`` into OpenTelemetry:
a ``CLIENT`` span named ``chat {model}`` (semconv span name ``{operation} {model}``)
from the call's own start to its end, with the attributes of
``genai_spans.event_attributes`` (SPEC 5.3), ERROR status when it failed, and
the two semconv client metrics:
``gen_ai.client.token.usage`` (histogram, ``{token}``, ``gen_ai.token.type``
``input`` = the whole prompt, or ``output``) and
``gen_ai.client.operation.duration`` (histogram, seconds, with ``error.type``
when the call failed), with the semconv's advised bucket boundaries.

``OtelEmitter()`` uses the global tracer and meter providers (what an app
that already runs OpenTelemetry has configured); ``export.otlp`` passes
private ones. Importing this module does not import opentelemetry; creating an
``OtelEmitter`` does, and raises ``OtelMissing`` with the install hint.
"""

from __future__ import annotations

import threading
from typing import Any

from flightdeck.core.events import Event
from flightdeck.ingest.genai_spans import call_seconds, event_attributes, event_span_times, provider_name

INSTALL_HINT = "OpenTelemetry support needs the otel extra: pip install 'flightdeck[otel]'"
SCOPE = "flightdeck"
# Advised boundaries from the semantic conventions (gen-ai metrics).
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


class OtelMissing(RuntimeError):
    """The otel extra is not installed."""


class OtelEmitter:
    """Emits calls on a tracer and meter provider (the global ones by default).

    ``root=True`` starts every span in a fresh trace (the monitor's export);
    otherwise a span is the child of whatever span is current in the app.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None, *, root: bool = False) -> None:
        try:
            from opentelemetry import metrics, trace
            from opentelemetry.context import Context
            from opentelemetry.trace import SpanKind, Status, StatusCode
        except ImportError as exc:
            raise OtelMissing(INSTALL_HINT) from exc
        from flightdeck import __version__

        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self._kind = SpanKind.CLIENT
        self._context = Context if root else None
        self._status_cls = Status
        self._code = StatusCode.ERROR
        self._lock = threading.Lock()
        self.emitted = 0

    def emit(self, ev: Event) -> None:
        """The span and metrics of one ``llm_call``. Raises only what the SDK raises (callers guard)."""
        attrs = event_attributes(ev)
        start, end = event_span_times(ev)
        context = self._context() if self._context is not None else None
        span = self._tracer.start_span(f"chat {ev.model or 'unknown'}", context=context, kind=self._kind,
                                       attributes=attrs, start_time=start)
        if ev.error:
            span.set_status(self._status_cls(self._code, ev.error[:200]))
        span.end(end_time=end)
        metric_attrs: dict[str, str] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name(ev.provider),
            "gen_ai.request.model": ev.model or "unknown",
        }
        usage = ev.usage
        if usage is not None:
            self._tokens.record(usage.prompt_tokens, {**metric_attrs, "gen_ai.token.type": "input"})
            self._tokens.record(usage.output_tokens, {**metric_attrs, "gen_ai.token.type": "output"})
        seconds = call_seconds(ev)
        if seconds is not None:
            if ev.error:
                metric_attrs["error.type"] = ev.error[:200]
            self._duration.record(seconds, metric_attrs)
        with self._lock:
            self.emitted += 1

    def emit_safely(self, ev: Event) -> None:
        """``emit`` for the recorder: an SDK error is warned about once, never raised into the agent."""
        try:
            self.emit(ev)
        except Exception as exc:
            from flightdeck.recorder.sinks import warn_once

            warn_once("otel-emit", f"could not emit the call on OpenTelemetry: {type(exc).__name__}: {exc}")
