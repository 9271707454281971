"""The file channel for control commands (SPEC section 2).

The monitor appends command lines to a sidecar beside the telemetry file
(``run.jsonl`` -> ``run.jsonl.control``); the agent reads the lines it has not
seen yet. The agent checks before every model call, so the quiet path is one
``os.stat``: a read happens only when the file grew or was replaced.

Bounds, the same on both channels: a command line is at most
``MAX_COMMAND_BYTES`` (64 KiB) and a downgrade mapping at most
``MAX_DOWNGRADE_ENTRIES`` (1,000) models. ``append_command`` refuses to write
more, and the agent refuses to apply more from either channel (it acknowledges
such a command with a message), so one command can never keep an agent busy.
Only regular files are opened (``core.fsopen``): a FIFO at the sidecar path is
refused instead of blocking either side.
"""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

from flightdeck.core.events import Command, decode_command, encode_command
from flightdeck.core.fsopen import NotRegularFile, file_kind, open_regular

SIDECAR_SUFFIX = ".control"
MAX_COMMAND_BYTES = 1 << 16  # one command line, newline included
MAX_DOWNGRADE_ENTRIES = 1_000  # models in one downgrade mapping
_HEAD_BYTES = 64
_MAX_READ = 1 << 20  # bytes read per poll: a huge sidecar is taken in slices, never at once


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


def command_problem(command: Command) -> str | None:
    """Why ``command`` is over the bounds both ends enforce, or None when it is within them."""
    if command.to is not None and len(command.to) > MAX_DOWNGRADE_ENTRIES:
        return f"downgrade mapping of {len(command.to)} models is over the limit of {MAX_DOWNGRADE_ENTRIES}"
    return None


def append_command(sidecar: str | os.PathLike[str], command: Command) -> None:
    """Append one command line; the file is created 0600 and kept 0600.

    Args:
      sidecar: the ``.control`` path (``sidecar_path(telemetry)``).
      command: the command to send.

    One ``write`` on an O_APPEND descriptor, so two monitors never interleave
    within a line. The line starts on a fresh line even when the file ends
    in a partial one (a writer that died mid-line), so the partial line is
    rejected alone instead of swallowing this command. A sidecar owned by
    someone else, or open to others, is refused rather than written to:
    commands are the user's alone. Raises ``NotRegularFile`` for a FIFO or
    device at the path (never blocks on it), ``ValueError`` for a command
    over the bounds, ``OSError`` as writing does.
    """
    problem = command_problem(command)
    line = encode_command(command)
    if problem is None and len(line) > MAX_COMMAND_BYTES:
        problem = f"command line of {len(line)} bytes is over the limit of {MAX_COMMAND_BYTES}"
    if problem is not None:
        raise ValueError(f"not sent: {problem}")
    path = Path(sidecar)
    fd = open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600, follow=False)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to you")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
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
            except OSError:  # missing or unreadable: the first poll says why
                pass
            else:
                self._ino, self._offset = st.st_ino, st.st_size
                self._head = self._read_head()

    def _read_head(self) -> bytes:
        try:
            return self._read_at(0, _HEAD_BYTES)
        except OSError:
            return b""

    def _read_at(self, offset: int, size: int) -> bytes:
        # Never a blocking open: the path may have become a FIFO since the stat.
        fd = open_regular(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def _same_head(self) -> bool:
        if not self._head:
            return True
        return self._read_head()[: len(self._head)] == self._head

    def poll(self) -> list[Command]:
        """New commands, oldest first. Never raises: bad lines and unreadable,
        unsafe or odd files (a symlink loop, a folder gone unsearchable, a FIFO)
        are kept in ``errors`` and read nothing."""
        try:
            return self._poll()
        except OSError as exc:
            self._stamp = None  # look again next time
            self.errors.append(f"{self.path}: {exc}")
            return []

    def _poll(self) -> list[Command]:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return []  # the quiet path: one stat, no read
        if not stat.S_ISREG(st.st_mode):
            self._stamp = stamp
            raise NotRegularFile(f"is a {file_kind(st.st_mode)}, not a regular file; ignored")
        if st.st_ino != self._ino or st.st_size < self._offset or not self._same_head():
            # Replaced or truncated (an unlinked file's inode number is often
            # reused at once, so the first bytes are checked too): start over.
            self._ino, self._offset, self._pending, self._head = st.st_ino, 0, b"", b""
        if st.st_size == self._offset:
            self._stamp = stamp
            return []
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o022:
            # Someone else could have written it: obeying would let them steer the agent.
            self.errors.append(f"{self.path}: not owned by you or writable by others; ignored")
            self._offset = st.st_size
            self._stamp = stamp
            return []
        data = self._read_at(self._offset, min(st.st_size - self._offset, _MAX_READ))
        if self._offset < _HEAD_BYTES:
            self._head = (self._head + data)[:_HEAD_BYTES]
        self._offset += len(data)
        if self._offset >= st.st_size:
            self._stamp = stamp  # caught up; otherwise the next poll reads the next slice
        data = self._pending + data
        lines = data.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) >= MAX_COMMAND_BYTES:
            self.errors.append(f"{self.path}: partial line over {MAX_COMMAND_BYTES} bytes dropped")
            self._pending = b""
        commands: list[Command] = []
        for line in lines:
            if not line.strip():
                continue
            if len(line) >= MAX_COMMAND_BYTES:
                self.errors.append(f"{self.path}: command line of {len(line)} bytes is over the limit; ignored")
                continue
            try:
                commands.append(decode_command(line))
            except ValueError as exc:
                self.errors.append(str(exc))
        return commands
