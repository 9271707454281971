"""OpenTelemetry gen_ai.* attributes: input INCLUDES cache read and creation."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage
from flightdeck.core.normalize.otel import otel_has_usage, otel_model, otel_provider

EXPECTED = Usage(input_tokens=500, output_tokens=640, cache_read_tokens=10000, cache_write_tokens=2000)


def test_otlp_json_span(payload) -> None:
    span = payload("otel_span_otlp.json")
    assert normalize_usage("otel", span) == EXPECTED
    assert normalize_usage("otel", span["attributes"]) == EXPECTED  # the bare list
    assert otel_provider(span) == "anthropic"
    assert otel_model(span) == "claude-sonnet-4-5"


def test_flat_attributes_with_reasoning() -> None:
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "o3",
             "gen_ai.usage.input_tokens": 900, "gen_ai.usage.cache_read.input_tokens": 512,
             "gen_ai.usage.output_tokens": 300, "gen_ai.usage.reasoning.output_tokens": 256}
    assert normalize_usage("opentelemetry", attrs) == Usage(
        input_tokens=388, output_tokens=300, cache_read_tokens=512, reasoning_tokens=256)


def test_deprecated_names_are_aliases() -> None:
    attrs = {"gen_ai.system": "gcp.vertex_ai", "gen_ai.usage.prompt_tokens": 40,
             "gen_ai.usage.completion_tokens": 7}
    assert normalize_usage("otel", attrs) == Usage(input_tokens=40, output_tokens=7)
    both = dict(attrs, **{"gen_ai.usage.input_tokens": 40})
    assert normalize_usage("otel", both) == Usage(input_tokens=40, output_tokens=7)
    assert otel_provider(attrs) == "google"


def test_cache_exclusive_instrumentation_read_as_disjoint() -> None:
    # An instrumentation that passed Anthropic's input_tokens through unchanged.
    attrs = {"gen_ai.usage.input_tokens": 472, "gen_ai.usage.cache_read.input_tokens": 15360,
             "gen_ai.usage.output_tokens": 10}
    assert normalize_usage("otel", attrs) == Usage(input_tokens=472, output_tokens=10,
                                                   cache_read_tokens=15360)


def test_provider_and_model_helpers() -> None:
    assert otel_provider({"gen_ai.provider.name": "aws.bedrock"}) == "bedrock"
    assert otel_provider({"gen_ai.provider.name": "mistral_ai"}) == "mistral"
    assert otel_provider({"gen_ai.provider.name": "x_ai"}) == "x_ai"
    assert otel_provider({"gen_ai.usage.input_tokens": 1}) is None
    assert otel_model({"gen_ai.response.model": "gpt-4o-2024-08-06"}) == "gpt-4o-2024-08-06"
    assert otel_model(None) is None


def test_bad_int_value_names_the_attribute() -> None:
    with pytest.raises(ValueError, match=r"^otel gen_ai.usage.output_tokens: expected a non-negative int, got '-4'$"):
        normalize_usage("otel", [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "3"}},
                                 {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "-4"}}])


def test_no_usage_attributes() -> None:
    with pytest.raises(ValueError, match=r"no gen_ai.usage"):
        normalize_usage("otel", {"http.method": "POST"})


def test_has_usage_tells_model_spans_from_tool_spans(payload) -> None:
    assert otel_has_usage(payload("otel_span_otlp.json"))
    assert not otel_has_usage({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"})
    assert not otel_has_usage("not attributes")


def test_service_tier_attribute() -> None:
    from flightdeck.core.normalize import read_call_usage, service_tier

    span = [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "10"}},
            {"key": "openai.response.service_tier", "value": {"stringValue": "flex"}}]
    reading = read_call_usage("otel", span)
    assert reading.service_tier == "flex" and reading.usage == Usage(input_tokens=100, output_tokens=10)
    assert service_tier("otel", {"gen_ai.openai.response.service_tier": "priority"}) == "priority"
    assert service_tier("otel", {"gen_ai.usage.input_tokens": 1}) is None
