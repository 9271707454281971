"""FlightdeckSpanExporter and Recorder(otel=True) with the real OpenTelemetry SDK."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from flightdeck import Recorder
from flightdeck.integrations.otel import FlightdeckSpanExporter
from flightdeck.recorder.otel_emit import OtelEmitter


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if '"llm_call"' in x]


def test_spans_from_instrumentors_become_recorded_calls(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    # Recent when the test runs (not when the module was collected, minutes earlier in a full
    # run): rec.stats() looks at the last 5 minutes.
    t0 = time.time_ns() - 5_000_000_000
    rec = Recorder(log, run="r-9", agent="app")
    tp = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    tp.add_span_processor(SimpleSpanProcessor(FlightdeckSpanExporter(rec)))
    tracer = tp.get_tracer("any")
    # opentelemetry-instrumentation-openai-v2 style (current semconv).
    s = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=t0, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.output_tokens": 100})
    s.end(end_time=t0 + 800_000_000)
    # OpenInference (Arize) names: llm.token_count.*, prompt includes the cache details.
    s = tracer.start_span("ChatCompletion", start_time=t0, attributes={
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.model_name": "claude-sonnet-4-5",
        "llm.token_count.prompt": 2510, "llm.token_count.prompt_details.cache_read": 2000,
        "llm.token_count.prompt_details.cache_write": 500, "llm.token_count.completion": 300})
    s.end(end_time=t0 + 2_000_000_000)
    # OpenLLMetry (traceloop) deprecated names.
    s = tracer.start_span("openai.chat", start_time=t0, attributes={
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "llm.request.type": "chat",
        "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 100})
    s.end(end_time=t0 + 500_000_000)
    tracer.start_span("retrieve documents").end()  # not a model call
    tp.shutdown()
    rec.close()
    calls = lines(log)
    assert [c["model"] for c in calls] == ["gpt-4o", "claude-sonnet-4-5", "gpt-4o"]
    assert all(c["run"] == "r-9" and c["agent"] == "app" for c in calls)
    assert calls[0]["usage"]["input_tokens"] == 1000 and calls[0]["usage"]["cache_read_tokens"] == 200
    assert calls[0]["cost_usd"] == "0.003750" and calls[0]["latency_ms"]["total"] == 800.0
    assert calls[1]["provider"] == "anthropic" and calls[1]["cost_usd"] == "0.007005"
    assert calls[1]["usage"]["cache_write_tokens"] == 500 and calls[1]["usage"]["input_tokens"] == 10
    assert calls[2]["usage"]["input_tokens"] == 1000 and calls[2]["cost_usd"] == "0.003500"
    assert rec.stats().calls == 3 and rec.stats().spend_usd == Decimal("0.014255")


def test_recorder_otel_true_emits_span_and_metrics(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    # The global providers in a real app; passed explicitly here so tests do not share globals.
    rec = Recorder(tmp_path / "run.jsonl", run="r-1", agent="bot", otel=OtelEmitter(tp, mp))
    # ... and a FlightdeckSpanExporter on the same provider must not record flightdeck's own span again.
    fse = FlightdeckSpanExporter(rec)
    tp.add_span_processor(SimpleSpanProcessor(fse))
    with rec.call(provider="anthropic", model="claude-sonnet-4-5", stream=True) as call:
        call.sent()
        call.first_token()
        call.received()
        call.set_usage({"input_tokens": 10, "output_tokens": 300, "cache_read_input_tokens": 2000,
                        "cache_creation_input_tokens": 500})
    rec.close()
    (span,) = spans.get_finished_spans()
    a = dict(span.attributes or {})
    assert span.name == "chat claude-sonnet-4-5" and span.kind == SpanKind.CLIENT
    assert a["gen_ai.usage.input_tokens"] == 2510 and a["gen_ai.usage.output_tokens"] == 300
    assert a["flightdeck.cost_usd"] == "0.007005" and a["gen_ai.usage.cost"] == 0.007005
    assert a["gen_ai.conversation.id"] == "r-1" and a["gen_ai.agent.name"] == "bot"
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points[m.name] = list(m.data.data_points)
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": 2510, "output": 300}
    assert points["gen_ai.client.operation.duration"][0].count == 1
    assert fse.recorded == 0 and fse.ignored == 1
    assert len(lines(tmp_path / "run.jsonl")) == 1


def test_importing_flightdeck_imports_no_optional_sdk() -> None:
    import subprocess
    import sys

    code = ("import sys, flightdeck, flightdeck.ingest.engine, flightdeck.commands.tail, flightdeck.export, "
            "flightdeck.ingest.otlp, flightdeck.ingest.genai_spans, flightdeck.recorder.otel_emit;"
            "bad = [m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client', 'google.protobuf'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_recorder_otel_true_uses_the_global_providers(tmp_path: Path) -> None:
    """otel=True as an app writes it: the providers it set globally get the call (own process: globals)."""
    import subprocess
    import sys

    code = f"""
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from flightdeck import Recorder
spans = InMemorySpanExporter()
tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(spans)); trace.set_tracer_provider(tp)
rec = Recorder({str(tmp_path / 'run.jsonl')!r}, run="r-2", otel=True)
with trace.get_tracer("app").start_as_current_span("agent step") as parent:
    with rec.call(provider="openai", model="gpt-4o") as call:
        call.sent(); call.received(); call.set_usage({{"prompt_tokens": 1000, "completion_tokens": 100}})
rec.close()
child, = [s for s in spans.get_finished_spans() if s.name == "chat gpt-4o"]
assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id
print(child.attributes["flightdeck.cost_usd"], child.attributes["gen_ai.usage.input_tokens"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.003500", "1000"]
