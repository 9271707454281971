"""AWS Bedrock: Converse / ConverseStream usage, InvokeModel metrics and headers.

Rules (source: Bedrock API reference ``API_runtime_TokenUsage`` and
``API_runtime_CacheDetail``; boto3 bedrock-runtime Converse docs):

- Converse ``usage: {inputTokens, outputTokens, totalTokens,
  cacheReadInputTokens, cacheWriteInputTokens}``: ``inputTokens`` EXCLUDES the
  cache reads and writes, which are reported beside it (disjoint already).
- ``cacheDetails: [{ttl: "5m" | "1h", inputTokens}]`` splits the writes by
  lifetime; the "1h" entries are ``cache_write_1h_tokens``.
- ConverseStream puts the same ``usage`` in its final ``metadata`` event.
- InvokeModel reports the same counts under other names: the
  ``amazon-bedrock-invocationMetrics`` object of a stream's last chunk
  (``inputTokenCount``, ``cacheReadInputTokenCount``, ...) and the response
  headers ``x-amzn-bedrock-input-token-count``, ... These are ALIASES of one
  count: a payload that carries several (a merged log record, a body plus its
  headers) must not be summed. Each bucket takes the first source present,
  in the order usage > invocation metrics > headers.
- Bedrock reports no reasoning split: ``reasoning_tokens`` stays 0.
- An InvokeModel body of an Anthropic model is Anthropic-shaped
  (snake_case ``usage``) and is read by the Anthropic rules.
- ``serviceTier: {type: "priority" | "default" | "flex" | "reserved"}`` on
  ConverseResponse and on ConverseStream's ``metadata`` event (botocore
  ``bedrock-runtime/2023-09-30/service-2.json``, shapes ``ServiceTier`` and
  ``ServiceTierType``) is the tier that served the call; ``service_tier`` reads it.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize import anthropic
from flightdeck.core.normalize.reading import Obj, Reader, as_mapping, last_in_stream

_INPUT = ("inputTokens", "inputTokenCount", "x-amzn-bedrock-input-token-count")
_OUTPUT = ("outputTokens", "outputTokenCount", "x-amzn-bedrock-output-token-count")
_READ = ("cacheReadInputTokens", "cacheReadInputTokenCount",
         "x-amzn-bedrock-cache-read-input-token-count")
_WRITE = ("cacheWriteInputTokens", "cacheWriteInputTokenCount",
          "x-amzn-bedrock-cache-write-input-token-count")
_METRICS = "amazon-bedrock-invocationMetrics"

Sources = list[tuple[Obj | None, str]]


def _headers(r: Reader, m: Obj) -> tuple[Obj | None, str]:
    """boto3 puts HTTP headers under ResponseMetadata.HTTPHeaders (lower-cased)."""
    meta = r.sub(m, "ResponseMetadata", "")
    if meta is not None and meta.get("HTTPHeaders") is not None:
        return r.sub(meta, "HTTPHeaders", "ResponseMetadata"), "ResponseMetadata.HTTPHeaders"
    if m.get("headers") is not None:
        return r.sub(m, "headers", ""), "headers"
    return None, ""


def _sources(r: Reader, m: Obj) -> Sources:
    """Every place in one object that may hold the counts, most authoritative first."""
    found: Sources = []
    if m.get("usage") is not None:
        found.append((r.sub(m, "usage", ""), "usage"))
    metadata = r.sub(m, "metadata", "")  # ConverseStream's final event
    if metadata is not None and metadata.get("usage") is not None:
        found.append((r.sub(metadata, "usage", "metadata"), "metadata.usage"))
    if m.get(_METRICS) is not None:
        found.append((r.sub(m, _METRICS, ""), _METRICS))
    headers, where = _headers(r, m)
    if headers is not None:
        found.append((headers, where))
    if any(k in m for k in _INPUT + _OUTPUT):
        found.append((m, "usage"))
    return [(s, p) for s, p in found if s is not None]


# ConverseStream: the metadata event comes last; InvokeModel streams put the
# invocation metrics in the last chunk.
@last_in_stream(empty=[])
def _find(r: Reader, raw: Any) -> Sources:
    m = r.obj(raw, "payload")
    return [] if m is None else _sources(r, m)


def _one_hour(r: Reader, u: Obj | None, path: str) -> int:
    details = None if u is None else u.get("cacheDetails")
    if details is None:
        return 0
    if not isinstance(details, (list, tuple)):
        r.bad(f"{path}.cacheDetails", f"expected a list, got {type(details).__name__}")
        return 0
    total = 0
    for index, item in enumerate(details):
        where = f"{path}.cacheDetails[{index}]"
        entry = r.obj(item, where)
        if entry is not None and entry.get("ttl") == "1h":
            total += r.count(entry, "inputTokens", where) or 0
    return total


def read_sources(r: Reader, sources: Sources) -> Usage:
    first_path = sources[0][1]
    plain = r.required(r.first_of(sources, _INPUT), f"{first_path}.inputTokens")
    output = r.first_of(sources, _OUTPUT) or 0
    read = r.first_of(sources, _READ) or 0
    written = r.first_of(sources, _WRITE) or 0
    usage_obj = next((s for s, p in sources if p in ("usage", "metadata.usage")), None)
    w1h = r.subset(
        _one_hour(r, usage_obj, first_path), f"{first_path}.cacheDetails[ttl=1h].inputTokens",
        written, f"{first_path}.cacheWriteInputTokens",
    )
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=w1h,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    sources = _find(r, raw)
    if not sources:
        m = anthropic.find_usage(r, raw) if raw is not None else None
        if m is not None and "input_tokens" in m:
            return anthropic.read_usage(r, m)  # InvokeModel body of a Claude model
        r.no_usage()
        return Usage()
    head = sources[0][0]
    if head is not None and "input_tokens" in head and not any(k in head for k in _INPUT):
        return anthropic.read_usage(r, head)
    return read_sources(r, sources)


@last_in_stream()
def service_tier(r: Reader, raw: Any) -> str | None:
    """``serviceTier.type`` of a Converse response or ConverseStream metadata event, or None."""
    try:
        m = as_mapping(raw)
        if m is not None and m.get("serviceTier") is None and m.get("metadata") is not None:
            m = as_mapping(m.get("metadata"))
        tier = None if m is None else m.get("serviceTier")
        if isinstance(tier, str):
            return tier or None
        tier_obj = as_mapping(tier)
    except Exception:  # an unreadable payload: the tier is not known
        return None
    value = None if tier_obj is None else tier_obj.get("type")
    return value if isinstance(value, str) and value else None
