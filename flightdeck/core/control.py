"""The file channel for control commands (SPEC section 2).

The monitor appends command lines to a sidecar beside the telemetry file
(``run.jsonl`` -> ``run.jsonl.control``); the agent reads the lines it has not
seen yet. The agent checks before every model call, so the quiet path is one
``os.stat``: a read happens only when the file grew or was replaced.
"""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

from flightdeck.core.events import Command, decode_command, encode_command

SIDECAR_SUFFIX = ".control"
_HEAD_BYTES = 64
_MAX_PENDING = 1 << 16  # a partial command line longer than this is garbage; drop it


def sidecar_path(telemetry_path: str | os.PathLike[str]) -> Path:
    """``run.jsonl`` -> ``run.jsonl.control``."""
    path = Path(telemetry_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def new_command(
    cmd: str,
    *,
    origin: str = "key",
    reason: str | None = None,
    to: dict[str, str] | None = None,
    target: dict[str, str] | None = None,
    now: float | None = None,
) -> Command:
    return Command(
        v=1,
        id=f"c-{uuid.uuid4().hex[:12]}",
        ts=time.time() if now is None else now,
        cmd=cmd,
        origin=origin,
        reason=reason,
        to=to,
        target=target,
    )


def append_command(sidecar: str | os.PathLike[str], command: Command) -> None:
    """Append one command line; the file is created 0600 and kept 0600.

    One ``write`` on an O_APPEND descriptor, so two monitors never interleave
    within a line. A sidecar owned by someone else, or open to others, is
    refused rather than written to: commands are the user's alone.
    """
    path = Path(sidecar)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to you")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        os.write(fd, encode_command(command))
    finally:
        os.close(fd)


class SidecarReader:
    """Reads the commands appended to a sidecar since the last poll.

    ``start_at_end=True`` skips what is already there (a fresh agent should
    not obey last week's pause); the recorder instead passes the ids it has
    already applied, so a restarted agent does not apply a command twice.
    """

    def __init__(self, sidecar: str | os.PathLike[str], *, start_at_end: bool = False) -> None:
        self.path = Path(sidecar)
        self._offset = 0
        self._ino: int | None = None
        self._pending = b""
        self._head = b""  # the file's first bytes, to notice a replacement
        self._stamp: tuple[int, int, int] | None = None
        self.errors: list[str] = []
        if start_at_end:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                pass
            else:
                self._ino, self._offset = st.st_ino, st.st_size
                self._head = self._read_head()

    def _read_head(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read(_HEAD_BYTES)
        except OSError:
            return b""

    def _same_head(self) -> bool:
        if not self._head:
            return True
        return self._read_head()[: len(self._head)] == self._head

    def poll(self) -> list[Command]:
        """New commands, oldest first. Bad lines are kept in ``errors``, never raised."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return []  # the quiet path: one stat, no read
        self._stamp = stamp
        if st.st_ino != self._ino or st.st_size < self._offset or not self._same_head():
            # Replaced or truncated (an unlinked file's inode number is often
            # reused at once, so the first bytes are checked too): start over.
            self._ino, self._offset, self._pending, self._head = st.st_ino, 0, b"", b""
        if st.st_size == self._offset:
            return []
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o022:
            # Someone else could have written it: obeying would let them steer the agent.
            self.errors.append(f"{self.path}: not owned by you or writable by others; ignored")
            self._offset = st.st_size
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read(st.st_size - self._offset)
        except OSError as exc:
            self.errors.append(f"{self.path}: {exc}")
            return []
        if self._offset < _HEAD_BYTES:
            self._head = (self._head + data)[:_HEAD_BYTES]
        self._offset += len(data)
        data = self._pending + data
        lines = data.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > _MAX_PENDING:
            self.errors.append(f"{self.path}: partial line over {_MAX_PENDING} bytes dropped")
            self._pending = b""
        commands: list[Command] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                commands.append(decode_command(line))
            except ValueError as exc:
                self.errors.append(str(exc))
        return commands
