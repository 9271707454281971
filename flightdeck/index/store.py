"""The parse-once index on disk: one entry file per log file, in the user's cache.

Where: ``$XDG_CACHE_HOME/flightdeck/index/`` (default ``~/.cache/flightdeck``),
folders 0700, files 0600. Nothing is followed through a planted link: the
``flightdeck`` folder and the ``index`` folder below it are checked with
``lstat`` (a symlink or a folder of another user is refused, and the index is
then not used), and entry files are opened with ``core.fsopen.open_regular``
with ``follow=False``.

An entry is named after the log's device and inode (a rotated log keeps its
entry), and says what it was made from: the log's size and mtime, a hash of
its first bytes, the offset read up to, the reader's format and a fingerprint
of the pricing inputs. It is written to a temporary file in the same folder
and renamed over the old one, so a reader in another process sees either the
old entry or the new one, never half of one; two processes that index the
same log at once each write a whole entry and the last rename wins.

The body is msgpack (msgspec, a core dependency already): the decoded events
exactly as the reader made them, the reader's rejects, and the duplicates it
counted itself; compressed with zlib's fastest level (``_pack``). A follow
entry's reader state, compressed already, is stored before that body, not in
it (``save_follow``). Anything
that does not decode (a crash mid-write on another machine's copy, a foreign
version) is ignored and rebuilt, with a notice.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import time
import zlib
from pathlib import Path
from typing import Any, Final

import msgspec

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event
from flightdeck.core.fsopen import NotRegularFile, open_regular, private_dir, replace_file

MAGIC: Final = b"FDIX"
VERSION: Final = 6  # bump when the entry layout or any reader's output changes
FINGERPRINT_BYTES: Final = 4096  # of the log's head: a replaced file differs here
_HEADER: Final = MAGIC + VERSION.to_bytes(2, "little")
SUMMARY_MAGIC: Final = b"FDIS"
_SUMMARY_HEADER: Final = SUMMARY_MAGIC + VERSION.to_bytes(2, "little")
# Entries not used for this long are removed (a log deleted, a folder no longer
# read): an entry is marked used (its mtime) at most once a day.
PRUNE_AGE: Final = 30 * 86400
_USED_AGE: Final = 86400
_TMP_AGE: Final = 86400  # a temporary file this old is a crashed writer's
_PRUNED_MARK: Final = ".pruned"
FOLLOW_MAGIC: Final = b"FDIF"
_FOLLOW_HEADER: Final = FOLLOW_MAGIC + VERSION.to_bytes(2, "little")


class IndexUnavailable(OSError):
    """The cache folder cannot be used safely (a symlink, another user's, not a folder)."""


class Entry(msgspec.Struct, array_like=True):
    """What the reader made of bytes [0, offset) of one log file.

    ``events`` are the events the reader handed to the aggregator, in order
    (a repeat the reader counted itself is stored as a second copy, which the
    aggregator's dedupe then counts exactly as it did); ``rejects`` the lines
    it refused, as (reason, detail); ``copies`` the duplicates the reader
    dropped before they reached the aggregator; ``notes`` the lines it
    accepted but did not read whole, by reason (``Aggregator.note``).
    """

    dev: int
    ino: int
    size: int  # the log's size when indexed
    mtime_ns: int
    head: bytes  # sha256 of the first min(size, FINGERPRINT_BYTES) bytes
    head_len: int
    fmt: str | None  # the format name the reader used
    offset: int  # bytes covered by events/rejects (a line end, or the size)
    pricing: str  # pricing fingerprint the costs were made with
    events: list[Event]
    rejects: list[tuple[str, str]]
    copies: int
    notes: dict[str, int] = {}  # lines read only in part (FileFormat.take_notes), by reason
    # An agent CLI's reader as it stood at ``offset`` before it handed out what
    # it held (``index.state.dumps``; empty for flightdeck v1), and how many of
    # the last ``events`` that hand-out made: a grown log goes on from here.
    state: bytes = b""
    held: int = 0
    tail: bytes = b""  # sha256 of bytes [max(0, offset - FINGERPRINT_BYTES), offset)


class FollowEntry(msgspec.Struct, array_like=True):
    """What the live monitor's reader made of bytes [0, offset) of one log file.

    Unlike ``Entry`` (``report``'s), this one is resumable: ``state`` is the
    file's reader as it stood at ``offset`` (pickled; Claude Code's held
    responses and recently released ids, Codex's session and rate limits),
    so the monitor goes on from ``offset`` exactly as if it had read the
    bytes before it. ``events``, ``rejects`` and ``copies`` are what the
    reader handed out up to there, in order; what it still holds is in
    ``state``. ``offset`` is a line end: a last line without its newline is
    never covered. ``tail`` is the hash of the bytes just before ``offset``,
    so a file rewritten in place below it is read again.
    """

    dev: int
    ino: int
    head: bytes  # sha256 of the first head_len bytes
    head_len: int
    tail: bytes  # sha256 of bytes [max(0, offset - FINGERPRINT_BYTES), offset)
    offset: int
    pricing: str
    fmt: str | None  # the reader's format name; None while no line said
    state: bytes  # the pickled reader (empty for stateless flightdeck v1)
    # An int is the event at that place in ``state``'s own events (``index.state.
    # dumps_small_events``): Claude Code's recently released responses are stored once.
    events: list[Event | int]
    rejects: list[tuple[str, str]]
    copies: int
    notes: dict[str, int] = {}  # lines read only in part, by reason, up to offset


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Entry)
_follow_decoder: Final = msgspec.msgpack.Decoder(FollowEntry)
# zlib's fastest level over an entry's msgpack: an event repeats its field
# names, model, run and project, so it shrinks to a quarter (bench_index's
# Claude Code history: report's entries 16.7 % of the logs -> 4.x %, tail's
# 19.6 % -> 8.x % with the engine state). Measured on 7.5 MB of entries:
# compressing takes about 0.8x and inflating 0.25x of what decoding them takes;
# levels 3 and 6 cost more and save 1-4 % more. Only the stdlib: lz4/zstd are
# not core dependencies.
_LEVEL: Final = 1


