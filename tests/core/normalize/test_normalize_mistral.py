"""Mistral: OpenAI-shaped; cached counts (either name) are inside prompt_tokens."""

from __future__ import annotations

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage

BODY = {
    "id": "cmpl-e5cc70bb28c444948073e77776eb30ef",
    "object": "chat.completion",
    "model": "mistral-large-latest",
    "created": 1764216000,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour", "tool_calls": None},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1630, "completion_tokens": 211, "total_tokens": 1841},
}


def test_plain() -> None:
    assert normalize_usage("mistral", BODY) == Usage(input_tokens=1630, output_tokens=211)


def test_cached_tokens_either_name_taken_once() -> None:
    details = dict(BODY["usage"], prompt_tokens_details={"cached_tokens": 1024})
    legacy = dict(BODY["usage"], num_cached_tokens=1024)
    both = dict(details, num_cached_tokens=1024)
    expected = Usage(input_tokens=606, output_tokens=211, cache_read_tokens=1024)
    for usage in (details, legacy, both):
        assert normalize_usage("mistralai", {"usage": usage}) == expected


def test_completion_event_data_is_unwrapped() -> None:
    # mistralai's CompletionEvent: {"data": CompletionChunk}; the last one carries usage.
    from flightdeck.core.normalize import read_call_usage

    first = {"data": {"id": "c", "object": "chat.completion.chunk", "model": "mistral-small-latest",
                      "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}}
    last = {"data": {"id": "c", "object": "chat.completion.chunk", "model": "mistral-small-latest",
                     "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}}}
    assert normalize_usage("mistral", last) == Usage(input_tokens=14, output_tokens=9)
    assert normalize_usage("mistral", [first, last]) == Usage(input_tokens=14, output_tokens=9)
    reading = read_call_usage("mistral", first)
    assert reading.usage is None and "last CompletionEvent" in reading.problems[0]
