"""Anthropic Messages API usage.

Rules (source: anthropic-sdk-python ``types/usage.py`` Usage and
``types/cache_creation.py``; docs.anthropic.com prompt-caching and streaming pages):

- ``input_tokens`` EXCLUDES the cache: ``cache_creation_input_tokens`` (written)
  and ``cache_read_input_tokens`` (read) are separate, so the three are
  already the disjoint canonical buckets.
- ``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``
  splits the writes by lifetime; the 1h part is ``cache_write_1h_tokens``.
- ``output_tokens`` includes extended-thinking tokens, which the API does not
  count separately: ``reasoning_tokens`` stays 0.
- Streaming: ``message_start.message.usage`` opens the count and every
  ``message_delta.usage`` is CUMULATIVE (a running total, not an increment),
  so later values replace earlier ones field by field; they are never added.

Accepted payloads: the usage object, a Message, a single ``message_start`` or
``message_delta`` event, or the list of a stream's events.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.reading import Obj, Reader, as_sequence

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation_input_tokens")


def _single(r: Reader, m: Obj) -> Obj | None:
    kind = m.get("type")
    if kind == "message_start":
        return r.sub(r.sub(m, "message", ""), "usage", "message")
    if "usage" in m:
        return r.sub(m, "usage", "")
    if any(k in m for k in _USAGE_KEYS):
        return m
    return None


def _merge_stream(r: Reader, events: Any) -> Obj | None:
    """message_start's usage, overlaid by each message_delta's cumulative usage."""
    merged: dict[str, Any] = {}
    streamed = False
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
                streamed = True
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
    return merged if streamed else fallback


def find_usage(r: Reader, raw: Any) -> Obj | None:
    events = as_sequence(raw)
    if events is not None:
        return _merge_stream(r, events)
    m = r.obj(raw, "payload")
    return None if m is None else _single(r, m)


def read_usage(r: Reader, u: Obj, path: str = "usage") -> Usage:
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
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=w1h,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    u = find_usage(r, raw)
    if u is None:
        r.no_usage()
        return Usage()
    return read_usage(r, u)