def _pack(header: bytes, entry: msgspec.Struct) -> bytes:
    """``header`` and ``entry``'s msgpack, compressed (what ``_unpack`` reads)."""
    return header + zlib.compress(_encoder.encode(entry), _LEVEL)


def _unpack(data: bytes | memoryview, header: bytes) -> bytes:
    """The msgpack of an entry file ``_pack`` made; ValueError if it does not inflate."""
    try:
        return zlib.decompress(memoryview(data)[len(header):])
    except zlib.error as exc:
        raise ValueError(f"corrupt index entry: {exc}") from None


def add_counts(into: dict[str, int], more: dict[str, int]) -> None:
    """Count ``more``'s notes (lines read only in part, by reason) into ``into``: an entry's or a capture's."""
    for reason, n in more.items():
        into[reason] = into.get(reason, 0) + n


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/flightdeck`` (``~/.cache/flightdeck`` when unset or not absolute)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "flightdeck"


def _private_dir(path: Path) -> None:
    """Make ``path`` a 0700 folder of ours, or raise IndexUnavailable; never follows a link."""
    try:
        private_dir(path)  # core.fsopen: the one rule for a folder of ours
    except (NotRegularFile, PermissionError) as exc:
        raise IndexUnavailable(f"{exc}: index not used") from None
    except OSError as exc:
        raise IndexUnavailable(f"{path}: cannot create: {exc.strerror or exc}") from None


def index_dir(root: Path | None = None) -> Path:
    """The folder entries live in, created 0700 if missing.

    Args:
        root: the cache folder (default ``cache_root()``).

    Raises IndexUnavailable when it cannot be used safely.
    """
    top = cache_root() if root is None else root
    try:
        top.parent.mkdir(parents=True, exist_ok=True)  # ~/.cache itself may be a link: that is the user's
    except OSError as exc:
        raise IndexUnavailable(f"{top.parent}: cannot create: {exc.strerror or exc}") from None
    _private_dir(top)
    folder = top / "index"
    _private_dir(folder)
    return folder


def entry_path(folder: Path, st: os.stat_result) -> Path:
    """The entry file of the log whose stat is ``st``: named by device and inode.

    Args:
        folder: ``index_dir()``.
        st: the log's ``os.stat`` result.
    """
    return entry_path_of(folder, st.st_dev, st.st_ino)


