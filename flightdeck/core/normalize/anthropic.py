"""Anthropic Messages API usage.

Rules (source: anthropic-sdk-python ``types/usage.py`` Usage and
``types/cache_creation.py``; docs.anthropic.com prompt-caching and streaming pages):

- ``input_tokens`` EXCLUDES the cache: ``cache_creation_input_tokens`` (written)
  and ``cache_read_input_tokens`` (read) are separate, so the three are
  already the disjoint canonical buckets.
- ``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``
  splits the writes by lifetime; the 1h part is ``cache_write_1h_tokens``.
- ``output_tokens`` INCLUDES extended-thinking tokens; current APIs break them
  out as ``output_tokens_details.thinking_tokens`` (``types/output_tokens_details.py``:
  "Always <= output_tokens"), read as ``reasoning_tokens``. Without it
  ``reasoning_tokens`` stays 0.
- ``usage.service_tier`` ("standard" | "priority" | "batch") and ``usage.speed``
  ("standard" | "fast") say how the call was served and billed; ``service_tier``
  and ``speed`` below read them (the stream's ``message_start`` carries them).
- Streaming: ``message_start.message.usage`` opens the count and every
  ``message_delta.usage`` is CUMULATIVE (a running total, not an increment),
  so later values replace earlier ones field by field; they are never added.
- A lone ``message_delta`` (``types/message_delta_usage.py`` MessageDeltaUsage)
  has no ``cache_creation`` split, so the 1h and 5m writes cannot be told
  apart. It is priced conservatively: every cache write counts as a 1h write
  (the higher rate), so the cost is an upper bound, and the event's message
  says so. Pass the final Message (``stream.get_final_message()``) or the list
  of the stream's events for the exact split.
- ``message_stop`` (and the other content events) carry no usage at all: the
  call is then unknown, never priced 0, with a message saying what to pass.

Accepted payloads: the usage object, a Message, a single ``message_start`` or
``message_delta`` event, or the list of a stream's events.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.reading import Obj, Reader, as_mapping, as_sequence

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation_input_tokens")
# Stream events that never carry usage (the SDK's RawMessageStreamEvent union).
_NO_USAGE_EVENTS = frozenset({"message_stop", "content_block_start", "content_block_delta",
                              "content_block_stop", "ping"})
_LONE_DELTA = "lone_delta"  # marker key: the usage came from a message_delta alone


def _single(r: Reader, m: Obj) -> Obj | None:
    kind = m.get("type")
    if kind == "message_start":
        return r.sub(r.sub(m, "message", ""), "usage", "message")
    if kind == "message_delta":
        delta = r.sub(m, "usage", "")
        return None if delta is None else {**delta, _LONE_DELTA: True}
    if "usage" in m:
        return r.sub(m, "usage", "")
    if any(k in m for k in _USAGE_KEYS):
        return m
    return None


def _merge_stream(r: Reader, events: Any) -> Obj | None:
    """message_start's usage, overlaid by each message_delta's cumulative usage."""
    merged: dict[str, Any] = {}
    streamed = started = False
    fallback: Obj | None = None
    for index, event in enumerate(events):
        m = r.obj(event, f"events[{index}]")
        if m is None:
            continue
        kind = m.get("type")
        if kind == "message_start":
            start = r.sub(r.sub(m, "message", f"events[{index}]"), "usage", f"events[{index}].message")
            if start is not None:
                merged.update(start)
                streamed = started = True
        elif kind == "message_delta":
            delta = r.sub(m, "usage", f"events[{index}]")
            if delta is not None:
                # Cumulative totals: replace, never add. Nulls mean "not sent".
                merged.update({k: v for k, v in delta.items() if v is not None})
                streamed = True
        elif not streamed:
            found = _single(r, m)
            if found is not None:
                fallback = found  # e.g. a list of whole Messages: the last wins
    if streamed and not started:
        merged[_LONE_DELTA] = True  # deltas without their message_start: no 1h/5m split
    return merged if streamed else fallback


def find_usage(r: Reader, raw: Any) -> Obj | None:
    events = as_sequence(raw)
    if events is not None:
        return _merge_stream(r, events)
    m = r.obj(raw, "payload")
    return None if m is None else _single(r, m)


def read_usage(r: Reader, u: Obj, path: str = "usage") -> Usage:
    r.saw_tiers(u.get("service_tier"), u.get("speed"))
    plain = r.required(r.count(u, "input_tokens", path), f"{path}.input_tokens")
    output = r.count(u, "output_tokens", path) or 0
    read = r.count(u, "cache_read_input_tokens", path) or 0
    written = r.count(u, "cache_creation_input_tokens", path)
    ccp = f"{path}.cache_creation"
    cc = r.sub(u, "cache_creation", path)
    w5 = r.count(cc, "ephemeral_5m_input_tokens", ccp) or 0
    w1h = r.count(cc, "ephemeral_1h_input_tokens", ccp) or 0
    written_path = f"{path}.cache_creation_input_tokens"
    if written is None:  # only the split was sent: its parts are the whole
        written = w5 + w1h
        written_path = ccp
    w1h = r.subset(w1h, f"{ccp}.ephemeral_1h_input_tokens", written, written_path)
    if u.get(_LONE_DELTA) and cc is None and written:
        w1h = written  # no split: the upper bound, see the module docstring
        r.note(": a lone message_delta has no 1h/5m cache-write split; every cache write was "
               "priced at the 1h rate (an upper bound): pass the final message or the list of "
               "stream events for the exact cost")
    odp = f"{path}.output_tokens_details"
    thinking = r.count(r.sub(u, "output_tokens_details", path), "thinking_tokens", odp) or 0
    thinking = r.subset(thinking, f"{odp}.thinking_tokens", output, f"{path}.output_tokens")
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=thinking,
        cache_write_1h_tokens=w1h,
    )


def missing_hint(raw: Any) -> str:
    """What was passed instead of usage, and what to pass (for the no-usage message)."""
    events = as_sequence(raw)
    last = events[-1] if events else raw
    try:
        m = as_mapping(last)
    except Exception:  # a foreign object that cannot be read: no hint, the problem says why
        return ""
    kind = None if m is None else m.get("type")
    if not isinstance(kind, str):  # a log line may hold anything there
        kind = None
    if kind in _NO_USAGE_EVENTS or events is not None:
        what = f"{kind} carries" if kind in _NO_USAGE_EVENTS and events is None else "these stream events carry"
        return (f" ({what} no usage: pass the final Message (stream.get_final_message()) "
                "or the list of the stream's events, message_start included)")
    return ""


def _usage_of(r: Reader, raw: Any) -> Obj | None:
    """The usage object (a stream's merged usage) for the tier/speed readers; never raises."""
    try:
        return find_usage(r, raw)
    except Exception:  # a strict reader meeting a bad field: tier and speed are just unknown
        return None


def service_tier(r: Reader, raw: Any) -> str | None:
    """``usage.service_tier`` ("standard" | "priority" | "batch"), or None."""
    u = _usage_of(r, raw)
    value = None if u is None else u.get("service_tier")
    return value if isinstance(value, str) and value else None


def speed(r: Reader, raw: Any) -> str | None:
    """``usage.speed`` ("standard" | "fast": fast mode is billed at its own rates), or None."""
    u = _usage_of(r, raw)
    value = None if u is None else u.get("speed")
    return value if isinstance(value, str) and value else None


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    u = find_usage(r, raw)
    if u is None:
        r.no_usage(missing_hint(raw))
        return Usage()
    return read_usage(r, u)
