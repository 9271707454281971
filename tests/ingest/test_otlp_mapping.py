"""ingest.genai_spans: the one mapping, case by case and as a round trip."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flightdeck.core.events import Event, Latency, Rejected, Usage
from flightdeck.ingest.genai_spans import (
    LogRecord,
    SpanRecord,
    event_attributes,
    event_span_times,
    log_to_event,
    span_to_event,
)

T0 = 1_780_000_000_000_000_000


def span(attrs: dict[str, Any], **kw: Any) -> SpanRecord:
    fields: dict[str, Any] = {"name": "chat", "trace_id": "ab" * 16, "span_id": "cd" * 8, "start_ns": T0,
                              "end_ns": T0 + 2_000_000_000, "attributes": attrs}
    fields.update(kw)
    return SpanRecord(**fields)


def record(body: Any, attrs: dict[str, Any], time_ns: int = T0) -> LogRecord:
    return LogRecord(time_ns=time_ns, observed_ns=0, body=body, attributes=attrs)


def log(body: Any, attrs: dict[str, Any], time_ns: int = T0) -> Event | Rejected | None:
    return log_to_event(record(body, attrs, time_ns))


def test_cache_exclusive_input_is_read_as_disjoint() -> None:
    # Some instrumentations pass Anthropic's input_tokens through: read + creation > input.
    ev = span_to_event(span({"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
                             "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 2000,
                             "gen_ai.usage.output_tokens": 5}))
    assert isinstance(ev, Event) and ev.usage is not None
    assert (ev.usage.input_tokens, ev.usage.cache_read_tokens) == (10, 2000)


def test_bad_spans_are_rejected_with_the_field_and_others_skipped() -> None:
    bad = span_to_event(span({"gen_ai.usage.input_tokens": -3, "gen_ai.usage.output_tokens": 1}))
    assert isinstance(bad, Rejected) and "input_tokens" in bad.detail
    assert span_to_event(span({"gen_ai.operation.name": "execute_tool"})) is None
    timeless = span_to_event(span({"gen_ai.usage.input_tokens": 1}, start_ns=0, end_ns=0))
    assert isinstance(timeless, Rejected) and timeless.reason == "missing span times"
    unknown = span_to_event(span({"gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}))
    assert isinstance(unknown, Event)
    assert (unknown.provider, unknown.model, unknown.cost_status, unknown.cost_usd) == \
        ("unknown", "unknown", "unknown", None)  # no rate: unknown, never $0


def test_ttft_longer_than_the_span_is_not_trusted() -> None:
    ev = span_to_event(span({"gen_ai.usage.input_tokens": 1, "gen_ai.response.time_to_first_chunk": 9.0}))
    assert isinstance(ev, Event) and ev.latency_ms == Latency(gen=2000.0, total=2000.0)


def test_claude_code_api_error_and_string_counts() -> None:
    ev = log("claude_code.api_error", {"event.name": "api_error", "session.id": "s", "model": "claude-opus-4-1",
                                       "error": "Request was aborted.", "status_code": "undefined",
                                       "duration_ms": 120, "attempt": 1})
    assert isinstance(ev, Event)
    assert ev.error == "Request was aborted." and ev.cost_usd is None and ev.cost_status == "unknown"
    assert ev.message == "the request failed; no usage was reported"
    # Tokens sent as strings (some exporters do), and the fast mode.
    ok = log("claude_code.api_request", {"event.name": "api_request", "session.id": "s", "model": "claude-opus-4-6",
                                         "input_tokens": "12", "output_tokens": "7", "cache_read_tokens": "0",
                                         "cache_creation_tokens": "3", "cost_usd": "0.5", "speed": "fast"})
    assert isinstance(ok, Event) and ok.usage == Usage(input_tokens=12, output_tokens=7, cache_write_tokens=3)
    assert ok.speed == "fast" and ok.cost_usd == "0.500000" and ok.cost_status == "reported"
    bad = log("claude_code.api_request", {"model": "m", "input_tokens": "lots"})
    assert isinstance(bad, Rejected) and "input_tokens" in bad.detail


def test_gemini_error_and_codex_failure_variant() -> None:
    ev = log("API error for gemini-2.5-flash.", {"event.name": "gemini_cli.api_error", "session.id": "g",
                                                  "model": "gemini-2.5-flash", "error": "quota",
                                                  "error.type": "RESOURCE_EXHAUSTED", "status_code": 429,
                                                  "duration_ms": 30})
    assert isinstance(ev, Event) and ev.error == "RESOURCE_EXHAUSTED" and ev.provider == "google"
    # codex.sse_event response.completed that failed carries only error.message: not a call of its own.
    assert log("", {"event.name": "codex.sse_event", "event.kind": "response.completed",
                    "error.message": "stream closed"}) is None
    assert log("", {"event.name": "codex.sse_event", "event.kind": "response.output_text.delta"}) is None
    # No time on the record: event.timestamp, as these CLIs write it.
    ev2 = log("claude_code.api_request", {"event.timestamp": "2026-05-28T20:26:40.000Z", "model": "m",
                                          "input_tokens": 1}, time_ns=0)
    assert isinstance(ev2, Event) and ev2.ts == 1_780_000_000.0


def test_same_record_twice_has_the_same_id() -> None:
    rec = record("claude_code.api_request", {"event.name": "api_request", "session.id": "s", "model": "m",
                                          "input_tokens": 1, "event.sequence": 4})
    a, b = log_to_event(rec), log_to_event(rec)
    assert isinstance(a, Event) and isinstance(b, Event) and a.id == b.id


counts = st.integers(min_value=0, max_value=10**9)


@given(counts, counts, counts, counts, st.integers(min_value=0, max_value=100),
       st.sampled_from(["0.000000", "0.011250", "12.345678"]),
       st.floats(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=60_000))
def test_round_trip_event_to_span_attributes_and_back(plain: int, read: int, written: int, out: int,
                                                      reasoning_pct: int, cost: str, ttft: float,
                                                      gen: float) -> None:
    usage = Usage(input_tokens=plain, cache_read_tokens=read, cache_write_tokens=written, output_tokens=out,
                  reasoning_tokens=out * reasoning_pct // 100)
    ttft, gen = round(ttft, 3), round(gen, 3)
    ev = Event(v=1, ts=1_780_000_000.25, kind="llm_call", id="abc-1", run="r", agent="a", provider="anthropic",
               route="direct", model="claude-sonnet-4-5", name="plan", stream=True, usage=usage, cost_usd=cost,
               cost_status="priced", latency_ms=Latency(ttft=ttft, gen=gen, total=ttft + gen + 5))
    start, end = event_span_times(ev)
    back = span_to_event(SpanRecord(name="chat", trace_id="00" * 16, span_id="11" * 8, start_ns=start, end_ns=end,
                                    attributes=event_attributes(ev)))
    assert isinstance(back, Event)
    assert back.usage == usage
    assert (back.id, back.run, back.agent, back.provider, back.model, back.name, back.route) == \
        ("abc-1", "r", "a", "anthropic", "claude-sonnet-4-5", "plan", "direct")
    assert Decimal(back.cost_usd or "0") == Decimal(cost) and back.cost_status == "priced"
    assert back.ts == ev.ts
    assert back.latency_ms is not None and back.latency_ms.ttft is not None
    assert abs(back.latency_ms.ttft - ttft) < 0.001 and abs((back.latency_ms.total or 0) - (ttft + gen)) < 0.001


def test_pure_python_otlp_json_gives_what_the_receiver_gives() -> None:
    """Files (ingest.formats, no otel extra) and the receiver (opentelemetry-proto) meet in one mapping."""
    import json

    import pytest

    pytest.importorskip("opentelemetry.proto")
    from flightdeck.ingest.genai_spans import json_logs, json_spans
    from flightdeck.ingest.otlp import decode_body, logs_of, spans_of
    from tests.ingest.test_otlp import codex_json

    span_doc = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat gpt-4o",
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 500_000_000),
            "status": {"code": 2, "message": "boom"},
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                           {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "100"}},
                           {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "200"}}]}]}]}]}
    raw = json.dumps(span_doc).encode()
    via_files = [span_to_event(s) for s in json_spans(span_doc)]
    via_proto = [span_to_event(s) for s in spans_of(decode_body("traces", raw, "application/json"))]
    assert via_files == via_proto and isinstance(via_files[0], Event) and via_files[0].error == "boom"
    logs_doc = json.loads(codex_json())
    assert [log_to_event(r) for r in json_logs(logs_doc)] == \
        [log_to_event(r) for r in logs_of(decode_body("logs", codex_json(), "application/json"))]
