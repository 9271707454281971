"""Hostile input through every reader: nothing raises, the good lines around the bad count exactly.

Random bytes, deep nesting, huge numbers and odd timestamps are put into
real lines of every format (flightdeck v1, Claude Code, LiteLLM, OTLP JSON)
and fed to ``decode_line``, ``detect_format``/``FileFormat``, the
``report`` scan (the aggregator), the report table and JSON, and the live
engine's ``tail --once`` path. Kept to a few seconds: ``max_examples`` is small.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightdeck.core.events import KIND_LLM_CALL, MAX_TOKENS, TS_MAX, TS_MIN, Event, Rejected, decode_line
from flightdeck.core.report import render_table, report_json
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.formats import FileFormat, detect_format
from flightdeck.ingest.live import snapshot_line
from flightdeck.ingest.scan import scan
from tests.ingest.formats.test_formats import cc_line

DEEP = "\x00DEEP\x00"  # replaced by raw deeply nested JSON after encoding (json.dumps would recurse)
DEEP_JSON = '{"a":' * 50_000 + "1" + "}" * 50_000

V1 = {"v": 1, "ts": 1764216000.125, "kind": "llm_call", "id": "x-0", "run": "r-42", "agent": "researcher",
      "provider": "anthropic", "route": "direct", "model": "claude-3-5-sonnet", "name": "reflect", "step": 7,
      "stream": True, "usage": {"input_tokens": 1200, "output_tokens": 350, "cache_read_tokens": 8000,
                                "cache_write_tokens": 0, "reasoning_tokens": 0},
      "cost_usd": "0.011250", "cost_status": "priced",
      "latency_ms": {"pre": 41.0, "ttft": 402.5, "gen": 803.1, "post": 12.7, "total": 1259.3}}
LITELLM = {"id": "chatcmpl-1", "trace_id": "tr-1", "call_type": "acompletion", "stream": True,
           "response_cost": 0.00123, "status": "success", "custom_llm_provider": "openai",
           "model": "gpt-4o", "model_group": "gpt-4o", "model_id": "abc", "api_base": "https://api.openai.com",
           "prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
           "startTime": 1760000000.0, "completionStartTime": 1760000000.4, "endTime": 1760000001.0,
           "metadata": {"user_api_key_alias": "team-a"}, "hidden_params": {}, "messages": [], "response": {}}


def _attr(key: str, value: object) -> dict[str, object]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


OTLP = {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "svc")]}, "scopeSpans": [{
    "scope": {"name": "x"}, "spans": [{
        "traceId": "t1", "spanId": "s1", "name": "chat gpt-4o",
        "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000002000000000",
        "attributes": [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.system", "openai"),
                       _attr("gen_ai.request.model", "gpt-4o"), _attr("gen_ai.usage.input_tokens", 300),
                       _attr("gen_ai.usage.output_tokens", 20)],
        "status": {}}]}]}]}
CLAUDE = json.loads(cc_line())
FORMATS: dict[str, dict[str, Any]] = {"flightdeck-v1": V1, "claude-code": CLAUDE, "litellm": LITELLM,
                                      "otlp-json": OTLP}


def with_id(name: str, doc: dict[str, Any], i: int) -> dict[str, Any]:
    """A copy of a sample with its own id, so the lines of a file are distinct calls."""
    doc = copy.deepcopy(doc)
    if name == "flightdeck-v1":
        doc["id"] = f"x-{i}"
    elif name == "claude-code":
        doc["message"]["id"] = f"msg_{i}"
        doc["requestId"] = f"req_{i}"
        doc["uuid"] = f"u-{i}"
    elif name == "litellm":
        doc["id"] = f"chatcmpl-{i}"
    else:
        doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = f"s{i}"
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).replace(json.dumps(DEEP), DEEP_JSON).encode()


HUGE_INTS = st.sampled_from([10**15 - 1, 10**15, 2**63 - 1, 2**63, 2**64, 10**400, -1, -(2**63), 0])
ODD_TIMES = st.sampled_from([
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "1970-01-01T00:00:00Z", "2199-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z", "2025-13-45T99:99:99Z", "", "1e400", "NaN", "-62135596800", "2025-11-27T04:00:00Z",
])
ODD_FLOATS = st.sampled_from([1e308, -1e308, 1e-320, -0.0, 946684800.0, 7258118400.0, 1e11, 0.5])
HOSTILE = st.one_of(
    HUGE_INTS, ODD_TIMES, ODD_FLOATS,
    st.just(DEEP), st.just("9" * 5000), st.just("0." + "1" * 60), st.just("999999999.999999"),
    st.just(None), st.just([]), st.just({}), st.booleans(),
    st.text(max_size=20), st.text(alphabet="\x1b\u202e\u200b\ufeff\x00", max_size=8),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, (*prefix, i)))
    return out


def mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@st.composite
def hostile_line(draw: st.DrawFn, name: str, i: int) -> bytes:
    """A line of format ``name``: a real one with one or two values made hostile, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    doc = with_id(name, FORMATS[name], i)
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(doc)
        doc = mutate(doc, draw(st.sampled_from(paths)), draw(HOSTILE))
    return encode(doc)


