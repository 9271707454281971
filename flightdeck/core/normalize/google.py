"""Google Gemini / Vertex AI ``usageMetadata``.

Rules (source: googleapis/python-genai ``types.py``
GenerateContentResponseUsageMetadata; ai.google.dev/api/generate-content#UsageMetadata):

- ``promptTokenCount`` INCLUDES ``cachedContentTokenCount`` ("when
  cached_content is set, this is still the total effective prompt size").
- ``toolUsePromptTokenCount`` is NOT in ``promptTokenCount``: it is further
  prompt-side input (total = prompt + toolUse + candidates + thoughts).
- ``candidatesTokenCount`` EXCLUDES ``thoughtsTokenCount``, so
  output = candidates + thoughts and reasoning = thoughts.
- Gemini reports no cache writes (explicit caches are created by a separate call).
- The Live API's ``UsageMetadata`` names the output ``responseTokenCount``
  (same meaning as ``candidatesTokenCount``: an alias, taken once).
- Service tier (python-genai ``types.py``, 2026): the Gemini API reports
  ``usageMetadata.serviceTier`` ("standard" | "flex" | "priority";
  "unspecified" is standard); Vertex AI reports ``trafficType`` instead, where
  ``ON_DEMAND_FLEX`` / ``ON_DEMAND_PRIORITY`` are the flex and priority tiers
  and ``PROVISIONED_THROUGHPUT`` is reserved capacity (no per-token rate).
  ``service_tier`` reads them.

Both spellings are read: camelCase from the REST API, snake_case from the
python-genai SDK's ``model_dump()``. Accepted payloads: the usage metadata, a
GenerateContentResponse, a streamed chunk, or a list of chunks (the last one
carrying usage metadata wins: it holds the final counts). A response from
Gemini's OpenAI-compatible endpoint is read by the OpenAI rules.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize import openai
from flightdeck.core.normalize.reading import Obj, Reader, last_in_stream

_PROMPT = ("promptTokenCount", "prompt_token_count")
_CACHED = ("cachedContentTokenCount", "cached_content_token_count")
_TOOL = ("toolUsePromptTokenCount", "tool_use_prompt_token_count")
_CANDIDATES = ("candidatesTokenCount", "candidates_token_count", "responseTokenCount", "response_token_count")
_THOUGHTS = ("thoughtsTokenCount", "thoughts_token_count")
_CONTAINERS = ("usageMetadata", "usage_metadata")
_TIER = ("serviceTier", "service_tier")
_TRAFFIC = ("trafficType", "traffic_type")
# Vertex trafficType -> the tier it bills at (types.py TrafficType).
_TRAFFIC_TIERS = {"ON_DEMAND": "standard", "ON_DEMAND_FLEX": "flex", "ON_DEMAND_PRIORITY": "priority",
                  "PROVISIONED_THROUGHPUT": "provisioned_throughput"}


@last_in_stream()
def find_usage(r: Reader, raw: Any) -> tuple[Obj, str] | None:
    m = r.obj(raw, "payload")
    if m is None:
        return None
    for key in _CONTAINERS:
        if m.get(key) is not None:
            u = r.sub(m, key, "")
            return None if u is None else (u, key)
    if any(k in m for k in _PROMPT + _CANDIDATES):
        return m, "usageMetadata"
    return None


def read_usage(r: Reader, u: Obj, path: str = "usageMetadata") -> Usage:
    spelling = 1 if path == "usage_metadata" or "prompt_token_count" in u else 0  # snake : camel
    prompt_name = f"{path}.{_PROMPT[spelling]}"
    prompt = r.required(r.first(u, _PROMPT, path), prompt_name)
    cached = r.first(u, _CACHED, path) or 0
    tool = r.first(u, _TOOL, path) or 0
    plain = r.remainder(prompt, prompt_name, [(cached, f"{path}.{_CACHED[spelling]}")]) + tool
    candidates = r.first(u, _CANDIDATES, path) or 0
    thoughts = r.first(u, _THOUGHTS, path) or 0
    return Usage(
        input_tokens=plain,
        output_tokens=candidates + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    found = find_usage(r, raw)
    if found is None:
        # Gemini's OpenAI-compatible endpoint (.../v1beta/openai/) answers in
        # Chat Completions shape, with OpenAI's containment rules.
        u = openai.find_usage(r, raw)
        if u is not None:
            return openai.read_openai_shaped(r, u, None)
        r.no_usage()
        return Usage()
    u, path = found
    return read_usage(r, u, path)


def _text(value: Any) -> str | None:
    """An enum member (python-genai's CaseInSensitiveEnum) or string, as text."""
    value = getattr(value, "value", value)
    return value if isinstance(value, str) and value else None


def service_tier(r: Reader, raw: Any) -> str | None:
    """``usageMetadata.serviceTier`` (Gemini API) or Vertex ``trafficType`` as a tier, or None."""
    try:
        found = find_usage(r, raw)
    except Exception:  # an unreadable payload: the tier is not known
        return None
    if found is None:
        return None
    u = found[0]
    for key in _TIER:
        tier = _text(u.get(key))
        if tier is not None:
            return "standard" if tier.lower() == "unspecified" else tier.lower()
    for key in _TRAFFIC:
        traffic = _text(u.get(key))
        if traffic is not None and traffic.upper() in _TRAFFIC_TIERS:
            return _TRAFFIC_TIERS[traffic.upper()]
    return None
