"""Where a Recorder's lines go: a file (``FileSink``) or a monitor's socket (``SocketSink``).

Both obey the recorder's one promise to the agent: telemetry never raises and
never stalls. A line that cannot be written is *counted* (``pending_drops``)
and the recorder reports the count in the ``dropped`` field of its next event;
a count is settled only once the line carrying it was delivered (written to
the file, or handed to the monitor's socket), so a count is never lost with
its line. The first failure of each kind is warned about once on stderr.

``FileSink`` does one ``os.write`` per line on an ``O_APPEND`` descriptor, so
several processes can share one file without torn or interleaved lines (the
kernel positions and writes an append atomically for a regular file). It
opens only a regular file (a FIFO at the path would block), refuses a symlink
someone else could have planted (``safety.check_log_path``), creates missing
folders 0700, reopens the path when it was renamed or replaced (logrotate:
one ``stat`` at most once a second, on the write path), and after a write
that stopped mid-line (a full disk) starts the next line on a fresh line.

``SocketSink`` hands lines to a background thread through a bounded queue and
returns at once; the thread connects (and reconnects with exponential
backoff), sends, and reads the control commands the monitor writes back on the
same connection. When the queue is full the line is dropped and counted.
"""

from __future__ import annotations

import collections
import errno
import os
import select
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from flightdeck.core.control import MAX_COMMAND_BYTES
from flightdeck.core.events import Command, decode_command
from flightdeck.core.fsopen import open_regular

__all__ = ["FileSink", "Sink", "SocketSink", "after_fork", "warn_once"]

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


def after_fork() -> None:
    """In a forked child: the warning lock may have been held by a thread that is gone."""
    global _warned_lock
    _warned_lock = threading.Lock()


class Sink(Protocol):
    """What the Recorder writes to."""

    def write(self, line: bytes, drops: int = 0) -> bool:
        """Queue or write one line carrying ``drops`` (its ``dropped`` field); False if it
        was dropped (and counted). The sink settles ``drops`` once the line is delivered."""
        ...

    def pending_drops(self) -> int:
        """Lines lost and not yet carried by a line on its way: for the next event's ``dropped``."""
        ...

    def ack_drops(self, n: int) -> None:
        """``n`` drops were reported by other means (a sink whose ``write`` ignores ``drops``)."""
        ...

    def poll_commands(self) -> list[Command]:
        """Commands received since the last call (socket sinks only)."""
        ...

    def close(self, timeout: float = 2.0) -> None: ...


