"""The monitor's engine: sources in, one Aggregator, snapshots and commands out.

Files are read by one ingest thread (history first, then follow); the socket
server has its own thread. Both parse outside the lock and take the
aggregator lock once per batch, not per line, so ``snapshot()`` from the
cockpit's thread never waits long. ``send()`` does its one small append on the
caller's thread, so a key press reaches the sidecar at once even while
thousands of events a second are being ingested.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import (
    KIND_LLM_CALL,
    KIND_SIGNAL_ACK,
    Command,
    Event,
    Rejected,
    decode_command,
    encode_event,
)
from flightdeck.core.plan_windows import ClaudeBlocks, PlanWindow, claude_windows, merge_windows
from flightdeck.core.snapshot import AlertRow, Snapshot, SourceStatus
from flightdeck.ingest.claude_status import StatusFile
from flightdeck.ingest.formats import FLIGHTDECK_V1, FileFormat
from flightdeck.ingest.tail import Follower, PollResult, Tailer
from flightdeck.ingest.tracker import LiveTracker

if TYPE_CHECKING:
    from flightdeck.core.rules import Firing, RuleEngine
    from flightdeck.export import EventExporter, Fanout
    from flightdeck.index.live import Capture, FollowIndex
    from flightdeck.ingest.documents import DocumentSource
    from flightdeck.ingest.otlp import OtlpReceiver
    from flightdeck.ingest.server import Connection, SocketServer

FULL_POLL_SECONDS = 0.5  # safety net under the watcher (and the whole story on filesystems without events)
RESCAN_SECONDS = 5.0  # folders re-listed for new *.jsonl in case the watcher missed one
RATE_SECONDS = 5.0  # events_per_second is averaged over this long
MAX_NOTICES = 20
# A reader holding a response for its last copy (Claude Code streams one
# response as several lines) hands it out once its file has been quiet this
# long; the next response of the same thread releases it sooner.
SETTLE_SECONDS = 30.0
DOCUMENT_POLL_SECONDS = 2.0  # how often documents (a database) are checked for changes: one stat each
BATCH_LINES = 2000  # lines parsed before they are counted (bounds memory while reading history)
LOCK_CHUNK = 500  # events counted per acquisition of the aggregator lock
SOCKET_HISTORY = 200_000  # socket events kept so a filter change can recount them


@dataclass(frozen=True, slots=True)
class _Filter:
    key: str | None  # agent, model, run, name; None: any of them
    text: str

    def __call__(self, ev: Event) -> bool:
        if self.key is None:
            fields: tuple[str | None, ...] = (ev.agent, ev.model, ev.run, ev.name)
        else:
            fields = (getattr(ev, self.key),)
            # Acks and alerts have no model or step name; keep them so the
            # command panel still shows what the agents did.
            if ev.kind != KIND_LLM_CALL and self.key in ("model", "name"):
                return True
        return any(f is not None and self.text in f.lower() for f in fields)


def parse_filter(text: str | None) -> Callable[[Event], bool] | None:
    """``agent:x`` / ``model:y`` / ``run:z`` / ``name:w`` or a bare substring (case-insensitive)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    key, sep, rest = text.partition(":")
    if sep and key.lower() in ("agent", "model", "run", "name"):
        return _Filter(key.lower(), rest.strip().lower())
    return _Filter(None, text.lower())


SIDECAR_TAIL = 256 * 1024  # bytes of a sidecar searched for a command's origin


def origin_in_sidecar(telemetry: str, ref: str) -> str | None:
    """The ``origin`` of command ``ref`` in ``telemetry``'s sidecar, if it is there (read-only).

    Only a regular file is read (opened non-blocking, so a FIFO at the path
    cannot stall ingest), and only its last SIDECAR_TAIL bytes.
    """
    path = sidecar_path(telemetry)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        start = max(st.st_size - SIDECAR_TAIL, 0)
        data = os.pread(fd, st.st_size - start, start)
    except OSError:
        return None
    finally:
        os.close(fd)
    needle = f'"id":"{ref}"'.encode()
    for line in reversed(data.split(b"\n")):
        if needle in line:
            try:
                return decode_command(line).origin
            except ValueError:
                return None
    return None


class _BaseConflict(Exception):
    """A line read after a stored engine state repeats an id that state counted."""


