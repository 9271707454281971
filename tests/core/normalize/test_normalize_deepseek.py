"""DeepSeek: prompt = cache hit + cache miss; reasoning inside completion."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage

REASONER = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "created": 1764216000,
    "model": "deepseek-reasoner",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "9.11 < 9.8",
                                         "reasoning_content": "..."}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 1536,
        "completion_tokens": 760,
        "total_tokens": 2296,
        "prompt_tokens_details": {"cached_tokens": 1280},
        "completion_tokens_details": {"reasoning_tokens": 700},
        "prompt_cache_hit_tokens": 1280,
        "prompt_cache_miss_tokens": 256,
    },
    "system_fingerprint": "fp_5417b77867_prod0425fp8",
}


def test_hit_and_miss_split_the_prompt() -> None:
    u = normalize_usage("deepseek", REASONER)
    # cached_tokens is an alias of the hit count: counted once, not twice
    assert u == Usage(input_tokens=256, output_tokens=760, cache_read_tokens=1280, reasoning_tokens=700)


def test_only_prompt_and_hit() -> None:
    u = normalize_usage("deepseek", {"prompt_tokens": 100, "completion_tokens": 5,
                                     "prompt_cache_hit_tokens": 64})
    assert u == Usage(input_tokens=36, output_tokens=5, cache_read_tokens=64)


def test_inconsistent_split_names_all_three() -> None:
    bad = dict(REASONER["usage"], prompt_cache_miss_tokens=300)
    with pytest.raises(ValueError) as info:
        normalize_usage("deepseek", bad)
    text = str(info.value)
    for field in ("prompt_cache_hit_tokens (1280)", "prompt_cache_miss_tokens (300)", "prompt_tokens (1536)"):
        assert field in text
