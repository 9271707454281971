"""OpenRouter: prompt includes cache reads and writes; usage.cost is the charge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage, reported_cost

BODY = {
    "id": "gen-1764216000-Xr4bEwQ0kP",
    "provider": "Anthropic",
    "model": "anthropic/claude-sonnet-4.5",
    "object": "chat.completion",
    "created": 1764216000,
    "choices": [{"index": 0, "finish_reason": "stop", "native_finish_reason": "end_turn",
                 "message": {"role": "assistant", "content": "Hi", "refusal": None, "reasoning": None}}],
    "usage": {
        "prompt_tokens": 10194,
        "completion_tokens": 420,
        "total_tokens": 10614,
        "cost": 0.0137217,
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 8000, "cache_write_tokens": 2000, "audio_tokens": 0},
        "cost_details": {"upstream_inference_cost": None},
        "completion_tokens_details": {"reasoning_tokens": 100, "image_tokens": 0},
    },
}


def test_cache_reads_and_writes_inside_prompt() -> None:
    assert normalize_usage("openrouter", BODY) == Usage(
        input_tokens=194, output_tokens=420, cache_read_tokens=8000,
        cache_write_tokens=2000, reasoning_tokens=100)


def test_reported_cost_is_exact() -> None:
    cost = reported_cost("openrouter", BODY)
    assert cost == Decimal("0.0137217")
    assert str(cost) == "0.0137217"  # not 0.01372170000000000...
    assert reported_cost("OpenRouter", [{"choices": [], "usage": None}, BODY]) == Decimal("0.0137217")


def test_reported_cost_absent_or_bad() -> None:
    assert reported_cost("openrouter", {"usage": {"prompt_tokens": 1}}) is None
    assert reported_cost("openai", BODY) is None  # OpenAI does not report a charge
    with pytest.raises(ValueError, match=r"openrouter usage.cost"):
        reported_cost("openrouter", {"usage": {"prompt_tokens": 1, "cost": -0.5}})
    with pytest.raises(ValueError, match=r"openrouter usage.cost"):
        reported_cost("openrouter", {"usage": {"prompt_tokens": 1, "cost": float("nan")}})


def test_writes_over_prompt_names_fields() -> None:
    bad = dict(BODY["usage"], prompt_tokens=9000)
    with pytest.raises(ValueError, match=r"cached_tokens \(8000\) \+ usage.prompt_tokens_details"
                                         r".cache_write_tokens \(2000\) exceed usage.prompt_tokens \(9000\)"):
        normalize_usage("openrouter", bad)
