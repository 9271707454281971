"""Provider names, generic detection, never-raise partial mode, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.events import Usage
from flightdeck.core.normalize import (
    canonical_provider,
    normalize_usage,
    normalize_usage_partial,
    read_call_usage,
    reported_cost,
)

PROVIDERS = ["openai", "anthropic", "google", "bedrock", "cohere", "deepseek", "mistral",
             "openrouter", "ollama", "litellm", "otel", "somecloud"]

# Field names the adapters look for, so random payloads reach deep code paths.
KEYS = [
    "usage", "prompt_tokens", "completion_tokens", "prompt_tokens_details", "cached_tokens",
    "cache_write_tokens", "completion_tokens_details", "reasoning_tokens", "input_tokens",
    "output_tokens", "input_tokens_details", "output_tokens_details", "type", "message",
    "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation",
    "ephemeral_1h_input_tokens", "usageMetadata", "promptTokenCount", "cachedContentTokenCount",
    "candidatesTokenCount", "thoughtsTokenCount", "inputTokens", "outputTokens",
    "cacheReadInputTokens", "cacheWriteInputTokens", "cacheDetails", "ttl", "metadata",
    "amazon-bedrock-invocationMetrics", "headers", "ResponseMetadata", "HTTPHeaders", "meta",
    "billed_units", "tokens", "prompt_cache_hit_tokens", "prompt_cache_miss_tokens",
    "eval_count", "prompt_eval_count", "done", "usage_object", "response_cost", "cost",
    "attributes", "key", "value", "intValue", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens", "response",
    "delta", "event_type", "message_start", "message_delta", "response.completed",
    # 2026 fields: tiers, speed, thinking, Mistral's event wrapper, LiteLLM's cost failures
    "service_tier", "speed", "serviceTier", "trafficType", "openai.response.service_tier",
    "thinking_tokens", "data", "message_stop", "object", "chat.completion.chunk", "choices",
    "response_cost_failure_debug_info", "zero_cost_diagnostic", "error_str", "responseTokenCount",
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-5, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["12", "-1", "x", "", "1h", "²"]),
    st.sampled_from(KEYS),
)
json_ish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=6),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(provider=st.sampled_from(PROVIDERS), raw=json_ish,
       api=st.sampled_from([None, "chat", "responses", "v1", "v2", "bogus"]))
def test_random_payloads_raise_only_value_error(provider: str, raw: object, api: str | None) -> None:
    try:
        u = normalize_usage(provider, raw, api)
    except ValueError:
        pass
    else:
        _check_invariants(u)
    usage, problems = normalize_usage_partial(provider, raw, api)  # must never raise
    _check_invariants(usage)
    assert all(isinstance(p, str) and p for p in problems)
    try:
        reported_cost(provider, raw)
    except ValueError:
        pass
    reading = read_call_usage(provider, raw, api)  # must never raise either
    if reading.usage is not None:
        _check_invariants(reading.usage)
    assert all(isinstance(t, str) and t for t in (*reading.problems, *reading.notes))
    assert reading.service_tier is None or isinstance(reading.service_tier, str)
    assert reading.speed is None or isinstance(reading.speed, str)
    if reading.usage is None:  # no usage seen: always said why
        assert any("no usage found" in p for p in reading.problems)


def _check_invariants(u: Usage) -> None:
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                 "reasoning_tokens", "cache_write_1h_tokens"):
        value = getattr(u, name)
        assert isinstance(value, int) and value >= 0, name
    assert u.reasoning_tokens <= u.output_tokens
    assert u.cache_write_1h_tokens <= u.cache_write_tokens


@settings(max_examples=200, deadline=None)
@given(cached=st.integers(0, 10**7), plain=st.integers(0, 10**7), reasoning=st.integers(0, 10**6),
       visible=st.integers(0, 10**6))
def test_openai_buckets_always_sum_to_the_prompt(cached: int, plain: int, reasoning: int, visible: int) -> None:
    usage = {"prompt_tokens": cached + plain, "completion_tokens": reasoning + visible,
             "prompt_tokens_details": {"cached_tokens": cached},
             "completion_tokens_details": {"reasoning_tokens": reasoning}}
    u = normalize_usage("openai", usage)
    assert u.prompt_tokens == cached + plain
    assert (u.input_tokens, u.cache_read_tokens, u.reasoning_tokens) == (plain, cached, reasoning)


def test_aliases_and_case() -> None:
    assert canonical_provider(" Gemini ") == "google"
    assert canonical_provider("vertex_ai") == "google"
    assert canonical_provider("AWS") == "bedrock"
    assert canonical_provider("azure-openai") == "openai"
    assert canonical_provider("Anthropic") == "anthropic"
    assert canonical_provider("groq") == "groq"


def test_unknown_provider_detects_common_shapes() -> None:
    openai_like = {"usage": {"prompt_tokens": 100, "completion_tokens": 5,
                             "prompt_tokens_details": {"cached_tokens": 60}}}
    assert normalize_usage("groq", openai_like) == Usage(input_tokens=40, output_tokens=5,
                                                         cache_read_tokens=60)
    anthropic_like = {"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 60}}
    assert normalize_usage("minimax", anthropic_like) == Usage(input_tokens=10, output_tokens=5,
                                                               cache_read_tokens=60)
    gemini_like = {"usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1}}
    assert normalize_usage("aistudio", gemini_like) == Usage(input_tokens=9, output_tokens=1)


def test_unknown_provider_unknown_shape_names_the_provider() -> None:
    with pytest.raises(ValueError, match=r"^somecloud: unknown provider"):
        normalize_usage("SomeCloud", {"tokens_used": 5})


def test_partial_never_raises_on_hostile_objects() -> None:
    class Exploding:
        def model_dump(self) -> dict:
            raise RuntimeError("boom")

    usage, problems = normalize_usage_partial("openai", Exploding())
    assert usage == Usage()
    assert problems and "boom" in problems[0]
    with pytest.raises(ValueError, match="could not read Exploding"):
        normalize_usage("openai", Exploding())


def test_partial_reports_not_json_and_missing() -> None:
    assert normalize_usage_partial("openai", "{not json")[1][0].startswith("openai: payload is not JSON")
    usage, problems = normalize_usage_partial("anthropic", None)
    assert usage == Usage() and problems == ["anthropic: no usage found in payload"]


def test_partial_on_valid_payload_has_no_problems() -> None:
    usage, problems = normalize_usage_partial("openai", {"prompt_tokens": 3, "completion_tokens": 4})
    assert (usage, problems) == (Usage(input_tokens=3, output_tokens=4), [])


def test_public_import_path() -> None:
    import flightdeck

    assert flightdeck.normalize_usage is normalize_usage


def test_canonical_usage_passes_through_checked() -> None:
    u = Usage(input_tokens=5, output_tokens=3, reasoning_tokens=2)
    assert normalize_usage("anything", u) == u
    with pytest.raises(ValueError, match=r"Usage.reasoning_tokens \(9\) exceeds Usage.output_tokens \(3\)"):
        normalize_usage("openai", Usage(output_tokens=3, reasoning_tokens=9))
    fixed, problems = normalize_usage_partial("openai", Usage(input_tokens=-2, output_tokens=1))
    assert fixed == Usage(output_tokens=1) and "Usage.input_tokens" in problems[0]


def test_dataclass_payload() -> None:
    from dataclasses import dataclass

    @dataclass
    class CompletionUsage:
        prompt_tokens: int
        completion_tokens: int

    assert normalize_usage("openai", CompletionUsage(7, 2)) == Usage(input_tokens=7, output_tokens=2)
