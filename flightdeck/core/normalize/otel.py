"""OpenTelemetry GenAI span attributes (semantic conventions ``gen_ai.*``).

Rules (source: open-telemetry/semantic-conventions
``docs/registry/attributes/gen-ai.md``, notes [20]-[22]):

- ``gen_ai.usage.input_tokens`` "SHOULD include all types of input tokens,
  including cached tokens": it INCLUDES ``gen_ai.usage.cache_read.input_tokens``
  and ``gen_ai.usage.cache_creation.input_tokens``, so plain input =
  input - read - creation.
- Some instrumentations pass Anthropic's cache-exclusive ``input_tokens``
  straight through. When read + creation exceed input, the payload cannot be
  the inclusive form, so it is read as disjoint instead of rejected.
- ``gen_ai.usage.output_tokens`` is the whole output;
  ``gen_ai.usage.reasoning.output_tokens`` (used by instrumentations, not yet
  in the registry) is read as its reasoning subset.
- Deprecated names are ALIASES, read only when the current name is absent:
  ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``,
  ``gen_ai.usage.cache_read_input_tokens`` / ``cache_creation_input_tokens``.
- ``gen_ai.provider.name`` (current) or ``gen_ai.system`` (deprecated) name the
  provider: ``otel_provider`` maps them to flightdeck's provider names.
- ``openai.response.service_tier`` (current; ``docs/registry/attributes/openai.md``)
  or ``gen_ai.openai.response.service_tier`` (deprecated) is the tier that
  served the call: ``service_tier`` reads it, so pricing uses its rates.

Accepted payloads: a flat ``{name: value}`` dict, an OTLP JSON attribute list
``[{"key": ..., "value": {"intValue": "123"}}]`` (OTLP JSON writes int64 as a
string), or an OTLP span object with an ``attributes`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.reading import Obj, Reader, as_mapping

INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens",
               "gen_ai.usage.cache_creation_input_tokens")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")

# gen_ai.provider.name / gen_ai.system values -> flightdeck provider names.
_PROVIDERS = {
    "openai": "openai",
    "azure.ai.openai": "openai",
    "az.ai.openai": "openai",
    "azure_openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "bedrock",
    "aws_bedrock": "bedrock",
    "bedrock": "bedrock",
    "gcp.gen_ai": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "google": "google",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "openrouter": "openrouter",
    "ollama": "ollama",
}

_SCALARS = frozenset({str, int, float, bool})
_VALUE_KINDS = ("stringValue", "intValue", "doubleValue", "boolValue", "arrayValue",
                "kvlistValue", "bytesValue")


def _any_value(value: Any) -> Any:
    """An OTLP JSON AnyValue as a Python value; anything else unchanged."""
    if type(value) in _SCALARS:  # already flat (an SDK span, a decoded protobuf): skip the ABC check
        return value
    if not isinstance(value, Mapping):
        return value
    for kind in _VALUE_KINDS:
        if kind in value:
            inner = value[kind]
            if kind == "arrayValue":
                items = inner.get("values", []) if isinstance(inner, Mapping) else []
                return [_any_value(v) for v in items] if isinstance(items, list) else []
            if kind == "kvlistValue":
                return _flatten(inner.get("values", []) if isinstance(inner, Mapping) else [])
            # intValue stays a string here; the count reader accepts digit strings.
            return inner
    return value


def _flatten(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(items, (list, tuple)):
        return out
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"))
    return out


def attributes(raw: Any) -> dict[str, Any] | None:
    """Span attributes as a flat dict, from any of the accepted shapes."""
    if isinstance(raw, (list, tuple)):
        return _flatten(raw)
    m = as_mapping(raw)
    if m is None:
        return None
    nested = m.get("attributes")
    if nested is not None and not any(isinstance(k, str) and k.startswith("gen_ai.") for k in m):
        return attributes(nested)  # an OTLP span object
    return {k: _any_value(v) for k, v in m.items()}


def read_attributes(r: Reader, a: Obj) -> Usage:
    total_in = r.required(r.first(a, INPUT, ""), INPUT[0])
    read = r.first(a, CACHE_READ, "") or 0
    written = r.first(a, CACHE_WRITE, "") or 0
    # Parts above the total: a cache-exclusive input count (see module notes).
    plain = total_in if read + written > total_in else total_in - read - written
    output = r.first(a, OUTPUT, "") or 0
    reasoning = r.subset(r.first(a, REASONING, "") or 0, REASONING[0], output, OUTPUT[0])
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    try:
        a = attributes(raw)
    except Exception as exc:  # a foreign object's model_dump() failed
        r.bad("attributes", f"could not read {type(raw).__name__} ({type(exc).__name__}: {exc})")
        return Usage()
    if a is None or not any(k in a for k in INPUT + OUTPUT):
        r.no_usage(" (no gen_ai.usage.* attributes)")
        return Usage()
    return read_attributes(r, a)


def _text(a: Mapping[str, Any] | None, keys: tuple[str, ...]) -> str | None:
    if a is None:
        return None
    for key in keys:
        value = a.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def otel_provider(attrs: Any) -> str | None:
    """flightdeck's provider name for a span, or the raw value when unknown; None if absent."""
    try:
        a = attributes(attrs)
    except Exception:
        return None
    name = _text(a, ("gen_ai.provider.name", "gen_ai.system"))
    if name is None:
        return None
    return _PROVIDERS.get(name.lower(), name.lower())


def otel_model(attrs: Any) -> str | None:
    """The model as asked for (``gen_ai.request.model``), else the one that answered."""
    try:
        a = attributes(attrs)
    except Exception:
        return None
    return _text(a, ("gen_ai.request.model", "gen_ai.response.model"))


def otel_has_usage(attrs: Any) -> bool:
    """Whether a span reports token usage at all (agent and tool spans do not)."""
    try:
        a = attributes(attrs)
    except Exception:
        return False
    return a is not None and any(k in a for k in INPUT + OUTPUT)


def service_tier(r: Reader, raw: Any) -> str | None:
    """The served tier (``openai.response.service_tier``), or None when the span has none."""
    try:
        a = attributes(raw)
    except Exception:  # unreadable attributes: the tier is not known
        return None
    return _text(a, SERVICE_TIER)
