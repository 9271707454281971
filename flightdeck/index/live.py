"""The parse-once index for the live monitor: ``tail --once`` and the cockpit's backfill.

The monitor reads a log with a ``Follower`` and one reader (``FileFormat``)
per file. For each log it read, the engine stores (``store.FollowEntry``) the
events, rejects and copies the reader handed out up to the start of the
first line not yet read whole, and the reader itself as it stood there
(pickled). The next monitor hands the stored events to its aggregator in
the order a cold read would, puts the reader back, and starts the follower
at that offset: only bytes beyond it are parsed, and the result is what a
cold read gives, exactly (Claude Code's held responses are still held, its
"most complete copy wins" still decided by the same reader).

An entry is used only for the same file (device, inode, a hash of its first
bytes and of the bytes just before the offset, the same pricing inputs) that
is at least as long as the offset; anything else (shrunk, replaced, rotated
over, rewritten in place) is read again from the start and its entry
replaced. The index lives in the cache folder only: the monitor never writes
to a telemetry file. ``report`` keeps its own entries (``index.reader``):
its readers work per file, not per line, and must not share a cache whose
contents another code path made.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from flightdeck.core.events import Event, Rejected
from flightdeck.index import store
from flightdeck.index.reader import MAX_ENTRY_BYTES, pricing_fingerprint
from flightdeck.index.state import dumps, dumps_small, dumps_small_events, loads, loads_small, loads_small_events
from flightdeck.index.store import FollowEntry
from flightdeck.ingest.formats import FLIGHTDECK_V1, FORMATS, FileFormat
from flightdeck.ingest.openfile import open_regular

_V1: Final = FLIGHTDECK_V1.name


@dataclass(slots=True)
class Resumed:
    """What an entry gives back: the open file, where to go on, and what came before."""

    fd: int
    offset: int
    events: list[Event]
    rejects: list[Rejected]
    copies: int
    reader: FileFormat
    notes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Capture:
    """What a file's reader handed out during one backfill, from offset 0.

    ``base`` is the offset of the entry this capture started from (0 when
    none): an entry is written again only when the file was read beyond it.
    """

    events: list[Event] = field(default_factory=list)
    rejects: list[tuple[str, str]] = field(default_factory=list)
    copies: int = 0
    base: int = 0
    generation: int = 0
    notes: dict[str, int] = field(default_factory=dict)  # lines read only in part, by reason

    def add_notes(self, notes: dict[str, int]) -> None:
        """Count the notes the reader gave for lines this capture holds (``FileFormat.take_notes``)."""
        store.add_counts(self.notes, notes)


def _fingerprint(fd: int, start: int, end: int) -> bytes:
    return store.head_hash(os.pread(fd, end - start, start)) if end > start else store.head_hash(b"")


class FollowIndex:
    """The live monitor's entries in ``$XDG_CACHE_HOME/flightdeck/index``.

    Args:
        root: the cache folder (default ``store.cache_root()``).
        prices: the ``--prices`` file in force (part of the pricing fingerprint).
        max_entry_bytes: a log bigger than this (a flightdeck v1 log: an eighth
            of it, its lines being nearly all events) gets no entry, so the
            monitor never holds a huge log's events in memory at once.

    Raises ``store.IndexUnavailable`` (an OSError) when the folder cannot be used safely.
    """

    def __init__(self, root: Path | None = None, prices: str | os.PathLike[str] | None = None,
                 *, max_entry_bytes: int = MAX_ENTRY_BYTES) -> None:
        self.folder = store.index_dir(root)
        self.pricing = pricing_fingerprint(prices)
        self.max_entry_bytes = max_entry_bytes
        self.saved = 0  # entries written by this process
        self.resumed = 0  # entries used

    def resume(self, path: Path, notices: list[str]) -> Resumed | None:
        """The stored read of ``path`` if its entry still holds; None to read it afresh.

        Args:
            path: the followed file.
            notices: where to say that an entry was ignored (corrupt, foreign version).

        Never raises: a file that cannot be opened here is the follower's to report.
        """
        try:
            fd = open_regular(path)
        except OSError:
            return None
        try:
            found = self._check(path, fd, notices)
        except Exception as exc:  # a torn or foreign reader state: read the file again
            notices.append(f"{path}: index entry ignored, read again: {exc}")
            found = None
        if found is None:
            os.close(fd)
        return found

    def _check(self, path: Path, fd: int, notices: list[str]) -> Resumed | None:
        st = os.fstat(fd)
        try:
            entry = store.load_follow(store.follow_path(self.folder, st))
        except ValueError as exc:
            notices.append(f"{path}: index entry ignored, rebuilt: {exc}")
            return None
        if (entry is None or entry.dev != st.st_dev or entry.ino != st.st_ino or entry.pricing != self.pricing
                or entry.offset > st.st_size or entry.head_len > st.st_size
                or _fingerprint(fd, 0, entry.head_len) != entry.head
                or _fingerprint(fd, max(0, entry.offset - store.FINGERPRINT_BYTES), entry.offset) != entry.tail):
            return None
        reader, held = _reader(entry.fmt, entry.state)
        events = [_held_event(held, ev) if isinstance(ev, int) else ev for ev in entry.events]
        store.mark_used(store.follow_path(self.folder, st))
        self.resumed += 1
        return Resumed(fd=fd, offset=entry.offset, events=events,
                       rejects=[Rejected(reason, detail) for reason, detail in entry.rejects],
                       copies=entry.copies, reader=reader, notes=dict(entry.notes))

    def prune(self) -> int:
        """Remove entries not used for a month (``store.prune``; at most once a day)."""
        return store.prune(self.folder)

    def worth_capturing(self, size: int, fmt_hint: str | None) -> bool:
        """Whether a log of ``size`` bytes gets an entry (see ``max_entry_bytes``).

        Args:
            size: the log's size now.
            fmt_hint: its format if known (a flightdeck v1 log has the lower limit).
        """
        limit = self.max_entry_bytes // 8 if fmt_hint in (None, _V1) else self.max_entry_bytes
        return size <= limit

    def save(self, path: Path, ino: tuple[int, int], offset: int, reader: FileFormat, cap: Capture,
             notices: list[str], state_events: list[Event] | None = None) -> None:
        """Store what was read of ``path`` up to ``offset`` (a line start) and the reader there.

        Args:
            path: the followed file.
            ino: (dev, ino) of the file the follower read (a file replaced since is not stored).
            offset: the start of the first line not handed to ``reader`` (``Follower.resume_point``).
            reader: the file's reader, before any flush of what it holds.
            cap: what the reader handed out from offset 0 up to there.
            notices: where to say an entry could not be written.
            state_events: with a reader stored just now (``LazyFormat.stored``), the events
                its blob holds (``state.dumps_small_events``).

        Never raises.
        """
        if offset <= cap.base or not self.worth_capturing(offset, reader.name):
            return
        try:
            fd = open_regular(path)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != ino or st.st_size < offset:
                return
            fmt = reader.name
            # A reader the engine has just stored (LazyFormat.stored) is pickled once, for both.
            blob = reader.blob if isinstance(reader, LazyFormat) else None
            if fmt in (None, _V1):
                state, state_events = b"", []
            elif blob is None or state_events is None:
                state, state_events = dumps_small_events(reader.format)
            else:
                state = blob
            # An event the reader's state holds too (Claude Code's recently released responses,
            # about a third of its events) is stored once, there; the entry says where.
            where = {id(ev): i for i, ev in enumerate(state_events)}
            events: list[Event | int] = [where.get(id(ev), ev) for ev in cap.events] if where else list(cap.events)
            head_len = min(st.st_size, store.FINGERPRINT_BYTES)
            entry = FollowEntry(dev=st.st_dev, ino=st.st_ino, head=_fingerprint(fd, 0, head_len), head_len=head_len,
                                tail=_fingerprint(fd, max(0, offset - store.FINGERPRINT_BYTES), offset),
                                offset=offset, pricing=self.pricing, fmt=fmt, state=state, events=events,
                                rejects=cap.rejects, copies=cap.copies, notes=cap.notes)
            store.save_follow(store.follow_path(self.folder, st), entry)
            self.saved += 1
        except Exception as exc:  # disk full, a reader that will not pickle: the monitor goes on
            notices.append(f"{path}: index entry not saved: {type(exc).__name__}: {exc}")
        finally:
            os.close(fd)


_FORMAT_SLOT: Final[Any] = FileFormat.__dict__["format"]  # the slot a LazyFormat fills on first use


class LazyFormat(FileFormat):
    """A file's reader kept pickled until it is needed (a line to parse).

    A restored monitor holds one reader per log, and Claude Code's hold a few
    hundred recent responses each: decoding them all would make the cockpit
    wait seconds for figures it already has. Its name, how many responses it
    holds and what a flush hands out (worked out when it was stored) are
    answered without decoding it; stored again untouched, it is written back
    as it was read.
    """

    __slots__ = ("_blob", "_flushed", "_held_out", "_holding", "_name")

    def __init__(self, name: str | None, holding: int, blob: bytes | None, reader: Any = None,
                 held_out: list[Event] | None = None, flushed: bool = False) -> None:
        """Args: the reader's format name and held count; its ``dumps_small`` bytes (None
        when ``reader``, the reader itself, is given); what its flush hands out; whether
        that was handed out already (the reader, once decoded, lets go of it too)."""
        super().__init__(reader)
        self._blob, self._name, self._holding = blob, name, holding
        self._held_out, self._flushed = held_out, flushed

    @classmethod
    def of(cls, fmt: FileFormat) -> FileFormat:
        """``fmt`` as a LazyFormat for storing (flightdeck v1 and undecided readers as they are)."""
        if isinstance(fmt, LazyFormat) or fmt.name in (None, _V1):
            return fmt
        return cls(fmt.name, fmt.holding, None, fmt.format)

    @classmethod
    def stored(cls, fmt: FileFormat, events_out: list[Event] | None = None) -> FileFormat:
        """``fmt`` as an undecoded LazyFormat, to be used in its place (``fmt`` is spent): its
        state pickled now (``dumps_small``), then ``fmt`` flushed for what a flush of that state
        will hand out. Stored (pickled) as it is, at no further cost, before or after that
        flush; flightdeck v1 and undecided readers as they are. ``events_out`` receives the
        events the blob holds (``state.dumps_small_events``) when it is made here.
        """
        if fmt.name in (None, _V1) or (isinstance(fmt, LazyFormat) and fmt._blob is not None):
            return fmt
        name, holding = fmt.name, fmt.holding
        blob, events = dumps_small_events(fmt.format)
        if events_out is not None:
            events_out.extend(events)
        # The reader itself is flushed, not a copy decoded from ``blob`` (it is replaced by
        # the LazyFormat): the same events, without decoding every reader once more
        # (bench_index, 200k lines: 0.28 s of a 6.8 s cold cockpit start).
        held_out = fmt.flush()
        return cls(name, holding, blob, None, held_out)

    @property
    def blob(self) -> bytes | None:
        """The reader's ``dumps_small`` bytes while it is undecoded, else None."""
        return self._blob

    @property
    def format(self) -> Any:
        blob = self._blob
        if blob is not None:
            self._blob = None
            reader = loads_small(blob)
            if self._flushed:  # handed out from _held_out already: the reader lets go of them too
                FileFormat(reader).flush()
            _FORMAT_SLOT.__set__(self, reader)
        return _FORMAT_SLOT.__get__(self, FileFormat)

    @format.setter
    def format(self, value: Any) -> None:
        self._blob = None
        _FORMAT_SLOT.__set__(self, value)

    @property
    def name(self) -> str | None:
        return self._name if self._blob is not None else super().name

    @property
    def holding(self) -> int:
        return self._holding if self._blob is not None else super().holding

    def flush(self) -> list[Event]:
        """What the reader holds, handed out: from what was worked out when it was stored,
        if it has not been decoded since."""
        if self._blob is not None and self._held_out is not None:
            if self._flushed:
                return []  # handed out already: nothing is held (decoding would say the same)
            out, self._held_out = self._held_out, []
            self._flushed, self._holding = True, 0
            return out
        return super().flush()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self._blob is not None:  # flushed or not: the blob and what is left to hand out
            return LazyFormat, (self._name, self._holding, self._blob, None, self._held_out, self._flushed)
        blob = dumps_small(self.format)
        # What a flush would hand out, from a copy: the reader itself must keep holding.
        held_out = FileFormat(loads_small(blob)).flush()
        return LazyFormat, (self.name, self.holding, blob, None, held_out)


