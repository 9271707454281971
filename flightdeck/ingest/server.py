"""The UNIX socket agents stream their events to, and get commands back on.

Newline-delimited JSON both ways. The socket is the user's alone: created
0600 in a folder others cannot write to, and every peer's uid is checked
with SO_PEERCRED (another user is refused, and the refusal shown). A socket
file left by a crashed monitor is replaced; one with a live monitor behind it
is not. One selector thread serves every connection with bounded buffers and
a bounded read per connection per turn, so a flooding or stuck agent is cut
off alone and never stalls the others.

Connections are capped (``connection_cap()``: at most half the descriptor
limit) so the monitor keeps descriptors for its files. A newcomer past the
cap takes the place of the connection idle the longest, if that one has
said nothing for ``idle_evict`` seconds (its agent reconnects when it next
has something to say); otherwise the newcomer is refused, with a notice.
When ``accept()`` itself fails for lack of descriptors (EMFILE), the
listener is taken out of the selector for ``ACCEPT_BACKOFF`` seconds instead
of being offered again at once: a listener left readable would spin the
loop at full CPU. Whatever one connection does (a parser bug included) ends
that connection alone, never the selector thread.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flightdeck.core.events import MAX_LINE_BYTES, Command, Event, Rejected, decode_command, encode_command
from flightdeck.ingest.formats import FileFormat

READ_SIZE = 64 * 1024  # per connection per turn: fairness between agents
MAX_OUT_BYTES = 1 << 20  # commands queued for a client that does not read: then it is dropped
MAX_GARBAGE_RUN = 1000  # consecutive rejected lines before a client is cut off as hostile
MAX_CONNECTIONS = 1000
IDLE_EVICT_SECONDS = 60.0  # past the cap, a connection silent this long gives its place to a newcomer
ACCEPT_BACKOFF = 0.25  # seconds the listener rests after accept() ran out of descriptors
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap() -> int:
    """``MAX_CONNECTIONS``, or half this process's descriptor limit when that is lower."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft // 2))

PeerCred = Callable[[socket.socket], tuple[int, int, int]]  # (pid, uid, gid)
OnBatch = Callable[[list[Event], list[Rejected]], None]
OnControl = Callable[[Command, "Connection"], None]


class SocketError(Exception):
    """The socket cannot be served: in use by a live monitor, or unsafe."""


