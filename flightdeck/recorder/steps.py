"""Agent steps: ``with rec.step("reflect"):`` names the calls inside and times the work around them.

A step is held in a ``contextvars.ContextVar``, so each thread and each asyncio
task sees its own (a task started inside a step inherits it; concurrent tasks
opening their own steps never see each other's).

Stages of an instrumented call made inside a step (SPEC section 1, ``latency_ms``):

- ``pre``: from the step's start, or from the end of the step's previous call
  when one finished before this call was sent, to the request being sent. The
  time between two calls of one step is counted once, as the next call's
  ``pre`` (building the next prompt).
- ``post``: from the response's end to the step's end, for a call that no
  other call of the step followed; null for a call that another call of the
  step followed (its post-processing is that call's ``pre``).
- ``total``: from the start of ``pre`` to the end of ``post`` (or of the
  response, when ``post`` is null).

The calls of a step are written when the step ends, since ``post`` is only
known then. A call that finishes after its step ended (a stream read later)
is written at once, with no ``post``. Calls outside any step have neither
``pre`` nor ``post``: their ``total`` is request sent -> response done.
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flightdeck.recorder.instrument.calls import TimedCall
    from flightdeck.recorder.recorder import Recorder

__all__ = ["STEP", "Step", "current_step"]

# The innermost step of this context (of any recorder: see ``current_step``); None outside any.
STEP: contextvars.ContextVar[Step | None] = contextvars.ContextVar("flightdeck_step", default=None)


def current_step(rec: Recorder) -> Step | None:
    """The innermost open step of ``rec`` in this context, or None.

    Args:
        rec: the recorder whose step is wanted; a step of another recorder does not count.
    """
    step = STEP.get()
    if step is None or step.rec is not rec or not step.open:
        return None
    return step


class Step:
    """One agent step: a sync and async context manager made by ``rec.step(name)``.

    Attributes: ``name`` (the event's ``name``), ``number`` (the event's ``step``,
    optional), ``calls`` (how many calls were made in it so far).
    """

    __slots__ = ("_held", "_token", "last_done", "name", "number", "open", "rec", "t0")

    def __init__(self, rec: Recorder, name: str, number: int | None = None) -> None:
        """Args:
            rec: the recorder that writes the step's calls.
            name: the step's name (``plan``, ``reflect``, ...), written as each call's ``name``.
            number: the agent loop's iteration, written as each call's ``step``.
        """
        self.rec = rec
        self.name = name
        self.number = number
        self.t0 = 0.0
        self.last_done: float | None = None  # end of the latest call finished in this step
        self.open = False
        self._held: list[tuple[TimedCall, BaseException | None]] = []
        self._token: contextvars.Token[Step | None] | None = None

    @property
    def calls(self) -> int:
        """Calls finished in this step and waiting for its end."""
        return len(self._held)

    def pre_start(self) -> float:
        """Where the ``pre`` of a call sent now starts (see the module docstring)."""
        last = self.last_done
        return self.t0 if last is None or last < self.t0 else last

    def hold(self, call: TimedCall, exc: BaseException | None) -> None:
        """Keep a finished call until the step ends (its ``post`` is not known before)."""
        done = call.done_at()
        if self.last_done is None or done > self.last_done:
            self.last_done = done
        self._held.append((call, exc))

    # -- context manager -------------------------------------------------------
    def __enter__(self) -> Step:
        self.t0 = self.rec._mono()
        self.open = True
        self._token = STEP.set(self)
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close()

    async def __aenter__(self) -> Step:
        return self.__enter__()

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._close()

    def _close(self) -> None:
        end = self.rec._mono()
        self.open = False
        if self._token is not None:
            try:
                STEP.reset(self._token)
            except ValueError:  # exited in another context than entered: just clear ours
                STEP.set(None)
            self._token = None
        held, self._held = self._held, []
        for call, exc in held:
            followed = any(other is not call and other.sent_at() > call.done_at() for other, _ in held)
            call.write(exc, post_end=None if followed else end)
