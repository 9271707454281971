"""Where a Recorder's lines go: a file (``FileSink``) or a monitor's socket (``SocketSink``).

Both obey the recorder's one promise to the agent: telemetry never raises and
never stalls. A line that cannot be written is *counted* (``pending_drops``)
and the recorder reports the count in the ``dropped`` field of its next event
that does get through; the first failure is warned about once on stderr.

``FileSink`` does one ``os.write`` per line on an ``O_APPEND`` descriptor, so
several processes can share one file without torn or interleaved lines (the
kernel positions and writes an append atomically for a regular file).

``SocketSink`` hands lines to a background thread through a bounded queue and
returns at once; the thread connects (and reconnects with exponential
backoff), sends, and reads the control commands the monitor writes back on the
same connection. When the queue is full the line is dropped and counted.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from flightdeck.core.events import Command, decode_command

__all__ = ["FileSink", "Sink", "SocketSink", "warn_once"]

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str) -> None:
    """Print ``message`` on stderr the first time ``key`` is seen in this process.

    stderr rather than ``warnings.warn``: an agent that runs with
    ``-W error`` must still never see an exception from its telemetry.
    """
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    try:
        print(f"flightdeck: {message}", file=sys.stderr, flush=True)
    except Exception:  # stderr closed: nothing more we can do, and nothing to raise
        pass


class Sink(Protocol):
    """What the Recorder writes to."""

    def write(self, line: bytes) -> bool:
        """Queue or write one line; False if it was dropped (and counted)."""
        ...

    def pending_drops(self) -> int:
        """Lines lost since the last ``ack_drops``: reported in the next event."""
        ...

    def ack_drops(self, n: int) -> None:
        """``n`` drops were reported in a line that got through."""
        ...

    def poll_commands(self) -> list[Command]:
        """Commands received since the last call (socket sinks only)."""
        ...

    def close(self, timeout: float = 2.0) -> None: ...


class _DropCounter:
    """Drops not yet reported, and the total since start."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unreported = 0
        self.total_dropped = 0

    def _drop(self, n: int = 1) -> None:
        with self._lock:
            self._unreported += n
            self.total_dropped += n

    def pending_drops(self) -> int:
        return self._unreported

    def ack_drops(self, n: int) -> None:
        if n:
            with self._lock:
                self._unreported = max(0, self._unreported - n)