def _held_event(held: list[Event], i: int) -> Event:
    """The ``i``-th event of a stored reader's state; ValueError (the file is read again) if none."""
    if not 0 <= i < len(held):
        raise ValueError(f"entry refers to event {i} of a reader state holding {len(held)}")
    return held[i]


def _reader(fmt: str | None, state: bytes) -> tuple[FileFormat, list[Event]]:
    """The file's reader as it was stored, and the events its state holds (what an entry's
    events may refer to); ValueError if the state is not one of ours."""
    if fmt is None:
        return FileFormat(), []
    if fmt == _V1:
        return FileFormat(FLIGHTDECK_V1), []  # the shared instance: the engine tells v1 files by it
    known = FORMATS.get(fmt)
    parser, events = loads_small_events(state)
    if known is None or type(parser) is not type(known):
        raise ValueError(f"stored reader is not a {fmt} reader")
    return FileFormat(parser), events


# --- the whole engine after a backfill: an unchanged history opens at once ---------------

_STATE_MAGIC: Final = b"FDIE" + store.VERSION.to_bytes(2, "little")


def fingerprints(path: Path, ino: tuple[int, int], offset: int) -> tuple[int, bytes, bytes] | None:
    """(head length, head hash, hash of the bytes before ``offset``) of ``path``; None when
    it is not the file ``ino`` any more or is shorter than ``offset``.

    Args:
        path: a followed file.
        ino: (dev, ino) of the file that was read.
        offset: how far it was read (a line start).
    """
    try:
        fd = open_regular(path)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ino or st.st_size < offset:
            return None
        head_len = min(st.st_size, store.FINGERPRINT_BYTES)
        return (head_len, _fingerprint(fd, 0, head_len),
                _fingerprint(fd, max(0, offset - store.FINGERPRINT_BYTES), offset))
    except OSError:
        return None
    finally:
        os.close(fd)


