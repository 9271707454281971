"""``rec.record(...)``: write a call whose timings were measured elsewhere.

For callbacks and exporters (LiteLLM's logger, a span exporter, an agent that
times its own HTTP calls). Times are seconds, all of one kind:

- **epoch** (``time.time()``, a ``datetime``): any value >= 1e9 (Sept 2001 on)
  is read as Unix epoch seconds; a naive ``datetime`` is taken as local time,
  as ``datetime.timestamp()`` does;
- **monotonic**: smaller values are read as the recorder's stage clock,
  ``time.perf_counter()`` by default (on Linux the same clock as
  ``time.monotonic()``).

``started`` is when the request was sent, ``first_token`` when the first
streamed token came (its presence makes the call streamed unless ``stream=``
says otherwise), ``ended`` when the response was complete. Inside
``rec.step(...)`` the call takes the step's name and gets ``pre``/``post`` like
an instrumented call. Times of mixed kinds, or out of order, give an event
with no stages and a ``message`` saying so: this never raises into the agent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flightdeck.recorder.instrument.calls import TimedCall

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flightdeck.recorder.recorder import Recorder

__all__ = ["EPOCH_FLOOR", "Error", "record"]

EPOCH_FLOOR = 1e9  # seconds: values at or above are epoch times, below monotonic


class Error(Exception):
    """An error reported as text (``rec.record(error="...")``): written as ``Error: text``."""


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"a time must be seconds or a datetime, not {type(value).__name__}")
    return float(value)


def _to_mono(rec: Recorder, times: list[float | None]) -> list[float | None]:
    """The times on the recorder's stage clock; ValueError when they mix kinds or go backwards."""
    given = [t for t in times if t is not None]
    if not given:
        return times
    epoch = [t >= EPOCH_FLOOR for t in given]
    if any(epoch) and not all(epoch):
        raise ValueError("started/first_token/ended mix epoch and monotonic times")
    if given != sorted(given):
        raise ValueError("started <= first_token <= ended does not hold")
    if not epoch[0]:
        return times
    shift = rec._mono() - rec._clock()
    return [None if t is None else t + shift for t in times]


def record(rec: Recorder, *, provider: str, model: str, usage: Any = None,
           started: Any = None, first_token: Any = None, ended: Any = None,
           name: str | None = None, step: int | None = None, stream: bool | None = None,
           route: str | None = None, api: str | None = None, cost_usd: Any = None,
           error: BaseException | str | None = None, prompt: Any = None,
           tags: Mapping[str, Any] | None = None) -> None:
    """Write one ``llm_call`` event for a call timed elsewhere. Never raises.

    Args:
        rec: the recorder.
        provider, model: as ``rec.call``.
        usage: the provider's raw usage (any form ``set_usage`` takes) or a ``Usage``;
            None makes the cost ``unknown``.
        started, first_token, ended: request sent, first token, response done
            (epoch or monotonic seconds, or datetimes; see the module docstring).
        name, step: the step's name and number (default: the open ``rec.step``).
        stream: whether streamed (default: whether ``first_token`` was given).
        route, api: as ``rec.call``.
        cost_usd: what the provider or proxy said it charged (``cost_status: reported``).
        error: the exception, or its text, when the call failed.
        prompt: the request's messages, hashed into ``prompt_hash``.
        tags: free-form labels.
    """
    call = TimedCall(rec, provider, model, bool(first_token is not None) if stream is None else stream,
                     route or rec.route, api, name, step)
    call._entered = True
    try:
        t_sent, t_first, t_end = _to_mono(rec, [_seconds(started), _seconds(first_token), _seconds(ended)])
    except ValueError as bad:
        call.problem(f"stages not recorded: {bad}")
        t_sent = t_first = t_end = None
    now = rec._mono()
    call._t0 = t_sent if t_sent is not None else now
    call._t_sent = t_sent
    if t_sent is not None and call._step is not None:
        call._pre_start = min(call._step.pre_start(), t_sent)
    call._t_first = t_first
    call._t_recv = t_end if t_end is not None else (now if t_sent is not None else None)
    if usage is None:
        call.problem("no usage given to rec.record")
    else:
        call.set_usage(usage, api)
    if cost_usd is not None:
        call.set_cost(cost_usd)
    if prompt is not None:
        call.set_prompt(prompt)
    for key, value in (tags or {}).items():
        call.tag(key, value)
    failure = Error(error) if isinstance(error, str) else error
    call.finish(failure)
