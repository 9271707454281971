"""Mistral AI chat completions usage (OpenAI-shaped).

Rules (source: mistralai client ``models/usageinfo.py`` UsageInfo:
``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``prompt_audio_seconds`` plus additional properties; docs.mistral.ai):

- OpenAI semantics: ``prompt_tokens`` is the whole prompt and
  ``completion_tokens`` the whole output.
- Cached prompt tokens, where the API reports them, arrive as
  ``prompt_tokens_details.cached_tokens`` or, in some responses, as
  ``num_cached_tokens``. Both are ALIASES of one count INSIDE
  ``prompt_tokens``: the first present is taken, never both.
- Mistral reports no cache writes and no reasoning split (magistral's
  thinking is inside ``completion_tokens``).
- Streams: the SDK wraps every chunk in an event object, ``CompletionEvent``
  with the chunk in ``.data`` (``models/completionevent.py``:
  ``data: CompletionChunk``); only the last chunk carries ``usage``. Events are
  unwrapped here, so the event, its chunk, or the list of either is accepted.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.openai import find_usage, missing_hint, read_chat, read_responses
from flightdeck.core.normalize.reading import Reader, as_mapping, as_sequence

STREAM_HINT = (" (Mistral streams report usage only in their last event: pass the last "
               "CompletionEvent, its .data, or the list of events)")


def unwrap(raw: Any) -> Any:
    """A CompletionEvent's chunk (``.data``); lists are unwrapped item by item."""
    events = as_sequence(raw)
    if events is not None:
        return [unwrap(event) for event in events]
    try:
        m = as_mapping(raw)
    except Exception:  # unreadable: let the reader report it
        return raw
    if m is not None and "data" in m and not any(k in m for k in ("usage", "choices", "object")):
        return m["data"]
    return raw


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    raw = unwrap(raw)
    u = find_usage(r, raw)
    if u is None:
        r.no_usage(missing_hint(raw, STREAM_HINT))
        return Usage()
    if "prompt_tokens" not in u and "input_tokens" in u:
        return read_responses(r, u)
    return read_chat(r, u, cached_aliases=("num_cached_tokens",))