class FileSink(_DropCounter):
    """Appends lines to a JSONL file, one ``write`` per line.

    The file is created with mode 0600 (it names your models, runs and
    spend). A file that cannot be opened disables the sink with one warning;
    every later line is counted as dropped, and opening is retried now and
    then (a full or unmounted disk can come back).
    """

    _RETRY_OPEN_S = 5.0

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None
        self._next_open = 0.0
        self._open()

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            self._fd = None
            self._next_open = time.monotonic() + self._RETRY_OPEN_S
            warn_once(f"open:{self.path}", f"cannot open telemetry file {self.path}: {exc}; "
                      "calls are not recorded until it can be opened")

    def write(self, line: bytes) -> bool:
        fd = self._fd
        if fd is None:
            if time.monotonic() >= self._next_open:
                self._open()
                fd = self._fd
            if fd is None:
                self._drop()
                return False
        try:
            written = os.write(fd, line)
        except OSError as exc:
            self._drop()
            warn_once(f"write:{self.path}", f"cannot write telemetry to {self.path}: {exc}; "
                      "lost lines are counted and reported in the `dropped` field")
            return False
        if written != len(line):
            # Only on a full disk or a signal mid-write; finishing the line keeps
            # the file parseable, even though another writer may interleave here.
            try:
                rest = memoryview(line)[written:]
                while rest:
                    n = os.write(fd, rest)
                    rest = rest[n:]
            except OSError:
                self._drop()
                return False
        return True

    def poll_commands(self) -> list[Command]:
        return []  # file mode reads commands from the sidecar, see Recorder

    def close(self, timeout: float = 2.0) -> None:
        fd, self._fd = self._fd, None
        self._next_open = float("inf")
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a UNIX socket (Linux), else None."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class SocketSink(_DropCounter):
    """Streams lines to a monitor on a UNIX socket, from a background thread.

    ``write`` never blocks: it appends to a bounded deque (``maxlen`` lines)
    or counts a drop when it is full. The thread connects, sends whole lines
    (a line cut by a broken connection is sent again in full on the next
    one; the monitor drops the partial line), reads command lines back, and
    reconnects with backoff from ``backoff_min`` to ``backoff_max`` seconds.
    A socket owned by another user is refused (``SO_PEERCRED``): it could
    read the telemetry and steer the agent.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        maxlen: int = 10_000,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        max_commands: int = 1_000,
        on_command: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.path = str(path)
        self.maxlen = maxlen
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.on_command = on_command  # called from the sink's thread when commands arrive
        self.connects = 0  # successful connections, for tests and diagnostics
        self.command_errors: collections.deque[str] = collections.deque(maxlen=50)
        self._queue: collections.deque[bytes] = collections.deque()
        self._commands: collections.deque[Command] = collections.deque(maxlen=max_commands)
        self._cond = threading.Condition()
        self._closing = False
        self._stop = False
        self._sending = False  # a line is between the queue and the socket
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="flightdeck-socket-sink", daemon=True)
        self._thread.start()

    # -- agent side -------------------------------------------------------

    def write(self, line: bytes) -> bool:
        with self._cond:
            if self._stop or len(self._queue) >= self.maxlen:
                self._drop()
                return False
            self._queue.append(line)
            self._cond.notify()
        self._wake()
        return True

    def poll_commands(self) -> list[Command]:
        if not self._commands:  # the quiet path: no lock
            return []
        out: list[Command] = []
        while self._commands:
            try:
                out.append(self._commands.popleft())
            except IndexError:
                break
        return out

    @property
    def queued(self) -> int:
        return len(self._queue)

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued for up to ``timeout`` seconds, then stop.

        Lines still queued after that are counted as dropped and warned about.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._wake()
        with self._cond:
            while (self._queue or self._sending) and time.monotonic() < deadline:
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._stop = True
            lost = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._wake()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        if lost:
            self._drop(lost)
            warn_once(f"close:{self.path}", f"{lost} telemetry lines not delivered to {self.path} before close")
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # pipe full (already awake) or closed
            pass

    # -- background thread -------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_min
        while not self._stop:
            sock = self._connect()
            if sock is None:
                if self._closing:
                    # Nobody to deliver to and we are shutting down: give up now.
                    with self._cond:
                        self._stop = True
                        self._cond.notify_all()
                    return
                self._sleep(backoff)
                backoff = min(self.backoff_max, backoff * 2)
                continue
            backoff = self.backoff_min
            try:
                self._serve(sock)
            finally:
                try:
                    sock.close()
                except OSError:
                    pass
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            if not self._stop and not self._closing:
                self._cond.wait(seconds)

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(1.0)
            sock.connect(self.path)
        except OSError:
            sock.close()
            return None
        uid = _peer_uid(sock)
        if uid is not None and uid != os.getuid():
            sock.close()
            warn_once(f"peer:{self.path}", f"refusing monitor socket {self.path}: owned by uid {uid}")
            return None
        sock.setblocking(False)
        self.connects += 1
        return sock

    def _serve(self, sock: socket.socket) -> None:
        """Send queued lines and read commands until the connection breaks or we stop."""
        inbuf = b""
        current: memoryview | None = None  # the unsent rest of the line being sent
        line: bytes | None = None
        wake = self._wake_r
        while not self._stop:
            if current is None:
                with self._cond:
                    if self._queue:
                        line = self._queue.popleft()
                        current = memoryview(line)
                        self._sending = True
                    else:
                        self._sending = False
                        self._cond.notify_all()
            wants_write = [sock] if current is not None else []
            try:
                readable, writable, _ = select.select([sock, wake], wants_write, [], 0.5)
            except (OSError, ValueError):
                return
            if wake in readable:
                try:
                    os.read(wake, 4096)
                except OSError:
                    pass
            if sock in readable:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    self._requeue(line, current)
                    return
                if data == b"":
                    self._requeue(line, current)
                    return
                if data:
                    inbuf, received = self._take_commands(inbuf + data)
                    if received and self.on_command is not None:
                        self.on_command()
            if current is not None and sock in writable:
                try:
                    n = sock.send(current)
                except BlockingIOError:
                    continue
                except OSError:
                    self._requeue(line, current)
                    return
                current = current[n:]
                if not current:
                    current, line = None, None

    def _requeue(self, line: bytes | None, current: memoryview | None) -> None:
        # The monitor drops a partial line when a connection ends, so the whole
        # line goes out again on the next connection.
        if line is not None and current is not None:
            with self._cond:
                self._queue.appendleft(line)

    def _take_commands(self, data: bytes) -> tuple[bytes, int]:
        """Queue the complete command lines in ``data``; (the partial rest, how many queued)."""
        *lines, rest = data.split(b"\n")
        received = 0
        for raw in lines:
            if not raw.strip():
                continue
            try:
                self._commands.append(decode_command(raw))
                received += 1
            except ValueError as exc:
                self.command_errors.append(str(exc))
        if len(rest) > 1 << 16:
            self.command_errors.append("partial command line over 64 KiB dropped")
            rest = b""
        return rest, received
