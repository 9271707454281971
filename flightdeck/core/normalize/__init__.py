"""Provider usage -> canonical ``Usage`` buckets (SPEC section 4).

Canonical rule: ``input_tokens``, ``cache_read_tokens`` and ``cache_write_tokens``
are disjoint and sum to the whole prompt; ``reasoning_tokens`` is part of
``output_tokens``; ``cache_write_1h_tokens`` is part of ``cache_write_tokens``.
Each provider family has one module here that states its own containment rules
and their source; ``reading.Reader`` does the typed, field-named access.

``normalize_usage`` raises ``ValueError`` naming the field on bad input.
``normalize_usage_partial`` never raises: the recorder writes what could be
read and shows the problems as a warning. ``read_call_usage`` is what the
recorder uses: it also says whether usage was seen at all (a payload without
usage makes the call's cost unknown, never a priced zero: SPEC 5.1), the
caveats of a valid payload, and the service tier and speed that price it.
``reported_cost`` returns what a proxy said it charged, as an exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import ModuleType
from typing import Any

import msgspec

from flightdeck.core.events import Usage
from flightdeck.core.normalize import (
    anthropic,
    bedrock,
    cohere,
    deepseek,
    google,
    litellm,
    mistral,
    ollama,
    openai,
    openrouter,
    otel,
)
from flightdeck.core.normalize.fast import quick_reading
from flightdeck.core.normalize.reading import Reader, as_mapping, as_sequence

__all__ = [
    "CANONICAL_SEEN",
    "PROVIDERS",
    "UsageReading",
    "canonical_provider",
    "normalize_usage",
    "normalize_usage_partial",
    "read_by_adapter",
    "read_call_usage",
    "reported_cost",
    "service_tier",
    "speed",
]

_MODULES: dict[str, ModuleType] = {
    "openai": openai,
    "anthropic": anthropic,
    "google": google,
    "bedrock": bedrock,
    "cohere": cohere,
    "deepseek": deepseek,
    "mistral": mistral,
    "openrouter": openrouter,
    "ollama": ollama,
    "litellm": litellm,
    "otel": otel,
}
PROVIDERS = frozenset(_MODULES)

_ALIASES = {
    "azure": "openai",
    "azure_openai": "openai",
    "azure.ai.openai": "openai",
    "claude": "anthropic",
    "gemini": "google",
    "vertex": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "google_genai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws": "bedrock",
    "aws.bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "amazon_bedrock": "bedrock",
    "cohere_chat": "cohere",
    "mistralai": "mistral",
    "mistral_ai": "mistral",
    "ollama_chat": "ollama",
    "litellm_proxy": "litellm",
    "opentelemetry": "otel",
    "otlp": "otel",
}


def canonical_provider(provider: str) -> str:
    """Lower-cased, aliases resolved ("Gemini" -> "google"); unknown names pass through."""
    name = str(provider).strip().lower().replace("-", "_")
    return _ALIASES.get(name, name)


# The recorder asks for the same few provider names on every call: remembered
# (bounded, so a flood of distinct names cannot grow it) instead of re-folded.
# Public so that the recorder's quick usage reading looks a name up here (a
# name not in it yet is read through ``read_call_usage``, which adds it).
CANONICAL_SEEN: dict[str, str] = {}
_CANONICAL_MAX = 1024


def _canonical_cached(provider: str) -> str:
    if type(provider) is str:
        name = CANONICAL_SEEN.get(provider)
        if name is None:
            if len(CANONICAL_SEEN) >= _CANONICAL_MAX:
                CANONICAL_SEEN.clear()  # in place: the recorder holds this dict
            name = CANONICAL_SEEN[provider] = canonical_provider(provider)
        return name
    return canonical_provider(provider)


def _decode_text(r: Reader, raw: str | bytes | bytearray) -> Any:
    """A payload handed over as JSON text (a log line, a response body)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        r.report(f": payload is not JSON ({str(exc)[:80]})")
        return None


