"""Format detection and the foreign formats, from realistic lines."""

from __future__ import annotations

import json
from decimal import Decimal

from flightdeck.core.events import Event, IdSource, Rejected, Usage, encode_event
from flightdeck.core.pricing import price
from flightdeck.ingest.formats import FileFormat, detect_format, otlp_attributes

CC_USAGE = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 5000,
    "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
    "output_tokens": 250,
    "service_tier": "standard",
}


def cc_line(kind: str = "assistant", msg_id: str = "msg_01", req: str | None = "req_01", model: str = "claude-sonnet-4-5-20250929", **extra: object) -> bytes:
    row: dict[str, object] = {
        "parentUuid": "p", "isSidechain": False, "userType": "external", "cwd": "/home/u/proj",
        "sessionId": "sess-1", "version": "2.0.14", "gitBranch": "main", "type": kind,
        "uuid": "u-" + msg_id, "timestamp": "2025-10-01T10:00:00.000Z",
    }
    if kind == "assistant":
        row["message"] = {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                          "content": [{"type": "text", "text": "hello"}], "stop_reason": None,
                          "usage": CC_USAGE}
        if req is not None:
            row["requestId"] = req
    else:
        row["message"] = {"role": "user", "content": "do it"}
    row.update(extra)
    return json.dumps(row).encode()


def test_claude_code_assistant_line_is_priced_like_the_recorder() -> None:
    f = FileFormat()
    assert f.parse(cc_line("user")) == []
    assert f.name == "claude-code"
    (ev,) = f.parse(cc_line())
    assert isinstance(ev, Event)
    assert ev.id == "msg_01:req_01" and ev.run == "sess-1" and ev.agent == "claude-code"
    assert ev.usage == Usage(input_tokens=12, output_tokens=250, cache_read_tokens=5000,
                             cache_write_tokens=1000, cache_write_1h_tokens=600)
    expected = price("anthropic", "claude-sonnet-4-5-20250929", ev.usage, ev.ts, route="direct")
    assert expected.usd is not None and Decimal(ev.cost_usd) == expected.usd  # type: ignore[arg-type]
    # 1h writes at 2x input, 5m at 1.25x: 12*3 + 250*15 + 5000*0.3 + 400*3.75 + 600*6 per million
    assert Decimal(ev.cost_usd) == Decimal("0.010386")  # type: ignore[arg-type]
    assert ev.cost_status == "priced"


def test_claude_code_repeated_message_has_one_id_and_synthetic_is_skipped() -> None:
    f = FileFormat()
    a = f.parse(cc_line())
    b = f.parse(cc_line())
    assert isinstance(a, list) and isinstance(b, list) and a[0].id == b[0].id
    assert f.parse(cc_line(model="<synthetic>", msg_id="msg_x")) == []
    (no_req,) = f.parse(cc_line(msg_id="msg_2", req=None))  # type: ignore[misc]
    assert no_req.id == "u-msg_2"  # counted on its own, as ccusage does


def test_claude_code_summary_first_line_and_bad_usage() -> None:
    f = FileFormat()
    assert f.parse(b'{"type":"summary","summary":"Fix bug","leafUuid":"x"}') == []
    assert f.name == "claude-code"
    bad = json.loads(cc_line())
    bad["message"]["usage"]["input_tokens"] = -3
    assert isinstance(f.parse(json.dumps(bad).encode()), Rejected)


def test_detection_retries_after_garbage_first_lines() -> None:
    f = FileFormat()
    assert isinstance(f.parse(b"\x00\x01garbage"), Rejected)
    assert isinstance(f.parse(b'{"hello": 1}'), Rejected)
    assert f.name is None
    ids = IdSource()
    line = encode_event(Event(v=1, ts=1.0e9, kind="llm_call", id=ids(), run="r", provider="openai",
                              model="gpt-4o", usage=Usage(input_tokens=1), cost_usd=None)).rstrip()
    (ev,) = f.parse(line)  # type: ignore[misc]
    assert f.name == "flightdeck-v1" and ev.model == "gpt-4o"
    assert isinstance(f.parse(b"not json"), Rejected)  # decided: garbage is now just rejected


