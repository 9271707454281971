"""Format detection and the foreign formats, from realistic lines."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

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


def cc_line(kind: str = "assistant", msg_id: str = "msg_01", req: str | None = "req_01",
            model: str = "claude-sonnet-4-5-20250929", **extra: object) -> bytes:
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
    assert f.parse(cc_line()) == []  # held until its last copy
    (ev,) = f.flush()
    assert isinstance(ev, Event)
    assert ev.id == "msg_01" and ev.run == "sess-1" and ev.agent == "claude-code"
    assert ev.tags == {"project": "/home/u/proj"}
    assert ev.usage == Usage(input_tokens=12, output_tokens=250, cache_read_tokens=5000,
                             cache_write_tokens=1000, cache_write_1h_tokens=600)
    expected = price("anthropic", "claude-sonnet-4-5-20250929", ev.usage, ev.ts, route="direct")
    assert expected.usd is not None and Decimal(ev.cost_usd) == expected.usd  # type: ignore[arg-type]
    # 1h writes at 2x input, 5m at 1.25x: 12*3 + 250*15 + 5000*0.3 + 400*3.75 + 600*6 per million
    assert Decimal(ev.cost_usd) == Decimal("0.010386")  # type: ignore[arg-type]
    assert ev.cost_status == "priced"


def test_claude_code_repeated_message_has_one_id_and_synthetic_is_skipped() -> None:
    f = FileFormat()
    assert f.parse(cc_line()) == f.parse(cc_line()) == []  # two content blocks of one response
    assert f.parse(cc_line(model="<synthetic>", msg_id="msg_x")) == []
    (first,) = f.parse(cc_line(msg_id="msg_2", req=None))  # type: ignore[misc]  # the next one completes it
    assert first.id == "msg_01" and f.take_copies() == 1
    (no_req,) = f.flush()
    assert no_req.id == "msg_2"  # without a requestId the message id still identifies it


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
    bad_time = b'{"type":"assistant","message":{"model":"m","usage":{"input_tokens":1}},"timestamp":"nope"}'
    assert isinstance(c.parse(bad_time), Rejected)


# --- Claude Code fast path: equal to the generic path -------------------------------

from datetime import UTC, datetime, timedelta  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from flightdeck.core.aggregate import Aggregator  # noqa: E402
from flightdeck.core.events import format_usd, parse_ts  # noqa: E402
from flightdeck.core.money import cost_text as exact_cost  # noqa: E402  (the readers' cost string)
from flightdeck.core.normalize import normalize_usage  # noqa: E402
from flightdeck.core.pricing import Rates, default_pricer  # noqa: E402
from flightdeck.ingest.formats import ClaudeCode, cc_timestamp  # noqa: E402

CC_MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001",
             "claude-3-5-haiku-20241022", "claude-sonnet-4-20250514", "claude-3-opus-20240229",
             "no-such-model-xyz"]

_count = st.integers(min_value=0, max_value=3_000_000)
# Mostly clean counts; sometimes the spellings only the generic reader takes or refuses.
_odd = st.one_of(_count, _count, _count, st.none(), st.integers(-5, -1), st.just("42"), st.just(" 7"),
                 st.just(12.0), st.just(1.5), st.booleans(), st.just([1]), st.integers(2**64, 2**70))
_split = st.one_of(st.none(), st.just("x"), st.fixed_dictionaries(
    {}, optional={"ephemeral_5m_input_tokens": _odd, "ephemeral_1h_input_tokens": _odd}))


@st.composite
def cc_usage(draw: st.DrawFn) -> dict[str, object]:
    if draw(st.integers(0, 3)):  # mostly what Claude Code writes: the fast path
        written = draw(_count)
        w1h = draw(st.integers(0, written))
        usage: dict[str, object] = {"input_tokens": draw(_count), "output_tokens": draw(_count),
                                    "cache_read_input_tokens": draw(_count)}
        shape = draw(st.integers(0, 3))
        if shape != 1:
            usage["cache_creation_input_tokens"] = written
        if shape != 2:  # the split, sometimes alone
            usage["cache_creation"] = {"ephemeral_5m_input_tokens": written - w1h, "ephemeral_1h_input_tokens": w1h}
        if shape == 3:
            usage["cache_creation"] = draw(st.none() | st.just({}))
        usage["service_tier"] = "standard"
        return usage
    usage = draw(st.fixed_dictionaries({}, optional={
        "input_tokens": _odd, "output_tokens": _odd, "cache_read_input_tokens": _odd,
        "cache_creation_input_tokens": _odd, "cache_creation": _split,
        "server_tool_use": st.just({"web_search_requests": 0}),
    }))
    if draw(st.integers(0, 8)) == 0:  # keys that make the Anthropic reader look elsewhere
        usage[draw(st.sampled_from(["type", "usage"]))] = draw(st.sampled_from(["message_start", None, {}]))
    return usage


_when = st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _same(a: object, b: object) -> bool:
    if isinstance(a, Rejected) and isinstance(b, Rejected):
        return a.reason == b.reason and a.detail == b.detail
    return a == b


@settings(max_examples=400, deadline=None)
@given(usage=cc_usage(), model=st.sampled_from(CC_MODELS), when=_when, cost=st.none() | st.floats(0, 5),
       sidechain=st.booleans())
def test_fast_path_equals_the_generic_path(usage: dict[str, object], model: str, when: datetime,
                                           cost: float | None, sidechain: bool) -> None:
    extra: dict[str, object] = {"timestamp": _iso(when), "isSidechain": sidechain}
    if cost is not None:
        extra["costUSD"] = cost
    row = json.loads(cc_line(model=model, **extra))
    row["message"]["usage"] = usage
    line = json.dumps(row, separators=(",", ":")).encode()
    fast, generic = ClaudeCode()._read(line), ClaudeCode()._parse_generic(line)
    assert _same(fast, generic), (fast, generic)
    if isinstance(fast, list) and fast and cost is None:  # and equal to price() itself
        ev = fast[0]
        expected = price("anthropic", model, ev.usage, ev.ts, route="direct")  # type: ignore[arg-type]
        assert ev.cost_status == expected.status
        assert ev.cost_usd == (format_usd(expected.usd) if expected.usd is not None else None)
        assert ev.usage == normalize_usage("anthropic", usage)


def test_fast_path_edge_lines_equal_the_generic_path() -> None:
    base = json.loads(cc_line())
    variants: list[bytes] = [
        b'{"type":"\\u0061ssistant","message":{"id":"m","model":"claude-sonnet-4-5-20250929",'
        b'"usage":{"input_tokens":3}},"requestId":"r","timestamp":"2025-10-01T10:00:00.000Z"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":"2025-10-01T10:00:00Z"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":"2025-10-01 10:00:00.5+02:00"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":"2025-13-01T10:00:00.000Z"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":"2025-10-01T10:00:61.000Z"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":"2025-10-01T10:00:0\xd9\xa3.000Z"}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}}}',
        b'{"type":"assistant","message":{"usage":null}}',
        b'{"type":"assistant","message":{"model":"<synthetic>","usage":{"input_tokens":0}}}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}},"timestamp":7}',
        b'{"type":"assistant","message":{"usage":{"input_tokens":3}',
        json.dumps(dict(base, isApiErrorMessage=True, uuid=None, requestId=None)).encode(),
    ]
    for line in variants:
        fast, generic = ClaudeCode()._read(line), ClaudeCode()._parse_generic(line)
        assert _same(fast, generic), (line, fast, generic)
    # A user line is only checked for being JSON: no field of it matters.
    assert ClaudeCode().parse(b'{"type":"user","message":5}') == []
    assert ClaudeCode().parse(b'{"type":"user","message":"not an object","note":"assistant"}') == []
    assert isinstance(ClaudeCode().parse(b'{"type":7,"message":{}}'), Rejected)
    assert isinstance(ClaudeCode().parse(b'{"type":7,"message":{},"note":"assistant"}'), Rejected)
    assert isinstance(ClaudeCode().parse(b'{"type":"user","message":'), Rejected)


@settings(max_examples=300, deadline=None)
@given(when=_when)
def test_cc_timestamp_equals_parse_ts(when: datetime) -> None:
    text = _iso(when)
    assert cc_timestamp(text) == parse_ts(text)
    other = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"  # another spelling: parse_ts itself
    assert cc_timestamp(other) == parse_ts(other)


def test_cc_timestamp_refuses_what_parse_ts_refuses() -> None:
    for text in ["2025-02-30T10:00:00.000Z", "2025-10-01T24:00:00.000Z", "2025-10-01T10:60:00.000Z",
                 "2025-10-01T10:00:60.000Z", "2025-10-01T10:00:+1.000Z", "2025-10-01T10:00:1_.000Z", "nope"]:
        with pytest.raises(ValueError):
            parse_ts(text)
        with pytest.raises(ValueError):
            cc_timestamp(text)
    assert cc_timestamp("2025-10-01X10:00:00.000Z") == parse_ts("2025-10-01X10:00:00.000Z")  # any separator
    # Near misses of the looked-up seconds and milliseconds (the minute is cached by now):
    # each is parse_ts's to answer, value or ValueError alike.
    for text in ["2025-10-01T10:00:59.999Z", "2025-10-01T10:00:00.999", "2025-10-01T10:00:00.99Z",
                 "2025-10-01T10:00:00.9999Z", "2025-10-01T10:00:00,123Z", "2025-10-01T10:00:0\u0661.123Z",
                 "2025-10-01T10:00:01.1\u06612Z", "2025-10-01T10:00:01.123z", "2025-10-01T10:00",
                 "2025-10-01T10:00:01"]:
        try:
            expected: float | None = parse_ts(text)
        except ValueError:
            expected = None
        if expected is None:
            with pytest.raises(ValueError):
                cc_timestamp(text)
        else:
            assert cc_timestamp(text) == expected, text
    start = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    for ms in range(0, 120_000, 997):  # across a minute, an hour, a day and a year
        text = _iso(start + timedelta(milliseconds=ms))
        assert cc_timestamp(text) == parse_ts(text)


def _odd_rates() -> list[Rates]:
    d = Decimal
    tier = Rates(d("6"), d("22.5"), d("0.60"), d("7.5"), d("12"))
    return [
        Rates(d("3"), d("15"), d("0.3"), d("3.75"), d("6"), tiers=((200_000, tier),)),
        Rates(d("0.0000001"), d("0.000000123"), d("0"), d("1E-9"), d("0.10")),
        Rates(d("1E+1"), d("2"), d("0"), d("0"), d("0")),  # positive exponent: Decimal does it
        Rates(d("2.50"), d("10.000"), d("0.250"), d("3.1250"), d("5.00"), reasoning=d("40.5")),
        Rates(d("1"), d("1"), d("1"), d("1"), d("1"), per_request=d("0.004")),  # per-request fee: Decimal
        Rates(d(0), d(0), d(0), d(0), d(0), status="local"),
        Rates(d("3.0000000000000000000000000001"), d("15"), d("0.3"), d("3.75"), d("6")),  # 29 digits: Decimal rounds
    ]


@settings(max_examples=300, deadline=None)
@given(inp=_count, out=_count, read=st.integers(0, 400_000), write=_count, w1h=_count,
       reasoning=_count, which=st.integers(0, 100))
def test_exact_cost_equals_decimal_cost(inp: int, out: int, read: int, write: int, w1h: int,
                                        reasoning: int, which: int) -> None:
    pricer = default_pricer()
    known = [r for m in CC_MODELS if (r := pricer.rates("anthropic", m, 1.76e9, route="direct")) is not None]
    rates = (known + _odd_rates())[which % (len(known) + len(_odd_rates()))]
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
                  cache_write_1h_tokens=min(w1h, write), reasoning_tokens=min(reasoning, out))
    assert exact_cost(rates, usage) == format_usd(rates.cost(usage))
    zero = Usage()
    assert exact_cost(rates, zero) == format_usd(rates.cost(zero))


def test_repeated_blocks_and_far_repeats_count_once() -> None:
    agg = Aggregator(live=False)
    first = FileFormat()
    lines = [cc_line(msg_id="m1", req="r1"), cc_line(msg_id="m1", req="r1"), cc_line("user"),
             cc_line(msg_id="m1", req="r1"), cc_line(msg_id="m2", req="r2"), cc_line(msg_id="m1", req="r1")]
    results = [first.parse(line) for line in lines]
    assert [len(r) for r in results] == [0, 0, 0, 0, 1, 1]  # type: ignore[arg-type]
    assert results[5][0] is results[4][0]  # type: ignore[index]  # a copy after release: the same event again
    results.append(first.flush())
    agg.duplicates += first.take_copies()
    resumed = FileFormat()  # a resumed session: the same response again in another file
    resumed.parse(cc_line(msg_id="m1", req="r1"))
    results.append(resumed.flush())
    for r in results:
        for ev in r:  # type: ignore[union-attr]
            agg.add(ev)
    snap = agg.snapshot()
    assert snap.events == 2 and snap.duplicates == 4
    assert snap.total.cost_usd == 2 * Decimal("0.010386")


# --- OTLP agent/tool spans, LiteLLM reported cost --------------------------------


def test_otlp_agent_and_tool_spans_without_tokens_are_skipped() -> None:
    call = {"traceId": "t9", "spanId": "c1", "name": "chat claude", "startTimeUnixNano": "1760000000000000000",
            "endTimeUnixNano": "1760000001000000000",
            "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "anthropic"),
                           _attr("gen_ai.request.model", "claude-sonnet-4-5-20250929"),
                           _attr("gen_ai.usage.input_tokens", 100), _attr("gen_ai.usage.output_tokens", 10)]}
    agent = {"traceId": "t9", "spanId": "a1", "name": "invoke_agent planner",
             "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000005000000000",
             "attributes": [_attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.agent.name", "planner"),
                            _attr("gen_ai.provider.name", "anthropic")]}
    tool = {"traceId": "t9", "spanId": "x1", "name": "execute_tool grep",
            "attributes": [_attr("gen_ai.operation.name", "execute_tool"), _attr("gen_ai.tool.name", "grep")]}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [agent, call, tool]}]}]}
    evs = FileFormat().parse(json.dumps(doc).encode())
    assert isinstance(evs, list) and [e.id for e in evs] == ["t9:c1"]
    assert evs[0].usage == Usage(input_tokens=100, output_tokens=10) and evs[0].provider == "anthropic"
    only_agents = {"resourceSpans": [{"scopeSpans": [{"spans": [agent, tool]}]}]}
    assert FileFormat().parse(json.dumps(only_agents).encode()) == []


def test_litellm_reported_cost_falls_back_to_hidden_params_exactly() -> None:
    payload = {
        "id": "chatcmpl-2", "call_type": "completion", "response_cost": None, "status": "success",
        "custom_llm_provider": "anthropic", "model": "claude-sonnet-4-5-20250929", "model_group": "sonnet",
        "prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
        "startTime": 1760000000.0, "endTime": 1760000001.0, "metadata": {},
        "hidden_params": {"response_cost": 0.1 + 0.2},  # a float that is not 0.3
    }
    (ev,) = FileFormat().parse(json.dumps(payload).encode())  # type: ignore[misc]
    assert ev.cost_status == "reported" and ev.cost_usd == "0.30000000000000004"
    payload["hidden_params"] = {}
    (ev,) = FileFormat().parse(json.dumps(payload).encode())  # type: ignore[misc]
    assert ev.cost_status == "priced"  # nothing reported: list rates


def test_clean_claude_code_lines_take_the_fast_path() -> None:
    parser = ClaudeCode()

    def refuse(line: bytes) -> list[Event]:
        raise AssertionError(f"generic path taken for {line[:80]!r}")

    parser._parse_generic = refuse  # type: ignore[method-assign]
    (ev,) = parser._read(cc_line())  # type: ignore[misc]
    assert ev.usage == Usage(input_tokens=12, output_tokens=250, cache_read_tokens=5000,
                             cache_write_tokens=1000, cache_write_1h_tokens=600)
    assert ev.cost_usd == "0.010386" and ev.ts == parse_ts("2025-10-01T10:00:00.000Z")
    assert parser.parse(cc_line("user")) == [] and parser.parse(cc_line()) == [] and parser.flush() == [ev]