def _detect(raw: Any) -> ModuleType | None:
    """Which known shape an unknown provider's payload has, if any."""
    events = as_sequence(raw)
    if events is not None:
        if events and all(isinstance(e, Mapping) and "key" in e for e in events):
            return otel
        for event in reversed(events):
            found = _detect(event)
            if found is not None:
                return found
        return None
    m = as_mapping(raw)
    if m is None:
        return None
    if m.get("type") in ("message", "message_start", "message_delta"):
        return anthropic
    if "usageMetadata" in m or "usage_metadata" in m or "promptTokenCount" in m:
        return google
    if "prompt_eval_count" in m or "eval_count" in m:
        return ollama
    if any(isinstance(k, str) and k.startswith("gen_ai.") for k in m):
        return otel
    if "metadata" in m and "response_cost" in m:
        return litellm
    if "amazon-bedrock-invocationMetrics" in m:
        return bedrock
    u = as_mapping(m.get("usage")) or m
    return _detect_usage(u)


def _detect_usage(u: Mapping[str, Any]) -> ModuleType | None:
    if "prompt_tokens" in u:
        if "prompt_cache_hit_tokens" in u:
            return deepseek
        if "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u:
            return litellm
        return openai
    if "inputTokens" in u or "inputTokenCount" in u:
        return bedrock
    if "input_tokens" in u:
        if "input_tokens_details" in u or "output_tokens_details" in u:
            return openai
        return anthropic  # with no cache fields the two readings agree
    if "billed_units" in u or "meta" in u:
        return cohere
    return None


def _run(r: Reader, name: str, raw: Any, api: str | None) -> Usage:
    if isinstance(raw, Usage):  # already canonical (e.g. an agent that counts itself)
        return _checked(r, raw)
    if isinstance(raw, (str, bytes, bytearray)):
        raw = _decode_text(r, raw)
    module = _MODULES.get(name)
    if module is None:
        module = _detect(raw)
        if module is None:
            r.report(
                ": unknown provider, and the payload has no known usage shape "
                "(OpenAI-, Anthropic-, Gemini-, Bedrock-, Cohere-, Ollama-like or gen_ai.*)"
            )
            return Usage()
    usage: Usage = module.normalize(r, raw, api)
    return usage


def _checked(r: Reader, u: Usage) -> Usage:
    """A caller-built Usage, held to the same rules as a parsed one."""
    counts = {
        name: r.to_count(getattr(u, name), "Usage", name) or 0
        for name in ("input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_write_tokens", "reasoning_tokens", "cache_write_1h_tokens")
    }
    counts["reasoning_tokens"] = r.subset(
        counts["reasoning_tokens"], "Usage.reasoning_tokens",
        counts["output_tokens"], "Usage.output_tokens")
    counts["cache_write_1h_tokens"] = r.subset(
        counts["cache_write_1h_tokens"], "Usage.cache_write_1h_tokens",
        counts["cache_write_tokens"], "Usage.cache_write_tokens")
    return Usage(**counts)


def normalize_usage(provider: str, raw: Any, api: str | None = None) -> Usage:
    """The canonical buckets of one model call; ValueError naming the field on bad input.

    ``raw``: the usage object, the whole response body, a stream's final chunk,
    the list of a stream's events/chunks, an SDK object, or JSON text of these.
    ``api`` picks a flavour ("chat"/"responses" for OpenAI-shaped providers,
    "v1"/"v2" for Cohere); without it the flavour is detected.
    """
    name = canonical_provider(provider)
    return _run(Reader(name), name, raw, api)


def normalize_usage_partial(
    provider: str, raw: Any, api: str | None = None
) -> tuple[Usage, list[str]]:
    """Like ``normalize_usage`` but never raises: (what could be read, the problems)."""
    try:
        name = canonical_provider(provider)
    except Exception:  # a provider whose str() fails: still never raise
        name = "unknown"
    r = Reader(name, strict=False)
    try:
        usage = _run(r, name, raw, api)
    except Exception as exc:  # never let a payload crash the agent
        r.problems.append(f"{name}: {type(exc).__name__}: {exc}")
        usage = Usage()
    return usage, r.problems