def matches(fd: int, offset: int, check: tuple[int, bytes, bytes]) -> bool:
    """Whether the open file still holds the bytes ``fingerprints`` saw up to ``offset``.

    Args:
        fd: the file, open.
        offset: how far it was read.
        check: ``fingerprints``' result then.
    """
    head_len, head, tail = check
    size = os.fstat(fd).st_size
    return (size >= offset and size >= head_len and _fingerprint(fd, 0, head_len) == head
            and _fingerprint(fd, max(0, offset - store.FINGERPRINT_BYTES), offset) == tail)


class EngineStates:
    """Where ``FollowIndex`` keeps whole engine states: one per set of paths as given."""

    @staticmethod
    def path(index: FollowIndex, roots: list[Path], settled: bool = False) -> Path:
        """The state file of the engine following ``roots`` (files and folders as given);
        ``settled``: the cockpit's state after its backfill handed out what quiet files held."""
        kind = "engine settled" if settled else "engine"
        key = repr(([str(p) for p in roots], index.pricing, kind)).encode("utf-8", "surrogateescape")
        return index.folder / f"engine-{hashlib.sha256(key).hexdigest()[:32]}.sum"

    @staticmethod
    def load(index: FollowIndex, roots: list[Path], settled: bool = False) -> tuple[bytes, Any] | None:
        """(the files' state when it was stored, the engine state); None if none (never raises).

        Args:
            index: the index.
            roots: the files and folders as given.
            settled: the state after the cockpit's hand-out (``path``).
        """
        try:
            data = store.read_private(EngineStates.path(index, roots, settled))
        except ValueError:
            return None
        head = len(_STATE_MAGIC)
        if data is None or data[:head] != _STATE_MAGIC:
            return None
        try:
            files, state = loads(memoryview(data)[head:])
        except Exception:  # torn or foreign: rebuilt by the caller
            return None
        if not isinstance(files, bytes):
            return None
        store.mark_used(EngineStates.path(index, roots, settled))
        return files, state

    @staticmethod
    def dumps(files: bytes, state: object) -> bytes:
        """``state`` pickled (``dumps``) with ``files``, the files' state (``index.reader.files_state``)
        before the read. The state must not hold the engine's clock (it may be a lambda).

        Raises a pickling error for a value that will not pickle.
        """
        return _STATE_MAGIC + dumps((files, state))

    @staticmethod
    def write(index: FollowIndex, roots: list[Path], blob: bytes, settled: bool = False) -> None:
        """Store ``blob`` (``dumps``) as the state of the engine following ``roots``
        (``settled``: after the cockpit's hand-out, see ``path``).

        Raises OSError: the caller goes on without it.
        """
        store.write_atomic(EngineStates.path(index, roots, settled), blob)
