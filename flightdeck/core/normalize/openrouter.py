"""OpenRouter usage (OpenAI-shaped, normalised across upstream providers).

Rules (source: openrouter.ai/docs "Usage Accounting"; the ``usage`` object of
every chat completion and of the last SSE chunk):

- ``prompt_tokens`` is the whole prompt in the model's native tokenizer and
  INCLUDES ``prompt_tokens_details.cached_tokens`` (cache reads) and
  ``prompt_tokens_details.cache_write_tokens`` (cache writes), so plain input
  = prompt - cached - written.
- ``completion_tokens`` INCLUDES ``completion_tokens_details.reasoning_tokens``.
- ``usage.cost`` is what OpenRouter charged, in credits (USD), as a JSON
  number: it is exposed by ``reported_cost`` (exactly, via ``Decimal(repr(float))``),
  never summed as a float here.
- OpenRouter's Responses-style endpoint uses the OpenAI Responses names and is
  read by the Responses rules.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.cost import to_decimal
from flightdeck.core.normalize.openai import check_api, find_usage, missing_hint, read_openai_shaped
from flightdeck.core.normalize.reading import Reader


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    flavour = check_api(r, api)
    u = find_usage(r, raw)
    if u is None:
        r.no_usage(missing_hint(raw))
        return Usage()
    return read_openai_shaped(r, u, flavour)


def reported_cost(r: Reader, raw: Any) -> Decimal | None:
    u = find_usage(r, raw)
    if u is None:
        return None
    return to_decimal(u.get("cost"), "openrouter usage.cost")
