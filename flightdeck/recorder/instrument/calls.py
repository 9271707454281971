"""The life of one instrumented call: gate, model substitution, stage marks, write.

``TimedCall`` is the recorder's ``Call`` with its stages computed here (step
aware, see ``flightdeck.recorder.steps``) instead of from the ``with`` block.
Every wrapper (OpenAI, Anthropic, LiteLLM, ``rec.record``) goes through
``begin`` / ``begin_async`` and ``TimedCall.finish``, so the rules live once.
"""

from __future__ import annotations

import traceback
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from flightdeck.core.events import Latency
from flightdeck.recorder.recorder import Call, _read_usage, ms_between, stage_latency
from flightdeck.recorder.sinks import warn_once
from flightdeck.recorder.steps import STEP, Step, current_step

if TYPE_CHECKING:
    from flightdeck.recorder.recorder import Recorder

__all__ = ["TEXT_TAG", "TimedCall", "begin", "begin_async", "ms_between"]

# Tag holding "request sent -> first visible text" (ms) when it differs from ttft
# (a reasoning model streams thinking first: ttft is its first token).
TEXT_TAG = "ttft_text_ms"


class TimedCall(Call):
    """A ``Call`` whose stages come from its own marks and its step, written once.

    Extra marks beyond ``Call``: ``first_text()`` (first visible text, when a
    model streams thinking first), ``problem(text)`` (a reason shown in the
    event's ``message``), ``finish(exc)`` (the response is over: write now, or
    hold until the step ends).
    """

    __slots__ = ("_done", "_fixed", "_notes", "_pre_start", "_step", "_t_text", "wire")

    def __init__(self, rec: Recorder, provider: str, model: str, stream: bool, route: str | None,
                 api: str | None, name: str | None = None, step: int | None = None,
                 wire: str | None = None) -> None:
        """Args:
            rec: the recorder that writes the event.
            provider, model, stream, route, api: as ``rec.call``.
            name, step: the step's name and number; taken from ``rec.step`` when None.
            wire: whose usage shape the payloads have, when not the provider's own
                (Claude on Bedrock through the Anthropic SDK speaks Anthropic, not Bedrock).
        """
        # Outside any step (the usual case) the context variable alone says so, without
        # current_step's call; Call.__init__ by name, not through super(): 7.5k -> 6.7k
        # instructions a call made (valgrind).
        current = None if STEP.get() is None else current_step(rec)
        if current is not None:
            name = name if name is not None else current.name
            step = step if step is not None else current.number
        Call.__init__(self, rec, provider, model, name, step, stream, route, api, None)
        self._step: Step | None = current
        self._pre_start: float | None = None
        self._t_text: float | None = None
        self._done = False
        self._fixed: Latency | None = None
        self._notes: list[str] = []
        self.wire = wire

    def set_usage(self, raw: Any, api: str | None = None) -> None:
        """As ``Call.set_usage``, read in the wire's shape (see ``wire``)."""
        if self.wire is None:
            Call.set_usage(self, raw, api)
            return
        reading = _read_usage(self.wire, raw, api or self.api)
        self._reading = reading  # its service tier and speed go on the event, as for Call
        self._usage = reading.usage
        self._raw = raw
        self._problems = [*reading.problems, *reading.notes]

    # -- marks ------------------------------------------------------------------
    def sent(self) -> None:
        """The request goes out; inside a step, ``pre`` runs from the step's start (or its last call)."""
        self._t_sent = self._rec._mono()
        step = self._step
        if step is not None:
            self._pre_start = step.pre_start()

    def first_text(self) -> None:
        """The first visible text (not thinking) arrived; also the first token if none came before."""
        if self._t_text is None:
            self._t_text = self._rec._mono()
            if self._t_first is None:
                self._t_first = self._t_text

    def problem(self, text: str) -> None:
        """A reason to show in the event's ``message`` (kept across ``set_usage``)."""
        self._notes.append(text)

    def sent_at(self) -> float:
        """When the request went out (stage clock); the call's start if it never did."""
        return self._t_sent if self._t_sent is not None else self._t0

    def done_at(self) -> float:
        """When the response ended (stage clock); ``sent_at()`` if it never did."""
        return self._t_recv if self._t_recv is not None else self.sent_at()

    # -- end ----------------------------------------------------------------------
    def finish(self, exc: BaseException | None = None) -> None:
        """The response is complete, failed or was abandoned: write the event (once). Never raises."""
        if self._done:
            return
        self._done = True
        try:
            if self._t_recv is None:
                self._t_recv = self._rec._mono()
            step = self._step
            if step is not None and step.open:
                step.hold(self, exc)
            else:
                self.write(exc, post_end=None)
        except Exception:  # a bug of ours must not become the agent's exception
            warn_once("instrument-bug", "internal error while recording a call:\n" + traceback.format_exc())

    def write(self, exc: BaseException | None, post_end: float | None) -> None:
        """Fix the stages (``post`` ends at ``post_end``, None for no post) and write the event."""
        sent, first, recv = self._t_sent, self._t_first, self._t_recv
        start = self._pre_start if self._step is not None else sent
        end = post_end if post_end is not None else recv
        self._fixed = stage_latency(self._pre_start, sent, first, recv, post_end, start, end, self.stream)
        if self._t_text is not None and first is not None and self._t_text > first:
            self.tag(TEXT_TAG, f"{ms_between(sent, self._t_text):.3f}")
        if self._notes:
            self._problems = self._notes + self._problems
        self._finish(exc)

    def _latency(self, t_end: float) -> Latency:
        return self._fixed if self._fixed is not None else Call._latency(self, t_end)


