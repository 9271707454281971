"""Ollama: native eval counts (prompt absent = fully KV-cached), and /v1."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage


def test_chat_stream_final_object(payload) -> None:
    chunks = payload("ollama_chat_stream.json")
    assert normalize_usage("ollama", chunks) == Usage(input_tokens=26, output_tokens=282)
    assert normalize_usage("ollama", chunks[-1]) == Usage(input_tokens=26, output_tokens=282)


def test_generate_with_prompt_fully_cached() -> None:
    body = {"model": "qwen3:8b", "created_at": "2026-11-27T05:01:00Z", "response": "Yes.",
            "done": True, "done_reason": "stop", "context": [1, 2, 3],
            "total_duration": 120000000, "load_duration": 900000, "eval_count": 3,
            "eval_duration": 90000000}
    assert normalize_usage("ollama", body) == Usage(input_tokens=0, output_tokens=3)


def test_openai_compatible_endpoint() -> None:
    body = {"id": "chatcmpl-417", "object": "chat.completion", "created": 1764216000,
            "model": "llama3.2", "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}}
    assert normalize_usage("ollama", body) == Usage(input_tokens=31, output_tokens=9)


def test_intermediate_chunk_says_to_pass_the_final_one(payload) -> None:
    with pytest.raises(ValueError, match="done=false"):
        normalize_usage("ollama", payload("ollama_chat_stream.json")[0])


def test_bad_eval_count() -> None:
    with pytest.raises(ValueError, match=r"^ollama eval_count: expected a non-negative int"):
        normalize_usage("ollama", {"done": True, "prompt_eval_count": 3, "eval_count": -1})


def test_responses_endpoint_reports_cached_prompt() -> None:
    # ollama openai/responses.go ResponsesUsage: input_tokens_details.cached_tokens,
    # inside input_tokens (OpenAI Responses semantics).
    body = {"id": "resp_1", "object": "response", "model": "qwen3:8b", "usage": {
        "input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
        "input_tokens_details": {"cached_tokens": 100}, "output_tokens_details": {"reasoning_tokens": 12}}}
    assert normalize_usage("ollama", body) == Usage(input_tokens=20, output_tokens=30,
                                                    cache_read_tokens=100, reasoning_tokens=12)
