"""Anthropic Messages: input EXCLUDES cache; stream deltas are cumulative."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage, normalize_usage_partial

MESSAGE = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Hi! My name is Claude."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 12000,
        "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        "output_tokens": 503,
        "service_tier": "standard",
        "server_tool_use": None,
    },
}


def test_message_buckets_are_already_disjoint() -> None:
    u = normalize_usage("anthropic", MESSAGE)
    assert u == Usage(
        input_tokens=2095, output_tokens=503, cache_read_tokens=12000,
        cache_write_tokens=3000, cache_write_1h_tokens=2000,
    )
    assert u.prompt_tokens == 2095 + 3000 + 12000
    assert normalize_usage("anthropic", MESSAGE["usage"]) == u


def test_stream_deltas_are_cumulative_not_added(payload) -> None:
    events = payload("anthropic_stream.json")
    u = normalize_usage("anthropic", events)
    # Two deltas (120 then 503): the last running total wins; 2 + 120 + 503 would be wrong.
    assert u == Usage(
        input_tokens=472, output_tokens=503, cache_read_tokens=15360,
        cache_write_tokens=2048, cache_write_1h_tokens=2048,
    )


def test_stream_without_final_delta_uses_message_start(payload) -> None:
    events = payload("anthropic_stream.json")[:3]
    assert normalize_usage("anthropic", events).output_tokens == 2


def test_single_message_start_event(payload) -> None:
    start = payload("anthropic_stream.json")[0]
    assert normalize_usage("anthropic", start).cache_read_tokens == 15360


def test_split_without_total_makes_the_total() -> None:
    u = normalize_usage("anthropic", {
        "input_tokens": 10, "output_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 3},
    })
    assert (u.cache_write_tokens, u.cache_write_1h_tokens) == (10, 3)


def test_one_hour_above_total_is_an_error() -> None:
    bad = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 5,
           "cache_creation": {"ephemeral_1h_input_tokens": 9}}
    with pytest.raises(ValueError,
                       match=r"ephemeral_1h_input_tokens \(9\) exceeds usage.cache_creation_input_tokens \(5\)"):
        normalize_usage("anthropic", bad)


def test_sdk_event_objects() -> None:
    events = [
        SimpleNamespace(type="message_start", message=SimpleNamespace(
            usage=SimpleNamespace(input_tokens=40, output_tokens=1, cache_read_input_tokens=None,
                                  cache_creation_input_tokens=None))),
        SimpleNamespace(type="message_delta", usage=SimpleNamespace(output_tokens=77)),
    ]
    assert normalize_usage("claude", events) == Usage(input_tokens=40, output_tokens=77)


def test_no_usage_and_bad_field_messages() -> None:
    with pytest.raises(ValueError, match=r"^anthropic: no usage found in payload \(ping carries no usage"):
        normalize_usage("anthropic", {"type": "ping"})
    with pytest.raises(ValueError, match=r"^anthropic: no usage found in payload$"):
        normalize_usage("anthropic", {"id": "msg_1"})
    with pytest.raises(ValueError, match=r"^anthropic usage.cache_read_input_tokens: expected a non-negative int"):
        normalize_usage("anthropic", {"usage": {"input_tokens": 1, "cache_read_input_tokens": "x"}})


def test_partial_on_broken_stream(payload) -> None:
    events = payload("anthropic_stream.json")
    events[-2] = {"type": "message_delta", "usage": {"output_tokens": -1}}
    usage, problems = normalize_usage_partial("anthropic", events)
    assert usage.input_tokens == 472 and usage.output_tokens == 0
    assert problems == ["anthropic usage.output_tokens: expected a non-negative int, got -1"]


# -- 2026 fields, built with anthropic-sdk-python's own types (anthropic 2.14) --------


def test_thinking_tokens_are_reasoning() -> None:
    from anthropic.types import Usage as SdkUsage

    usage = SdkUsage.model_validate({
        "input_tokens": 100, "output_tokens": 900, "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0, "output_tokens_details": {"thinking_tokens": 700},
        "service_tier": "standard", "speed": "standard"})
    assert normalize_usage("anthropic", usage) == Usage(input_tokens=100, output_tokens=900,
                                                        reasoning_tokens=700)


def test_thinking_tokens_beyond_output_are_reported() -> None:
    with pytest.raises(ValueError, match=r"output_tokens_details.thinking_tokens \(10\) exceeds usage.output_tokens"):
        normalize_usage("anthropic", {"input_tokens": 1, "output_tokens": 5,
                                      "output_tokens_details": {"thinking_tokens": 10}})


def test_service_tier_and_speed_from_message_and_stream() -> None:
    from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStartEvent

    from flightdeck.core.normalize import read_call_usage, service_tier, speed

    message = Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-opus-4-6",
        "content": [], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20, "service_tier": "batch", "speed": "fast"}})
    assert service_tier("anthropic", message) == "batch"
    assert speed("anthropic", message) == "fast"
    start = RawMessageStartEvent.model_validate({"type": "message_start", "message": {
        **message.model_dump(), "usage": {"input_tokens": 10, "output_tokens": 1,
                                          "service_tier": "priority", "speed": "fast"}}})
    delta = RawMessageDeltaEvent.model_validate({
        "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 55, "output_tokens_details": {"thinking_tokens": 40}}})
    reading = read_call_usage("anthropic", [start, delta])
    assert reading.usage == Usage(input_tokens=10, output_tokens=55, reasoning_tokens=40)
    assert (reading.service_tier, reading.speed) == ("priority", "fast")
    assert reading.problems == () and reading.notes == ()


def test_lone_message_delta_prices_writes_at_the_1h_rate_and_says_so() -> None:
    from anthropic.types import RawMessageDeltaEvent

    from flightdeck.core.normalize import read_call_usage

    delta = RawMessageDeltaEvent.model_validate({
        "type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 30, "output_tokens": 50, "cache_creation_input_tokens": 4000,
                  "cache_read_input_tokens": 0}})
    reading = read_call_usage("anthropic", delta)
    assert reading.usage == Usage(input_tokens=30, output_tokens=50, cache_write_tokens=4000,
                                  cache_write_1h_tokens=4000)
    assert len(reading.notes) == 1 and "no 1h/5m cache-write split" in reading.notes[0]
    assert "final message or the list of stream events" in reading.notes[0]
    # The same delta after its message_start: the split of message_start is kept, no note.
    start = {"type": "message_start", "message": {"usage": {
        "input_tokens": 30, "output_tokens": 1, "cache_creation_input_tokens": 4000,
        "cache_creation": {"ephemeral_5m_input_tokens": 4000, "ephemeral_1h_input_tokens": 0}}}}
    reading = read_call_usage("anthropic", [start, delta])
    assert reading.usage == Usage(input_tokens=30, output_tokens=50, cache_write_tokens=4000)
    assert reading.notes == ()


def test_lone_delta_without_writes_has_no_note() -> None:
    from flightdeck.core.normalize import read_call_usage

    reading = read_call_usage("anthropic", {"type": "message_delta", "usage": {
        "input_tokens": 3, "output_tokens": 4}})
    assert reading.usage == Usage(input_tokens=3, output_tokens=4) and reading.notes == ()


def test_message_stop_alone_is_missing_with_a_hint() -> None:
    from anthropic.types import RawMessageStopEvent

    from flightdeck.core.normalize import read_call_usage

    reading = read_call_usage("anthropic", RawMessageStopEvent(type="message_stop"))
    assert reading.usage is None
    assert "message_stop carries no usage" in reading.problems[0]