def _substitute(call: TimedCall, kwargs: MutableMapping[str, Any]) -> None:
    """Apply a downgrade: the request carries the model in force; the asked one goes in ``tags.asked_model``."""
    asked = kwargs.get("model")
    if not isinstance(asked, str):
        return
    rec = call._rec
    # The gate just polled the control channel: a model asked for before is looked up without
    # a second stat; a first one goes through rec.model, which registers it (downgrades step it).
    used = rec._using.get(asked, asked) if asked in rec._asked else rec.model(asked)
    if used != asked:
        kwargs["model"] = used
        call.tag("asked_model", asked)
    call.model = used


# The request fields that make "the same prompt" (for prompt_hash and the loop guardrail):
# Chat/Anthropic messages, Anthropic system, Responses input and instructions.
_PROMPT_FIELDS = ("system", "instructions", "messages", "input")


def _prepare(call: TimedCall, kwargs: MutableMapping[str, Any]) -> None:
    """A downgrade substituted (``_substitute``), then the prompt hashed, as ``begin`` says."""
    _substitute(call, kwargs)
    # A loop, not a list comprehension: on 3.11 a comprehension is a function call of its own.
    parts = []
    for key in _PROMPT_FIELDS:
        if key in kwargs:
            parts.append(kwargs[key])
    if parts:
        call.set_prompt(parts)


def begin(rec: Recorder, provider: str, route: str | None, api: str | None, stream: bool,
          kwargs: MutableMapping[str, Any], wire: str | None = None) -> TimedCall:
    """Start a call before its request: wait while paused (or raise ``Paused``), then
    substitute a downgraded model into ``kwargs`` in place and hash the prompt
    (``prompt_hash``, what the loop guardrail counts; never the text).

    Args:
        rec: the recorder.
        provider, route, api: as ``rec.call``.
        stream: whether the response is streamed.
        kwargs: the SDK method's keyword arguments (``model`` is read and may be replaced).
        wire: the usage shape, when not the provider's (``TimedCall``).
    """
    call = TimedCall(rec, provider, str(kwargs.get("model") or "unknown"), stream, route, api, None, None, wire)
    call.__enter__()
    _prepare(call, kwargs)
    return call


async def begin_async(rec: Recorder, provider: str, route: str | None, api: str | None, stream: bool,
                      kwargs: MutableMapping[str, Any], wire: str | None = None) -> TimedCall:
    """``begin`` for async clients: waiting for a resume does not block the event loop."""
    call = TimedCall(rec, provider, str(kwargs.get("model") or "unknown"), stream, route, api, None, None, wire)
    await call.__aenter__()
    _prepare(call, kwargs)
    return call