class Engine:
    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]] = (),
        *,
        socket_path: str | os.PathLike[str] | None = None,
        rules_path: str | os.PathLike[str] | None = None,
        budget: tuple[Decimal, int] | None = None,
        clock: Callable[[], float] = time.time,
        otlp: tuple[str, int] | None = None,
        exporters: Sequence[EventExporter] = (),
        documents: Sequence[DocumentSource] = (),
        index: FollowIndex | None = None,
    ) -> None:
        """``otlp``: (host, port) to receive OTLP/HTTP on (``ingest.otlp``); ``exporters``:
        where every ingested call is also sent (``flightdeck.export``: Prometheus, OTLP);
        ``index``: the parse-once index the history is read through (``index.live``;
        None reads every file from its start)."""
        self.clock = clock
        self._index = index
        self._captures: dict[Path, Capture] | None = None  # during a backfill through the index
        self._base_seen: SeenIds | None = None  # ids of a stored engine state new lines are read after
        # Sources that are not JSON Lines (OpenCode's database, legacy JSON
        # sessions): polled every DOCUMENT_POLL_SECONDS, re-read when changed.
        self._documents = list(documents)
        self._last_documents = 0.0
        self.budget = budget
        self._lock = threading.Lock()
        self._filter_text: str | None = None
        self._agg = self._new_aggregator(None)
        self._tailer = Tailer(paths) if paths or documents else None
        self._named_files = set(self._tailer.files) if self._tailer else set()
        self._formats: dict[Path, tuple[int, FileFormat]] = {}
        self._plan_windows: dict[str, PlanWindow] = {}  # reported by agent CLIs (Codex rate_limits)
        self._blocks = ClaudeBlocks()  # Claude's 5-hour blocks, computed from its calls
        self._claude_status = StatusFile()  # Claude's own windows, as `flightdeck statusline` recorded them
        self._last_lines: dict[Path, float] = {}  # monotonic time a file last gave lines (for SETTLE_SECONDS)
        self._socket_path = Path(socket_path) if socket_path is not None else None
        self._server: SocketServer | None = None
        self._socket_events: deque[Event] = deque(maxlen=SOCKET_HISTORY)
        self._rules: RuleEngine | None = None
        if rules_path is not None:
            from flightdeck.core.rules import RuleEngine, RuleSet

            self._rules = RuleEngine(RuleSet.load(Path(rules_path)), clock)
        self._notices: deque[str] = deque(maxlen=MAX_NOTICES)
        self._sent: deque[Command] = deque(maxlen=200)
        self._to_note: deque[Command] = deque()  # sent, not yet in the aggregator (deque: thread-safe appends)
        self._alerts: deque[AlertRow] = deque(maxlen=200)
        # Agent states, command round trips, ev/s and the call rows: kept
        # outside the aggregator so that a filter change, which rebuilds it
        # and reads the history again, does not measure them again.
        self._tracker = LiveTracker(clock)
        self._rereading = False
        self._reread_seen: SeenIds | None = None  # during a re-read: the ids counted before it
        self._agent_sources: dict[tuple[str, str | None], tuple[str, bool]] = {}
        self._tracker.origin_lookup = origin_in_sidecar
        self._control_clients: dict[str, Connection] = {}  # command id -> the control client that sent it
        self._last_event_wall: float | None = None
        self._backfilling = bool(paths or documents)
        self._backfill_total = 0
        self._backfill_done = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rewind = False
        self._otlp_address = otlp
        self._otlp: OtlpReceiver | None = None
        self._otlp_agents: dict[tuple[str, str | None], None] = {}  # watch-only: no control channel
        self._fanout: Fanout | None = None
        if exporters:
            from flightdeck.export import Fanout

            self._fanout = Fanout(exporters, on_notice=self._notice)

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket (raising its errors here), then ingest on threads."""
        if self._socket_path is not None and self._server is None:
            from flightdeck.ingest.server import SocketServer

            server = SocketServer(self._socket_path, self._on_socket_batch, on_notice=self._notice,
                                  on_control=self._on_control)
            server.start()
            self._server = server
        if self._otlp_address is not None and self._otlp is None:
            from flightdeck.ingest.otlp import OtlpReceiver

            receiver = OtlpReceiver(*self._otlp_address, self._on_otlp_batch, on_notice=self._notice)
            receiver.start()
            self._otlp = receiver
        if self._tailer is not None and self._thread is None:
            self._tailer.start_watching()
            self._thread = threading.Thread(target=self._run, name="flightdeck-ingest", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._tailer is not None:
            self._tailer.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tailer is not None:
            self._tailer.close()
        server = self._server
        if server is not None:
            server.stop()
            self._server = None
        receiver = self._otlp
        if receiver is not None:
            receiver.stop()
            self._otlp = None
        if self._fanout is not None:
            self._fanout.close()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def backfilling(self) -> bool:
        return self._backfilling

    def wait_backfilled(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._backfilling:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    # -- file ingest (the ingest thread, or the caller for backfill()) ------------

    def backfill(self, *, settle: bool = True, final: bool = False) -> None:
        """Read every file to its current end on the calling thread (``--once``).

        Args:
            settle: hand out what readers hold for a last copy (the input ends
                here); following live, they keep holding until the thread moves
                on or the file goes quiet, since the copy may be on its way.
            final: the files are taken as complete (``--once``): a last line
                without a newline is counted when it is whole, else rejected
                as ``incomplete last line`` (``Follower.finish``).
        """
        if self._tailer is None:
            self._backfilling = False
            return
        self._backfill_total = self._tailer.total_bytes()
        self._backfill_done = 0
        self._backfilling = True
        notices = list(self._notices)
        try:
            self._read_history(settle=settle, final=final, use_state=True)
        except _BaseConflict:
            # A new line repeats a message the stored state already counted: which
            # copy counts depends on the order a cold read meets them in, which the
            # stored state no longer has. Read again, through the per-file entries.
            self._reset_history(notices)
            self._read_history(settle=settle, final=final, use_state=False)
        finally:
            self._base_seen = None
        if self._index is not None:
            self._index.prune()  # a read that went through: entries unused for a month go

    def _read_history(self, *, settle: bool, final: bool, use_state: bool) -> None:
        """``backfill``'s read: from the stored engine state and/or the entries when there is an index."""
        assert self._tailer is not None
        whole = self._whole_state_key()
        # The cockpit's backfill (no flush at the end, no documents): an unchanged history
        # opens from the state its last backfill ended with, hand-out included.
        cockpit = not settle and not final and not self._documents
        restored = None
        if whole is not None and use_state and cockpit:
            restored = self._restore_state(whole, settled=True)
        if whole is not None and use_state and restored is None:
            restored = self._restore_state(whole)
        if self._index is not None and restored not in ("exact", "settled"):
            self._captures = {}
        blob = None
        # Kept for the index, a file's events stay alive until its entry is written; the cyclic
        # collector would walk them again and again for nothing (ingest.scan does the same).
        was_enabled = gc.isenabled()
        if self._captures is not None:
            gc.disable()
        try:
            # File by file, each to its end, in the listed order: the order
            # ``report`` reads in, which dedupe across files depends on (the
            # first copy of a repeated message counts), and the one order the
            # index can replay a stored file in.
            for path in list(self._tailer.followers):
                if self._stop.is_set():
                    break
                if self._captures is not None:
                    self._resume(path)
                while not self._stop.is_set():
                    # hold: no reader hands out what it holds in this loop, only after it
                    # (below), as a cold read of each file to its end does.
                    if not self._ingest(self._tailer.poll([path]), history=True, hold=True):
                        break
                if self._captures is not None:
                    # Its entry written now, not after the last file: only one file's events
                    # are kept alive at a time (bench_index, 200k lines: a cold cockpit start's
                    # peak RSS 165 -> 80 MB; 103 MB without the index).
                    self._save_capture(path, lazy=whole is not None)
            # The history read to its line ends: folded here, stored or not (see
            # Aggregator.settle), so the figures agree to the last bit with the index.
            with self._lock:
                self._agg.settle()
            if self._captures is not None and whole is not None:
                blob = self._pickle_state(whole)
        finally:
            self._captures = None
            if was_enabled:
                gc.enable()
        if final:
            self._ingest(self._tailer.finish(), history=True)
        self._poll_documents(final=settle, history=True)
        # History read to its end: what readers hold is complete as far as it goes.
        held: list[Event] = []
        if settle:
            for path, (_gen, fmt) in self._formats.items():
                first = len(held)
                held.extend(fmt.flush())
                # By name: a stored reader (index.live.LazyFormat) stays undecoded.
                self._note_sources(held, first, str(path), fmt.name != FLIGHTDECK_V1.name)
        else:
            # Following on: files already quiet hand out what they hold now, so the
            # figures are complete when the backfill ends (see _quiet_clock).
            for path, follower in self._tailer.followers.items():
                known = self._formats.get(path)
                if known is None:
                    continue
                first = len(held)
                self._settle(follower, held)
                self._note_sources(held, first, str(path), known[1].name != FLIGHTDECK_V1.name)
        if held:
            self._count(held, [], history=True)
        if blob is not None and whole is not None:  # written once no conflict can come any more
            self._write_state(whole, blob)
        if whole is not None and cockpit and restored != "settled":
            # What the next cockpit on the same history restores, hand-out included: at
            # 1M lines the quiet files hand out ~18k held responses, most of a warm start.
            settled_blob = self._pickle_state(whole)
            if settled_blob is not None:
                self._write_state(whole, settled_blob, settled=True)
        self._backfilling = False

    def _whole_state_key(self) -> tuple[list[Path], list[Path], bytes] | None:
        """(the paths as given, the followed files, their state now) when the engine's whole
        state may come from the index: the first read of files only, no filter, nothing but
        files feeding it."""
        if (self._index is None or self._tailer is None or self._rereading or self._filter_text is not None
                or self._socket_path is not None or self._otlp_address is not None or self._fanout is not None
                or self._sent or self._agg.events or self._agg.rejected):
            return None
        from flightdeck.index.reader import files_state

        if not all(f.unread for f in self._tailer.followers.values()):
            return None
        paths = list(self._tailer.followers)
        return self._tailer.files + self._tailer.folders, paths, files_state(paths)

    def _pickle_state(self, whole: tuple[list[Path], list[Path], bytes]) -> bytes | None:
        """What the engine learnt from the files, as it stands before any flush, pickled;
        None when a follower cannot say where it is (inside an over-long line)."""
        from flightdeck.index.live import EngineStates, fingerprints

        assert self._tailer is not None and self._index is not None
        positions: dict[Path, tuple[tuple[int, int], int]] = {}
        checks: dict[Path, tuple[int, bytes, bytes]] = {}
        for path, follower in self._tailer.followers.items():
            point = follower.resume_point
            if point is None:
                if not follower.unread:
                    return None
                continue
            check = fingerprints(path, *point)
            if check is None:  # replaced since it was read
                return None
            positions[path], checks[path] = point, check
        from flightdeck.index.live import LazyFormat

        # Readers stored apart, each decoded again only when its file needs it. The engine
        # goes on with the same undecoded readers: a flush hands out what was worked out
        # here, and the next store of an untouched one costs nothing.
        with self._lock:
            for path, known in list(self._formats.items()):
                if path in positions:
                    self._formats[path] = (known[0], LazyFormat.stored(known[1]))
        formats = {path: known[1] for path, known in self._formats.items() if path in positions}
        state = (self._agg, self._tracker, self._blocks, self._plan_windows, self._agent_sources, formats,
                 positions, list(self._notices), checks)
        tracker = self._tracker
        try:
            with self._lock:
                tracker.clock = time.time  # the engine's own may be a lambda: put back on load
                return EngineStates.dumps(whole[2], state)
        except Exception as exc:  # a value that will not pickle: the monitor goes on
            self._notice(f"index state not saved: {type(exc).__name__}: {exc}")
            return None
        finally:
            tracker.clock = self.clock

    def _write_state(self, whole: tuple[list[Path], list[Path], bytes], blob: bytes,
                     settled: bool = False) -> None:
        from flightdeck.index.live import EngineStates

        assert self._index is not None
        try:
            EngineStates.write(self._index, whole[0], blob, settled)
        except OSError as exc:  # disk full, a read-only cache
            self._notice(f"index state not saved: {exc}")

    def _restore_state(self, whole: tuple[list[Path], list[Path], bytes], settled: bool = False) -> str | None:
        """Take the engine's stored state for these paths: "exact" when no file changed since,
        "base" when files only grew or appeared (their new lines are read after it); None if
        there is none or a file it covers changed otherwise. ``settled``: the cockpit's state
        after its hand-out, taken only when no file changed ("settled")."""
        from flightdeck.index.live import EngineStates, matches
        from flightdeck.ingest.openfile import open_regular

        assert self._index is not None and self._tailer is not None
        loaded = EngineStates.load(self._index, whole[0], settled)
        if loaded is None:
            return None
        stored_files, state = loaded
        exact = stored_files == whole[2]
        if settled and not exact:
            return None
        agg, tracker, blocks, plan_windows, agent_sources, formats, positions, notices, checks = state
        followers = self._tailer.followers
        opened: dict[Path, int] = {}
        try:
            for path, (ino, offset) in positions.items():
                if path not in followers:
                    raise OSError(f"{path}: no longer listed")
                fd = open_regular(path)
                opened[path] = fd
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != ino or not (exact or matches(fd, offset, checks[path])):
                    raise OSError(f"{path}: another file now")
        except OSError:
            for fd in opened.values():
                os.close(fd)
            return None
        agg.clock = agg.ledger.clock = tracker.clock = self.clock
        now = time.monotonic()
        with self._lock:
            self._agg, self._tracker, self._blocks = agg, tracker, blocks
            self._plan_windows, self._agent_sources = plan_windows, agent_sources
            for path, (_ino, offset) in positions.items():
                follower = followers[path]
                follower.start_at(opened[path], offset)
                if path in formats:  # a file with no line yet has no reader yet
                    self._formats[path] = (follower.generation, formats[path])
                self._last_lines[path] = self._quiet_clock(follower, now)
                self._backfill_done += offset
            for note in notices:
                self._notice(note)
            if not exact:
                # What the stored state counted: a new line repeating one of these
                # ends the shortcut (see _BaseConflict).
                self._base_seen = agg.seen.copy()
        self._index.resumed += len(positions)
        return ("settled" if settled else "exact") if exact else "base"

    def _reset_history(self, notices: list[str]) -> None:
        """Forget everything read from the files (and documents), to read them again from the start."""
        assert self._tailer is not None
        for follower in self._tailer.followers.values():
            follower.rewind()
        for source in self._documents:
            source.rewind()
        with self._lock:
            self._formats.clear()
            self._last_lines.clear()
            self._agg = self._new_aggregator(None)
            self._tracker = LiveTracker(self.clock)
            self._tracker.origin_lookup = origin_in_sidecar
            self._blocks = ClaudeBlocks()
            self._plan_windows = {}
            self._agent_sources = {}
            self._notices.clear()
            self._notices.extend(notices)
            self._backfill_done = 0
            self._base_seen = None

    def _resume(self, path: Path) -> None:
        """Count what the index holds of ``path`` and start its follower after it."""
        from flightdeck.index.live import Capture

        index, tailer, captures = self._index, self._tailer, self._captures
        assert index is not None and tailer is not None and captures is not None
        follower = tailer.followers[path]
        if not follower.unread:  # placed by the stored engine state
            return
        notes: list[str] = []
        found = index.resume(path, notes)
        for note in notes:
            self._notice(note)
        if found is None:
            size = follower.size_now()
            if index.worth_capturing(size, None) or index.worth_capturing(size, self._format_hint(path)):
                captures[path] = Capture(generation=follower.generation + 1)
            return
        follower.start_at(found.fd, found.offset)
        self._formats[path] = (follower.generation, found.reader)
        captures[path] = Capture(events=list(found.events), rejects=[(r.reason, r.detail) for r in found.rejects],
                                 copies=found.copies, base=found.offset, generation=follower.generation,
                                 notes=dict(found.notes))
        self._backfill_done += found.offset
        if found.events:
            self._last_lines[path] = time.monotonic()
        windows = found.reader.plan_windows
        if found.copies or windows or found.notes:
            with self._lock:
                self._agg.duplicates += found.copies
                merge_windows(self._plan_windows, windows)
                for reason, n in found.notes.items():
                    self._agg.note(reason, n)
        self._note_sources(found.events, 0, str(path), found.reader.format is not FLIGHTDECK_V1)
        if found.events or found.rejects:
            self._count(found.events, found.rejects, history=True)

    @staticmethod
    def _format_hint(path: Path) -> str | None:
        """The format of a big file from its head (its entry limit depends on it)."""
        from flightdeck.ingest.scan import detect_file_format

        return detect_file_format(path)

    def _save_capture(self, path: Path, *, lazy: bool) -> None:
        """Store ``path``'s read up to its first line not yet read whole (before any flush), and
        let go of its capture.

        Args:
            path: a file the backfill has just read to its end.
            lazy: the engine's whole state will be stored too: the reader is stored
                (``LazyFormat.stored``) here, pickled once for its entry and that state.
        """
        from flightdeck.index.live import LazyFormat

        index, tailer, captures = self._index, self._tailer, self._captures
        assert index is not None and tailer is not None and captures is not None
        cap = captures.pop(path, None)
        if cap is None:
            return
        follower = tailer.followers.get(path)
        known = self._formats.get(path)
        point = follower.resume_point if follower is not None else None
        # A file rotated or truncated during the read mixes two files: not stored.
        if point is None or known is None or follower is None or follower.generation != cap.generation \
                or known[0] != cap.generation:
            return
        reader = known[1]
        state_events: list[Event] | None = None
        if lazy and point[1] > cap.base:  # an entry to write: its reader pickled once for both
            state_events = []
            with self._lock:
                reader = LazyFormat.stored(reader, state_events)
                self._formats[path] = (known[0], reader)
        notes: list[str] = []
        index.save(path, point[0], point[1], reader, cap, notes, state_events)
        for note in notes:
            self._notice(note)

    def _run(self) -> None:
        assert self._tailer is not None
        try:
            self.backfill(settle=False)
        except Exception as exc:  # never die silently: say so on screen, then follow anyway
            self._backfilling = False
            self._notice(f"reading history failed: {type(exc).__name__}: {exc}")
        last_full = last_scan = time.monotonic()
        while not self._stop.is_set():
            try:
                last_full, last_scan = self._follow_once(last_full, last_scan)
            except Exception as exc:  # one bad poll must not end the monitor
                self._notice(f"file ingest error: {type(exc).__name__}: {exc}")
                self._stop.wait(0.2)

    def _follow_once(self, last_full: float, last_scan: float) -> tuple[float, float]:
        """One wait-and-read step of following; returns the updated poll and scan times."""
        tailer = self._tailer
        assert tailer is not None
        tailer.wake.wait(FULL_POLL_SECONDS)
        tailer.wake.clear()
        if self._stop.is_set():
            return last_full, last_scan
        if self._rewind:
            self._do_rewind()
            return last_full, last_scan
        now = time.monotonic()
        dirty = tailer.take_dirty()
        for path in dirty:
            tailer.adopt(path)
        if now - last_scan >= RESCAN_SECONDS:
            tailer.rescan()
            last_scan = now
        if now - last_full >= FULL_POLL_SECONDS or tailer.watch_error:
            results = tailer.poll()
            last_full = now
        else:
            results = tailer.poll(dirty)
        if self._ingest(results, history=False):
            tailer.wake.set()  # a file had more than one read's worth: come back at once
        if self._documents and now - self._last_documents >= DOCUMENT_POLL_SECONDS:
            self._last_documents = now
            self._poll_documents(final=False, history=False)
        if tailer.watch_error and tailer.watch_error not in self._notices:
            self._notice(tailer.watch_error)
        return last_full, last_scan

    def _format_for(self, follower: Follower) -> FileFormat:
        known = self._formats.get(follower.path)
        if known is None or known[0] != follower.generation:
            known = (follower.generation, FileFormat())
            self._formats[follower.path] = known
        return known[1]

    def _ingest(self, results: Iterable[tuple[Follower, PollResult]], *, history: bool,
                hold: bool = False) -> bool:
        """Parse what the followers read, then count it under one lock per batch; True if more is waiting.

        A batch is flushed every BATCH_LINES lines, so memory stays bounded
        while a folder of large files is read. ``hold``: a follower with no new
        lines keeps what its reader holds even when its file is quiet (the
        backfill's file-by-file read: every file's held responses are handed
        out after it, in one order whether a file was read, resumed from its
        entry or restored from the stored state; a stored reader then stays
        undecoded and is stored again as it was read).
        """
        more = False
        events: list[Event] = []
        rejects: list[Rejected] = []
        captures = self._captures if history else None
        for follower, res in results:
            if len(events) + len(rejects) >= BATCH_LINES:
                self._count(events, rejects, history=history)
                events, rejects = [], []
            more = more or res.more
            for notice in res.notices:
                self._notice(notice)
            if history:
                self._backfill_done += res.bytes_read
            cap = captures.get(follower.path) if captures is not None else None
            first_reject = len(rejects)
            rejects.extend(res.rejects)
            if not res.lines:
                first = len(events)
                if not hold:
                    self._settle(follower, events)
                if cap is not None:
                    cap.events.extend(events[first:])
                    cap.rejects.extend((r.reason, r.detail) for r in rejects[first_reject:])
                continue
            fmt = self._format_for(follower)
            self._last_lines[follower.path] = self._quiet_clock(follower) if history else time.monotonic()
            first = len(events)
            for line in res.lines:
                parsed = fmt.parse(line)
                if type(parsed) is list:
                    events.extend(parsed)
                else:
                    rejects.append(parsed)  # type: ignore[arg-type]
            copies = fmt.take_copies()  # a streamed response's other lines: duplicates, as in report
            if cap is not None:
                cap.events.extend(events[first:])
                cap.rejects.extend((r.reason, r.detail) for r in rejects[first_reject:])
                cap.copies += copies
            windows = fmt.plan_windows
            notes = fmt.take_notes()  # lines accepted but not read whole, as in report
            if cap is not None:
                cap.add_notes(notes)
            if copies or windows or notes:
                with self._lock:
                    self._agg.duplicates += copies
                    merge_windows(self._plan_windows, windows)
                    for reason, n in notes.items():
                        self._agg.note(reason, n)
            self._note_sources(events, first, str(follower.path), fmt.format is not FLIGHTDECK_V1)
        if events or rejects:
            self._count(events, rejects, history=history)
        return more

    def _poll_documents(self, *, final: bool, history: bool) -> None:
        """Read what changed in the document sources; one failing source never stops the others."""
        for source in self._documents:
            try:
                batch = source.poll(final=final)
            except Exception as exc:  # a reader bug: say so, keep following the rest
                self._notice(f"{source.label}: {type(exc).__name__}: {exc}")
                continue
            for notice in batch.notices:
                self._notice(notice)
            if batch.events or batch.rejects:
                self._count(batch.events, batch.rejects, history=history)

    def _quiet_clock(self, follower: Follower, now: float | None = None) -> float:
        """The monotonic time ``follower``'s file was last written, for SETTLE_SECONDS.

        Reading history is not writing: a session last written an hour ago is
        quiet already, so what its reader holds is handed out at the first
        settle after the backfill, not 30 s into the cockpit's life (its
        figures were short of each session's last response until then). A
        file written since the clock's reading, or whose time is unknown,
        counts from now.

        Args:
            follower: the file's follower (open).
            now: ``time.monotonic()`` if the caller has it.
        """
        mono = time.monotonic() if now is None else now
        written = follower.written_at()
        if written is None:
            return mono
        return mono - min(max(time.time() - written, 0.0), SETTLE_SECONDS)

    def _settle(self, follower: Follower, events: list[Event]) -> None:
        """Take what the file's reader holds once the file has been quiet for SETTLE_SECONDS."""
        known = self._formats.get(follower.path)
        if known is None or not known[1].holding:
            return
        if time.monotonic() - self._last_lines.get(follower.path, 0.0) >= SETTLE_SECONDS:
            events.extend(known[1].flush())

    def _note_sources(self, events: list[Event], first: int, source: str, watch_only: bool) -> None:
        """Remember which file each new agent was read from, and whether it can be steered."""
        known = self._agent_sources
        last = None
        for i in range(first, len(events)):
            ev = events[i]
            if (ev.run, ev.agent) == last:
                continue  # a log is mostly one agent's lines in a row
            last = key = (ev.run, ev.agent)
            if key not in known and len(known) < 10_000:
                known[key] = (source, watch_only)

    def _count(self, events: list[Event], rejects: list[Rejected], *, history: bool,
               socket: bool = False, source: tuple[str, bool] | None = None) -> None:
        """Count a batch. ``source`` is (where, watch_only) for agents first seen in it, for
        sources other than files (an OTLP receiver passes ("otlp", True): it cannot steer them)."""
        firings: list[tuple[Event, Firing]] = []
        base = self._base_seen
        if base is not None and any(ev.id in base for ev in events):
            raise _BaseConflict
        if source is not None:
            self._note_sources(events, 0, *source)
        if self._fanout is not None and events:
            self._fanout.offer(events)  # outside the lock; the fan-out drops repeats itself
        # The lock is held for LOCK_CHUNK events at a time, so send() and
        # snapshot() on other threads wait milliseconds, not a whole read.
        for start in range(0, max(len(events), 1), LOCK_CHUNK):
            chunk = events[start : start + LOCK_CHUNK]
            with self._lock:
                self._note_sent()  # before the events: an ack in this batch finds its command
                agg = self._agg
                rules = self._rules
                counted = agg.add_many(chunk)  # the events that were not duplicates
                self._blocks.add_calls(counted)  # as report's Aggregator does: the same blocks
                tracker = self._tracker
                tracker.view(counted)
                old = self._reread_seen
                if old is None:
                    tracker.observe(counted, sources=self._agent_sources, socket=socket, live=not history)
                else:
                    # Re-reading for a new filter: only what the aggregator before it had
                    # not counted is new to the tracker (lines written since): those are live.
                    fresh = [ev for ev in counted if ev.id not in old]
                    if fresh:
                        tracker.observe(fresh, sources=self._agent_sources, socket=socket, live=True)
                if rules is not None:  # rules see each call once, as the aggregator does
                    for ev in counted:
                        for firing in rules.observe(ev):
                            firings.append((ev, firing))
                if start == 0:
                    for rej in rejects:
                        agg.reject(rej.reason, rej.detail)
                if chunk and not self._rereading:
                    self._last_event_wall = time.time()
        if self._control_clients and not history:
            self._reply_acks(events)  # after counting: a client that hears the ack sees it on screen too
        if firings and not history:
            self._act(firings)

    def _act(self, firings: list[tuple[Event, Firing]]) -> None:
        """The monitor's own guardrails: show each firing, and pause/downgrade when asked."""
        for ev, f in firings:
            row = AlertRow(
                ts=self.clock(), rule=f.rule, metric=f.metric, value=f.value,
                threshold=f.threshold, action=f.action, source="monitor",
                run=ev.run, agent=ev.agent, message=f.message,
            )
            with self._lock:
                self._agg.note_alert(row)
                self._alerts.append(row)
            if f.action in ("pause", "downgrade"):
                # A loop or a slow step is one agent's: steer that one, not the whole fleet
                # beside it. A spend limit is over everything this monitor counts.
                target = None if f.metric == "spend" else (
                    {"run": ev.run, "agent": ev.agent} if ev.agent is not None else {"run": ev.run})
                self.send(f.action, to=f.to if f.action == "downgrade" else None,
                          target=target, origin=f"rule:{f.rule}", reason=f.message)

    # -- socket ingest (the server's thread) --------------------------------------

    def _on_socket_batch(self, events: list[Event], rejects: list[Rejected]) -> None:
        self._socket_events.extend(events)
        self._count(events, rejects, history=False, socket=True)

    def _on_otlp_batch(self, events: list[Event], rejects: list[Rejected]) -> None:
        agents = self._otlp_agents
        for ev in events:
            if len(agents) < SOCKET_HISTORY:
                agents[(ev.run, ev.agent)] = None
        self._socket_events.extend(events)  # kept like socket events, so a filter recounts them
        # No control channel reaches an OTLP sender: its agents are watch-only.
        self._count(events, rejects, history=False, source=("otlp", True))

    @property
    def otlp(self) -> OtlpReceiver | None:
        """The running OTLP receiver (its ``address``, ``stats``, ``rejected``), if any."""
        return self._otlp

    @property
    def watch_only(self) -> frozenset[tuple[str, str | None]]:
        """(run, agent) pairs heard only over OTLP: no control channel reaches them."""
        return frozenset(self._otlp_agents)

    # -- outputs --------------------------------------------------------------------

    def _notice(self, text: str) -> None:
        # A file that stays unreadable would say so on every poll: once is enough.
        if not self._notices or self._notices[-1] != text:
            self._notices.append(text)

    def _source_status(self) -> SourceStatus:
        parts: list[str] = []
        files = 0
        if self._tailer is not None:
            files = len(self._tailer.followers)
            names = [str(p) for p in self._tailer.files + self._tailer.folders]
            parts.append(names[0] if len(names) == 1 else f"{len(names)} paths")
        server = self._server
        connections = refused = 0
        if self._socket_path is not None:
            parts.append(f"socket {self._socket_path}")
            if server is not None:
                connections = server.connections
                refused = server.refused
        receiver = self._otlp
        if self._otlp_address is not None:
            host, port = receiver.address if receiver is not None else self._otlp_address
            parts.append(f"otlp {host}:{port}")
            if receiver is not None:
                connections += receiver.connections
        # The exporters' counts change on every snapshot: shown current, not stored.
        live_notices = tuple(self._fanout.notices()) if self._fanout is not None else ()
        rate = self._tracker.events_per_second()
        return SourceStatus(
            description=" + ".join(parts),
            files=files,
            connections=connections,
            backfilling=self._backfilling,
            backfill_done_bytes=self._backfill_done,
            backfill_total_bytes=self._backfill_total,
            last_event_wall=self._last_event_wall,
            events_per_second=rate,
            refused_peers=refused,
            notices=tuple(self._notices) + live_notices,
        )

    def snapshot(self) -> Snapshot:
        with self._lock:
            self._note_sent()
            source = self._source_status()
            snap = self._agg.snapshot(source=source, budget=self.budget)
            plans = [w.to_json() for w in self._plan_windows.values()]
            # Claude's: the windows its status line recorded when fresh, else the computed block.
            reported = self._claude_status.windows(time.time()) if self._blocks.seen else []
            for notice in self._claude_status.take_notices():
                self._notice(notice)
            plans.extend(claude_windows(reported, self._blocks.current(snap.now)))
            if plans:
                snap = dataclasses.replace(snap, plan_windows=tuple(plans))
            server = self._server
            connections = server.agent_connections if server is not None else None
            return self._tracker.decorate(snap, connections=connections, waiting_for=self._waiting_for())

    def _waiting_for(self) -> tuple[str, ...]:
        """Files named on the command line that do not exist (yet)."""
        if self._tailer is None:
            return ()
        return tuple(str(p) for p in sorted(self._named_files) if not p.exists())

    @property
    def events_counted(self) -> int:
        """llm_call events counted so far: a lock-free read for waiting loops and benchmarks."""
        return self._agg.events

    @property
    def control_paths(self) -> list[Path]:
        """Sidecars for the followed flightdeck-v1 files (and named files not yet seen)."""
        out: list[Path] = []
        if self._tailer is None:
            return out
        for path in list(self._tailer.followers):
            known = self._formats.get(path)
            name = known[1].name if known else None  # the name: a stored reader stays undecoded
            if name == FLIGHTDECK_V1.name or (name is None and path in self._named_files):
                out.append(sidecar_path(path))
        return out

    def send(
        self,
        cmd: str,
        *,
        to: dict[str, str] | None = None,
        target: dict[str, str] | None = None,
        origin: str = "key",
        reason: str | None = None,
    ) -> Command:
        """Send a control command on every channel; returns it (its id matches the ack)."""
        command = new_command(cmd, origin=origin, reason=reason, to=to, target=target, now=self.clock())
        self._dispatch(command)
        return command

    def _dispatch(self, command: Command) -> None:
        """Note a command, then write it to every sidecar and socket agent."""
        # Noted before it goes out, without waiting for the aggregator lock (an
        # ingest batch may hold it): an agent on the socket can ack within a
        # millisecond, and the next batch moves the command in before its ack.
        self._sent.append(command)
        self._to_note.append(command)
        for sidecar in self.control_paths:
            try:
                append_command(sidecar, command)
            except (OSError, ValueError) as exc:  # ValueError: over the command bounds (core.control)
                self._notice(f"could not write {sidecar}: {exc}")
        server = self._server
        if server is not None:
            server.send_command(command)

    def _on_control(self, command: Command, conn: Connection) -> None:
        """A ``flightdeck pause --socket`` client's command: sent on as ours; its ack goes back to it."""
        server = self._server
        if server is None:
            return
        if not server.agent_connections and not self.control_paths:
            server.reply(conn, b'{"error":"no agent is connected to this monitor"}\n')
            return
        # Stamped with our clock: the cockpit times the round trip from here.
        command = Command(v=command.v, id=command.id, ts=self.clock(), cmd=command.cmd, origin=command.origin,
                          reason=command.reason, to=command.to, target=command.target)
        self._control_clients[command.id] = conn
        while len(self._control_clients) > 100:
            del self._control_clients[next(iter(self._control_clients))]
        self._dispatch(command)

    def _reply_acks(self, events: list[Event]) -> None:
        """Acks of commands a control client sent through us go back to that client."""
        server = self._server
        if server is None:
            return
        for ev in events:
            if ev.kind == KIND_SIGNAL_ACK and ev.ref in self._control_clients:
                server.reply(self._control_clients[ev.ref], encode_event(ev))

    def _note_sent(self) -> None:
        """Move commands sent since the last call into the aggregator. Caller holds the lock."""
        while self._to_note:
            command = self._to_note.popleft()
            self._agg.note_command(command, sent_at=command.ts)
            self._tracker.sent(command)

    # -- filtering --------------------------------------------------------------------

    def _new_aggregator(self, predicate: Callable[[Event], bool] | None) -> Aggregator:
        return Aggregator(clock=self.clock, predicate=predicate, live=True)

    def set_filter(self, text: str | None) -> None:
        """Count only matching events: a fresh aggregator, and the history read again."""
        predicate = parse_filter(text)
        with self._lock:
            self._filter_text = text
            self._note_sent()
            if self._tailer is not None and self._reread_seen is None:
                # The files are read again: what the old aggregator counted is not new.
                # (A second change during a re-read keeps the first's ids.)
                self._reread_seen = self._agg.seen
            fresh = self._new_aggregator(predicate)
            self._tracker.reset_view(predicate)
            self._tracker.view(fresh.add_many(list(self._socket_events)))
            # Commands and the monitor's own alerts are not in any log: carry them over.
            for command in self._sent:
                fresh.note_command(command, sent_at=command.ts)
            for row in self._alerts:
                fresh.note_alert(row)
            self._agg = fresh
        if self._tailer is None:
            return
        if self._thread is None:
            self._do_rewind()
        else:
            self._rewind = True
            self._tailer.wake.set()

    @property
    def filter_text(self) -> str | None:
        return self._filter_text

    def _do_rewind(self) -> None:
        self._rewind = False
        assert self._tailer is not None
        for follower in self._tailer.followers.values():
            follower.rewind()
        self._formats.clear()
        for source in self._documents:  # read again from the start, as the files are
            source.rewind()
        self._blocks = ClaudeBlocks()  # fed again by the history read now
        # Read again for the new filter's figures only: acks, agent states and
        # the arrival rate were counted when these lines first came in.
        self._rereading = True
        try:
            self.backfill(settle=self._thread is None)
        finally:
            self._rereading = False
            self._reread_seen = None
