"""Cohere: bill from billed_units, never from tokens (which add template tokens)."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage, normalize_usage_partial

V1_BODY = {
    "response_id": "c1b5b6f8-0e0e-4a35-8ee3-1b0b3b1f0a3e",
    "text": "LLMs are neural networks...",
    "generation_id": "f5d1b7a4-4e02-4d57-9b2b-2a8b1b2c3d4e",
    "chat_history": [],
    "finish_reason": "COMPLETE",
    "meta": {
        "api_version": {"version": "1"},
        "billed_units": {"input_tokens": 17, "output_tokens": 64},
        "tokens": {"input_tokens": 83, "output_tokens": 64},
    },
}

V2_BODY = {
    "id": "5a50480a-cf52-46f0-af01-53d18539bd31",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 5.0, "output_tokens": 418.0},
        "tokens": {"input_tokens": 71, "output_tokens": 418},
    },
}


def test_v1_billed_units_not_tokens() -> None:
    assert normalize_usage("cohere", V1_BODY) == Usage(input_tokens=17, output_tokens=64)
    assert normalize_usage("cohere", V1_BODY, api="v1") == Usage(input_tokens=17, output_tokens=64)


def test_v1_stream_end_event() -> None:
    event = {"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE",
             "response": V1_BODY}
    assert normalize_usage("cohere", [{"event_type": "text-generation", "text": "x"}, event]) == \
        Usage(input_tokens=17, output_tokens=64)


def test_v2_integral_floats_and_message_end() -> None:
    expected = Usage(input_tokens=5, output_tokens=418)
    assert normalize_usage("cohere", V2_BODY, api="v2") == expected
    end = {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": V2_BODY["usage"]}}
    assert normalize_usage("cohere", end) == expected


def test_api_picks_the_container() -> None:
    with pytest.raises(ValueError, match="looked for 'meta'"):
        normalize_usage("cohere", V2_BODY, api="v1")


def test_tokens_without_billed_units_is_an_error() -> None:
    body = {"usage": {"tokens": {"input_tokens": 71, "output_tokens": 418}}}
    with pytest.raises(ValueError, match=r"cohere usage.billed_units: missing"):
        normalize_usage("cohere", body)
    usage, problems = normalize_usage_partial("cohere", body)
    assert usage == Usage() and len(problems) == 1


def test_fractional_billed_units_rejected() -> None:
    with pytest.raises(ValueError, match=r"meta.billed_units.input_tokens"):
        normalize_usage("cohere", {"meta": {"billed_units": {"input_tokens": 1.5}}})
