"""OpenAI (and Azure OpenAI): Chat Completions and Responses usage.

Rules (source: openai-python ``types/completion_usage.py`` CompletionUsage and
``types/responses/response_usage.py`` ResponseUsage; platform.openai.com
prompt-caching guide):

- Chat Completions: ``prompt_tokens`` INCLUDES ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` INCLUDES ``completion_tokens_details.reasoning_tokens``.
- Responses: ``input_tokens`` INCLUDES ``input_tokens_details.cached_tokens``;
  ``output_tokens`` INCLUDES ``output_tokens_details.reasoning_tokens``.
- Cache writes: ``prompt_tokens_details.cache_write_tokens`` (Chat, openai-python
  3.x PromptTokensDetails) and ``input_tokens_details.cache_write_tokens``
  (Responses InputTokensDetails) sit beside ``cached_tokens``, also INSIDE the
  prompt total. Their ``cache_write_tokens_details`` retention split
  (``ttl_30m_tokens`` / ``ttl_12h_tokens``) has no canonical bucket (the 1h
  bucket is Anthropic's lifetime) and is not priced separately.
- ``service_tier`` (top level of ChatCompletion / ChatCompletionChunk /
  Response: "auto" | "default" | "flex" | "scale" | "priority" | "fast") is the
  tier that actually served the call; ``service_tier`` below reads it.
- A Chat Completions stream carries usage only when the request asked for it
  (``stream_options={"include_usage": True}``: a last chunk with empty
  ``choices``); without it the call is unknown, never priced 0, and the
  message says how to fix it.

Accepted payloads: the usage object, the whole response, the last streamed
chunk (``stream_options.include_usage``: ``choices`` empty, ``usage`` set), a
Responses stream event (``response.completed`` / ``.incomplete`` / ``.failed``
carry ``response.usage``), or a list of chunks/events (the last one carrying a
usage wins). The flavour is ``api`` ("chat" | "responses") or detected from
the field names.

The chat/responses readers here are shared by every OpenAI-shaped adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.reading import Obj, Reader, as_mapping, as_sequence, last_in_stream

CHAT = "chat"
RESPONSES = "responses"
APIS = (CHAT, RESPONSES)

_RESPONSE_EVENTS = frozenset(
    {"response.completed", "response.incomplete", "response.failed", "response.created",
     "response.in_progress"}
)
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")


@last_in_stream()  # streams: only the final chunk (or response.completed) carries usage
def find_usage(r: Reader, raw: Any, key: str = "usage") -> Obj | None:
    """The usage mapping inside an OpenAI-shaped payload, or None if there is none."""
    m = r.obj(raw, "payload")
    if m is None:
        return None
    kind = m.get("type")
    if isinstance(kind, str) and kind in _RESPONSE_EVENTS and m.get("response") is not None:
        m = r.sub(m, "response", "")
        if m is None:
            return None
    if key in m:
        r.saw_tiers(m.get("service_tier"))  # the response beside its usage says how it was served
        return r.sub(m, key, "")
    if any(k in m for k in _USAGE_KEYS):
        return m
    return None


def detect_api(u: Obj) -> str:
    """Chat Completions names its fields prompt/completion; Responses input/output."""
    if "prompt_tokens" in u or "completion_tokens" in u:
        return CHAT
    if "input_tokens" in u or "output_tokens" in u:
        return RESPONSES
    return CHAT


def read_chat(
    r: Reader,
    u: Obj,
    path: str = "usage",
    cached_aliases: Iterable[str] = (),
) -> Usage:
    """Chat Completions shape: cache reads/writes and reasoning are INSIDE the totals."""
    prompt = r.required(r.count(u, "prompt_tokens", path), f"{path}.prompt_tokens")
    output = r.count(u, "completion_tokens", path) or 0  # embeddings have none
    pdp = f"{path}.prompt_tokens_details"
    pd = r.sub(u, "prompt_tokens_details", path)
    cached_path = f"{pdp}.cached_tokens"
    cached = r.count(pd, "cached_tokens", pdp)
    if cached is None:
        for alias in cached_aliases:  # a provider's own name for the same count
            cached = r.count(u, alias, path)
            if cached is not None:
                cached_path = f"{path}.{alias}"
                break
    cached = cached or 0
    written = r.count(pd, "cache_write_tokens", pdp) or 0
    plain = r.remainder(
        prompt, f"{path}.prompt_tokens",
        [(cached, cached_path), (written, f"{pdp}.cache_write_tokens")],
    )
    cdp = f"{path}.completion_tokens_details"
    reasoning = r.count(r.sub(u, "completion_tokens_details", path), "reasoning_tokens", cdp) or 0
    reasoning = r.subset(reasoning, f"{cdp}.reasoning_tokens", output, f"{path}.completion_tokens")
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def read_responses(r: Reader, u: Obj, path: str = "usage") -> Usage:
    """Responses shape: same containment as chat, different names."""
    total_in = r.required(r.count(u, "input_tokens", path), f"{path}.input_tokens")
    output = r.count(u, "output_tokens", path) or 0
    idp = f"{path}.input_tokens_details"
    idt = r.sub(u, "input_tokens_details", path)
    cached = r.count(idt, "cached_tokens", idp) or 0
    written = r.count(idt, "cache_write_tokens", idp) or 0
    plain = r.remainder(
        total_in, f"{path}.input_tokens",
        [(cached, f"{idp}.cached_tokens"), (written, f"{idp}.cache_write_tokens")],
    )
    odp = f"{path}.output_tokens_details"
    reasoning = r.count(r.sub(u, "output_tokens_details", path), "reasoning_tokens", odp) or 0
    reasoning = r.subset(reasoning, f"{odp}.reasoning_tokens", output, f"{path}.output_tokens")
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def read_openai_shaped(r: Reader, u: Obj, api: str | None, path: str = "usage") -> Usage:
    flavour = api or detect_api(u)
    if flavour == RESPONSES:
        return read_responses(r, u, path)
    return read_chat(r, u, path)


def check_api(r: Reader, api: str | None, apis: tuple[str, ...] = APIS) -> str | None:
    """The requested flavour; an unknown one is reported and detection used instead."""
    if api is None:
        return None
    flavour = str(api).strip().lower()
    if flavour not in apis:
        r.bad("api", f"expected one of {list(apis)}, got {api!r}")
        return None
    return flavour


CHAT_STREAM_HINT = (" (a Chat Completions stream carries usage only when asked: pass "
                    "stream_options={'include_usage': True} and give set_usage the final chunk "
                    "or the list of chunks)")
RESPONSES_STREAM_HINT = (" (a Responses stream carries usage only in its response.completed event: "
                         "pass that event, the final response, or the list of events)")


def _last(raw: Any) -> Obj | None:
    events = as_sequence(raw)
    item = (events[-1] if events else None) if events is not None else raw
    try:
        return as_mapping(item)
    except Exception:  # unreadable: the reader already reported why
        return None


def missing_hint(raw: Any, chat_hint: str = CHAT_STREAM_HINT) -> str:
    """Why an OpenAI-shaped payload has no usage, and what to pass instead."""
    m = _last(raw)
    if m is None:
        return ""
    kind = m.get("type")
    if isinstance(kind, str) and kind.startswith("response."):
        return RESPONSES_STREAM_HINT
    choices = m.get("choices")
    first = as_mapping(choices[0]) if isinstance(choices, (list, tuple)) and choices else None
    if m.get("object") == "chat.completion.chunk" or (first is not None and "delta" in first):
        return chat_hint
    return ""


@last_in_stream()
def service_tier(r: Reader, raw: Any) -> str | None:
    """The tier that served the call (top-level ``service_tier``), or None when not said."""
    try:
        m = as_mapping(raw)
    except Exception:  # unreadable payload: the tier is simply not known
        return None
    if m is None:
        return None
    if isinstance(m.get("type"), str) and m.get("response") is not None:
        m = as_mapping(m.get("response")) or m  # Responses stream events wrap the Response
    value = m.get("service_tier")
    return value if isinstance(value, str) and value else None


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    flavour = check_api(r, api)
    u = find_usage(r, raw)
    if u is None:
        r.no_usage(missing_hint(raw))
        return Usage()
    return read_openai_shaped(r, u, flavour)