def entry_path_of(folder: Path, dev: int, ino: int) -> Path:
    """``entry_path`` from the log's device and inode (what an entry says it was made from).

    Args:
        folder: ``index_dir()``.
        dev: the log's ``st_dev``.
        ino: the log's ``st_ino``.
    """
    return folder / f"{dev:x}-{ino:x}.idx"


def head_hash(head: bytes) -> bytes:
    """The fingerprint of a log's first bytes."""
    return hashlib.sha256(head).digest()


def read_private(path: Path) -> bytes | None:
    """The bytes of one of our cache files; None if absent. Never through a link.

    Args:
        path: a file in ``index_dir()``.

    Raises ValueError for a file that cannot be opened or is another user's.
    """
    try:
        fd = open_regular(path, os.O_RDONLY, follow=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot open: {exc}") from None
    with os.fdopen(fd, "rb") as f:
        if hasattr(os, "getuid") and os.fstat(f.fileno()).st_uid != os.getuid():
            raise ValueError("belongs to another user")
        return f.read()


def load(path: Path) -> Entry | None:
    """The entry at ``path``; None if there is none.

    Args:
        path: from ``entry_path``.

    Raises ValueError for a file that is not a whole entry of this version
    (the caller ignores it, says so, and rebuilds it).
    """
    data = read_private(path)
    if data is None:
        return None
    return decode_entry(data)


def decode_entry(data: bytes) -> Entry:
    """The entry whose file bytes (``pack_entry``'s) are ``data``.

    Args:
        data: a whole entry file.

    Raises ValueError as ``load`` does.
    """
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError("not a flightdeck index entry")
    if data[: len(_HEADER)] != _HEADER:
        raise ValueError(f"index entry of another version ({int.from_bytes(data[4:6], 'little')}, this is {VERSION})")
    body = _unpack(data, _HEADER)
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"corrupt index entry: {exc}") from None


def save(path: Path, entry: Entry) -> None:
    """Write ``entry`` to ``path`` atomically (temporary file, fsync-free rename), mode 0600.

    Args:
        path: from ``entry_path``.
        entry: what to store.

    Raises OSError (disk full, read-only cache): the caller goes on without it.
    """
    write_atomic(path, pack_entry(entry))


def pack_entry(entry: Entry) -> bytes:
    """The bytes of ``entry``'s file (what ``save`` writes and ``decode_entry`` reads): a
    parallel build makes them in a worker and the parent writes them.

    Args:
        entry: what to store.
    """
    return _pack(_HEADER, entry)