def read_peercred(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (Linux struct ucred)."""
    fmt = "3i"
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(fmt))
    pid, uid, gid = struct.unpack(fmt, data)
    return pid, uid, gid


def check_folder(folder: Path) -> None:
    """Create the folder 0700, or make sure an existing one is ours and closed to others' writes."""
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
        return
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise SocketError(f"{folder} is not a folder")
    if st.st_uid != os.getuid():
        raise SocketError(f"{folder} belongs to uid {st.st_uid}, not to you: choose a socket path in your own folder")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise SocketError(
            f"{folder} can be written by others (mode {stat.S_IMODE(st.st_mode):o}): "
            "they could replace the socket; choose a folder only you can write to"
        )


def clear_stale(path: Path) -> bool:
    """Remove a socket file no monitor is behind; SocketError if one is. True if removed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # stale: left by a monitor that crashed
        return True
    except OSError as exc:
        raise SocketError(f"{path}: cannot tell whether a monitor is listening ({exc})") from None
    finally:
        probe.close()
    raise SocketError(f"another monitor is listening on {path}")


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    pid: int
    uid: int
    parser: FileFormat = field(default_factory=FileFormat)
    pending: bytearray = field(default_factory=bytearray)
    out: bytearray = field(default_factory=bytearray)
    identities: set[tuple[str, str | None]] = field(default_factory=set)
    garbage_run: int = 0
    closed: bool = False
    last_active: float = field(default_factory=time.monotonic)  # when it last sent something
    controller: bool = False  # a `flightdeck pause --socket` client: sends commands, gets acks, no commands

    def wants(self, command: Command) -> bool:
        """Whether a command's target matches an agent seen on this connection (or none seen yet)."""
        if not command.target or not self.identities:
            return True
        return any(command.applies_to(run, agent) for run, agent in self.identities)


class SocketServer:
    def __init__(
        self,
        path: str | os.PathLike[str],
        on_batch: OnBatch,
        *,
        on_notice: Callable[[str], None] = lambda _text: None,
        peercred: PeerCred = read_peercred,
        max_line: int = MAX_LINE_BYTES,
        max_out: int = MAX_OUT_BYTES,
        max_connections: int | None = None,
        idle_evict: float = IDLE_EVICT_SECONDS,
        on_control: OnControl | None = None,
    ) -> None:
        """
        Args:
            path: the socket file to listen on.
            on_batch: called on the server's thread with each turn's events and rejects.
            on_notice: called with a line of text for the monitor's notices.
            peercred: reads a peer's (pid, uid, gid); a fake one in tests.
            max_line: the longest line accepted; a longer one cuts its client off.
            max_out: commands queued for a client that does not read them, in bytes.
            max_connections: the connection cap (default ``connection_cap()``).
            idle_evict: seconds of silence after which, past the cap, a
                connection gives its place to a newcomer.
        """
        self.path = Path(path).expanduser().absolute()
        self.on_batch = on_batch
        self.on_notice = on_notice
        self.on_control = on_control
        self.peercred = peercred
        self.max_line = max_line
        self.max_out = max_out
        self.refused = 0
        self.cut_off = 0
        self.max_connections = max_connections if max_connections is not None else connection_cap()
        self.idle_evict = idle_evict
        self.full_refused = 0  # newcomers refused at the cap
        self.evicted = 0  # idle connections closed to make room
        self.accept_failures = 0  # accept() calls that failed (EMFILE and the like)
        self._accept_paused_until: float | None = None  # listener out of the selector until then
        self._fds_short = False  # a notice was given for this spell of EMFILE; said again after it ends
        self._conns: dict[int, Connection] = {}
        self._conns_lock = threading.Lock()
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._ino: int | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def agent_connections(self) -> int:
        """Connections of agents (control clients not counted)."""
        return sum(1 for c in list(self._conns.values()) if not c.controller)

    # -- lifecycle ----------------------------------------------------------------

    def bind(self) -> None:
        check_folder(self.path.parent)
        if clear_stale(self.path):
            self.on_notice(f"replaced a stale socket at {self.path}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise SocketError(f"cannot listen on {self.path}: {exc}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._ino = os.stat(self.path).st_ino
        sock.listen(64)
        sock.setblocking(False)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, None)
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    def start(self) -> None:
        if self._listener is None:
            self.bind()
        self._thread = threading.Thread(target=self._loop, name="flightdeck-socket", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._conns_lock:
            for conn in list(self._conns.values()):
                self._close(conn)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:  # remove our socket, never one a newer monitor put there
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)
            except OSError:
                pass
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- the selector loop ----------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            timeout = 0.5
            if self._accept_paused_until is not None:
                timeout = max(0.0, min(timeout, self._accept_paused_until - time.monotonic()))
            try:
                ready = self._sel.select(timeout=timeout)
            except OSError:
                return
            self._resume_accepting()
            events: list[Event] = []
            rejects: list[Rejected] = []
            for key, mask in ready:
                if key.data == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                    self._update_interest()
                elif key.data is None:
                    self._accept()
                else:
                    self._serve(key.data, mask, events, rejects)
            if events or rejects:
                try:
                    self.on_batch(events, rejects)
                except Exception as exc:  # the counting side failed: say so, keep serving
                    self.on_notice(f"socket events not counted: {type(exc).__name__}: {exc}")

    def _serve(self, conn: Connection, mask: int, events: list[Event], rejects: list[Rejected]) -> None:
        """One turn of one connection; anything it raises ends that connection alone."""
        try:
            if mask & selectors.EVENT_READ and not conn.closed:
                self._read(conn, events, rejects)
            if mask & selectors.EVENT_WRITE and not conn.closed:
                with self._conns_lock:
                    self._flush(conn)
                    if not conn.out and not conn.closed:
                        self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
        except Exception as exc:
            self._drop(conn, f"cut off pid {conn.pid}: {type(exc).__name__}: {exc}")

    def _pause_accepting(self) -> None:
        """Out of descriptors: rest the listener instead of being woken by it again at once."""
        if self._listener is None or self._accept_paused_until is not None:
            return
        try:
            self._sel.unregister(self._listener)
        except (KeyError, ValueError, OSError):
            pass
        self._accept_paused_until = time.monotonic() + ACCEPT_BACKOFF

    def _resume_accepting(self) -> None:
        until = self._accept_paused_until
        if until is None or time.monotonic() < until or self._listener is None:
            return
        self._accept_paused_until = None
        try:
            self._sel.register(self._listener, selectors.EVENT_READ, None)
        except (KeyError, ValueError, OSError):
            pass

    def _idlest(self) -> Connection | None:
        """The connection silent the longest, if for at least ``idle_evict`` seconds."""
        with self._conns_lock:
            conns = [c for c in self._conns.values() if not c.closed and not c.out]
        if not conns:
            return None
        idlest = min(conns, key=lambda c: c.last_active)
        return idlest if time.monotonic() - idlest.last_active >= self.idle_evict else None

    def _make_room(self, why: str) -> bool:
        """Close the idlest connection for a newcomer; False if none has been idle long enough."""
        idlest = self._idlest()
        if idlest is None:
            return False
        self.evicted += 1
        if self.evicted == 1 or self.evicted % 100 == 0:  # said now and then, not once per agent
            self.on_notice(f"closed the connection of pid {idlest.pid}, idle, to make room ({why}); "
                           f"{self.evicted} closed so far")
        with self._conns_lock:
            self._close(idlest)
        return True

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.accept_failures += 1
            if exc.errno in _OUT_OF_FDS:
                if not self._fds_short:
                    self._fds_short = True
                    self.on_notice(
                        f"cannot take more agents: {exc.strerror or exc} with {self.connections} connected; "
                        "they wait until descriptors free up"
                    )
                if not self._make_room("out of descriptors"):
                    self._pause_accepting()
            else:
                self.on_notice(f"accept failed: {exc}")
                self._pause_accepting()  # whatever it is, it must not be retried in a tight loop
            return
        self._fds_short = False
        if self.connections >= self.max_connections and not self._make_room(f"{self.max_connections} connections"):
            sock.close()
            self.full_refused += 1
            if self.full_refused == 1 or self.full_refused % 100 == 0:
                self.on_notice(
                    f"refused a connection: {self.max_connections} agents connected, none idle "
                    f"({self.full_refused} refused so far)"
                )
            return
        try:
            pid, uid, _gid = self.peercred(sock)
        except OSError as exc:
            sock.close()
            self.refused += 1
            self.on_notice(f"refused a connection: cannot read its credentials ({exc})")
            return
        if uid != os.getuid():
            sock.close()
            self.refused += 1
            self.on_notice(f"refused connection from uid {uid} (pid {pid}): not you")
            return
        sock.setblocking(False)
        conn = Connection(sock=sock, pid=pid, uid=uid)
        with self._conns_lock:
            self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: Connection, events: list[Event], rejects: list[Rejected]) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            if conn.pending:
                rejects.append(Rejected("truncated line", f"pid {conn.pid} disconnected mid-line"))
            self._drop(conn, None)
            return
        conn.last_active = time.monotonic()
        buf = conn.pending + data if conn.pending else data
        lines = buf.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            if len(line) > self.max_line:
                rejects.append(Rejected("line too long", f"pid {conn.pid}: {len(line)} bytes"))
                self._drop(conn, f"cut off pid {conn.pid}: a line over {self.max_line} bytes")
                return
            if self.on_control is not None and b'"cmd"' in line and b'"kind"' not in line:
                # A command, not an event (every event has a kind): a control
                # client of the same uid steering the agents through us.
                try:
                    command = decode_command(bytes(line))
                except ValueError as exc:
                    rejects.append(Rejected("bad control command", str(exc)[:300]))
                    continue
                conn.controller = True
                self.on_control(command, conn)
                continue
            parsed = conn.parser.parse(bytes(line))
            if isinstance(parsed, Rejected):
                rejects.append(parsed)
                conn.garbage_run += 1
                if conn.garbage_run > MAX_GARBAGE_RUN:
                    self._drop(conn, f"cut off pid {conn.pid}: {MAX_GARBAGE_RUN} bad lines in a row")
                    return
                continue
            conn.garbage_run = 0
            for ev in parsed:
                if len(conn.identities) < 64:
                    conn.identities.add((ev.run, ev.agent))
            events.extend(parsed)
        if len(tail) > self.max_line:
            rejects.append(Rejected("line too long", f"pid {conn.pid}: over {self.max_line} bytes without a newline"))
            self._drop(conn, f"cut off pid {conn.pid}: a line over {self.max_line} bytes")
            return
        conn.pending = bytearray(tail)

    def _drop(self, conn: Connection, why: str | None) -> None:
        if why:
            self.cut_off += 1
            self.on_notice(why)
        with self._conns_lock:
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        """Caller holds _conns_lock."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.sock.fileno(), None)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        conn.sock.close()

    # -- commands back to the agents --------------------------------------------------

    def send_command(self, command: Command) -> int:
        """Queue a command for every connection it targets; written at once where possible.

        Called from any thread (a key press): the non-blocking send happens here,
        and only a remainder waits for the selector thread.
        """
        line = encode_command(command)
        sent = 0
        with self._conns_lock:
            for conn in list(self._conns.values()):
                if conn.closed or conn.controller or not conn.wants(command):
                    continue
                if len(conn.out) + len(line) > self.max_out:
                    self.cut_off += 1
                    self.on_notice(f"cut off pid {conn.pid}: it does not read its commands")
                    self._close(conn)
                    continue
                conn.out += line
                self._flush(conn)
                sent += 1
        self._wake()  # let the selector watch for writability where data is left
        return sent

    def reply(self, conn: Connection, line: bytes) -> None:
        """Send one line back to a control client (an ack, or why none will come)."""
        with self._conns_lock:
            if conn.closed or len(conn.out) + len(line) > self.max_out:
                return
            conn.out += line
            self._flush(conn)
        self._wake()

    def _flush(self, conn: Connection) -> None:
        """Caller holds _conns_lock."""
        while conn.out:
            try:
                n = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    self.on_notice(f"pid {conn.pid}: {exc}")
                self._close(conn)
                return
            del conn.out[:n]

    def _update_interest(self) -> None:
        with self._conns_lock:
            for conn in self._conns.values():
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
                try:
                    if self._sel.get_key(conn.sock).events != want:
                        self._sel.modify(conn.sock, want, conn)
                except (KeyError, ValueError, OSError):
                    pass
