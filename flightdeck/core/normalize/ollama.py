"""Ollama: native ``/api/chat`` and ``/api/generate``, and its OpenAI-compatible ``/v1``.

Rules (source: github.com/ollama/ollama ``docs/api.md``, "Response" of
Generate a completion / Generate a chat completion; ``api/types.go`` Metrics):

- Native: ``prompt_eval_count`` is the prompt tokens evaluated, ``eval_count``
  the generated tokens (thinking included: no reasoning split). Only the final
  object (``"done": true``) of a stream carries them.
- ``prompt_eval_count`` is OMITTED when the whole prompt was reused from the
  KV cache: that is 0 plain input, not an error. Ollama does not say how many
  tokens the reuse covered, so no cache-read count is invented.
- The ``/v1`` endpoints answer in OpenAI shape and are read by those rules:
  Chat Completions (``openai/openai.go`` Usage: ``prompt_tokens`` /
  ``completion_tokens``, no details) and Responses (``openai/responses.go``
  ResponsesUsage), whose ``input_tokens_details.cached_tokens`` is the cached
  part of the prompt, INSIDE ``input_tokens`` as in OpenAI's own Responses.
  (At ollama fb30760, 2026-08-21, the server still writes it as 0 with a TODO
  to wire the real count; it is read as soon as it is sent.)
- Ollama runs locally; the recorder prices it as ``local`` (cost 0).
"""

from __future__ import annotations

from typing import Any

from flightdeck.core.events import Usage
from flightdeck.core.normalize.openai import find_usage as find_openai_usage
from flightdeck.core.normalize.openai import read_openai_shaped
from flightdeck.core.normalize.reading import Obj, Reader, as_sequence, last_in_stream

_NATIVE = ("eval_count", "prompt_eval_count")


@last_in_stream()
def _find(r: Reader, raw: Any) -> Obj | None:
    m = r.obj(raw, "payload")
    if m is None:
        return None
    if any(k in m for k in _NATIVE):
        return m
    return None


def read_native(r: Reader, m: Obj) -> Usage:
    plain = r.count(m, "prompt_eval_count", "") or 0  # absent: prompt fully KV-cached
    output = r.count(m, "eval_count", "") or 0
    return Usage(input_tokens=plain, output_tokens=output)


def normalize(r: Reader, raw: Any, api: str | None = None) -> Usage:
    native = _find(r, raw)
    if native is not None:
        return read_native(r, native)
    u = find_openai_usage(r, raw)
    if u is not None:
        return read_openai_shaped(r, u, None)
    m = None if as_sequence(raw) is not None else r.obj(raw, "payload")
    hint = " (a chunk with done=false carries no counts: pass the final one)" if (
        m is not None and m.get("done") is False) else ""
    r.no_usage(hint)
    return Usage()