class _DropCounter:
    """Drops not yet reported, those riding on a line not yet delivered, and the total since start.

    ``pending_drops() = unreported - in flight``: a count goes out in exactly
    one line at a time; if that line is lost, the count is pending again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unreported = 0
        self._in_flight = 0
        self.total_dropped = 0

    def _drop(self, n: int = 1) -> None:
        with self._lock:
            self._unreported += n
            self.total_dropped += n

    def _carry(self, n: int) -> None:
        if n:
            with self._lock:
                self._in_flight += n

    def _settle(self, n: int, delivered: bool) -> None:
        """The line carrying ``n`` drops was delivered (reported) or lost (pending again)."""
        if n:
            with self._lock:
                self._in_flight = max(0, self._in_flight - n)
                if delivered:
                    self._unreported = max(0, self._unreported - n)

    def pending_drops(self) -> int:
        # Read before every line: a subtraction and a compare, not max() (0.4 -> 0.1 us).
        n = self._unreported - self._in_flight
        return n if n > 0 else 0

    def lost(self, n: int = 1) -> None:
        """Count ``n`` lines lost before they reached the sink (one that could not be encoded)."""
        self._drop(n)

    def ack_drops(self, n: int) -> None:
        if n:
            with self._lock:
                self._unreported = max(0, self._unreported - n)

    def _reset_drops_after_fork(self) -> None:
        # The parent reports its own drops; the child starts its own count.
        self._lock = threading.Lock()
        self._unreported = self._in_flight = self.total_dropped = 0


class FileSink(_DropCounter):
    """Appends lines to a JSONL file, one ``write`` per line.

    The file is created with mode 0600 (it names your models, runs and
    spend), in folders created 0700. A file that cannot be opened (or may
    not be: a FIFO, a planted symlink) disables the sink with one warning;
    every later line is counted as dropped, and opening is retried now and
    then (a full or unmounted disk can come back).

    Args:
      path: the telemetry file.
      check_interval: seconds between checks that ``path`` is still the open
        file (rotation); 0 checks on every write.
      clock: a monotonic clock (tests move it by hand).
    """

    _RETRY_OPEN_S = 5.0

    def __init__(self, path: str | os.PathLike[str], *, check_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.path = Path(path)
        self.check_interval = check_interval
        self.reopens = 0  # times the path was found renamed or replaced and reopened
        self.error: str | None = None  # why the file is not open, while it is not
        self.faults = 0  # OSErrors met opening or writing (each warned about once per kind)
        self._clock = clock
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._next_open = 0.0
        self._next_check = 0.0
        self._torn = False  # the last write stopped mid-line: the next starts with a newline
        # After any failed write, look at the file's last byte before the next one: on a
        # full disk another process sharing the file may have left a torn line there.
        self._verify_tail = False
        self._open()

    def _open(self) -> None:
        # Imported here: safety imports warn_once from this module.
        from flightdeck.recorder.safety import UnsafeLogPath, check_log_path, make_private_dirs

        now = self._clock()
        # Read access too, to see whether the file ends in a torn line (a full disk
        # in an earlier run); a file we may only write is written all the same.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT
        try:
            follow = check_log_path(self.path)
            make_private_dirs(self.path.parent)
            created = not os.path.lexists(self.path)
            try:
                fd = open_regular(self.path, flags, 0o600, follow=follow)
            except PermissionError:
                fd = open_regular(self.path, flags & ~os.O_RDWR | os.O_WRONLY, 0o600, follow=follow)
            try:
                st = os.fstat(fd)
                if st.st_uid != os.getuid():
                    # Checked on the descriptor: a file someone else made at the path (say in
                    # /tmp, open to all) would hand them the agent's telemetry.
                    raise UnsafeLogPath(f"{self.path} belongs to uid {st.st_uid}, not to you; "
                                        "refusing to write telemetry into it")
                if created and stat.S_IMODE(st.st_mode) != 0o600:
                    os.fchmod(fd, 0o600)  # ours, and the umask cut the mode: 0600 whatever it is
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            self._fd = None
            self._next_open = now + self._RETRY_OPEN_S
            self.error = str(exc)
            self.faults += 1
            warn_once(f"open:{self.path}:{type(exc).__name__}",
                      f"cannot open telemetry file {self.path}: {exc}; "
                      "calls are counted as dropped until it can be opened")
            return
        self._fd, self._ident, self.error = fd, (st.st_dev, st.st_ino), None
        self._next_check = now + self.check_interval
        self._torn = _ends_mid_line(fd, st.st_size)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _rotated(self) -> bool:
        """Whether the path no longer names the open file (renamed, replaced, deleted)."""
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            # Renamed away and not recreated, or its folder gone: writing on would feed
            # an unlinked file nobody can read, so start the new file ourselves.
            return True
        except OSError:
            return False  # cannot tell (the folder went unsearchable): keep the file we have
        return (st.st_dev, st.st_ino) != self._ident

    def write(self, line: bytes, drops: int = 0) -> bool:
        # The rotation check's clock test inline: it is due once a second, the write is per call.
        if self._fd is not None and self._clock() >= self._next_check and self._rotated():
            self._close_fd()
            self.reopens += 1
            self._open()
        fd = self._fd
        if fd is None:
            if self._clock() >= self._next_open:
                self._open()
                fd = self._fd
            if fd is None:
                self._drop()
                return False
        if self._verify_tail:
            self._verify_tail = False
            try:
                size = os.fstat(fd).st_size
            except OSError:
                size = 0
            self._torn = self._torn or _ends_mid_line(fd, size)
        data = b"\n" + line if self._torn else line
        done = 0
        try:
            done = os.write(fd, data)  # the usual line: one whole write, no loop entered
            if done <= 0:
                raise OSError(errno.ENOSPC, "no progress writing")
            while done < len(data):
                # A short write happens only on a full disk or a signal mid-write;
                # finishing the line keeps the file parseable.
                n = os.write(fd, memoryview(data)[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, "no progress writing")
                done += n
        except OSError as exc:
            if done:
                self._torn = not data[:done].endswith(b"\n")
            self._verify_tail = True
            self._drop()
            self.faults += 1
            warn_once(f"write:{self.path}", f"cannot write telemetry to {self.path}: {exc}; "
                      "lost lines are counted and reported in the `dropped` field")
            return False
        self._torn = False
        if drops:
            self.ack_drops(drops)  # written synchronously: the count it carries is delivered now
        return True

    def poll_commands(self) -> list[Command]:
        return []  # file mode reads commands from the sidecar, see Recorder

    def _after_fork(self) -> None:
        # The descriptor is shared with the parent, which is right for O_APPEND.
        self._reset_drops_after_fork()

    def close(self, timeout: float = 2.0) -> None:
        self._next_open = float("inf")
        self._close_fd()


def _ends_mid_line(fd: int, size: int) -> bool:
    """Whether the file's last byte is not a newline (False when empty or unreadable)."""
    if not size:
        return False
    try:
        return os.pread(fd, 1, size - 1) != b"\n"
    except OSError:  # opened write-only
        return False


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
    read the telemetry and steer the agent. In a forked child the thread is
    started again (``_after_fork``), with an empty queue: the parent still
    delivers what it had queued.
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
        # Each entry: a line and the drop count it carries (settled when it is sent).
        self._queue: collections.deque[tuple[bytes, int]] = collections.deque()
        self._commands: collections.deque[Command] = collections.deque(maxlen=max_commands)
        self._closing = False
        self._stop = False
        self._unreachable = False  # the last connection attempt failed
        self._thread: threading.Thread | None = None
        self._fresh_sync()
        self._spawn()

    def _fresh_sync(self) -> None:
        self._cond = threading.Condition()
        self._sending = False  # a line is between the queue and the socket
        self._sock: socket.socket | None = None  # the live connection, so a forked child can close its copy
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flightdeck-socket-sink", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        """In a forked child: a fresh sender thread, lock and wake pipe; no inherited lines."""
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        sock = self._sock
        if sock is not None:
            try:
                sock.close()  # the child's copy only: the parent's connection stays up
            except OSError:
                pass
        self._queue.clear()
        self._commands.clear()
        self._reset_drops_after_fork()
        self._unreachable = False
        self._fresh_sync()
        # The sender starts with the child's first line: a worker that never records
        # opens no connection to the monitor.
        self._thread = None

    # -- agent side -------------------------------------------------------

    def write(self, line: bytes, drops: int = 0) -> bool:
        with self._cond:
            if self._stop or len(self._queue) >= self.maxlen:
                self._drop()
                return False
            self._carry(drops)
            self._queue.append((line, drops))
            self._cond.notify()
            if self._thread is None:
                self._spawn()
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

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every queued line was handed to the monitor.

        Args:
          timeout: the most to wait, in seconds.

        Returns whether the queue drained; at once when the last connection attempt
        failed (nobody to deliver to). Never raises.
        """
        deadline = time.monotonic() + timeout
        self._wake()
        with self._cond:
            while ((self._queue or self._sending) and not self._stop and not self._unreachable
                   and self._thread is not None):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(0.05, left))
            return not self._queue

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
            self._cond.notify_all()
        self._wake()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()))
        with self._cond:  # after the join: a line cut short by the stop is back in the queue
            lost = len(self._queue)
            carried = sum(d for _, d in self._queue)
            self._queue.clear()
        if lost:
            self._settle(carried, delivered=False)
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
            with self._cond:
                self._unreachable = sock is None
                self._cond.notify_all()
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
            self._sock = sock
            try:
                self._serve(sock)
            finally:
                self._sock = None
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
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:  # out of descriptors: try again after the backoff
            warn_once(f"socket-create:{self.path}", f"cannot create a socket for {self.path}: {exc}")
            return None
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
        """Send queued lines and read commands until the connection breaks or we stop.

        Never raises: a bug here must not end the thread (every later line would
        wait in the queue forever); the line being sent goes back to the queue.
        """
        state: list[tuple[bytes, int] | None] = [None]  # the entry being sent, for the handler
        try:
            self._serve_lines(sock, state)
        except Exception as exc:
            entry = state[0]
            if entry is not None:
                with self._cond:
                    self._queue.appendleft(entry)
            warn_once(f"sender:{type(exc).__name__}", f"socket sender error, reconnecting: {exc!r}")

    def _serve_lines(self, sock: socket.socket, state: list[tuple[bytes, int] | None]) -> None:
        inbuf = b""
        current: memoryview | None = None  # the unsent rest of the line being sent
        entry: tuple[bytes, int] | None = None
        wake = self._wake_r
        while not self._stop:
            if current is None:
                with self._cond:
                    if self._queue:
                        entry = self._queue.popleft()
                        current = memoryview(entry[0])
                        self._sending = True
                        state[0] = entry
                    else:
                        self._sending = False
                        self._cond.notify_all()
            wants_read: list[socket.socket | int] = [sock, wake]
            wants_write = [sock] if current is not None else []
            try:
                readable, writable, _ = select.select(wants_read, wants_write, [], 0.5)
            except (OSError, ValueError):
                self._requeue(entry, current)
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
                    self._requeue(entry, current)
                    return
                if data == b"":
                    self._requeue(entry, current)
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
                    self._requeue(entry, current)
                    return
                current = current[n:]
                if not current:
                    if entry is not None:
                        self._settle(entry[1], delivered=True)  # the count reached the monitor
                    current, entry = None, None
                    state[0] = None
        self._requeue(entry, current)

    def _requeue(self, entry: tuple[bytes, int] | None, current: memoryview | None) -> None:
        # The monitor drops a partial line when a connection ends, so the whole
        # line goes out again on the next connection (or is counted at close).
        if entry is not None and current is not None:
            with self._cond:
                self._queue.appendleft(entry)

    def _take_commands(self, data: bytes) -> tuple[bytes, int]:
        """Queue the complete command lines in ``data``; (the partial rest, how many queued)."""
        *lines, rest = data.split(b"\n")
        received = 0
        for raw in lines:
            if not raw.strip():
                continue
            if len(raw) >= MAX_COMMAND_BYTES:
                self.command_errors.append(f"command line of {len(raw)} bytes is over the limit; ignored")
                continue
            try:
                self._commands.append(decode_command(raw))
                received += 1
            except ValueError as exc:
                self.command_errors.append(str(exc))
        if len(rest) >= MAX_COMMAND_BYTES:
            self.command_errors.append(f"partial command line over {MAX_COMMAND_BYTES} bytes dropped")
            rest = b""
        return rest, received
