"""Re-arm recorders in a forked child (``os.fork``, multiprocessing's fork start method).

A child inherits its parent's memory but only the thread that forked: a
recorder there would reuse the parent's id prefix and counter (so a reader
throws half the calls away as duplicates), its socket sender thread would be
gone (so nothing is ever delivered), and a lock some other thread held at the
fork would stay locked forever. Each tracked object's ``_after_fork()`` runs
in the child right after the fork, before any user code.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["track"]


class _Forkable(Protocol):
    def _after_fork(self) -> None: ...


_tracked: weakref.WeakSet[_Forkable] = weakref.WeakSet()


def track(obj: _Forkable) -> None:
    """Call ``obj._after_fork()`` in every child forked while ``obj`` is alive.

    Args:
      obj: a recorder (held weakly: tracking never keeps it alive).
    """
    _tracked.add(obj)


def _in_child() -> None:
    # Runs inside os.fork(): an exception here would only be printed, but a
    # broken recorder must still not stop the others from being re-armed.
    from flightdeck.recorder import sinks

    sinks.after_fork()
    for obj in list(_tracked):
        try:
            obj._after_fork()
        except Exception as exc:
            sinks.warn_once("fork", f"could not re-arm a recorder after fork: {exc!r}")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
