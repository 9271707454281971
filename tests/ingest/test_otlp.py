"""`tail --otlp`: the real OpenTelemetry SDK exporters sending to the engine's receiver."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from flightdeck.core.events import Event, Rejected
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.otlp import OtlpReceiver, is_loopback, parse_bind

T0 = 1_780_000_000_000_000_000  # ns


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


@pytest.fixture
def engine() -> Any:
    eng = Engine(otlp=("127.0.0.1", 0))
    eng.start()
    yield eng
    eng.stop()


def url(eng: Engine, path: str) -> str:
    assert eng.otlp is not None
    host, port = eng.otlp.address
    return f"http://{host}:{port}{path}"


def tracer_provider(eng: Engine, service: str) -> TracerProvider:
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url(eng, "/v1/traces"))))
    return tp


def rows(eng: Engine) -> dict[str, Any]:
    return {r.model: r for r in eng.snapshot().recent}


def test_sdk_span_exporter_genai_spans_become_calls(engine: Engine) -> None:
    tp = tracer_provider(engine, "researcher")
    tracer = tp.get_tracer("openinference-or-any")
    # Current names; input_tokens INCLUDES the 200 cached (semconv), streamed with a first chunk.
    span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, start_time=T0, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.output_tokens": 100, "gen_ai.conversation.id": "conv-1",
        "gen_ai.response.time_to_first_chunk": 0.25})
    span.end(end_time=T0 + 1_000_000_000)
    # Deprecated names (gen_ai.system, prompt/completion tokens), failed with error.type.
    span = tracer.start_span("chat claude", kind=SpanKind.CLIENT, start_time=T0, attributes={
        "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.prompt_tokens": 2510, "gen_ai.usage.cache_read_input_tokens": 2000,
        "gen_ai.usage.cache_creation_input_tokens": 500, "gen_ai.usage.completion_tokens": 300,
        "gen_ai.agent.name": "planner", "error.type": "overloaded_error"})
    span.set_status(Status(StatusCode.ERROR, "529"))
    span.end(end_time=T0 + 2_000_000_000)
    # An agent span: gen_ai attributes but no usage: not a call.
    span = tracer.start_span("invoke_agent researcher", attributes={"gen_ai.operation.name": "invoke_agent"})
    span.end()
    tp.shutdown()

    wait_for(lambda: engine.events_counted == 2)
    got = rows(engine)
    gpt, claude = got["gpt-4o"], got["claude-sonnet-4-5"]
    assert (gpt.provider, gpt.agent, gpt.run) == ("openai", "researcher", "conv-1")
    assert (gpt.input_tokens, gpt.cache_read_tokens, gpt.output_tokens) == (1000, 200, 100)
    # gpt-4o list prices: 1000 x 2.50/M + 200 x 1.25/M + 100 x 10/M
    assert gpt.cost_usd == Decimal("0.00375") and gpt.cost_status == "priced"
    assert gpt.total_ms == 1000.0
    # claude-sonnet-4-5: 10 x 3/M + 2000 x 0.30/M + 500 x 3.75/M + 300 x 15/M
    assert (claude.input_tokens, claude.cache_read_tokens) == (10, 2000)
    assert claude.cost_usd == Decimal("0.007005")
    assert claude.agent == "planner" and claude.error == "overloaded_error"
    snap = engine.snapshot()
    assert snap.total.stages["ttft"].count == 1 and snap.total.stages["ttft"].p50 == pytest.approx(250, rel=0.02)
    assert snap.total.errors == 1
    assert engine.otlp is not None and engine.otlp.stats.ignored == 1
    assert ("conv-1", "researcher") in engine.watch_only
    assert "otlp 127.0.0.1:" in snap.source.description


def test_sdk_log_exporter_agent_cli_events(engine: Engine) -> None:
    lp = LoggerProvider(resource=Resource.create({"service.name": "claude-code"}))
    lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=url(engine, "/v1/logs"))))
    logger = lp.get_logger("com.anthropic.claude_code.events")
    # Claude Code: body is the event's full name, event.name the short one; Anthropic buckets.
    logger.emit(timestamp=T0, body="claude_code.api_request", attributes={
        "event.name": "api_request", "event.timestamp": "2026-05-28T20:26:40.000Z", "session.id": "s-1",
        "model": "claude-sonnet-4-5", "cost_usd": 0.0123, "duration_ms": 4200, "input_tokens": 10,
        "output_tokens": 300, "cache_read_tokens": 2000, "cache_creation_tokens": 500})
    logger.emit(timestamp=T0 + 1, body="claude_code.tool_result", attributes={
        "event.name": "tool_result", "session.id": "s-1", "tool_name": "Bash"})
    # Gemini CLI: event.name carries the full name; input includes the cached, output excludes thoughts.
    logger.emit(timestamp=T0 + 2, body="API response from gemini-2.5-pro. Status: 200. Duration: 900ms.",
                attributes={"event.name": "gemini_cli.api_response", "session.id": "g-1",
                            "model": "gemini-2.5-pro", "duration_ms": 900, "input_token_count": 1200,
                            "output_token_count": 100, "cached_content_token_count": 200,
                            "thoughts_token_count": 50, "tool_token_count": 0, "total_token_count": 1350,
                            "status_code": 200, "prompt_id": "p-1"})
    lp.shutdown()

    wait_for(lambda: engine.events_counted == 2)
    got = rows(engine)
    cc, gem = got["claude-sonnet-4-5"], got["gemini-2.5-pro"]
    assert (cc.provider, cc.run, cc.agent) == ("anthropic", "s-1", "claude-code")
    assert (cc.input_tokens, cc.cache_read_tokens, cc.output_tokens) == (10, 2000, 300)
    assert cc.cost_usd == Decimal("0.0123") and cc.cost_status == "reported"
    assert cc.total_ms == 4200
    assert (gem.provider, gem.run) == ("google", "g-1")
    assert (gem.input_tokens, gem.cache_read_tokens, gem.output_tokens) == (1000, 200, 150)
    # gemini-2.5-pro: 1000 x 1.25/M + 200 x 0.125/M + 150 x 10/M
    assert gem.cost_usd == Decimal("0.002775")
    assert engine.otlp is not None and engine.otlp.stats.ignored == 1


def post(u: str, body: bytes, ctype: str = "application/json", encoding: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(u, data=body, method="POST", headers={"Content-Type": ctype})
    if encoding:
        req.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def codex_json() -> bytes:
    """Codex's codex.sse_event response.completed, in OTLP JSON: counts are Display strings."""
    def s(k: str, v: str) -> dict[str, Any]:
        return {"key": k, "value": {"stringValue": v}}
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [s("service.name", "codex_cli_rs")]},
        "scopeLogs": [{"scope": {"name": "codex_otel"}, "logRecords": [{
            "timeUnixNano": str(T0), "observedTimeUnixNano": str(T0),
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "body": {"stringValue": ""},
            "attributes": [s("event.name", "codex.sse_event"), s("event.kind", "response.completed"),
                           s("conversation.id", "0199c1a8-conv"), s("model", "gpt-5-codex"),
                           s("slug", "gpt-5-codex"), s("input_token_count", "12000"),
                           s("output_token_count", "800"), {"key": "cached_token_count", "value": {"intValue": "9000"}},
                           {"key": "reasoning_token_count", "value": {"intValue": "512"}},
                           s("tool_token_count", "0")]}]}]}]}).encode()


