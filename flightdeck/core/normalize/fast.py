"""The recorder's common usage payloads read in one pass, or None to let the adapters read them.

``read_call_usage`` runs inside the agent on every call, and the general
adapters (``Reader`` with a path string per field, alias lists, reports)
cost it about 10 us per call for a plain usage dict (measured with
``timeit`` on a shared 2-core machine, 2026-12). The payloads the recorder
and ``rec.instrument`` actually pass are few and regular: an Anthropic
``usage`` dict (or the SDK's object), the ``[message_start, message_delta]``
pair the Anthropic stream proxy builds, an OpenAI Chat or Responses ``usage``
(alone, or in a response or ``{"usage", "service_tier"}``, as ``rec.instrument``
passes it). ``quick_reading`` reads exactly those, when every
field is a plain non-negative ``int`` (or null) and no containment rule is
broken, in about 1.5 us; for anything else (a bad or odd field, another
shape, a note to give) it returns None and the adapters answer, with their
messages. The rules are the adapters' (``anthropic.read_usage``,
``openai.read_chat``, ``openai.read_responses``), restated here for the
clean case only: ``tests/core/normalize/test_normalize_fast.py`` pins
``quick_reading`` to the adapters on the real SDK payloads and on
generated ones.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.reading import is_pydantic_model

__all__ = ["quick_reading"]

# The marker the Anthropic adapter puts on a lone message_delta's usage (anthropic._LONE_DELTA).
_LONE_DELTA = "lone_delta"


def _dict(value: Any) -> dict[str, Any] | None:
    """``value`` as a plain dict: itself, or a view of a pydantic model's fields; None otherwise.

    A pydantic model's fields live in its ``__dict__`` (extras beside, in
    ``__pydantic_extra__``): the view is what ``model_dump()`` gives one level
    down, nested models left as they are (``_sub`` views them in turn), for
    0.2 us instead of the 6-8 us of ``model_dump()`` on an SDK usage object
    (timeit, shared 2-core machine). The adapters' ``as_mapping`` dumps it;
    the tests pin the two readings together on the SDKs' own types.
    """
    if type(value) is dict:
        return value
    if is_pydantic_model(value):
        fields = getattr(value, "__dict__", None)
        if type(fields) is dict:
            extra = getattr(value, "__pydantic_extra__", None)
            return {**fields, **extra} if extra else fields
    return None


def _count(value: Any) -> int | bool | None:
    """A plain count, None when absent; False (not a count: let the adapters say why)."""
    if value is None:
        return None
    if type(value) is int and value >= 0:
        return value
    return False


def _tier(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sub(u: dict[str, Any], key: str) -> dict[str, Any] | bool | None:
    """``u[key]`` as a dict (or a model's view), None when absent or null; False for anything else."""
    value = u.get(key)
    if value is None:
        return None
    found = _dict(value)
    return False if found is None else found


def _anthropic(u: dict[str, Any]) -> tuple[Usage, str | None, str | None] | None:
    """``anthropic.read_usage`` for a clean usage dict (no lone-delta note to give)."""
    if _LONE_DELTA in u:
        return None
    # ``_count`` inlined for the four top-level counts (a plain int >= 0, or None where allowed):
    # 2.4 -> 1.4 us a reading (timeit, interleaved, shared 2-core machine).
    plain = u.get("input_tokens")
    if type(plain) is not int or plain < 0:
        return None
    output = u.get("output_tokens")
    if output is not None and (type(output) is not int or output < 0):
        return None
    read = u.get("cache_read_input_tokens")
    if read is not None and (type(read) is not int or read < 0):
        return None
    written = u.get("cache_creation_input_tokens")
    if written is not None and (type(written) is not int or written < 0):
        return None
    w5: int | bool | None = None
    w1h: int | bool | None = None
    # ``_sub`` only where the key holds something (most usages have no split, no details).
    cc = None if u.get("cache_creation") is None else _sub(u, "cache_creation")
    if cc is False:
        return None
    if cc is not None:
        w5 = _count(cc.get("ephemeral_5m_input_tokens"))  # type: ignore[union-attr]
        w1h = _count(cc.get("ephemeral_1h_input_tokens"))  # type: ignore[union-attr]
        if w5 is False or w1h is False:
            return None
    w1h = w1h or 0
    if written is None:  # only the split was sent: its parts are the whole
        written = (w5 or 0) + w1h
    if w1h > written:
        return None
    out = output or 0
    thinking: int | bool | None = None
    details = None if u.get("output_tokens_details") is None else _sub(u, "output_tokens_details")
    if details is False:
        return None
    if details is not None:
        thinking = _count(details.get("thinking_tokens"))  # type: ignore[union-attr]
        if thinking is False:
            return None
    thinking = thinking or 0
    if thinking > out:
        return None
    usage = Usage(input_tokens=plain, output_tokens=out, cache_read_tokens=read or 0,
                  cache_write_tokens=written, reasoning_tokens=thinking, cache_write_1h_tokens=w1h)
    tier, speed = u.get("service_tier"), u.get("speed")
    return usage, None if tier is None else _tier(tier), None if speed is None else _tier(speed)


def _anthropic_stream(events: list[Any]) -> dict[str, Any] | None:
    """``anthropic._merge_stream`` for a list of message_start / message_delta dicts only."""
    merged: dict[str, Any] = {}
    started = False
    for item in events:
        event = _dict(item)
        if event is None:
            return None
        kind = event.get("type")
        if kind == "message_start":
            message = _sub(event, "message")
            if message is None:
                continue
            if not isinstance(message, dict):
                return None
            start = _sub(message, "usage")
            if start is None:
                continue
            if not isinstance(start, dict):
                return None
            merged.update(start)
            started = True
        elif kind == "message_delta":
            delta = _sub(event, "usage")
            if delta is None:
                continue
            if not isinstance(delta, dict):
                return None
            # Cumulative totals: replace, never add. Nulls mean "not sent".
            merged.update({k: v for k, v in delta.items() if v is not None})
        else:
            return None
    if not started:  # no usage at all, or a lone delta (a note to give): the adapter says so
        return None
    return merged


def _openai_counts(u: dict[str, Any], total_key: str, out_key: str, in_details: str,
                   out_details: str) -> Usage | None:
    """``openai.read_chat`` / ``read_responses`` (same containment, other names) for a clean dict."""
    # ``_count`` inlined for the two top-level counts, as in ``_anthropic``.
    total = u.get(total_key)
    if type(total) is not int or total < 0:
        return None
    output = u.get(out_key)
    if output is not None and (type(output) is not int or output < 0):
        return None
    cached: int | bool | None = None
    written: int | bool | None = None
    details = _sub(u, in_details)
    if details is False:
        return None
    if details is not None:
        cached = _count(details.get("cached_tokens"))  # type: ignore[union-attr]
        written = _count(details.get("cache_write_tokens"))  # type: ignore[union-attr]
        if cached is False or written is False:
            return None
    cached, written = cached or 0, written or 0
    if cached + written > total:
        return None
    out = output or 0
    reasoning: int | bool | None = None
    odetails = _sub(u, out_details)
    if odetails is False:
        return None
    if odetails is not None:
        reasoning = _count(odetails.get("reasoning_tokens"))  # type: ignore[union-attr]
        if reasoning is False:
            return None
    reasoning = reasoning or 0
    if reasoning > out:
        return None
    return Usage(input_tokens=total - cached - written, output_tokens=out, cache_read_tokens=cached,
                 cache_write_tokens=written, reasoning_tokens=reasoning)


def _openai(u: dict[str, Any], api: str | None) -> tuple[Usage, str | None, str | None] | None:
    """``openai.normalize`` for a usage dict (Chat or Responses, by ``api`` or by its names), or
    a response holding one: its ``service_tier`` beside ``usage`` is the tier (``find_usage``)."""
    if "type" in u or "response" in u:
        return None  # a stream event: the adapter finds the usage inside
    if "usage" in u:
        inner = _sub(u, "usage")
        if not isinstance(inner, dict) or "usage" in inner:
            return None
        found = _openai(inner, api)
        return None if found is None else (found[0], _tier(u.get("service_tier")), None)
    if api is None:
        if "prompt_tokens" in u or "completion_tokens" in u:
            api = "chat"
        elif "input_tokens" in u or "output_tokens" in u:
            api = "responses"
        else:
            return None
    if api == "chat":
        usage = _openai_counts(u, "prompt_tokens", "completion_tokens", "prompt_tokens_details",
                               "completion_tokens_details")
    elif api == "responses":
        usage = _openai_counts(u, "input_tokens", "output_tokens", "input_tokens_details",
                               "output_tokens_details")
    else:
        return None
    if usage is None:
        return None
    return usage, _tier(u.get("service_tier")), None


def quick_reading(name: str, raw: Any, api: str | None) -> tuple[Usage, str | None, str | None] | None:
    """(usage, service tier, speed) of a common clean payload; None to let the adapters read it.

    Args:
        name: the canonical provider (``canonical_provider``); only ``anthropic``
            and ``openai`` have a quick reading.
        raw: the payload, as ``read_call_usage`` takes it.
        api: the OpenAI flavour (``chat`` / ``responses``), or None to tell by the field names.
    Never raises (a foreign ``model_dump()`` that fails leaves it to the adapters).
    """
    try:
        if name == "anthropic":
            if type(raw) is list:
                merged = _anthropic_stream(raw)
                return None if merged is None else _anthropic(merged)
            u = _dict(raw)
            if u is None or "type" in u or "usage" in u:
                return None  # a Message or a stream event: the adapter finds the usage inside
            return _anthropic(u)
        if name == "openai":
            u = _dict(raw)
            return None if u is None else _openai(u, api)
    except Exception:  # a foreign object misbehaving: the adapters report it properly
        return None
    return None

