"""Following files and folders the way real logs behave.

A ``Follower`` owns one path. Each ``poll()`` returns the complete lines that
appeared since the last poll and copes with what happens to log files: the
file does not exist yet; a write ends mid-line (the partial line is held until
its newline); rotation by rename (the old inode is read to its end, then the
new file from offset 0); truncation in place (copytruncate), including a
truncation followed at once by writes that make the file longer than before,
which the size alone misses, so the first bytes are fingerprinted too;
deletion and re-creation. A line over 1 MiB is rejected and skipped to its
newline without being buffered.

Every rotation the follower can see is caught up, not only the last one:
each poll checks the inode and the fingerprint, and on a change the rotated
siblings (``run.jsonl.1``, ``run.jsonl-20251201``; compressed ones are not
read) are searched. The old generation is finished from where it was left,
found by its inode (a closed follower's file renamed away) or by its
fingerprint (the copy copytruncate made, which holds the lines written
before the truncation); and a generation that was created and rotated away
between two polls (rotations faster than the poll) is read whole. What
cannot be found or read is said in a notice, and a rotated file that cannot
be read counts as a rejected ``unread rotated file``.

A ``Tailer`` owns the followers for a set of files and folders (every
``*.jsonl`` below a folder, new ones picked up) and a watchfiles thread on the
*parent* folders: watching a file itself goes silent after a rename. The
watcher only wakes the ingest loop; a slow periodic poll is the safety net.

The monitor never writes to telemetry files: they are opened read-only,
and only when they are regular files (``ingest.openfile``): a FIFO or a
device at a followed path is refused with one notice, never opened, so it
cannot block the ingest thread or feed it forever. A UTF-8 byte order mark
at the start of a file is skipped. Descriptors are given back as soon as a
file is read to its end once more files are followed than ``open_limit()``
allows, and a file that could not be opened for lack of descriptors is
retried after the others are closed, then named in a notice.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from flightdeck.core.events import MAX_LINE_BYTES, Rejected, decode_json
from flightdeck.ingest.openfile import NotRegularFile, open_regular, refusal

HEAD_BYTES: Final = 64  # fingerprint length: enough to hold a unique id or timestamp
READ_CHUNK: Final = 1 << 20
MAX_READ_PER_POLL: Final = 8 << 20  # then let the other files have a turn
SUFFIX: Final = ".jsonl"
MAX_OPEN_FILES: Final = 200  # beyond this many followed files, quiet ones are closed between polls
BOM: Final = b"\xef\xbb\xbf"  # a UTF-8 byte order mark: not part of the first line
_OUT_OF_FDS: Final = frozenset({errno.EMFILE, errno.ENFILE})
COMPRESSED: Final = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z", ".zip")
_ROTATED_SEP: Final = ".-_"  # run.jsonl.1, run.jsonl-20251201, run.jsonl_old
MTIME_SLACK: Final = 1.0  # file times come from a coarser clock than time.time()


def open_limit() -> int:
    """How many followed files may stay open between polls.

    ``MAX_OPEN_FILES``, or a quarter of this process's descriptor limit when
    that is lower (the rest is for the socket, the watcher, Python itself).
    """
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return MAX_OPEN_FILES
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_OPEN_FILES
    return max(1, min(MAX_OPEN_FILES, soft // 4))


@dataclass(slots=True)
class PollResult:
    lines: list[bytes] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    bytes_read: int = 0
    more: bool = False  # stopped at MAX_READ_PER_POLL; poll again soon


class Follower:
    """One followed path. Not thread-safe: one ingest thread polls it."""

    def __init__(self, path: str | os.PathLike[str], *, max_line: int = MAX_LINE_BYTES) -> None:
        self.path = Path(path)
        self.max_line = max_line
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None  # (dev, ino)
        self.offset = 0
        self._head = b""
        self._pending = bytearray()
        self._skipping = False  # inside an over-long line: drop bytes to the next newline
        self._released = False  # closed by release(): reopen and resume if the inode is the same
        self.generation = 0  # bumps on every new file (rotation, truncation, re-creation)
        self._refused: tuple[int, int, int] | None = None  # (dev, ino, mode) already said not to be a file
        self.starved = False  # the last open failed for lack of descriptors (EMFILE/ENFILE)
        self._done: deque[tuple[int, int]] = deque(maxlen=32)  # generations read to their end
        self._last_poll: float | None = None  # wall time the previous poll started
        self._this_poll: float | None = None
        self._released_mtime: int | None = None  # the file's mtime when its descriptor was given back

    # -- state ----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def size_now(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def written_at(self) -> float | None:
        """Wall time the file was last written (its mtime); None when it is not open.

        A file released between polls (more followed files than ``open_limit()``)
        answers with its mtime when it was released: a poll reopens it when it
        changed. (It answered None, so the cockpit held the last response of
        every released quiet file for SETTLE_SECONDS: 19,626 instead of 20,178 USD
        on bench_index's 1M-line history of 654 files.)
        """
        if self._fd is None:
            if self._released and self._released_mtime is not None:
                return self._released_mtime / 1e9
            return None
        try:
            return os.fstat(self._fd).st_mtime
        except OSError:
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def rewind(self) -> None:
        """Read the file again from its start (used when the filter changes)."""
        self.close()
        self._released = False
        self._ino = None
        self.offset = 0
        self._head = b""
        self._pending.clear()
        self._skipping = False
        self._last_poll = self._this_poll = None  # a rewind reads this file again, not its rotations

    def start_at(self, fd: int, offset: int) -> None:
        """Follow the open file ``fd`` from ``offset`` (a line end), as if the bytes
        before it had been read: the parse-once index covered them.

        Args:
            fd: a descriptor of the regular file at ``path``, opened read-only; the
                follower owns it from now on.
            offset: where the next line starts.
        """
        st = os.fstat(fd)
        self.close()
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)
        self._released = False
        self.offset = offset
        self._head = os.pread(fd, HEAD_BYTES, 0)
        self._pending.clear()
        self._skipping = False
        self.generation += 1

    @property
    def unread(self) -> bool:
        """Nothing read yet (a new follower, or one rewound): ``start_at`` may place it."""
        return self._ino is None and self._fd is None and self.offset == 0

    @property
    def resume_point(self) -> tuple[tuple[int, int], int] | None:
        """((dev, ino), offset) of the file being read and the start of its first line
        not yet handed out; None when no file is being read or inside an over-long line."""
        if self._ino is None or self._skipping:
            return None
        return self._ino, self.offset - len(self._pending)

    # -- polling --------------------------------------------------------------

    def poll(self) -> PollResult:
        """The lines written since the last poll, with rejects and notices."""
        out = PollResult()
        self._last_poll, self._this_poll = self._this_poll, time.time()
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            if self._fd is not None:  # deleted or renamed away: finish what was written
                self._safe_drain(out)
                self._switch(out, f"{self.path}: gone; waiting for it to reappear")
            return out
        except OSError as exc:
            out.notices.append(f"{self.path}: {exc}")
            return out
        if not stat.S_ISREG(st.st_mode):
            if self._fd is not None:  # a regular file replaced by a FIFO or device: finish the old one
                self._safe_drain(out)
                self._switch(out, f"{self.path}: replaced by something that is not a regular file")
            self._refuse(out, st)
            return out
        self._refused = None
        if (self._released and (st.st_dev, st.st_ino) == self._ino and st.st_size == self.offset
                and st.st_mtime_ns == self._released_mtime):
            # A quiet released file: no need to reopen it to know nothing changed. The
            # mtime tells a new file that got the old inode number and size from it.
            return out
        missed_from: tuple[int, int] | None = None
        if self._fd is not None and (st.st_dev, st.st_ino) != self._ino:
            self._safe_drain(out)  # rotated: the old inode may hold lines written before the rename
            missed_from = self._ino
            if self._ino is not None:
                self._done.append(self._ino)
            self._switch(out, f"{self.path}: replaced (rotation); reading the new file")
        had_file = self.generation > 0
        generation = self.generation
        if self._fd is None and not self._open(out):
            return out
        if missed_from is not None or (had_file and self.generation != generation):
            self._catch_missed(out)  # a new file after an old one: were others between them?
        try:
            self._check_truncation(out)
            self._read(out)
        except OSError as exc:  # e.g. a folder or device given as a file: say so, keep going
            out.notices.append(f"{self.path}: cannot read: {exc}")
            self.close()
        return out

    def release(self) -> None:
        """Close the descriptor of a quiet file but keep its place (a folder may hold thousands)."""
        if self._fd is not None:
            try:
                self._released_mtime = os.fstat(self._fd).st_mtime_ns
            except OSError:
                self._released_mtime = None
            os.close(self._fd)
            self._fd = None
            self._released = True

    def finish(self) -> PollResult:
        """Take the file as complete (``tail --once``): its last line needs no newline.

        A held partial line that is a whole JSON value is returned as a line
        (the writer simply did not end it); anything else is rejected as
        ``incomplete last line`` (a write still under way, or a torn one).
        """
        out = PollResult()
        if self._pending and not self._skipping:
            line = bytes(self._pending)
            self._pending.clear()
            try:
                decode_json(line)
            except ValueError:
                why = f"{self.path}: {len(line)} bytes without a newline"
                out.rejects.append(Rejected("incomplete last line", why))
            else:
                out.lines.append(line)
        return out

    def _refuse(self, out: PollResult, st: os.stat_result) -> None:
        """Say once (per file) that the path is not a regular file and will not be read."""
        key = (st.st_dev, st.st_ino, st.st_mode)
        if self._refused != key:
            self._refused = key
            out.notices.append(refusal(self.path, st.st_mode))

    def _open(self, out: PollResult) -> bool:
        self.starved = False
        try:
            fd = open_regular(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except NotRegularFile:  # swapped in since the stat: refused all the same
            try:
                self._refuse(out, os.stat(self.path))
            except OSError:
                pass
            return False
        except OSError as exc:
            if exc.errno in _OUT_OF_FDS:
                self.starved = True  # the Tailer closes others and retries, then says so
            else:
                out.notices.append(f"{self.path}: {exc}")
            return False
        st = os.fstat(fd)
        ino = (st.st_dev, st.st_ino)
        resumed = self._released and ino == self._ino
        if self._released and not resumed:
            # The old file was closed (released), so its end is read from where it is now.
            self._finish_elsewhere(out, by_inode=self._ino)
            self._drop_partial(out, "partial line at end of replaced file")
            out.notices.append(f"{self.path}: replaced; reading the new file")
        self._released = False
        self._fd, self._ino = fd, ino
        if not resumed:  # resuming keeps offset and fingerprint: the truncation check still applies
            self.offset, self._head = 0, b""
            self.generation += 1
        return True

    def _switch(self, out: PollResult, notice: str) -> None:
        self._drop_partial(out, "partial line at end of replaced file")
        self.close()
        self._ino = None
        out.notices.append(notice)

    def _drop_partial(self, out: PollResult, why: str) -> None:
        if self._pending:
            out.rejects.append(Rejected("truncated line", f"{self.path}: {why} ({len(self._pending)} bytes)"))
            self._pending.clear()
        self._skipping = False

    def _check_truncation(self, out: PollResult) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        truncated = size < self.offset
        if not truncated and self._head:
            # copytruncate then a burst of writes can leave the file longer than
            # before: only the first bytes show it is a new content.
            truncated = os.pread(self._fd, len(self._head), 0) != self._head
        if truncated:
            # copytruncate: the lines written since the last read are in the copy, if it is there.
            self._finish_elsewhere(out, by_inode=None)
            self._drop_partial(out, "partial line before truncation")
            self.offset, self._head = 0, b""
            self.generation += 1
            out.notices.append(f"{self.path}: truncated; reading from the start")
            self._catch_missed(out)

    def _read(self, out: PollResult) -> None:
        assert self._fd is not None
        budget = MAX_READ_PER_POLL
        while budget > 0:
            data = os.pread(self._fd, min(READ_CHUNK, budget), self.offset)
            if not data:
                return
            if len(self._head) < HEAD_BYTES and self.offset < HEAD_BYTES:
                self._head = os.pread(self._fd, HEAD_BYTES, 0)
            budget -= len(data)
            self._take(data, out)
        out.more = True

    def _take(self, data: bytes, out: PollResult) -> None:
        """Count ``data`` (read at ``offset``) as read and split it into lines."""
        start = self.offset
        self.offset += len(data)
        out.bytes_read += len(data)
        if start == 0 and data.startswith(BOM):
            data = data[len(BOM) :]
        self._split(data, out)

    # -- rotations between polls ----------------------------------------------

    def _rotated_siblings(self) -> list[tuple[os.stat_result, Path]]:
        """Regular files beside the path named like its rotations, compressed ones left out."""
        name = self.path.name
        found: list[tuple[os.stat_result, Path]] = []
        try:
            entries = os.scandir(self.path.parent)
        except OSError:
            return found
        with entries:
            for entry in entries:
                n = entry.name
                if len(n) <= len(name) or not n.startswith(name) or n[len(name)] not in _ROTATED_SEP:
                    continue
                if n.lower().endswith(COMPRESSED):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append((st, Path(entry.path)))
        return found

    def _finish_elsewhere(self, out: PollResult, *, by_inode: tuple[int, int] | None) -> None:
        """Read the rest of the generation we were reading, from wherever it went.

        Args:
            out: where its lines go.
            by_inode: its (dev, ino) when it was renamed away; None for
                copytruncate, where the copy is found by its fingerprint.
        """
        if not self._head and self.offset == 0:
            return  # nothing read yet: nothing to continue
        for st, path in self._rotated_siblings():
            ino = (st.st_dev, st.st_ino)
            if ino in self._done:
                continue
            if by_inode is not None and ino != by_inode:
                continue
            if st.st_size < self.offset:
                continue
            if by_inode is None and self._fingerprint(path) != self._head:
                continue
            if self._read_rotated(path, self.offset, out):
                self._done.append(ino)
                if st.st_size > self.offset:
                    out.notices.append(f"{self.path}: read the end of the rotated file {path.name}")
            return
        out.notices.append(
            f"{self.path}: rotated, and the old file was not found beside it: "
            "lines written to it after the last read, if any, were not read"
        )

    def _catch_missed(self, out: PollResult) -> None:
        """Read whole the generations created and rotated away since the previous poll."""
        since = self._last_poll
        if since is None:
            return
        current = self._ino
        missed = [(st, path) for st, path in self._rotated_siblings()
                  if (st.st_dev, st.st_ino) not in self._done and (st.st_dev, st.st_ino) != current
                  and st.st_mtime >= since - MTIME_SLACK]
        for st, path in sorted(missed, key=lambda sp: sp[0].st_mtime):
            if self._read_rotated(path, 0, out):
                self._done.append((st.st_dev, st.st_ino))
                out.notices.append(f"{self.path}: read {path.name}, rotated away between two polls")

    def _fingerprint(self, path: Path) -> bytes | None:
        try:
            fd = open_regular(path)
        except OSError:
            return None
        try:
            return os.pread(fd, len(self._head), 0)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _read_rotated(self, path: Path, start: int, out: PollResult) -> bool:
        """Lines of a rotated file from ``start`` to its end (it is complete); False if unreadable.

        The partial line held from the generation it continues is completed
        by its first bytes; its own last line needs no newline.
        """
        try:
            fd = open_regular(path)
        except OSError as exc:
            out.rejects.append(Rejected("unread rotated file", f"{path}: {exc}"))
            return False
        try:
            offset = start
            while True:
                data = os.pread(fd, READ_CHUNK, offset)
                if not data:
                    break
                at = offset
                offset += len(data)
                if at == 0 and data.startswith(BOM):
                    data = data[len(BOM) :]
                self._split(data, out)
        except OSError as exc:
            out.rejects.append(Rejected("unread rotated file", f"{path}: {exc}"))
        finally:
            os.close(fd)
        last = self.finish()  # the file is complete: its last line needs no newline
        out.lines.extend(last.lines)
        out.rejects.extend(last.rejects)
        self._skipping = False
        return True

    def _safe_drain(self, out: PollResult) -> None:
        try:
            self._drain(out)
        except OSError as exc:
            out.notices.append(f"{self.path}: cannot finish the old file: {exc}")

    def _drain(self, out: PollResult) -> None:
        """Read an old inode to its end (no truncation check: it is being let go)."""
        if self._fd is None:
            return
        while True:
            data = os.pread(self._fd, READ_CHUNK, self.offset)
            if not data:
                return
            self._take(data, out)

    def _split(self, data: bytes, out: PollResult) -> None:
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return
            data = data[nl + 1 :]
            self._skipping = False
        if self._pending:
            nl = data.find(b"\n")
            if nl < 0:
                self._hold(data, out)
                return
            first = bytes(self._pending) + data[:nl]
            data = data[nl + 1 :]
            self._pending.clear()
            self._emit(first, out)
        lines = data.split(b"\n")
        tail = lines.pop()
        for line in lines:
            self._emit(line, out)
        if tail:
            self._hold(tail, out)

    def _hold(self, data: bytes, out: PollResult) -> None:
        if len(self._pending) + len(data) > self.max_line:
            out.rejects.append(
                Rejected("line too long", f"{self.path}: a line over {self.max_line} bytes was skipped")
            )
            self._pending.clear()
            self._skipping = True
            return
        self._pending += data

    def _emit(self, line: bytes, out: PollResult) -> None:
        if len(line) > self.max_line:
            out.rejects.append(
                Rejected("line too long", f"{self.path}: a line of {len(line)} bytes was skipped")
            )
            return
        if line.strip():
            out.lines.append(line)


# --- many files and folders -------------------------------------------------------


def _jsonl_below(folder: Path) -> list[Path]:
    """Every ``*.jsonl`` below ``folder`` that is not a folder, sorted.

    A FIFO or device among them is followed too, only to be refused (never
    opened) with a notice by its ``Follower``: skipping it silently would hide it.
    """
    try:
        # As strings: a session's file before its sub-agents' folder (see scan.expand).
        return sorted((p for p in folder.rglob("*" + SUFFIX) if not p.is_dir()), key=str)
    except OSError:
        return []


class Tailer:
    """Followers for files and folders, plus the watcher that wakes the reader.

    ``poll(all_files)`` reads what is new; the caller (the engine's ingest
    thread) waits on ``wake`` between polls. Files given by name are
    followed even before they exist.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, step_ms: int = 5, debounce_ms: int = 20) -> None:
        self.files: list[Path] = []
        self.folders: list[Path] = []
        for p in paths:
            path = Path(p).expanduser().absolute()
            (self.folders if path.is_dir() else self.files).append(path)
        self.followers: dict[Path, Follower] = {}
        self.wake = threading.Event()
        self._dirty: set[Path] = set()
        self._dirty_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.step_ms, self.debounce_ms = step_ms, debounce_ms
        self.watch_error: str | None = None
        self._open_limit = open_limit()
        self.rescan()

    def rescan(self) -> list[Path]:
        """Pick up files that appeared below the folders; returns the new ones."""
        new: list[Path] = []
        for path in self.files:
            if path not in self.followers:
                self.followers[path] = Follower(path)
                new.append(path)
        for folder in self.folders:
            for path in _jsonl_below(folder):
                if path not in self.followers:
                    self.followers[path] = Follower(path)
                    new.append(path)
        return new

    def total_bytes(self) -> int:
        return sum(f.size_now() for f in self.followers.values())

    def adopt(self, path: Path) -> bool:
        """Follow a new ``*.jsonl`` the watcher saw below one of the folders."""
        if path in self.followers or not any(folder in path.parents for folder in self.folders):
            return False
        if path.suffix != SUFFIX:
            if not path.is_dir():
                return False
            added = False
            for found in _jsonl_below(path):
                if found not in self.followers:
                    self.followers[found] = Follower(found)
                    added = True
            return added
        self.followers[path] = Follower(path)
        return True

    def take_dirty(self) -> set[Path]:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        return dirty

    def poll(self, paths: Iterable[Path] | None = None) -> Iterable[tuple[Follower, PollResult]]:
        """Poll the given paths (None: every follower); yields (follower, result).

        Args:
            paths: the followed paths to read (those not followed are ignored).

        With more followers than ``open_limit()``, a file read to its end
        gives its descriptor back at once. A file that could not be opened
        for lack of descriptors is retried once every other follower is
        closed; if it still cannot be, a notice names how many were not read.
        """
        followers = self.followers
        targets = followers.values() if paths is None else [followers[p] for p in paths if p in followers]
        many = len(followers) > self._open_limit
        starved: list[Follower] = []
        for follower in list(targets):
            res = follower.poll()
            if follower.starved:
                starved.append(follower)
            elif many and follower.is_open and not res.more:
                follower.release()  # read to its end: give the descriptor back, reopen when it grows
            yield follower, res
        if not starved:
            return
        for other in followers.values():
            other.release()
        still = 0
        for follower in starved:
            res = follower.poll()
            if follower.starved:
                still += 1
            elif follower.is_open and not res.more:
                follower.release()
            yield follower, res
        if still:
            res = PollResult(notices=[
                f"{still} of {len(followers)} files could not be opened (too many open files): "
                "their lines are not counted yet"
            ])
            yield starved[0], res

    def finish(self) -> Iterable[tuple[Follower, PollResult]]:
        """Each follower's last line without a newline (see ``Follower.finish``): for ``--once``."""
        for follower in list(self.followers.values()):
            res = follower.finish()
            if res.lines or res.rejects:
                yield follower, res

    # -- watching -----------------------------------------------------------------

    def watch_roots(self) -> list[Path]:
        roots: set[Path] = set(self.folders)
        for path in self.files:
            parent = path.parent
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent  # wait for the folder too: watch its nearest ancestor
            roots.add(parent)
        # A root below another root is already covered when watching recursively.
        return sorted(r for r in roots if not any(o != r and o in r.parents for o in roots))

    def start_watching(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="flightdeck-watch", daemon=True)
            self._thread.start()

    def stop_watching(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def close(self) -> None:
        self.stop_watching()
        for f in self.followers.values():
            f.close()

    def _relevant(self, path: str) -> bool:
        if path.endswith(SUFFIX):
            return True
        p = Path(path)
        # A new folder may already hold files written before its watch was added.
        return p in self.followers or (bool(self.folders) and os.path.isdir(p))

    def _watch(self) -> None:
        import watchfiles

        roots = self.watch_roots()
        if not roots:
            return
        try:
            # debounce bounds the wait while changes keep coming (a busy log
            # never goes quiet for `step`); step is how long a quiet spell must
            # be. The defaults (1600/50 ms) would add ~100 ms of latency.
            for changes in watchfiles.watch(
                *roots,
                step=self.step_ms,
                debounce=self.debounce_ms,
                stop_event=self._stop,
                rust_timeout=500,
                yield_on_timeout=True,
                watch_filter=lambda _change, path: self._relevant(path),
                recursive=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                if not changes:
                    continue
                with self._dirty_lock:
                    self._dirty.update(Path(p) for _c, p in changes)
                self.wake.set()
        except Exception as exc:  # the poll keeps working without the watcher
            self.watch_error = f"file watcher stopped: {exc}; polling instead"
            self.wake.set()

