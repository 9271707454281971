"""Opening a log for reading, and nothing that is not a regular file.

A FIFO blocks ``open()`` until a writer comes (forever, for a monitor's
ingest thread), ``/dev/zero`` never ends, a terminal or a socket is no log.
So every reader opens through ``open_regular``: ``stat`` first (a symlink to
a regular file is fine: that is how logs are often laid out), open
read-only and non-blocking (a FIFO swapped in after the check cannot block
the open), then ``fstat`` the descriptor and check again, since the path
may have changed between the two.
"""

from __future__ import annotations

import os
import stat
from typing import Final

_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)  # a terminal given as PATH must never become ours
)


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder: refused, never opened."""


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words for a notice.

    Args:
        mode: ``os.stat_result.st_mode``.
    """
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def refusal(path: str | os.PathLike[str], mode: int) -> str:
    """The notice for a path that is not a regular file.

    Args:
        path: the path as the user knows it.
        mode: its ``st_mode``.
    """
    return f"{os.fspath(path)}: {kind_of(mode)}, not a regular file: not read"


def check_regular(path: str | os.PathLike[str], st: os.stat_result) -> None:
    """Raise ``NotRegularFile`` unless ``st`` (of ``path``) is a regular file.

    Args:
        path: for the message.
        st: the path's (or descriptor's) stat result.
    """
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(refusal(path, st.st_mode))


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor on a regular file; ``NotRegularFile`` for anything else.

    Args:
        path: the file to open (symlinks are followed).

    Raises ``OSError`` as ``os.open`` does (missing, permission, EMFILE) and
    ``NotRegularFile`` (an ``OSError``) for a FIFO, device, socket or folder.
    The descriptor is non-blocking, which changes nothing for a regular file.
    """
    check_regular(path, os.stat(path))
    fd = os.open(path, _FLAGS)
    try:
        check_regular(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd
