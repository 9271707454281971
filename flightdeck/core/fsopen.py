"""Open only regular files, and never block doing it.

A FIFO, a device or a socket planted where a telemetry or control file is
expected would hang an ``open`` (a FIFO with no reader on the other side
blocks ``open(O_WRONLY)`` forever) or feed endless bytes (``/dev/zero``). So
the path is checked before the open, opened with ``O_NONBLOCK`` (which makes
opening a FIFO return at once) and checked again on the descriptor (the path
may have been swapped in between); only then is blocking mode restored.
"""

from __future__ import annotations

import os
import stat
import tempfile

__all__ = ["NotRegularFile", "file_kind", "open_regular", "private_dir", "replace_file"]


class NotRegularFile(OSError):
    """The path exists but is a FIFO, device, socket or folder: nothing was opened."""


def file_kind(mode: int) -> str:
    """A short human name for a file type (``st_mode``): "FIFO", "folder", ..."""
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "regular file"
    return "special file"


def _refuse(path: str | os.PathLike[str], mode: int) -> NotRegularFile:
    return NotRegularFile(f"{os.fspath(path)} is a {file_kind(mode)}, not a regular file; not opened")


def open_regular(path: str | os.PathLike[str], flags: int, mode: int = 0o600, *, follow: bool = True) -> int:
    """``os.open`` for regular files only; returns a blocking descriptor.

    Args:
      path: the file to open.
      flags: ``os.O_*`` flags as for ``os.open`` (``O_CREAT`` creates a regular file).
      mode: permission bits for a file that ``O_CREAT`` creates.
      follow: when False, a symlink at ``path`` is refused (``O_NOFOLLOW``: ELOOP).

    Raises ``NotRegularFile`` (an ``OSError``) for anything but a regular
    file, and ``OSError`` as ``os.open`` does; never blocks on a FIFO.
    """
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        pass  # O_CREAT makes a regular file; without it os.open says so
    else:
        if not stat.S_ISREG(st.st_mode) and not (not follow and stat.S_ISLNK(st.st_mode)):
            raise _refuse(path, st.st_mode)
    extra = os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow:
        extra |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags | extra, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, st.st_mode)
        if not flags & os.O_NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` a 0700 folder of this user's, or raise OSError saying why; never follows a link.

    Args:
      path: the folder (its parent must exist).

    A symlink, a non-folder or another user's folder there is refused (the
    message names it); a folder of ours with looser bits is tightened.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise NotRegularFile(f"{os.fspath(path)}: not a plain folder (a {file_kind(st.st_mode)})")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise PermissionError(f"{os.fspath(path)}: belongs to another user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)  # ours: tighten it rather than give up


def replace_file(path: str | os.PathLike[str], body: bytes, *, suffix: str = ".tmp") -> None:
    """Write ``body`` to ``path`` whole: a temporary file in its folder, renamed over it.

    Args:
      path: the file, in a folder of ours (``private_dir``).
      body: its new contents.
      suffix: the temporary file's suffix (its name is ``.tmp-<random><suffix>``: the
        index's pruning knows a crashed writer's leftovers by it).

    ``mkstemp`` creates the temporary file with O_EXCL and mode 0600, under a
    name no other process can have planted; the rename replaces a link planted
    at ``path`` itself, never its target. A reader sees the old file or the
    new one, never part of one. On any failure the temporary file is removed
    and the error raised.
    """
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=os.path.dirname(os.fspath(path)) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