def test_json_and_gzip_bodies(engine: Engine) -> None:
    assert post(url(engine, "/v1/logs"), codex_json()) == (200, b"{}")
    span_doc = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "pydantic-ai"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat gpt-4o",
            "kind": 3, "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 500_000_000),
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                           {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "100"}},
                           {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "200"}}],
            "status": {}}]}]}]}
    status, _ = post(url(engine, "/v1/traces"), gzip.compress(json.dumps(span_doc).encode()), encoding="gzip")
    assert status == 200
    wait_for(lambda: engine.events_counted == 2)
    got = rows(engine)
    codex = got["gpt-5-codex"]
    assert (codex.provider, codex.run, codex.agent) == ("openai", "0199c1a8-conv", "codex_cli_rs")
    assert (codex.input_tokens, codex.cache_read_tokens, codex.output_tokens) == (3000, 9000, 800)
    assert got["gpt-4o"].cost_usd == Decimal("0.00375")
    assert got["gpt-4o"].run == "0af7651916cd43dd8448eb211c80319c"  # no conversation id: the trace
    # The same span again (an exporter's retry) is counted once.
    assert post(url(engine, "/v1/traces"), json.dumps(span_doc).encode())[0] == 200
    wait_for(lambda: engine.snapshot().duplicates == 1)
    assert engine.events_counted == 2


def test_refusals_get_the_right_status_and_are_counted(engine: Engine) -> None:
    assert post(url(engine, "/v1/traces"), b"x", "text/plain")[0] == 415
    assert post(url(engine, "/v1/traces"), b"\xff\xff\xff", "application/x-protobuf")[0] == 400
    assert post(url(engine, "/v1/logs"), b"{not json")[0] == 400
    assert post(url(engine, "/v1/traces"), b"not gzip", encoding="gzip")[0] == 400
    assert post(url(engine, "/v2/other"), b"{}")[0] == 404
    assert post(url(engine, "/v1/metrics"), b"{}")[0] == 200  # accepted and counted, no events
    reasons = engine.snapshot().rejected_reasons
    assert reasons == {"otlp content type": 1, "otlp corrupt body": 3, "otlp path": 1}
    assert engine.events_counted == 0


