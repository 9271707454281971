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
    with pytest.raises(ValueError, match=r"ephemeral_1h_input_tokens \(9\) exceeds usage.cache_creation_input_tokens \(5\)"):
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
    with pytest.raises(ValueError, match="^anthropic: no usage found in payload$"):
        normalize_usage("anthropic", {"type": "ping"})
    with pytest.raises(ValueError, match="^anthropic usage.cache_read_input_tokens: expected a non-negative int"):
        normalize_usage("anthropic", {"usage": {"input_tokens": 1, "cache_read_input_tokens": "x"}})


def test_partial_on_broken_stream(payload) -> None:
    events = payload("anthropic_stream.json")
    events[-2] = {"type": "message_delta", "usage": {"output_tokens": -1}}
    usage, problems = normalize_usage_partial("anthropic", events)
    assert usage.input_tokens == 472 and usage.output_tokens == 0
    assert problems == ["anthropic usage.output_tokens: expected a non-negative int, got -1"]
