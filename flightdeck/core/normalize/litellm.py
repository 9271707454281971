"""LiteLLM: the proxy's StandardLoggingPayload, and its ModelResponse.

Rules (source: BerriAI/litellm ``litellm/types/utils.py`` StandardLoggingPayload,
StandardLoggingMetadata.usage_object, Usage/PromptTokensDetailsWrapper;
``litellm/llms/anthropic/chat/transformation.py`` calculate_usage;
docs/my-website/docs/proxy/logging_spec.md):

- ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens`` sit at the top of
  the payload; ``metadata.usage_object`` is the full LiteLLM ``Usage`` dump
  (OpenAI-shaped, plus Anthropic-style extras).
- LiteLLM rewrites every provider into OpenAI semantics: ``prompt_tokens``
  INCLUDES cache reads (``cache_read_input_tokens`` ==
  ``prompt_tokens_details.cached_tokens``: aliases, taken once) and, in current
  releases, cache writes (``cache_creation_input_tokens`` ==
  ``prompt_tokens_details.cache_creation_tokens``). Older releases added only
  the reads to ``prompt_tokens``; when subtracting the writes would go
  negative but subtracting the reads alone does not, the payload is read as
  that older form.
- ``prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens``
  is the 1h part of the writes.
- ``completion_tokens`` INCLUDES ``completion_tokens_details.reasoning_tokens``.
- ``response_cost`` (float, USD) is LiteLLM's computed charge; exposed by
  ``reported_cost``. When LiteLLM could not price the call it still writes
  ``response_cost: 0`` (or null) and says why in
  ``response_cost_failure_debug_info`` (StandardLoggingModelCostFailureDebugInformation:
  ``error_str``, ``model``...) or ``zero_cost_diagnostic`` (reason
  "missing_pricing_key" | "pricing_not_applied" | "cost_calculation_error"):
  that 0 is not a charge, so ``reported_cost`` returns None and the call is
  priced with flightdeck's own rates. A 0 without either (a LiteLLM cache hit)
  is what was charged.
- ``custom_llm_provider`` and ``model`` name the upstream: the recorder and the
  log reader both attribute the call to that provider (route "proxy").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.cost import to_decimal
from flightdeck.core.normalize.openai import find_usage as find_openai_usage
from flightdeck.core.normalize.reading import Obj, Reader, as_mapping


def _payload(r: Reader, raw: Any) -> tuple[Obj | None, Obj | None, str]:
    """(top-level payload, usage object, usage path)."""
    m = r.obj(raw, "payload")
    if m is None:
        return None, None, ""
    metadata = r.sub(m, "metadata", "") if isinstance(m.get("metadata"), Mapping) else None
    usage_obj = r.sub(metadata, "usage_object", "metadata")
    if usage_obj is not None:
        return m, usage_obj, "metadata.usage_object"
    if "prompt_tokens" in m:
        return m, m, ""
    u = find_openai_usage(r, m)  # a ModelResponse
    return m, u, "usage"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def read_usage(r: Reader, top: Obj, u: Obj, path: str) -> Usage:
    prompt = r.first_of([(u, path), (top, "")], ("prompt_tokens",))
    prompt = r.required(prompt, _join(path, "prompt_tokens"))
    output = r.first_of([(u, path), (top, "")], ("completion_tokens",)) or 0
    pdp = _join(path, "prompt_tokens_details")
    pd = r.sub(u, "prompt_tokens_details", path)
    read = r.first_of([(u, path)], ("cache_read_input_tokens",))
    read_path = _join(path, "cache_read_input_tokens")
    if read is None:
        read = r.count(pd, "cached_tokens", pdp) or 0
        read_path = f"{pdp}.cached_tokens"
    written = r.count(u, "cache_creation_input_tokens", path)
    written_path = _join(path, "cache_creation_input_tokens")
    if written is None:
        written = r.count(pd, "cache_creation_tokens", pdp) or 0
        written_path = f"{pdp}.cache_creation_tokens"
    prompt_path = _join(path, "prompt_tokens")
    if read + written > prompt >= read:
        plain = prompt - read  # an older LiteLLM: writes were not added to prompt_tokens
    else:
        plain = r.remainder(prompt, prompt_path, [(read, read_path), (written, written_path)])
    dp = f"{pdp}.cache_creation_token_details"
    w1h = r.count(r.sub(pd, "cache_creation_token_details", pdp), "ephemeral_1h_input_tokens", dp) or 0
    w1h = r.subset(w1h, f"{dp}.ephemeral_1h_input_tokens", written, written_path)
    cdp = _join(path, "completion_tokens_details")
    reasoning = r.count(r.sub(u, "completion_tokens_details", path), "reasoning_tokens", cdp) or 0
    reasoning = r.subset(reasoning, f"{cdp}.reasoning_tokens", output, _join(path, "completion_tokens"))
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
        cache_write_1h_tokens=w1h,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    top, u, path = _payload(r, raw)
    if top is None or u is None:
        r.no_usage()
        return Usage()
    usage = read_usage(r, top, u, path)
    why = cost_failure(top)
    if why is not None:
        r.note(f": LiteLLM could not price this call ({why}); priced with flightdeck's own rates")
    return usage


def cost_failure(m: Obj) -> str | None:
    """Why LiteLLM's ``response_cost`` is not a charge (its 0 means "could not price"), or None."""
    cost = m.get("response_cost")
    if cost not in (None, 0, 0.0, "0"):
        return None
    info = as_mapping(m.get("response_cost_failure_debug_info"))
    if info is not None:
        error = info.get("error_str")
        return str(error)[:120] if error else "response_cost_failure_debug_info"
    diagnostic = as_mapping(m.get("zero_cost_diagnostic"))
    if diagnostic is not None:
        return f"zero_cost_diagnostic: {diagnostic.get('reason') or 'no reason'}"
    return None


def reported_cost(r: Reader, raw: Any) -> Decimal | None:
    m = r.obj(raw, "payload")
    if m is None:
        return None
    if cost_failure(m) is not None:
        return None  # "could not price", not "free": flightdeck prices it
    if m.get("response_cost") is not None:
        return to_decimal(m.get("response_cost"), "litellm response_cost")
    hidden = as_mapping(m.get("hidden_params")) or as_mapping(m.get("_hidden_params"))
    if hidden is not None and hidden.get("response_cost") is not None:
        return to_decimal(hidden.get("response_cost"), "litellm hidden_params.response_cost")
    return None


def payload_provider(raw: Any) -> str | None:
    """The upstream provider LiteLLM routed to (``custom_llm_provider``)."""
    m = as_mapping(raw)
    value = None if m is None else m.get("custom_llm_provider")
    return value if isinstance(value, str) and value else None


def payload_model(raw: Any) -> str | None:
    m = as_mapping(raw)
    value = None if m is None else m.get("model")
    return value if isinstance(value, str) and value else None