def _counted(name: str, lines: list[bytes]) -> tuple[int, int]:
    """(llm_call events, their input tokens) one parser of the format makes of these lines, ids once."""
    parser = FileFormat()
    seen: set[str] = set()
    tokens = 0
    results = [parser.parse(line) for line in lines]
    results.append(parser.flush())  # a reader may hold a response for its last copy (Claude Code)
    for result in results:
        if isinstance(result, Rejected):
            continue
        for ev in result:
            if ev.kind == KIND_LLM_CALL and ev.id not in seen:
                seen.add(ev.id)
                tokens += ev.usage.input_tokens if ev.usage else 0
    return len(seen), tokens


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(FORMATS)))
def test_one_hostile_line_never_raises(data: st.DataObject, name: str) -> None:
    line = data.draw(hostile_line(name, 1))
    got = decode_line(line)
    assert isinstance(got, Event | Rejected)
    assert not isinstance(detect_format(line), Exception)
    parsed = FileFormat().parse(line)
    assert isinstance(parsed, list | Rejected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(FORMATS)))
def test_good_lines_around_hostile_ones_count_exactly(tmp_path: Path, data: st.DataObject, name: str) -> None:
    n_good = data.draw(st.integers(1, 6))
    good = [encode(with_id(name, FORMATS[name], i)) for i in range(n_good)]
    bad = [data.draw(hostile_line(name, 1000 + j)) for j in range(data.draw(st.integers(1, 6)))]
    lines = good + bad
    random.Random(data.draw(st.integers(0, 2**32))).shuffle(lines)
    if name == "flightdeck-v1" or data.draw(st.booleans()):
        lines.insert(0, good[0])  # a detecting first line: an id repeated (counted once)
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    expected_events, expected_tokens = _counted(name, lines)
    good_events, _ = _counted(name, [lines[0], *good])
    assert expected_events >= good_events  # every good line counts, whatever is around it

    snap = scan([path], jobs=1, by=("model", "run", "agent", "name")).snapshot()
    assert snap.events == expected_events
    assert snap.total.tokens.input_tokens == expected_tokens
    if snap.events:  # the line format's bounds hold whatever the format
        assert snap.first_ts is not None and snap.last_ts is not None
        assert TS_MIN <= snap.first_ts <= snap.last_ts < TS_MAX
        assert snap.total.tokens.input_tokens < snap.events * MAX_TOKENS
    render_table(snap, ("model", "run", "agent", "name"))
    json.dumps(report_json(snap, ("model",)), default=str)

    eng = Engine([path])
    eng.backfill(final=True)
    live = eng.snapshot()
    assert live.events == expected_events
    snapshot_line(live)


def test_foreign_formats_keep_the_line_format_bounds() -> None:
    for ts in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "1970-01-01T00:00:00Z"):
        got = FileFormat().parse(encode(mutate(CLAUDE, ("timestamp",), ts)))
        assert isinstance(got, Rejected) and got.reason == "bad ts", ts
    for tokens in (2**63 - 1, 2**64, MAX_TOKENS):
        got = FileFormat().parse(encode(mutate(CLAUDE, ("message", "usage", "input_tokens"), tokens)))
        assert isinstance(got, Rejected), tokens
        got = FileFormat().parse(encode(mutate(LITELLM, ("prompt_tokens",), tokens)))
        assert isinstance(got, Rejected) and got.reason == "bad usage.input_tokens", tokens
    span = ("resourceSpans", 0, "scopeSpans", 0, "spans", 0, "startTimeUnixNano")
    got = FileFormat().parse(encode(mutate(OTLP, span, "1")))  # a 56-year span is not a duration
    assert isinstance(got, Rejected) and got.reason.startswith("bad latency_ms")