class UsageReading(msgspec.Struct, frozen=True):
    """Everything the recorder needs from one call's usage payload.

    A frozen msgspec Struct rather than a frozen dataclass: made once per
    recorded call, it costs 0.1 us to build instead of 0.9 (timeit).

    ``usage`` is None when the payload held no usage at all (a stream chunk
    without ``include_usage``, Anthropic's ``message_stop``...): the call's cost
    is then unknown. ``problems`` are bad fields (the tokens read still count),
    ``notes`` caveats of a valid payload; both go into the event's ``message``.
    """

    usage: Usage | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    service_tier: str | None = None
    speed: str | None = None


def read_call_usage(provider: str, raw: Any, api: str | None = None) -> UsageReading:
    """Read one call's usage payload for the recorder. Never raises.

    ``provider``, ``raw`` and ``api`` as in ``normalize_usage``.
    """
    try:
        name = _canonical_cached(provider)
    except Exception:  # a provider whose str() fails: still never raise
        name = "unknown"
    quick = quick_reading(name, raw, api)  # the common clean payloads, in one pass (see ``fast``)
    if quick is not None:
        return UsageReading(quick[0], (), (), quick[1], quick[2])
    return read_by_adapter(name, raw, api)


def read_by_adapter(name: str, raw: Any, api: str | None = None) -> UsageReading:
    """``read_call_usage`` through the provider's adapter only (no quick reading). Never raises.

    Args:
        name: the canonical provider (``canonical_provider``).
        raw, api: as in ``normalize_usage``.
    """
    r = Reader(name, strict=False)
    try:
        usage: Usage | None = _run(r, name, raw, api)
    except Exception as exc:  # never let a payload crash the agent
        r.problems.append(f"{name}: {type(exc).__name__}: {exc}")
        usage = Usage()
    if r.missing:
        usage = None
    if r.tiers_read:  # read on the way to the usage: no second pass over the payload
        tier, speed_ = r.service_tier, r.speed
    else:
        tier, speed_ = _attribute(name, raw, "service_tier"), _attribute(name, raw, "speed")
    return UsageReading(usage, tuple(r.problems), tuple(r.notes), tier, speed_)


def _attribute(name: str, raw: Any, what: str) -> str | None:
    """An adapter's ``service_tier``/``speed`` reader, where the provider reports one."""
    module = _MODULES.get(name)
    reader = getattr(module, what, None) if module is not None else None
    if reader is None:
        return None
    try:
        if isinstance(raw, (str, bytes, bytearray)):
            raw = msgspec.json.decode(raw)
        value = reader(Reader(name, strict=False), raw)
    except Exception:  # the tier is informative: an unreadable one is just unknown
        return None
    return value if isinstance(value, str) else None


def service_tier(provider: str, raw: Any) -> str | None:
    """The service tier the provider says served the call, as it names it; None when not said.

    OpenAI: top-level ``service_tier`` ("default", "flex", "priority", ...);
    Anthropic: ``usage.service_tier`` ("standard", "priority", "batch");
    Bedrock: ``serviceTier.type`` ("default", "priority", "flex", "reserved").
    ``raw`` as in ``normalize_usage``. Never raises.
    """
    try:
        return _attribute(canonical_provider(provider), raw, "service_tier")
    except Exception:  # never raise for an informative field
        return None


def speed(provider: str, raw: Any) -> str | None:
    """Anthropic's ``usage.speed`` ("standard" or "fast"); None elsewhere. Never raises."""
    try:
        return _attribute(canonical_provider(provider), raw, "speed")
    except Exception:  # never raise for an informative field
        return None


def reported_cost(provider: str, raw: Any) -> Decimal | None:
    """What the provider or proxy said it charged (USD), exactly; None when not reported.

    OpenRouter: ``usage.cost``; LiteLLM: ``response_cost``. Floats are converted
    via ``Decimal(repr(x))``, strings via ``Decimal(x)``: no float arithmetic.
    ValueError when the reported value is not a non-negative amount.
    """
    name = _canonical_cached(provider)
    if name != "openrouter" and name != "litellm":
        return None  # asked on every recorded call: no reader made for the providers that report none
    r = Reader(name)
    if isinstance(raw, (str, bytes, bytearray)):
        raw = _decode_text(r, raw)
    if name == "openrouter":
        return openrouter.reported_cost(r, raw)
    if name == "litellm":
        return litellm.reported_cost(r, raw)
    return None
