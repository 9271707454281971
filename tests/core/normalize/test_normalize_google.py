"""Gemini usageMetadata: prompt INCLUDES cached; candidates EXCLUDE thoughts."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage

REST_BODY = {
    "candidates": [{"content": {"parts": [{"text": "42"}], "role": "model"},
                    "finishReason": "STOP", "index": 0}],
    "usageMetadata": {
        "promptTokenCount": 12000,
        "candidatesTokenCount": 350,
        "totalTokenCount": 13630,
        "cachedContentTokenCount": 8000,
        "thoughtsTokenCount": 1200,
        "toolUsePromptTokenCount": 80,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12000}],
        "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 8000}],
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "mLzzaK2JF9XgnvgP2Y2XyAk",
}

EXPECTED = Usage(input_tokens=4080, output_tokens=1550, cache_read_tokens=8000, reasoning_tokens=1200)


def test_rest_body() -> None:
    u = normalize_usage("google", REST_BODY)
    assert u == EXPECTED
    # total = prompt + toolUse + candidates + thoughts: nothing lost, nothing doubled
    assert u.prompt_tokens + u.output_tokens == REST_BODY["usageMetadata"]["totalTokenCount"]


def test_snake_case_sdk_dump_and_aliases() -> None:
    snake = {"usage_metadata": {
        "prompt_token_count": 12000, "candidates_token_count": 350, "total_token_count": 13630,
        "cached_content_token_count": 8000, "thoughts_token_count": 1200,
        "tool_use_prompt_token_count": 80}}
    for name in ("gemini", "Vertex", "vertex_ai"):
        assert normalize_usage(name, snake) == EXPECTED


def test_stream_chunks_last_metadata_wins() -> None:
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "4"}]}}],
         "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20}},
        {"candidates": [{"content": {"parts": [{"text": "2"}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22}},
    ]
    assert normalize_usage("google", chunks) == Usage(input_tokens=20, output_tokens=2)


def test_no_thinking_model() -> None:
    u = normalize_usage("google", {"usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4}})
    assert u == Usage(input_tokens=9, output_tokens=4)


def test_cached_above_prompt_names_both() -> None:
    with pytest.raises(ValueError,
                       match=r"cachedContentTokenCount \(10\) exceeds usageMetadata.promptTokenCount \(5\)"):
        normalize_usage("google", {"usageMetadata": {"promptTokenCount": 5, "cachedContentTokenCount": 10}})


def test_snake_error_uses_snake_name() -> None:
    with pytest.raises(ValueError, match=r"usage_metadata.prompt_token_count: expected"):
        normalize_usage("google", {"usage_metadata": {"prompt_token_count": "many"}})


def test_openai_compatible_endpoint() -> None:
    body = {"id": "x", "object": "chat.completion", "model": "gemini-2.5-flash", "choices": [],
            "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
                      "prompt_tokens_details": {"cached_tokens": 100}}}
    assert normalize_usage("gemini", body) == Usage(input_tokens=20, output_tokens=40, cache_read_tokens=100)


# -- 2026 fields of python-genai types.py ------------------------------------------------


def test_gemini_service_tier_and_vertex_traffic_type() -> None:
    from flightdeck.core.normalize import read_call_usage, service_tier

    gemini = {"candidates": [], "usageMetadata": {
        "promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120, "serviceTier": "flex"}}
    reading = read_call_usage("google", gemini)
    assert reading.service_tier == "flex" and reading.usage == Usage(input_tokens=100, output_tokens=20)
    vertex = {"usage_metadata": {"prompt_token_count": 10, "candidates_token_count": 2,
                                 "traffic_type": "ON_DEMAND_PRIORITY"}}
    assert service_tier("vertex_ai", vertex) == "priority"
    unspecified = {"usageMetadata": {"promptTokenCount": 1, "serviceTier": "unspecified"}}
    assert service_tier("google", unspecified) == "standard"
    assert service_tier("google", {"usageMetadata": {"promptTokenCount": 1}}) is None


def test_live_api_usage_metadata_response_token_count() -> None:
    # python-genai UsageMetadata (Live API): response_token_count, not candidates_token_count.
    live = {"usage_metadata": {"prompt_token_count": 50, "cached_content_token_count": 10,
                               "response_token_count": 30, "thoughts_token_count": 5}}
    assert normalize_usage("google", live) == Usage(input_tokens=40, output_tokens=35, cache_read_tokens=10,
                                                    reasoning_tokens=5)
