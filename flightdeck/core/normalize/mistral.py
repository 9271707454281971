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
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.openai import find_usage, read_chat, read_responses
from flightdeck.core.normalize.reading import Reader


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    u = find_usage(r, raw)
    if u is None:
        r.no_usage()
        return Usage()
    if "prompt_tokens" not in u and "input_tokens" in u:
        return read_responses(r, u)
    return read_chat(r, u, cached_aliases=("num_cached_tokens",))
