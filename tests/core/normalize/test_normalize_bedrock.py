"""Bedrock: inputTokens EXCLUDES cache; alias fields are never added together."""

from __future__ import annotations

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.normalize import normalize_usage

CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}},
    "stopReason": "end_turn",
    "usage": {
        "inputTokens": 412, "outputTokens": 96, "totalTokens": 5604,
        "cacheReadInputTokens": 4096, "cacheWriteInputTokens": 1000,
        "cacheDetails": [{"ttl": "1h", "inputTokens": 600}, {"ttl": "5m", "inputTokens": 400}],
    },
    "metrics": {"latencyMs": 1203},
}


def test_converse_buckets() -> None:
    u = normalize_usage("bedrock", CONVERSE)
    assert u == Usage(input_tokens=412, output_tokens=96, cache_read_tokens=4096,
                      cache_write_tokens=1000, cache_write_1h_tokens=600)
    assert u.prompt_tokens + u.output_tokens == CONVERSE["usage"]["totalTokens"]


def test_converse_stream_metadata_event(payload) -> None:
    events = payload("bedrock_converse_stream.json")
    expected = Usage(input_tokens=31, output_tokens=212, cache_read_tokens=3072)
    assert normalize_usage("aws", events) == expected
    assert normalize_usage("bedrock", events[-1]) == expected


def test_aliases_in_one_record_are_taken_once() -> None:
    merged = dict(CONVERSE)
    merged["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": 412, "outputTokenCount": 96,
        "cacheReadInputTokenCount": 4096, "cacheWriteInputTokenCount": 1000}
    merged["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {
        "x-amzn-bedrock-input-token-count": "412", "x-amzn-bedrock-output-token-count": "96",
        "x-amzn-bedrock-cache-read-input-token-count": "4096",
        "x-amzn-bedrock-cache-write-input-token-count": "1000"}}
    u = normalize_usage("bedrock", merged)
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens) == (412, 4096, 1000)


def test_invoke_model_headers_only() -> None:
    response = {"ResponseMetadata": {"HTTPHeaders": {
        "content-type": "application/json",
        "x-amzn-bedrock-input-token-count": "1200", "x-amzn-bedrock-output-token-count": "88",
        "x-amzn-bedrock-cache-read-input-token-count": "0"}}, "contentType": "application/json"}
    assert normalize_usage("bedrock", response) == Usage(input_tokens=1200, output_tokens=88)


def test_invoke_model_claude_stream_uses_invocation_metrics(payload) -> None:
    chunks = payload("bedrock_invoke_claude_stream.json")
    assert normalize_usage("bedrock", chunks) == Usage(
        input_tokens=25, output_tokens=57, cache_read_tokens=1800)


def test_invoke_model_claude_body_reads_anthropic_rules() -> None:
    body = {"id": "msg_bdrk_2", "type": "message", "role": "assistant", "content": [],
            "usage": {"input_tokens": 30, "cache_creation_input_tokens": 500,
                      "cache_read_input_tokens": 0, "output_tokens": 12}}
    assert normalize_usage("bedrock", body) == Usage(input_tokens=30, output_tokens=12,
                                                     cache_write_tokens=500)


def test_bad_header_value_names_it() -> None:
    with pytest.raises(ValueError, match="x-amzn-bedrock-input-token-count: expected a non-negative int"):
        normalize_usage("bedrock", {"headers": {"x-amzn-bedrock-input-token-count": "12a"}})


def test_one_hour_above_writes() -> None:
    bad = {"usage": {"inputTokens": 1, "outputTokens": 1, "cacheWriteInputTokens": 10,
                     "cacheDetails": [{"ttl": "1h", "inputTokens": 11}]}}
    with pytest.raises(ValueError, match=r"\(11\) exceeds usage.cacheWriteInputTokens \(10\)"):
        normalize_usage("bedrock", bad)


def test_service_tier_of_converse_and_its_stream() -> None:
    # Shapes of botocore's bedrock-runtime 2023-09-30 service model: ServiceTier {type}.
    from flightdeck.core.normalize import read_call_usage, service_tier

    response = {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
                "stopReason": "end_turn", "metrics": {"latencyMs": 120},
                "usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13},
                "serviceTier": {"type": "flex"}}
    assert service_tier("bedrock", response) == "flex"
    stream = [{"messageStart": {"role": "assistant"}},
              {"contentBlockDelta": {"delta": {"text": "hi"}, "contentBlockIndex": 0}},
              {"messageStop": {"stopReason": "end_turn"}},
              {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13},
                            "metrics": {"latencyMs": 120}, "serviceTier": {"type": "priority"}}}]
    reading = read_call_usage("bedrock", stream)
    assert reading.service_tier == "priority"
    assert reading.usage == Usage(input_tokens=10, output_tokens=3)
    assert service_tier("bedrock", {"usage": {"inputTokens": 1, "outputTokens": 1}}) is None
