"""LiteLLM: ``litellm.callbacks = [FlightdeckLogger(rec)]`` records every LiteLLM call.

Reads LiteLLM's StandardLoggingPayload (``kwargs["standard_logging_object"]``,
``litellm/types/utils.py``), sync and async, success and failure:

- times: ``startTime`` (request sent), ``completionStartTime`` (first token of a
  stream; LiteLLM sets it to the end for a call that is not streamed) and
  ``endTime``, epoch seconds;
- tokens: the LiteLLM usage object in ``metadata.usage_object`` (cache reads and
  writes, reasoning), read by flightdeck's LiteLLM normaliser;
- money: LiteLLM's ``response_cost`` (``cost_status: reported``), unless LiteLLM
  could not price the call (``response_cost`` 0 or null with
  ``response_cost_failure_debug_info`` set): then flightdeck prices it itself;
- provider and model: ``custom_llm_provider`` and ``model`` (the upstream LiteLLM
  routed to); the route from ``api_base`` as for an SDK client (a local server
  is ``local``, a known API ``direct``).

LiteLLM runs sync callbacks on its own worker thread, after the call returned,
so a ``rec.step`` around a sync ``litellm.completion`` may be over by then: such
calls carry the step's name only when the logger sees the step still open.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from litellm.integrations.custom_logger import CustomLogger

from flightdeck.core.normalize import normalize_usage_partial
from flightdeck.recorder.instrument.route import infer_url
from flightdeck.recorder.sinks import warn_once

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["FlightdeckLogger"]


class FlightdeckLogger(CustomLogger):
    """A LiteLLM callback writing one ``llm_call`` event per completion into ``rec``."""

    def __init__(self, rec: Recorder, *, provider: str | None = None, route: str | None = None) -> None:
        """Args:
            rec: the recorder.
            provider: the event's provider (default: LiteLLM's ``custom_llm_provider``).
            route: the event's route (default: from the payload's ``api_base``).
        """
        super().__init__()
        self.rec = rec
        self.provider = provider
        self.route = route
        self.missing = 0  # calls LiteLLM logged without a StandardLoggingPayload

    # -- LiteLLM hooks ---------------------------------------------------------------
    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, None)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, _failure(kwargs))

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._log(kwargs, None)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        self._log(kwargs, _failure(kwargs))

    # -- the one reading -------------------------------------------------------------------
    def _log(self, kwargs: Any, error: BaseException | str | None) -> None:
        """Turn one payload into an event. Never raises into LiteLLM (or the agent)."""
        try:
            payload = kwargs.get("standard_logging_object") if isinstance(kwargs, Mapping) else None
            if not isinstance(payload, Mapping):
                self.missing += 1
                warn_once("litellm-payload", "LiteLLM logged a call without standard_logging_object; not recorded")
                return
            self._write(payload, error)
        except Exception:
            warn_once("litellm-bug", "internal error recording a LiteLLM call:\n" + traceback.format_exc())

    def _write(self, p: Mapping[str, Any], error: BaseException | str | None) -> None:
        upstream = p.get("custom_llm_provider")
        provider = self.provider or (upstream if isinstance(upstream, str) and upstream else "litellm")
        # In-process LiteLLM calls the provider itself: direct, unless the api_base is local.
        guessed_route = infer_url(_text(p.get("api_base")), provider)[1]
        route = self.route or ("local" if guessed_route == "local" else "direct")
        failed = error is not None or p.get("status") == "failure"
        if failed and error is None:
            error = _text(p.get("error_str")) or "LiteLLM reported a failure"
        usage, problems = normalize_usage_partial("litellm", p)
        for problem in problems:
            warn_once(f"litellm-usage:{problem[:60]}", f"LiteLLM usage: {problem}")
        stream = bool(p.get("stream"))
        first = p.get("completionStartTime") if stream else None
        self.rec.record(
            provider=provider, model=_text(p.get("model")) or "unknown",
            usage=None if failed and not usage.input_tokens and not usage.output_tokens else usage,
            started=p.get("startTime"), first_token=first, ended=p.get("endTime"),
            stream=stream, route=route, cost_usd=None if failed else _reported(p), error=error,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reported(p: Mapping[str, Any]) -> Any:
    """LiteLLM's own cost, or None when it failed to price the call (flightdeck prices it then)."""
    cost = p.get("response_cost")
    if cost is None:
        return None
    if p.get("response_cost_failure_debug_info") and not cost:
        return None
    return str(cost)  # a float from LiteLLM; its repr is the shortest exact text of it


def _failure(kwargs: Any) -> BaseException | str:
    if isinstance(kwargs, Mapping):
        exc = kwargs.get("exception")
        if isinstance(exc, BaseException):
            return exc
    return "LiteLLM reported a failure"
