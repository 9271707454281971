"""The recorder's defences: what it checks and how it fails, so the agent never sees it fail.

- ``describe_exception``: an agent's exception as text, even when its ``__str__`` raises.
- ``check_log_path`` / ``make_private_dirs``: where a telemetry file may be
  opened, and folders created for it readable by the user alone.
- ``Faults``: counts every error met on the control and sink paths, and
  warns about each kind once.
- ``say``: one line on stderr (the caller passes strings from the monitor
  through ``core.sanitize.clean``, so they show as text, never a terminal escape).
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections import Counter
from pathlib import Path

from flightdeck.recorder.sinks import warn_once

__all__ = ["Faults", "UnsafeLogPath", "check_log_path", "describe_exception", "make_private_dirs",
           "say"]

_ERROR_TEXT_MAX = 500


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"`` (``"TypeName"`` when the message is empty), at most 500 characters.

    Args:
      exc: the exception the agent's code raised inside ``rec.call``.

    An exception whose ``__str__`` raises (or returns a non-string) is still
    described: its class name and a note, so the call's event is never lost.
    """
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception as err:
        text = f"<unprintable: __str__ raised {type(err).__name__}>"
    return (f"{name}: {text}" if text else name)[:_ERROR_TEXT_MAX]


def say(message: str) -> None:
    """One ``flightdeck: ...`` line on stderr; a closed stderr is ignored.

    Args:
      message: the line, without the prefix or newline.
    """
    try:
        print(f"flightdeck: {message}", file=sys.stderr, flush=True)
    except Exception:  # stderr closed or broken: nothing to raise into the agent
        pass


class Faults:
    """Errors met on the recorder's own paths, by kind (``control``, ``sink``, ``record``).

    ``note`` counts and warns once per key; the counts are ``rec.faults``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def note(self, kind: str, key: str, message: str) -> None:
        """Count one fault of ``kind``; print ``message`` the first time ``key`` is seen.

        Args:
          kind: the counter to bump.
          key: what makes two faults "the same" for the once-only warning.
          message: what to print.
        """
        with self._lock:
            self.counts[kind] += 1
        warn_once(key, message)

    def after_fork(self) -> None:
        """In a forked child: the lock may have been held by a thread that is gone."""
        self._lock = threading.Lock()


class UnsafeLogPath(PermissionError):
    """The telemetry path could be steered by another user: nothing is opened there."""


def _uid_name(uid: int) -> str:
    return "you" if uid == os.getuid() else f"uid {uid}"


def check_log_path(path: Path) -> bool:
    """Whether it is safe to open ``path`` for telemetry; returns whether to follow a symlink there.

    Args:
      path: the telemetry file's path.

    A symlink at the path is followed only when it is the user's own and its
    folder is not open to others: in a world-writable folder another user
    could plant or swap it to point the agent's writes anywhere. The sticky
    bit (``/tmp``) protects a symlink whose owner is the user or the folder's
    owner, which is the check the kernel's ``protected_symlinks`` makes.
    Raises ``UnsafeLogPath`` with the reason otherwise. Returns False when
    the path is not a symlink, so the open refuses one planted after this check.
    (The file's own owner is checked on the opened descriptor, by ``FileSink``.)
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISLNK(st.st_mode):
        return False
    me = os.getuid()
    if st.st_uid != me:
        raise UnsafeLogPath(f"{path} is a symlink owned by {_uid_name(st.st_uid)}, not by you; "
                            "refusing to write telemetry through it")
    folder = os.stat(path.parent)
    if folder.st_mode & stat.S_IWOTH:
        sticky_ok = bool(folder.st_mode & stat.S_ISVTX) and st.st_uid in (me, folder.st_uid)
        if not sticky_ok:
            raise UnsafeLogPath(f"{path} is a symlink in the world-writable folder {path.parent}, "
                                "where anyone can replace it; refusing to write telemetry through it")
    return True


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents with mode 0700, whatever the umask.

    Args:
      folder: the folder a telemetry file goes in. Existing folders are left as they are.
    """
    missing: list[Path] = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: theirs to set
        os.chmod(d, 0o700)  # mkdir's mode is cut by the umask
