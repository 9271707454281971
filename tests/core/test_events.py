"""The line format: decode, validate, encode (SPEC section 1)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.events import (
    MAX_LINE_BYTES,
    Command,
    Event,
    IdSource,
    Latency,
    Rejected,
    Usage,
    decode_command,
    decode_line,
    encode_event,
    format_usd,
    parse_ts,
)

SPEC_EXAMPLE = (
    b'{"v":1,"ts":1764216000.125,"kind":"llm_call","id":"01JD7W3K9Q","run":"r-42",'
    b'"agent":"researcher","provider":"anthropic","route":"direct","model":"claude-3-5-sonnet",'
    b'"name":"reflect","step":7,"stream":true,"usage":{"input_tokens":1200,"output_tokens":350,'
    b'"cache_read_tokens":8000,"cache_write_tokens":0,"reasoning_tokens":0},"cost_usd":"0.011250",'
    b'"cost_status":"priced","latency_ms":{"pre":41.0,"ttft":402.5,"gen":803.1,"post":12.7,"total":1259.3}}'
)


def test_spec_example_decodes_exactly() -> None:
    ev = decode_line(SPEC_EXAMPLE)
    assert isinstance(ev, Event)
    assert ev.ts == 1764216000.125
    assert ev.usage == Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000)
    assert ev.usage.prompt_tokens == 9200
    assert ev.cost == Decimal("0.011250")
    assert ev.latency_ms == Latency(pre=41.0, ttft=402.5, gen=803.1, post=12.7, total=1259.3)
    assert ev.name == "reflect" and ev.step == 7 and ev.stream is True


def test_round_trip_keeps_every_field() -> None:
    ev = decode_line(SPEC_EXAMPLE)
    assert isinstance(ev, Event)
    again = decode_line(encode_event(ev))
    assert again == ev


def test_writer_lines_carry_version_and_null_cost() -> None:
    ev = Event(v=1, ts=1.5, kind="llm_call", id="a-0", run="r", provider="x", model="m",
               usage=Usage(), cost_usd=None, cost_status="unknown")
    line = encode_event(ev)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = msgspec.json.decode(line)
    assert obj["v"] == 1
    assert obj["cost_usd"] is None


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ((b'"input_tokens":1200', b'"input_tokens":-3'), "bad usage.input_tokens"),
        ((b'"input_tokens":1200', b'"input_tokens":12.5'), "bad usage.input_tokens"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":0.01125'), "bad cost_usd"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":"1e-3"'), "bad cost_usd"),
        ((b'"ts":1764216000.125,', b""), "missing ts"),
        ((b'"ts":1764216000.125', b'"ts":"yesterday"'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":-5'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":true'), "bad ts"),
        ((b'"cost_status":"priced"', b'"cost_status":"free"'), "bad cost_status"),
        ((b'"route":"direct"', b'"route":"teleport"'), "bad route"),
        ((b'"reasoning_tokens":0', b'"reasoning_tokens":351'), "bad usage.reasoning_tokens"),
        ((b'"kind":"llm_call",', b""), "missing kind"),
        # The bounds (issue 9): each refused with the field named.
        ((b'"input_tokens":1200', b'"input_tokens":' + b"1" + b"0" * 400), "bad usage.input_tokens"),
        ((b'"input_tokens":1200', b'"input_tokens":1000000000000000'), "bad usage.input_tokens"),
        ((b'"input_tokens":1200', b'"input_tokens":9223372036854775807'), "bad usage.input_tokens"),
        ((b'"output_tokens":350', b'"output_tokens":1000000000000000'), "bad usage.output_tokens"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":"' + b"9" * 5000 + b'"'), "bad cost_usd"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":"1000000000.0"'), "bad cost_usd"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":"0.' + b"1" * 41 + b'"'), "bad cost_usd"),
        ((b'"cost_usd":"0.011250"', b'"cost_usd":"' + b"0" * 5000 + b'1"'), "bad cost_usd"),
        ((b'"ts":1764216000.125', b'"ts":"0001-01-01T00:00:00Z"'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":"2200-01-01T00:00:00Z"'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":946684799.9'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":7258118400'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":1e400'), "bad ts"),
        ((b'"ts":1764216000.125', b'"ts":1'), "bad ts"),
        ((b'"gen":803.1', b'"gen":1e300'), "bad latency_ms.gen"),
    ],
)
def test_bad_events_are_rejected_with_the_field_named(mutation: tuple[bytes, bytes], reason: str) -> None:
    old, new = mutation
    line = SPEC_EXAMPLE.replace(old, new)
    assert line != SPEC_EXAMPLE
    got = decode_line(line)
    assert isinstance(got, Rejected)
    assert got.reason == reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b"[1,2]", "not an object"), (b"42", "not an object"), (b"\xff\xfe garbage", "not json"),
     (SPEC_EXAMPLE[:80], "not json"), (b"", "not json")],
)
def test_not_events(line: bytes, reason: str) -> None:
    got = decode_line(line)
    assert isinstance(got, Rejected) and got.reason == reason


def test_unknown_kind_decodes_for_counting() -> None:
    got = decode_line(b'{"v":1,"ts":1764216000,"kind":"telepathy","id":"x","run":"r","extra":{"a":1}}')
    assert isinstance(got, Event) and got.kind == "telepathy"


def test_iso_timestamps() -> None:
    got = decode_line(SPEC_EXAMPLE.replace(b"1764216000.125", b'"2025-11-27T04:00:00.125Z"'))
    assert isinstance(got, Event) and got.ts == 1764216000.125
    assert parse_ts("2025-11-27T05:00:00+01:00") == 1764216000.0


@pytest.mark.parametrize(
    ("ok", "value"),
    [
        (b'"input_tokens":999999999999999', 999_999_999_999_999),
        (b'"cost_usd":"999999999.' + b"9" * 40 + b'"', Decimal("999999999." + "9" * 40)),
        (b'"ts":946684800', 946_684_800.0),
        (b'"ts":"2199-12-31T23:59:59Z"', 7_258_118_399.0),
    ],
)
def test_values_just_inside_the_bounds_pass(ok: bytes, value: object) -> None:
    key = ok.split(b":", 1)[0]
    start = SPEC_EXAMPLE.index(key)
    end = min(i for i in (SPEC_EXAMPLE.find(b",", start), SPEC_EXAMPLE.find(b"}", start)) if i > 0)
    got = decode_line(SPEC_EXAMPLE[:start] + ok + SPEC_EXAMPLE[end:])
    assert isinstance(got, Event), got
    seen = {b'"input_tokens"': lambda e: e.usage.input_tokens, b'"cost_usd"': lambda e: e.cost,
            b'"ts"': lambda e: e.ts}[key](got)
    assert seen == value


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("shape", ["object", "inside an event", "array in state"])
def test_deep_nesting_is_rejected_never_raised(depth: int, shape: str) -> None:
    from flightdeck.core.events import decode_lines

    deep = {
        "object": b'{"a":' * depth,
        "inside an event": SPEC_EXAMPLE[:-1] + b',"x":' + b'{"a":' * depth,
        "array in state": SPEC_EXAMPLE[:-1] + b',"state":{"s":' + b"[" * depth + b"]" * depth + b"}}",
    }[shape]
    got = decode_line(deep)
    assert isinstance(got, Rejected) and got.reason in ("not json", "bad state")
    # The block decoder says ValueError (its callers then go line by line), never RecursionError.
    with pytest.raises(ValueError):
        decode_lines(SPEC_EXAMPLE + b"\n" + deep + b"\n")


def test_overlong_line_rejected_without_parsing() -> None:
    got = decode_line(b"x" * (MAX_LINE_BYTES + 1))
    assert isinstance(got, Rejected) and got.reason == "line too long"


def test_format_usd_is_exact() -> None:
    assert format_usd(Decimal("0.01125")) == "0.011250"
    assert format_usd(Decimal("0.0000000375")) == "0.0000000375"
    assert format_usd(Decimal(0)) == "0.000000"
    with pytest.raises(ValueError):
        format_usd(Decimal("-1"))


def test_ids_are_unique_and_contiguous() -> None:
    a, b = IdSource(), IdSource()
    ids_a = [a() for _ in range(3)]
    assert ids_a == [f"{a.prefix}-0", f"{a.prefix}-1", f"{a.prefix}-2"]
    assert a.prefix != b.prefix


def test_commands() -> None:
    cmd = decode_command(b'{"v":1,"id":"c-1","ts":1.0,"cmd":"downgrade","to":{"a":"b"},"target":{"agent":"x"}}')
    assert isinstance(cmd, Command) and cmd.to == {"a": "b"}
    assert cmd.applies_to("r", "x") and not cmd.applies_to("r", "y")
    with pytest.raises(ValueError, match="cmd"):
        decode_command(b'{"v":1,"id":"c-1","ts":1.0,"cmd":"selfdestruct"}')
    with pytest.raises(ValueError):
        decode_command(b"not json")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert isinstance(decode_line(data), (Event, Rejected))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(SPEC_EXAMPLE) - 1))
def test_truncated_lines_are_rejected(cut: int) -> None:
    assert isinstance(decode_line(SPEC_EXAMPLE[:cut]), Rejected)


def test_decode_lines_equals_decode_line_per_line_and_fails_whole_on_a_bad_line() -> None:
    from flightdeck.core.events import decode_lines

    iso = SPEC_EXAMPLE.replace(b'"ts":1764216000.125', b'"ts":"2025-11-27T04:00:00Z"')
    bad_route = SPEC_EXAMPLE.replace(b'"route":"direct"', b'"route":"sideways"')
    mystery = b'{"v":1,"ts":1764216000.0,"kind":"mystery","id":"z-1","run":"r"}'
    lines = [SPEC_EXAMPLE, b"", b"   ", iso, bad_route, mystery]
    got = decode_lines(b"\n".join(lines) + b"\n")
    want = [decode_line(line) for line in lines if line.strip()]
    assert got == want
    assert isinstance(got[2], Rejected) and got[2].reason == "bad route"  # Python-side checks still run
    assert got[1].ts == parse_ts("2025-11-27T04:00:00Z")  # type: ignore[union-attr]
    for bad in (b"not json", b'{"v":1,"ts":1.0,"kind":"x","run":"r"}', b"[1]"):
        with pytest.raises(ValueError):
            decode_lines(SPEC_EXAMPLE + b"\n" + bad + b"\n" + SPEC_EXAMPLE + b"\n")
