"""Cohere Chat v1 and v2 usage.

Rules (source: cohere-python ``types/api_meta.py`` ApiMeta /
``types/usage.py`` Usage with ``billed_units: UsageBilledUnits`` and
``tokens: UsageTokens``; docs.cohere.com "How does Cohere pricing work"):

- v1 puts counts in ``meta``; v2 in ``usage``. Both carry ``billed_units``
  (what is charged) and ``tokens`` (what the model processed, INCLUDING the
  prompt-template tokens Cohere adds and does not bill). Only
  ``billed_units.input_tokens`` / ``output_tokens`` are read; ``tokens`` is
  never used, and its absence of a billed twin is an error, not a fallback.
- The SDK types billed units as floats: integral floats are accepted.
- Cohere's billed units carry no cache or reasoning split, so those stay 0
  (v2's informational ``cached_tokens`` is not a billing bucket and is ignored).

Accepted payloads: a v1 response or its ``stream-end`` event (``response.meta``),
a v2 response or its ``message-end`` event (``delta.usage``), the ``meta`` /
``usage`` object itself, or a list of stream events. ``api`` = "v1" | "v2",
else detected.
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.openai import check_api
from flightdeck.core.normalize.reading import Obj, Reader, last_in_stream

V1 = "v1"
V2 = "v2"
_CONTAINER = {V1: "meta", V2: "usage"}


@last_in_stream()
def _find(r: Reader, raw: Any, api: str | None) -> tuple[Obj, str] | None:
    m = r.obj(raw, "payload")
    if m is None:
        return None
    # Stream terminators wrap the final counts one level down.
    if m.get("event_type") == "stream-end" and m.get("response") is not None:
        return _find(r, m.get("response"), api)
    if m.get("type") == "message-end" and m.get("delta") is not None:
        return _find(r, m.get("delta"), api)
    keys = (_CONTAINER[api],) if api else ("meta", "usage")
    for key in keys:
        if m.get(key) is not None:
            container = r.sub(m, key, "")
            return None if container is None else (container, key)
    if "billed_units" in m or "tokens" in m:
        return m, _CONTAINER[api] if api else "usage"
    return None


def read_container(r: Reader, c: Obj, path: str) -> Usage:
    billed = r.sub(c, "billed_units", path)
    if billed is None:
        detail = "missing"
        if c.get("tokens") is not None:
            detail += " (tokens counts unbilled prompt-template tokens and is not used)"
        r.bad(f"{path}.billed_units", detail)
        return Usage()
    bp = f"{path}.billed_units"
    plain = r.required(r.count(billed, "input_tokens", bp), f"{bp}.input_tokens")
    output = r.count(billed, "output_tokens", bp) or 0
    return Usage(input_tokens=plain, output_tokens=output)


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    flavour = check_api(r, api, (V1, V2))
    found = _find(r, raw, flavour)
    if found is None:
        r.no_usage(f" (looked for {_CONTAINER[flavour]!r})" if flavour else "")
        return Usage()
    container, path = found
    return read_container(r, container, path)