def test_body_limits_and_gzip_bomb() -> None:
    seen: list[Rejected] = []
    rec = OtlpReceiver("127.0.0.1", 0, lambda ev, rej: seen.extend(rej), max_body=1000)
    rec.start()
    try:
        host, port = rec.address
        assert post(f"http://{host}:{port}/v1/traces", b"{" + b" " * 2000 + b"}")[0] == 413
        bomb = gzip.compress(b"{" + b" " * 100_000 + b"}")
        assert len(bomb) < 1000
        assert post(f"http://{host}:{port}/v1/traces", bomb, encoding="gzip")[0] == 413
    finally:
        rec.stop()
    assert [r.reason for r in seen] == ["otlp body too large", "otlp body too large"]


def test_full_queue_answers_503_with_retry_after() -> None:
    import threading

    release = threading.Event()
    batches: list[list[Event]] = []
    rejects: list[Rejected] = []

    def on_batch(events: list[Event], rej: list[Rejected]) -> None:
        rejects.extend(rej)
        if events:
            release.wait(10)  # the engine is "behind"
            batches.append(events)

    rec = OtlpReceiver("127.0.0.1", 0, on_batch, max_queue_bytes=10)
    rec.start()
    try:
        host, port = rec.address
        body = codex_json()
        assert post(f"http://{host}:{port}/v1/logs", body)[0] == 200
        wait_for(lambda: rec.stats.events == 1)  # the consumer holds it; its bytes still queued
        req = urllib.request.Request(f"http://{host}:{port}/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "1"
        release.set()
        wait_for(lambda: len(batches) == 1)
        assert post(f"http://{host}:{port}/v1/logs", body)[0] == 200  # room again
        wait_for(lambda: len(batches) == 2)
    finally:
        release.set()
        rec.stop()
    assert rec.stats.queue_full == 1
    assert [r.reason for r in rejects] == ["otlp queue full"]


def test_bind_addresses() -> None:
    assert parse_bind("4318", 1) == ("127.0.0.1", 4318, True)
    assert parse_bind(":9000", 1) == ("127.0.0.1", 9000, True)
    assert parse_bind("localhost:1", 2) == ("localhost", 1, True)
    assert parse_bind("0.0.0.0:4318", 1) == ("0.0.0.0", 4318, False)
    assert parse_bind("[::1]:4318", 1) == ("::1", 4318, True)
    assert not is_loopback("10.0.0.1")
    with pytest.raises(ValueError, match="port"):
        parse_bind("host:abc", 1)


def test_connections_beyond_the_cap_are_refused_at_once() -> None:
    import socket

    seen: list[Rejected] = []
    rec = OtlpReceiver("127.0.0.1", 0, lambda ev, rej: seen.extend(rej), max_connections=2)
    rec.start()
    idle = []
    try:
        host, port = rec.address
        for _ in range(2):  # two clients that connect and say nothing hold both threads
            idle.append(socket.create_connection((host, port), timeout=10))
        wait_for(lambda: rec._server is not None and rec._server.slots._value == 0)  # type: ignore[attr-defined]
        with socket.create_connection((host, port), timeout=10) as third:
            reply = third.recv(200)
        assert reply.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in reply
        for s in idle:
            s.close()
        wait_for(lambda: rec._server is not None and rec._server.slots._value == 2)  # type: ignore[attr-defined]
        assert post(f"http://{host}:{port}/v1/metrics", b"{}")[0] == 200
    finally:
        for s in idle:
            s.close()
        rec.stop()
    assert [r.reason for r in seen] == ["otlp too many connections"]


def test_agents_heard_over_otlp_are_marked_watch_only(engine: Engine) -> None:
    tp = tracer_provider(engine, "researcher")
    span = tp.get_tracer("t").start_span("chat gpt-4o", attributes={
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.conversation.id": "conv-1",
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 10})
    span.end()
    tp.shutdown()
    wait_for(lambda: engine.snapshot().events == 1)
    rows = engine.snapshot().agent_rows
    assert [(r.run, r.agent, r.watch_only) for r in rows] == [("conv-1", "researcher", True)]
    assert engine.watch_only == frozenset({("conv-1", "researcher")})


def test_sdk_exporter_with_gzip_protobuf(engine: Engine) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    tp = TracerProvider(resource=Resource.create({"service.name": "gz"}))
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url(engine, "/v1/traces"),
                                                               compression=Compression.Gzip)))
    span = tp.get_tracer("t").start_span("chat gpt-4o", attributes={
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.output_tokens": 100})
    span.end()
    tp.shutdown()
    wait_for(lambda: engine.events_counted == 1)
    assert engine.snapshot().total.cost_usd == Decimal("0.00375")
