"""DeepSeek chat completions usage (OpenAI-shaped, with its own cache fields).

Rules (source: api-docs.deepseek.com "Create Chat Completion" response schema
and the "Context Caching" guide):

- ``prompt_tokens`` = ``prompt_cache_hit_tokens`` + ``prompt_cache_miss_tokens``:
  hits are cache reads, misses are plain input. DeepSeek's disk cache is
  written implicitly and not billed as a write: ``cache_write_tokens`` is 0.
- ``prompt_tokens_details.cached_tokens``, where sent, is an ALIAS of the hit
  count (taken only when ``prompt_cache_hit_tokens`` is absent, never added).
- ``completion_tokens`` INCLUDES ``completion_tokens_details.reasoning_tokens``
  (deepseek-reasoner's chain of thought).
- When hit + miss disagrees with ``prompt_tokens`` the payload is inconsistent
  and it is an error naming the three fields.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.openai import find_usage, missing_hint, read_responses
from flightdeck.core.normalize.reading import Obj, Reader


def read_usage(r: Reader, u: Obj, path: str = "usage") -> Usage:
    prompt = r.count(u, "prompt_tokens", path)
    hit = r.count(u, "prompt_cache_hit_tokens", path)
    hit_path = f"{path}.prompt_cache_hit_tokens"
    if hit is None:
        pdp = f"{path}.prompt_tokens_details"
        hit = r.count(r.sub(u, "prompt_tokens_details", path), "cached_tokens", pdp)
        hit_path = f"{pdp}.cached_tokens"
    miss = r.count(u, "prompt_cache_miss_tokens", path)
    if prompt is None and hit is not None and miss is not None:
        prompt = hit + miss
    prompt = r.required(prompt, f"{path}.prompt_tokens")
    hit = hit or 0
    if miss is None:
        plain = r.remainder(prompt, f"{path}.prompt_tokens", [(hit, hit_path)])
    elif hit + miss != prompt:
        r.report(
            f"{hit_path} ({hit}) + {path}.prompt_cache_miss_tokens ({miss}) "
            f"!= {path}.prompt_tokens ({prompt})"
        )
        plain = miss
    else:
        plain = miss
    output = r.count(u, "completion_tokens", path) or 0
    cdp = f"{path}.completion_tokens_details"
    reasoning = r.count(r.sub(u, "completion_tokens_details", path), "reasoning_tokens", cdp) or 0
    reasoning = r.subset(reasoning, f"{cdp}.reasoning_tokens", output, f"{path}.completion_tokens")
    return Usage(
        input_tokens=plain,
        output_tokens=output,
        cache_read_tokens=hit,
        reasoning_tokens=reasoning,
    )


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    u = find_usage(r, raw)
    if u is None:
        r.no_usage(missing_hint(raw))
        return Usage()
    if "prompt_tokens" not in u and "input_tokens" in u:
        return read_responses(r, u)
    return read_usage(r, u)
