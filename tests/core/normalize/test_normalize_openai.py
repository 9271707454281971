"""OpenAI Chat Completions and Responses: cache and reasoning are INSIDE the totals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage, normalize_usage_partial

CHAT_BODY = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1764216000,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "refusal": None,
                                         "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_6b68a8204b",
}

RESPONSES_BODY = {
    "id": "resp_68af",
    "object": "response",
    "created_at": 1764216000,
    "status": "completed",
    "model": "o3-2025-04-16",
    "output": [],
    "usage": {
        "input_tokens": 328,
        "input_tokens_details": {"cached_tokens": 256},
        "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 40},
        "total_tokens": 380,
    },
}


def test_chat_prompt_includes_cached_tokens() -> None:
    u = normalize_usage("openai", CHAT_BODY)
    assert u == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920)
    assert u.prompt_tokens == 2006  # the disjoint buckets add back to the prompt


def test_chat_usage_object_alone_and_api_forced() -> None:
    assert normalize_usage("openai", CHAT_BODY["usage"], api="chat") == normalize_usage("openai", CHAT_BODY)


def test_chat_stream_final_chunk_and_whole_stream(payload) -> None:
    chunks = payload("openai_chat_stream.json")
    expected = Usage(input_tokens=230, output_tokens=389, cache_read_tokens=1920, reasoning_tokens=320)
    assert normalize_usage("openai", chunks[-1]) == expected  # choices empty, usage set
    assert normalize_usage("openai", chunks) == expected


def test_chat_stream_without_include_usage_is_an_error(payload) -> None:
    chunks = payload("openai_chat_stream.json")[:-1]
    with pytest.raises(ValueError, match="openai: no usage found in payload"):
        normalize_usage("openai", chunks)


def test_responses_input_includes_cached_output_includes_reasoning() -> None:
    u = normalize_usage("openai", RESPONSES_BODY)
    assert u == Usage(input_tokens=72, output_tokens=52, cache_read_tokens=256, reasoning_tokens=40)
    assert normalize_usage("openai", RESPONSES_BODY["usage"], api="responses") == u


def test_responses_completed_event_and_stream(payload) -> None:
    events = payload("openai_responses_stream.json")
    expected = Usage(input_tokens=1024, output_tokens=812, cache_read_tokens=4096, reasoning_tokens=768)
    assert normalize_usage("openai", events[-1]) == expected
    assert normalize_usage("openai", events) == expected


def test_azure_alias_and_case() -> None:
    assert normalize_usage("Azure_OpenAI", CHAT_BODY) == normalize_usage("openai", CHAT_BODY)
    assert normalize_usage("AZURE", CHAT_BODY) == normalize_usage("openai", CHAT_BODY)


def test_sdk_objects_pydantic_and_attributes() -> None:
    class FakeModel:  # stands in for an openai-python pydantic model
        def model_dump(self) -> dict:
            return dict(CHAT_BODY)

    assert normalize_usage("openai", FakeModel()).cache_read_tokens == 1920
    obj = SimpleNamespace(
        usage=SimpleNamespace(
            prompt_tokens=100, completion_tokens=20,
            prompt_tokens_details=SimpleNamespace(cached_tokens=30),
            completion_tokens_details=SimpleNamespace(reasoning_tokens=5),
        )
    )
    assert normalize_usage("openai", obj) == Usage(
        input_tokens=70, output_tokens=20, cache_read_tokens=30, reasoning_tokens=5
    )


def test_json_text_is_accepted() -> None:
    text = '{"usage": {"prompt_tokens": 10, "completion_tokens": 2}}'
    assert normalize_usage("openai", text) == Usage(input_tokens=10, output_tokens=2)


def test_negative_count_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^openai usage\.prompt_tokens: expected a non-negative int, got -3$"):
        normalize_usage("openai", {"usage": {"prompt_tokens": -3, "completion_tokens": 1}})


def test_cached_above_prompt_names_both_fields() -> None:
    bad = {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 120}}
    with pytest.raises(ValueError) as info:
        normalize_usage("openai", bad)
    message = str(info.value)
    assert "usage.prompt_tokens_details.cached_tokens (120)" in message
    assert "usage.prompt_tokens (100)" in message


def test_reasoning_above_completion_is_an_error() -> None:
    bad = {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 9}}
    with pytest.raises(ValueError, match="reasoning_tokens"):
        normalize_usage("openai", bad)


def test_bool_and_fraction_are_not_counts() -> None:
    with pytest.raises(ValueError, match=r"usage.completion_tokens"):
        normalize_usage("openai", {"prompt_tokens": 1, "completion_tokens": True})
    with pytest.raises(ValueError, match=r"usage.prompt_tokens"):
        normalize_usage("openai", {"prompt_tokens": 1.5})


def test_unknown_api_is_rejected_with_its_name() -> None:
    with pytest.raises(ValueError, match="openai api"):
        normalize_usage("openai", CHAT_BODY, api="assistants")


def test_partial_keeps_what_it_can_read() -> None:
    usage, problems = normalize_usage_partial(
        "openai",
        {"usage": {"prompt_tokens": 500, "completion_tokens": "lots",
                   "prompt_tokens_details": {"cached_tokens": 900}}},
    )
    assert usage == Usage(input_tokens=0, output_tokens=0, cache_read_tokens=900)
    assert any("usage.completion_tokens" in p for p in problems)
    assert any("cached_tokens (900)" in p for p in problems)


def test_embeddings_usage_has_no_completion() -> None:
    body = {"object": "list", "data": [], "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    assert normalize_usage("openai", body) == Usage(input_tokens=8)


# -- 2026 fields, built with openai-python's own types (openai 3.57) -----------------


def test_chat_cache_writes_inside_the_prompt() -> None:
    from openai.types import CompletionUsage

    usage = CompletionUsage.model_validate({
        "prompt_tokens": 5000, "completion_tokens": 300, "total_tokens": 5300,
        "prompt_tokens_details": {"cached_tokens": 3000, "cache_write_tokens": 1500},
        "completion_tokens_details": {"reasoning_tokens": 200}})
    assert normalize_usage("openai", usage) == Usage(
        input_tokens=500, output_tokens=300, cache_read_tokens=3000, cache_write_tokens=1500,
        reasoning_tokens=200)


def test_responses_cache_writes_inside_the_input() -> None:
    from openai.types.responses import ResponseUsage

    usage = ResponseUsage.model_validate({
        "input_tokens": 9000, "output_tokens": 100, "total_tokens": 9100,
        "input_tokens_details": {"cached_tokens": 4000, "cache_write_tokens": 2000,
                                 "cache_write_tokens_details": {"ttl_30m_tokens": 2000, "ttl_12h_tokens": 0}},
        "output_tokens_details": {"reasoning_tokens": 0}})
    assert normalize_usage("openai", usage) == Usage(
        input_tokens=3000, output_tokens=100, cache_read_tokens=4000, cache_write_tokens=2000)


def test_service_tier_of_a_completion_and_a_stream() -> None:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from flightdeck.core.normalize import read_call_usage, service_tier

    completion = ChatCompletion.model_validate({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-5", "service_tier": "flex",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})
    assert service_tier("openai", completion) == "flex"
    chunks = [ChatCompletionChunk.model_validate({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5",
        "service_tier": "priority", "choices": [], **extra})
        for extra in ({}, {"usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})]
    reading = read_call_usage("openai", chunks)
    assert reading.service_tier == "priority"
    assert reading.usage == Usage(input_tokens=10, output_tokens=2)


def test_service_tier_of_a_responses_completed_event() -> None:
    from flightdeck.core.normalize import service_tier

    event = {"type": "response.completed", "sequence_number": 9, "response": {
        "id": "resp_1", "object": "response", "service_tier": "default",
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}}
    assert service_tier("openai", event) == "default"
    assert service_tier("openai", {"usage": {"prompt_tokens": 1}}) is None


def test_chunk_without_usage_names_include_usage() -> None:
    with pytest.raises(ValueError, match=r"stream_options=\{'include_usage': True\}"):
        normalize_usage("openai", {"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": "x"}}]})
    with pytest.raises(ValueError, match=r"response.completed"):
        normalize_usage("openai", {"type": "response.output_text.delta", "delta": "x"})