def test_litellm_standard_logging_payload_uses_reported_cost() -> None:
    payload = {
        "id": "chatcmpl-1", "trace_id": "tr-1", "call_type": "acompletion", "stream": True,
        "response_cost": 0.00123, "status": "success", "custom_llm_provider": "openai",
        "model": "gpt-4o", "model_group": "gpt-4o", "model_id": "abc", "api_base": "https://api.openai.com",
        "prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
        "startTime": 1760000000.0, "completionStartTime": 1760000000.4, "endTime": 1760000001.0,
        "metadata": {"user_api_key_alias": "team-a"}, "hidden_params": {}, "messages": [], "response": {},
    }
    assert detect_format(json.dumps(payload).encode()).name == "litellm"  # type: ignore[union-attr]
    (ev,) = FileFormat().parse(json.dumps(payload).encode())  # type: ignore[misc]
    assert ev.cost_usd == "0.001230" and ev.cost_status == "reported"
    assert ev.usage.input_tokens == 1000 and ev.usage.output_tokens == 50
    assert ev.route == "proxy" and ev.agent == "team-a" and ev.run == "tr-1"
    assert abs(ev.latency_ms.ttft - 400.0) < 1e-3 and abs(ev.latency_ms.total - 1000.0) < 1e-3


def _attr(key: str, value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def test_otlp_json_line_with_many_spans() -> None:
    span = {
        "traceId": "t1", "spanId": "s1", "name": "chat gpt-4o",
        "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000002000000000",
        "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.system", "openai"),
                       _attr("gen_ai.request.model", "gpt-4o"), _attr("gen_ai.usage.input_tokens", 300),
                       _attr("gen_ai.usage.output_tokens", 20)],
        "status": {},
    }
    other = {"traceId": "t1", "spanId": "s2", "name": "db", "attributes": [_attr("db.system", "pg")],
             "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000000100000000"}
    span2 = dict(span, spanId="s3")
    doc = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "svc")]},
                              "scopeSpans": [{"scope": {"name": "x"}, "spans": [span, other, span2]}]}]}
    f = FileFormat()
    evs = f.parse(json.dumps(doc).encode())
    assert f.name == "otlp-json"
    assert isinstance(evs, list) and [e.id for e in evs] == ["t1:s1", "t1:s3"]
    ev = evs[0]
    assert ev.agent == "svc" and ev.provider == "openai" and ev.model == "gpt-4o"
    assert ev.usage.input_tokens == 300 and ev.latency_ms.total == 2000.0
    assert ev.cost_status == "priced" and ev.cost_usd is not None


def test_otlp_attributes_flatten_int_strings() -> None:
    assert otlp_attributes([_attr("a", 5), _attr("b", "x"), {"key": "c", "value": {"doubleValue": 1.5}}]) == {
        "a": 5, "b": "x", "c": 1.5}


def test_hostile_shapes_are_rejected_not_raised() -> None:
    f = FileFormat()
    base = {"call_type": "completion", "response_cost": "lots", "model": ["x"], "model_group": {},
            "prompt_tokens": {"a": 1}, "startTime": "yesterday"}
    assert isinstance(f.parse(json.dumps(base).encode()), Rejected)
    o = FileFormat()
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "gen_ai.usage.input_tokens",
                                                                          "value": {"intValue": "-5"}}]}]}]}]}
    assert isinstance(o.parse(json.dumps(doc).encode()), Rejected)
    assert isinstance(o.parse(b'{"resourceSpans": 7}'), Rejected)
    c = FileFormat()
    assert c.parse(cc_line("user")) == []
    assert isinstance(c.parse(b'{"type":"assistant","message":{"usage":[1,2]}}'), Rejected)
    assert isinstance(c.parse(b'{"type":"assistant","message":{"model":"m","usage":{"input_tokens":1}},"timestamp":"nope"}'), Rejected)