def write_atomic(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` through a temporary file renamed over it, mode 0600.

    Args:
        path: a file in ``index_dir()``.
        body: its new contents.
    """
    replace_file(path, body, suffix=".idx")  # core.fsopen; prune() knows a crashed writer's .tmp-*.idx


def follow_path(folder: Path, st: os.stat_result) -> Path:
    """The live monitor's entry for the log whose stat is ``st`` (beside ``entry_path``'s).

    Args:
        folder: ``index_dir()``.
        st: the log's ``os.stat`` result.
    """
    return folder / f"{st.st_dev:x}-{st.st_ino:x}.fol"


def load_follow(path: Path) -> FollowEntry | None:
    """The live monitor's entry at ``path``; None if there is none.

    Args:
        path: from ``follow_path``.

    Raises ValueError for a file that is not a whole entry of this version.
    """
    data = read_private(path)
    if data is None:
        return None
    head = len(_FOLLOW_HEADER) + 8
    if data[: len(_FOLLOW_HEADER)] != _FOLLOW_HEADER or len(data) < head:
        raise ValueError("not a flightdeck follow entry of this version")
    end = head + int.from_bytes(data[len(_FOLLOW_HEADER) : head], "little")
    if end > len(data):
        raise ValueError("corrupt follow entry: its reader state is cut short")
    body = _unpack(memoryview(data)[end:], b"")
    try:
        entry = _follow_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"corrupt follow entry: {exc}") from None
    entry.state = data[head:end]
    return entry


def save_follow(path: Path, entry: FollowEntry) -> None:
    """Write ``entry`` to ``path`` atomically, mode 0600 (as ``save``).

    Args:
        path: from ``follow_path``.
        entry: what to store.

    Raises OSError: the caller goes on without it.
    """
    # The reader's state is compressed already (index.state.dumps_small): it goes beside
    # the compressed rest, not through zlib again (bench_index, 200k lines: 0.08 s of the
    # 0.2 s its entries' compression took, for no byte saved).
    state = entry.state
    entry.state = b""
    try:
        body = _pack(b"", entry)
    finally:
        entry.state = state
    write_atomic(path, b"".join((_FOLLOW_HEADER, len(state).to_bytes(8, "little"), state, body)))


def summary_path(folder: Path, key: bytes) -> Path:
    """Where the summary of one (files, breakdowns, pricing) combination lives.

    Args:
        folder: ``index_dir()``.
        key: what names the combination (paths, breakdowns, pricing fingerprint).
    """
    return folder / f"report-{hashlib.sha256(key).hexdigest()[:32]}.sum"


def load_summary(path: Path) -> tuple[bytes, Aggregator, list[str], Any] | None:
    """What ``save_summary`` stored at ``path``: (the files' state it was made from, the
    Aggregator, the notices of its read, what it covers of each file); None if none.

    Args:
        path: from ``summary_path``.

    The summary is a pickle, the Aggregator's own (what parallel report workers
    send): it is only read from our own 0700 folder, owned by us, never
    through a link, so only this user could have written it.
    """
    try:
        data = read_private(path)
    except ValueError:
        return None
    if data is None or data[: len(_SUMMARY_HEADER)] != _SUMMARY_HEADER:
        return None
    try:
        stored_state, agg, notices, covered = pickle.loads(memoryview(data)[len(_SUMMARY_HEADER):])
    except Exception:  # torn or foreign: rebuilt by the caller
        return None
    if not isinstance(stored_state, bytes) or not isinstance(agg, Aggregator):
        return None
    return stored_state, agg, list(notices), covered


def save_summary(path: Path, state: bytes, agg: Aggregator, notices: list[str], covered: Any = None) -> None:
    """Store ``agg`` as the summary of the files in ``state`` (atomically, 0600).

    Args:
        path: from ``summary_path``.
        state: the files' state the aggregate was made from.
        agg: the finished Aggregator.
        notices: what the read said (repeated on a hit).
        covered: what of each file it holds (``reader.Covered`` by path), so that
            a later read can add only what is new; None when it cannot.

    Raises OSError as ``save`` does.
    """
    write_atomic(path, _SUMMARY_HEADER + pickle.dumps((state, agg, notices, covered),
                                                      protocol=pickle.HIGHEST_PROTOCOL))


def mark_used(path: Path) -> None:
    """Note that the entry at ``path`` is still in use (its mtime, at most once a day), so
    ``prune`` keeps it. Never follows a link; never raises.

    Args:
        path: an entry or summary in ``index_dir()``.
    """
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and time.time() - st.st_mtime > _USED_AGE:
            os.utime(path, follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass


def prune(folder: Path, *, max_age: float = PRUNE_AGE, now: float | None = None, force: bool = False) -> int:
    """Remove the entries and summaries not used for ``max_age`` seconds; returns how many.

    An entry is named by its log's device and inode, not its path, so a
    deleted log cannot be told from its entry; one not used for a month (a
    log deleted, a folder no longer read) goes, and costs a parse if its log
    comes back. Runs at most once a day (a mark file's mtime) unless ``force``.
    Only regular files of ours are removed: a link in the folder is never
    followed. Safe beside other processes: a reader that has an entry open
    keeps reading it, and a removed entry is rebuilt. Never raises.

    Args:
        folder: ``index_dir()``.
        max_age: seconds since an entry's last use after which it goes.
        now: the time to measure from (default: now).
        force: prune even if it was done less than a day ago.
    """
    now = time.time() if now is None else now
    mark = folder / _PRUNED_MARK
    removed = 0
    try:
        if not force:
            try:
                if now - os.lstat(mark).st_mtime < _USED_AGE:
                    return 0
            except FileNotFoundError:
                pass
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        os.close(fd)
        os.utime(mark, (now, now), follow_symlinks=False)
        with os.scandir(folder) as it:
            for e in it:
                name = e.name
                tmp = name.startswith(".tmp-")
                if not (tmp or name.endswith((".idx", ".fol", ".sum"))):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or now - st.st_mtime <= (_TMP_AGE if tmp else max_age):
                    continue
                try:
                    os.unlink(e.path)
                    removed += 1
                except OSError:
                    pass
    except OSError:
        pass
    return removed
