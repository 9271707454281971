"""LiteLLM StandardLoggingPayload: OpenAI semantics after LiteLLM's rewrite."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage, reported_cost
from flightdeck.core.normalize.litellm import payload_model, payload_provider


def test_standard_logging_payload_anthropic(payload) -> None:
    p = payload("litellm_standard_logging_anthropic.json")
    u = normalize_usage("litellm", p)
    # prompt 18046 = 472 plain + 15360 read + 2214 written
    assert u == Usage(input_tokens=472, output_tokens=504, cache_read_tokens=15360,
                      cache_write_tokens=2214, cache_write_1h_tokens=2000)
    assert payload_provider(p) == "anthropic"
    assert payload_model(p) == "claude-sonnet-4-5-20250929"


def test_reported_cost(payload) -> None:
    p = payload("litellm_standard_logging_anthropic.json")
    assert reported_cost("litellm", p) == Decimal("0.0183474")
    del p["response_cost"]
    assert reported_cost("litellm", p) == Decimal("0.0183474")  # hidden_params string


def test_older_litellm_prompt_without_writes(payload) -> None:
    p = payload("litellm_standard_logging_anthropic.json")
    p["prompt_tokens"] = 15832
    uo = p["metadata"]["usage_object"]
    uo["prompt_tokens"] = 15832  # 472 + 15360: writes were not added in older releases
    del uo["prompt_tokens_details"]["cache_creation_token_details"]
    assert normalize_usage("litellm", p) == Usage(input_tokens=472, output_tokens=504,
                                                  cache_read_tokens=15360, cache_write_tokens=2214)


def test_openai_upstream_without_usage_object() -> None:
    p = {"id": "x", "call_type": "completion", "response_cost": 0.00042, "model": "gpt-4o-mini",
         "custom_llm_provider": "openai", "prompt_tokens": 2000, "completion_tokens": 100,
         "total_tokens": 2100, "metadata": {"user_api_key_hash": None}}
    assert normalize_usage("litellm", p) == Usage(input_tokens=2000, output_tokens=100)


def test_model_response_usage() -> None:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
            "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                      "prompt_tokens_details": {"cached_tokens": 768},
                      "completion_tokens_details": {"reasoning_tokens": 0}}}
    assert normalize_usage("litellm", body) == Usage(input_tokens=232, output_tokens=50,
                                                     cache_read_tokens=768)


def test_reads_above_prompt_is_an_error(payload) -> None:
    p = copy.deepcopy(payload("litellm_standard_logging_anthropic.json"))
    p["metadata"]["usage_object"]["prompt_tokens"] = 100
    with pytest.raises(ValueError, match=r"litellm metadata.usage_object.cache_read_input_tokens \(15360\)"):
        normalize_usage("litellm", p)


# -- LiteLLM could not price it: its 0 is not a charge ---------------------------------
# litellm/types/utils.py StandardLoggingPayload.response_cost_failure_debug_info
# (StandardLoggingModelCostFailureDebugInformation: error_str, traceback_str, model, ...)
# and zero_cost_diagnostic (StandardLoggingZeroCostDiagnostic: reason, ...).


def _unpriced(p: dict) -> dict:
    p = copy.deepcopy(p)
    p["response_cost"] = 0.0
    p["hidden_params"]["response_cost"] = None
    p["response_cost_failure_debug_info"] = {
        "error_str": "This model isn't mapped yet. model=claude-sonnet-4-5-20250929, custom_llm_provider=anthropic",
        "traceback_str": "Traceback ...", "model": "claude-sonnet-4-5-20250929", "cache_hit": None,
        "custom_llm_provider": "anthropic", "base_model": None, "call_type": "acompletion",
        "custom_pricing": False}
    return p


def test_failed_cost_is_not_reported(payload) -> None:
    from flightdeck.core.normalize import read_call_usage

    p = _unpriced(payload("litellm_standard_logging_anthropic.json"))
    assert reported_cost("litellm", p) is None
    reading = read_call_usage("litellm", p)
    assert reading.usage is not None and reading.usage.input_tokens == 472
    assert any("LiteLLM could not price this call (This model isn't mapped yet" in n for n in reading.notes)
    p["response_cost"] = None
    assert reported_cost("litellm", p) is None


def test_zero_cost_diagnostic_is_not_reported(payload) -> None:
    p = payload("litellm_standard_logging_anthropic.json")
    p["response_cost"] = 0
    p["zero_cost_diagnostic"] = {"reason": "missing_pricing_key", "pricing_model": "token",
                                 "missing_pricing_keys": ["input_cost_per_token"]}
    assert reported_cost("litellm", p) is None


def test_a_plain_zero_is_what_was_charged(payload) -> None:
    p = payload("litellm_standard_logging_anthropic.json")
    p["response_cost"] = 0.0  # e.g. a LiteLLM cache hit: nothing was charged
    p["cache_hit"] = True
    assert reported_cost("litellm", p) == Decimal(0)
