"""``report`` through the parse-once index: stored files replayed, only new bytes parsed.

For each log file, in the order ``ingest.scan.expand`` lists them (the order
a cold scan counts them in, which dedupe depends on):

- an entry that matches the file (same device, inode, head fingerprint,
  pricing fingerprint; same size and mtime) is replayed as it is;
- a flightdeck v1 log that only grew is parsed from the stored offset (a
  line end) on, and its entry extended: v1 lines are independent;
- an agent CLI's log (Claude Code, Codex, Gemini) that grew is parsed from
  the stored offset too, by its reader as it stood there before it handed
  out what it held (stored pickled, ``index.state``): the responses held at
  the old end are still held, so a larger copy written after it still wins;
  the stored events up to that hand-out are replayed;
- anything else (shrunk, replaced, rotated over, rewritten below the offset,
  a last line without its newline that may since have been finished) is
  read again whole.

Replay hands the stored events to one Aggregator through ``add_many``, the
same call a cold scan makes, so dedupe across files stays global and exact
(a Claude Code message repeated in a resumed session counts once) and every
figure (windows, breakdowns, quantiles, savings) is computed by the same
code as without the index. ``--since``/``--until`` filter the stored events
as the readers filter parsed ones, so one entry serves any time range.

A v1 log's last line without a newline (an agent mid-write) is parsed each
time and never stored: the next run may see it completed.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

from flightdeck import __version__
from flightdeck.core.aggregate import Aggregator
from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import Event
from flightdeck.core.pricing import package_state as _package_state  # one rule with Pricer.pricing_inputs
from flightdeck.index import store
from flightdeck.index.state import dumps_small, loads_small
from flightdeck.index.store import Entry, IndexUnavailable
from flightdeck.ingest.formats import FORMATS, FileFormat
from flightdeck.ingest.scan import V1, Segment, _feed, _feed_foreign, detect_file_format, expand, open_log

_TAIL_READ: Final = 64 << 10
# A log bigger than this is streamed straight into the Aggregator and not
# stored: its entry holds all its events in memory at once, where a report
# otherwise runs in constant memory. A v1 log is nearly all events (measured:
# 100 MB of v1 lines held as Events peak at 485 MB RSS), an agent CLI's log
# mostly text (its events ~1/7 of its bytes), so v1 gets an eighth of the
# limit. An unchanged history with such a log is still answered from the
# stored summary.
MAX_ENTRY_BYTES: Final = 256 << 20


class Capture:
    """Stands in for the Aggregator while a reader runs, keeping what it is handed.

    ``ingest.scan._feed`` calls ``add_many``, ``reject`` and adds to
    ``duplicates``; ``keep_repeat`` makes its Claude Code path keep a repeated
    event instead of counting it, so a later ``--since`` counts it exactly.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejects: list[tuple[str, str]] = []
        self.duplicates = 0
        self.notes: dict[str, int] = {}
        self._repeats: list[Event] = []

    def add_many(self, events: list[Event]) -> list[Event]:
        """Keep ``events`` (then any repeats met while they were gathered)."""
        self.events.extend(events)
        if self._repeats:
            self.events.extend(self._repeats)
            self._repeats.clear()
        return []

    def reject(self, reason: str, detail: str = "") -> None:
        """Keep a refused line's reason and detail."""
        self.rejects.append((reason, detail))

    def note(self, reason: str, n: int = 1) -> None:
        """Keep the count of lines accepted but not read whole."""
        self.notes[reason] = self.notes.get(reason, 0) + n

    def keep_repeat(self, ev: Event) -> None:
        """Keep a repeat of the event kept last; it follows its batch."""
        self._repeats.append(ev)


def pricing_fingerprint(prices: str | os.PathLike[str] | None = None) -> str:
    """A hash of everything a stored cost depends on.

    flightdeck's version and the index version (a reader's output may
    change), the genai-prices version, the shipped corrections table, and the
    user's overrides (``prices``, or ``$XDG_CONFIG_HOME/flightdeck/prices.toml``).
    A change re-reads the logs: tokens would survive re-pricing, but the
    readers price as they parse (a Claude Code line's cost), so re-reading is
    the one path that gives exactly what a cold run gives.

    Args:
        prices: the ``--prices`` file, if one was given.
    """
    from flightdeck.core.price_overrides import CORRECTIONS_PATH, default_overrides_path

    h = hashlib.sha256(f"flightdeck {__version__} index {store.VERSION}\n".encode())
    h.update(_package_state("genai_prices"))
    for path in (CORRECTIONS_PATH, Path(prices) if prices is not None else default_overrides_path()):
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"none")
        h.update(b"\n--\n")
    return h.hexdigest()


def _last_line_end(f: BinaryIO, start: int, size: int) -> int:
    """The offset just after the last newline in [start, size); ``start`` if none."""
    pos = size
    while pos > start:
        step = min(_TAIL_READ, pos - start)
        f.seek(pos - step)
        i = f.read(step).rfind(b"\n")
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return start


def _capture(f: BinaryIO, path: str, fmt: str | None, start: int, end: int,
             parser: FileFormat | None = None) -> tuple[Capture, bytes, int]:
    """What the reader makes of [start, end): the capture, the reader's state before it
    handed out what it held (empty for v1), and how many events that hand-out made."""
    cap = Capture()
    if end <= start:
        return cap, b"", 0
    seg = Segment(path, start, end, fmt)
    if fmt == V1:
        _feed(cast(Aggregator, cap), f, seg, -math.inf, math.inf)
        return cap, b"", 0
    kept: list[bytes | int] = []

    def keep(reader: FileFormat) -> None:
        kept.append(len(cap.events))
        try:
            kept.append(dumps_small(reader.format) if reader.format is not None else b"")
        except Exception:  # a reader that will not pickle: its log is read whole when it grows
            kept.append(b"")

    _feed_foreign(cast(Aggregator, cap), f, seg, -math.inf, math.inf, parser=parser, before_flush=keep)
    before, blob = kept
    return cap, cast(bytes, blob), len(cap.events) - cast(int, before)


def _tail_hash(f: BinaryIO, offset: int) -> bytes:
    start = max(0, offset - store.FINGERPRINT_BYTES)
    f.seek(start)
    return store.head_hash(f.read(offset - start))


def _resumable(f: BinaryIO, entry: Entry, size: int) -> FileFormat | None:
    """The stored reader of an agent CLI's log that only grew since; None to read it whole."""
    if not entry.state or entry.fmt in (None, V1) or size <= entry.offset or entry.offset < 1:
        return None
    f.seek(entry.offset - 1)
    if f.read(1) != b"\n" or _tail_hash(f, entry.offset) != entry.tail:
        return None  # a last line that may have been finished since, or bytes rewritten below
    try:
        parser = loads_small(entry.state)
    except Exception:  # torn or foreign: read whole
        return None
    known = FORMATS.get(entry.fmt) if entry.fmt else None
    if known is None or type(parser) is not type(known):
        return None
    resumed = FileFormat(parser)
    # The reader was stored before its notes were taken: they are the entry's already.
    resumed.take_notes()
    return resumed


def _replay(agg: Aggregator, events: list[Event], rejects: list[tuple[str, str]], copies: int,
            lo: float, hi: float, notes: dict[str, int] | None = None) -> None:
    reject = agg.reject
    for reason, detail in rejects:
        reject(reason, detail)
    for reason, n in (notes or {}).items():
        agg.note(reason, n)
    if lo == -math.inf and hi == math.inf:
        agg.add_many(events)
    else:  # as the readers filter: after validation, by the event's time
        agg.add_many([ev for ev in events if lo <= ev.ts < hi])  # type: ignore[operator]
    agg.duplicates += copies


class _Stats:
    def __init__(self) -> None:
        self.files = 0
        self.parsed = 0  # bytes parsed (not replayed)
        self.hits = 0


def _one_file(path: Path, folder: Path, pricing: str, agg: Aggregator, lo: float, hi: float,
              notices: list[str], stats: _Stats, index_notices: list[str], max_entry: int) -> Covered | None:
    """Replay and/or parse one log into ``agg``, updating its entry; what its entry covers
    now (None for a log not read, or streamed without an entry).

    ``notices`` gets what is about the log (not read), ``index_notices`` what
    is about the index (an entry ignored or not saved).
    """
    name = str(path)
    try:
        f = open_log(path)
    except OSError as exc:  # vanished or replaced since it was listed
        notices.append(f"{path}: not read: {exc}")
        return None
    with f:
        st = os.fstat(f.fileno())
        size = st.st_size
        if size > max_entry // 8:
            fmt = detect_file_format(path)
            if size > max_entry or fmt == V1:
                _feed(agg, f, Segment(name, 0, size, fmt), lo, hi)
                stats.parsed += size
                return None
        epath = store.entry_path(folder, st)
        try:
            entry = store.load(epath)
        except ValueError as exc:
            index_notices.append(f"{path}: index entry ignored, rebuilt: {exc}")
            entry = None
        head = f.read(store.FINGERPRINT_BYTES)
        usable = (entry is not None and entry.dev == st.st_dev and entry.ino == st.st_ino
                  and entry.pricing == pricing and entry.head_len <= size
                  and store.head_hash(head[: entry.head_len]) == entry.head)
        if usable:
            assert entry is not None
            store.mark_used(epath)
            if entry.size == size and entry.mtime_ns == st.st_mtime_ns:
                stats.hits += 1
                _replay(agg, entry.events, entry.rejects, entry.copies, lo, hi, entry.notes)
                if entry.fmt == V1 and entry.offset < size:  # the unfinished last line, never stored
                    rest, _state, _held = _capture(f, name, V1, entry.offset, size)
                    stats.parsed += size - entry.offset
                    _replay(agg, rest.events, rest.rejects, rest.duplicates, lo, hi, rest.notes)
                return Covered(st.st_dev, st.st_ino, size, st.st_mtime_ns, entry.offset, entry.tail)
            if entry.fmt == V1 and size > entry.size and detect_file_format(path) == V1:
                cut = _last_line_end(f, entry.offset, size)
                more, _state, _held = _capture(f, name, V1, entry.offset, cut)
                entry.events.extend(more.events)
                entry.rejects.extend(more.rejects)
                entry.copies += more.duplicates
                store.add_counts(entry.notes, more.notes)
                return _finish(agg, f, name, epath, st, head, entry, cut, lo, hi, index_notices, stats,
                               parsed=cut - entry.offset)
            parser = _resumable(f, entry, size) if size > entry.size else None
            if parser is not None and detect_file_format(path) == entry.fmt:
                kept = entry.events[: len(entry.events) - entry.held]  # the hand-out at the old end: redone
                more, state, held = _capture(f, name, entry.fmt, entry.offset, size, parser)
                entry.events = kept + more.events
                entry.rejects.extend(more.rejects)
                entry.copies = more.duplicates  # the reader counted its copies from the start
                store.add_counts(entry.notes, more.notes)  # notes come as lines are read: only the new ones
                entry.state, entry.held = state, held
                return _finish(agg, f, name, epath, st, head, entry, size, lo, hi, index_notices, stats,
                               parsed=size - entry.offset)
        fresh = _fresh_entry(f, path, st, head, pricing)
        return _finish(agg, f, name, epath, st, head, fresh, fresh.offset, lo, hi, index_notices, stats,
                       parsed=fresh.offset)


def _fresh_entry(f: BinaryIO, path: Path, st: os.stat_result, head: bytes, pricing: str) -> Entry:
    """A new entry for the whole of an open log (a v1 log up to its last line end), sealed."""
    name = str(path)
    fmt = detect_file_format(path)
    cut = _last_line_end(f, 0, st.st_size) if fmt == V1 else st.st_size
    cap, state, held = _capture(f, name, fmt, 0, cut)
    entry = Entry(dev=st.st_dev, ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns, head=b"",
                  head_len=0, fmt=fmt, offset=0, pricing=pricing, events=cap.events,
                  rejects=cap.rejects, copies=cap.duplicates, notes=cap.notes, state=state, held=held)
    _seal(entry, f, st, head, cut)
    return entry


def _seal(entry: Entry, f: BinaryIO, st: os.stat_result, head: bytes, cut: int) -> None:
    """Say in ``entry`` what it was made from: the log as ``st`` and ``head`` saw it, up to ``cut``."""
    size = st.st_size
    entry.size, entry.mtime_ns, entry.offset = size, st.st_mtime_ns, cut
    entry.head_len = min(size, store.FINGERPRINT_BYTES)
    entry.head = store.head_hash(head[: entry.head_len])
    entry.tail = _tail_hash(f, cut)


def _finish(agg: Aggregator, f: BinaryIO, name: str, epath: Path, st: os.stat_result, head: bytes,
            entry: Entry, cut: int, lo: float, hi: float, notices: list[str], stats: _Stats,
            *, parsed: int) -> Covered:
    """Store ``entry`` as covering [0, cut), count it, and parse what lies beyond ``cut``."""
    _seal(entry, f, st, head, cut)
    try:
        store.save(epath, entry)
    except OSError as exc:  # disk full, read-only cache: the report still comes out
        notices.append(f"{name}: index entry not saved: {exc}")
    return _count_entry(agg, entry, _rest(f, name, entry), lo, hi, stats, parsed)


def _rest(f: BinaryIO, name: str, entry: Entry) -> Capture | None:
    """What lies beyond ``entry``'s offset in its log: a v1 log's unfinished last line, parsed."""
    if entry.offset >= entry.size:
        return None
    rest, _state, _held = _capture(f, name, V1, entry.offset, entry.size)
    return rest


def _count_entry(agg: Aggregator, entry: Entry, rest: Capture | None, lo: float, hi: float, stats: _Stats,
                 parsed: int) -> Covered:
    """Replay a stored entry and what its log holds beyond it; what the entry covers."""
    _replay(agg, entry.events, entry.rejects, entry.copies, lo, hi, entry.notes)
    stats.parsed += parsed
    if rest is not None:  # a v1 log's unfinished last line
        stats.parsed += entry.size - entry.offset
        _replay(agg, rest.events, rest.rejects, rest.duplicates, lo, hi, rest.notes)
    return Covered(entry.dev, entry.ino, entry.size, entry.mtime_ns, entry.offset, entry.tail)


# -- report --jobs N: a cold index built by worker processes ------------------------

# What a worker made of one log: its entry's file bytes and what lies beyond the
# entry (a v1 log's unfinished last line), or the notice of a log it could not read.
_Built = tuple[bytes, "Capture | None"] | str


def _build_task(task: tuple[list[str], str]) -> list[_Built]:
    """In a worker: the fresh entries of the named logs (``task``: names, pricing
    fingerprint), each as its file bytes (``store.pack_entry``) for the parent to write
    and replay. The parent replays them in the listed order, so dedupe across files
    stays exact; the workers only parse and compress."""
    names, pricing = task
    out: list[_Built] = []
    was_enabled = gc.isenabled()
    gc.disable()  # millions of acyclic objects (as in ingest.scan's workers)
    try:
        for name in names:
            path = Path(name)
            try:
                f = open_log(path)
            except OSError as exc:  # vanished or replaced since it was listed
                out.append(f"{path}: not read: {exc}")
                continue
            with f:
                st = os.fstat(f.fileno())
                head = f.read(store.FINGERPRINT_BYTES)
                entry = _fresh_entry(f, path, st, head, pricing)
                out.append((store.pack_entry(entry), _rest(f, name, entry)))
    finally:
        if was_enabled:
            gc.enable()
    return out


class _Builds:
    """The logs a cold ``report --jobs N`` has built by worker processes, handed back in order.

    ``names`` are the logs with no entry yet that workers parse (none when one
    process is asked for, the fork start method is missing, or they hold less
    than ``ingest.scan.PARALLEL_MIN_BYTES``); ``take`` gives the next one's
    result, in the order of ``names``, while the workers go on with later ones.
    """

    def __init__(self, listed: list[Path], folder: Path, pricing: str, jobs: int, max_entry: int) -> None:
        self.names: set[str] = set()
        self._pool: Any = None
        self._results: Any = iter(())
        self._batch: list[_Built] = []
        workers = jobs if jobs > 0 else (os.cpu_count() or 1)
        if workers <= 1:
            return
        from multiprocessing import get_all_start_methods

        if "fork" not in get_all_start_methods():
            return  # spawned workers would import and load the price data each: one process
        from flightdeck.ingest.scan import PARALLEL_MIN_BYTES, _warm_pricing

        todo: list[tuple[str, int]] = []
        for path in listed:
            try:
                st = path.stat()
            except OSError:  # vanished: the one-process path says so
                continue
            # A big log (streamed, or a big entry) and one that has an entry (replayed,
            # extended or rebuilt) go through the one-process path.
            if (st.st_size <= max_entry // 8 and str(path) not in self.names
                    and not os.path.lexists(store.entry_path(folder, st))):
                todo.append((str(path), st.st_size))
                self.names.add(str(path))
        total = sum(size for _name, size in todo)
        if total < PARALLEL_MIN_BYTES:
            self.names.clear()
            return
        # Tasks of a few MB each, in order: a worker slowed down by the machine takes fewer.
        step = max(total // (workers * 8), 1 << 20)
        tasks: list[list[str]] = [[]]
        acc = 0
        for name, size in todo:
            if acc >= step:
                tasks.append([])
                acc = 0
            tasks[-1].append(name)
            acc += size
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        _warm_pricing([Segment(name, 0, size, detect_file_format(name)) for name, size in todo[:4]])
        self._pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=get_context("fork"))
        self._results = self._pool.map(_build_task, [(t, pricing) for t in tasks])

    def take(self, name: str) -> _Built:
        """The result of ``name``, the next of ``names`` in the listed order (waits for its
        worker); a later listing of the same log finds its entry, as one process would."""
        self.names.discard(name)
        if not self._batch:
            self._batch = list(reversed(next(self._results)))
        return self._batch.pop()

    def close(self) -> None:
        """Stop the workers (what they have not handed back is not needed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _built_file(name: str, built: _Built, folder: Path, agg: Aggregator, lo: float, hi: float,
                notices: list[str], stats: _Stats, index_notices: list[str]) -> Covered | None:
    """Write what a worker built of log ``name`` and count it (as ``_one_file`` does a fresh one)."""
    if isinstance(built, str):
        notices.append(built)
        return None
    body, rest = built
    entry = store.decode_entry(body)
    try:
        store.write_atomic(store.entry_path_of(folder, entry.dev, entry.ino), body)
    except OSError as exc:  # disk full, read-only cache: the report still comes out
        index_notices.append(f"{name}: index entry not saved: {exc}")
    return _count_entry(agg, entry, rest, lo, hi, stats, entry.offset)


@dataclass(frozen=True, slots=True)
class Covered:
    """What a stored summary holds of one log: its identity then, and the offset its
    entry covers (below ``size`` when a v1 log's last line had no newline yet)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    offset: int
    tail: bytes  # the entry's hash of the bytes just before ``offset``


class _Conflict(Exception):
    """A new event repeats an id the stored summary counted: which copy counts depends on
    the order a full read meets them in, which the summary no longer has."""


class _Checked:
    """Stands in for the base Aggregator while new bytes are added to it: any event whose
    id the base counted stops the shortcut (``_Conflict``)."""

    def __init__(self, agg: Aggregator, seen: SeenIds) -> None:
        self.agg = agg
        self.seen = seen

    def add_many(self, events: list[Event]) -> list[Event]:
        """Add ``events`` unless one repeats an id of the base."""
        seen = self.seen
        if any(ev.id in seen for ev in events):
            raise _Conflict
        return self.agg.add_many(events)

    def reject(self, reason: str, detail: str = "") -> None:
        """A refused line, counted by the base Aggregator."""
        self.agg.reject(reason, detail)

    def note(self, reason: str, n: int = 1) -> None:
        """A line read only in part, counted by the base Aggregator."""
        self.agg.note(reason, n)

    @property
    def duplicates(self) -> int:
        return self.agg.duplicates

    @duplicates.setter
    def duplicates(self, n: int) -> None:
        self.agg.duplicates = n


def _from_base(listed: list[Path], base: Aggregator, covered: dict[str, Covered], folder: Path, pricing: str,
               stats: _Stats, notes: list[str], index_notes: list[str],
               max_entry: int) -> tuple[Aggregator, dict[str, Covered | None]] | None:
    """The stored summary's Aggregator with only what is new added: the bytes beyond each
    covered log's offset, and the logs it did not cover. None when that would not give
    what a full read gives: a covered log gone, shrunk, replaced or rewritten; a v1 log's
    unfinished last line grown; a log that cannot go on from its entry; a new event that
    repeats an id the summary counted (``_Conflict``)."""
    names = {str(p) for p in listed}
    if any(name not in names for name in covered):
        return None
    checked = _Checked(base, base.seen.copy())
    agg = cast(Aggregator, checked)
    now: dict[str, Covered | None] = {}
    try:
        for path in listed:
            name = str(path)
            cov = covered.get(name)
            if cov is None:
                now[name] = _one_file(path, folder, pricing, agg, -math.inf, math.inf, notes, stats,
                                      index_notes, max_entry)
                continue
            grown = _grow(path, cov, folder, pricing, checked, stats, index_notes)
            if grown is None:
                return None
            now[name] = grown
    except _Conflict:
        return None
    return base, now


def _grow(path: Path, cov: Covered, folder: Path, pricing: str, checked: _Checked, stats: _Stats,
          notes: list[str]) -> Covered | None:
    """Add what ``path`` holds beyond ``cov.offset``; its new coverage, or None to read all
    afresh. Raises ``_Conflict``."""
    try:
        f = open_log(path)
    except OSError:
        return None
    with f:
        st = os.fstat(f.fileno())
        size = st.st_size
        if (st.st_dev, st.st_ino) != (cov.dev, cov.ino) or size < cov.size:
            return None
        if size == cov.size and st.st_mtime_ns == cov.mtime_ns:
            return cov
        if cov.offset < cov.size:  # an unfinished last line was counted as it was
            return None
        epath = store.entry_path(folder, st)
        try:
            entry = store.load(epath)
        except ValueError:
            return None
        head = f.read(store.FINGERPRINT_BYTES)
        if (entry is None or entry.pricing != pricing or entry.offset != cov.offset or entry.tail != cov.tail
                or (entry.dev, entry.ino) != (cov.dev, cov.ino) or entry.head_len > size
                or store.head_hash(head[: entry.head_len]) != entry.head or _tail_hash(f, cov.offset) != cov.tail):
            return None
        agg = cast(Aggregator, checked)
        name = str(path)
        if entry.fmt == V1:
            if detect_file_format(path) != V1:
                return None
            cut = _last_line_end(f, entry.offset, size)
            more, _state, _held = _capture(f, name, V1, entry.offset, cut)
            _replay(agg, more.events, more.rejects, more.duplicates, -math.inf, math.inf, more.notes)
            entry.events.extend(more.events)
            entry.rejects.extend(more.rejects)
            entry.copies += more.duplicates
            store.add_counts(entry.notes, more.notes)
        else:
            parser = _resumable(f, entry, size)
            if parser is None or detect_file_format(path) != entry.fmt:
                return None
            cut = size
            kept = entry.events[: len(entry.events) - entry.held]
            held = {ev.id: ev for ev in entry.events[len(kept):]}  # counted by the summary already
            more, state, n_held = _capture(f, name, entry.fmt, entry.offset, size, parser)
            fresh: list[Event] = []
            for ev in more.events:
                old = held.pop(ev.id, None) if ev.id in held else None
                if old is None:
                    fresh.append(ev)
                elif old != ev:  # a larger copy of a response the summary counted as it stood
                    raise _Conflict
            _replay(agg, fresh, more.rejects, more.duplicates - entry.copies, -math.inf, math.inf, more.notes)
            entry.events = kept + more.events
            entry.rejects.extend(more.rejects)
            entry.copies = more.duplicates
            store.add_counts(entry.notes, more.notes)
            entry.state, entry.held = state, n_held
        stats.parsed += cut - entry.offset
        entry.size, entry.mtime_ns, entry.offset = size, st.st_mtime_ns, cut
        entry.head_len = min(size, store.FINGERPRINT_BYTES)
        entry.head = store.head_hash(head[: entry.head_len])
        entry.tail = _tail_hash(f, cut)
        try:
            store.save(epath, entry)
        except OSError as exc:
            notes.append(f"{name}: index entry not saved: {exc}")
        if cut < size:  # a v1 log's unfinished last line: counted, never covered
            rest, _state, _held = _capture(f, name, V1, cut, size)
            stats.parsed += size - cut
            _replay(agg, rest.events, rest.rejects, rest.duplicates, -math.inf, math.inf, rest.notes)
        return Covered(st.st_dev, st.st_ino, size, st.st_mtime_ns, cut, entry.tail)


def scan_indexed(
    paths: Sequence[str | os.PathLike[str]],
    *,
    since: float | None = None,
    until: float | None = None,
    by: Sequence[str] = ("model",),
    recent: int = 200,
    notices: list[str] | None = None,
    prices: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    progress: bool = False,
    max_entry_bytes: int = MAX_ENTRY_BYTES,
    jobs: int = 1,
) -> Aggregator:
    """What ``ingest.scan.scan`` returns for the same arguments, through the index.

    Args:
        paths: files and folders (every *.jsonl below a folder).
        since: keep events with since <= ts.
        until: keep events with ts < until.
        by: the breakdowns to keep.
        recent: how many recent calls the snapshot lists.
        notices: where to say what was not read or not stored.
        prices: the ``--prices`` file in force (part of the pricing fingerprint).
        root: the cache folder (default ``store.cache_root()``).
        progress: show files and bytes read, rate and time left on stderr
            when it is a terminal and the read takes a while (``index.progress``).
        max_entry_bytes: a log bigger than this (a v1 log: an eighth of it) is
            read as ``ingest.scan`` reads it (constant memory) and gets no entry.
        jobs: processes that build the entries of logs not indexed yet (0: one per
            core; ``_Builds``); what is indexed is replayed in this one, in order.

    Raises ``ingest.scan.ScanError`` for a named path that cannot be read;
    an index that cannot be used is said in ``notices`` and the logs are
    read without it.
    """
    notes: list[str] = [] if notices is None else notices
    listed = expand(paths, notes)
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    agg = Aggregator(live=False, breakdowns=tuple(by), recent=recent)
    try:
        folder = store.index_dir(root)
    except (IndexUnavailable, OSError) as exc:
        notes.append(f"parse-once index not used: {exc}")
        from flightdeck.ingest.scan import scan

        return scan(listed, jobs=jobs, since=since, until=until, by=by, recent=recent, notices=notes)
    pricing = pricing_fingerprint(prices)
    # No time range: the whole aggregate, stored. An unchanged history is
    # answered by it; one whose logs only grew or were added starts from it.
    summary = None
    state = files_state(listed)
    stats = _Stats()
    file_notes: list[str] = []
    index_notes: list[str] = []
    if since is None and until is None:
        key = repr(([str(p) for p in paths], tuple(by), recent, pricing)).encode("utf-8", "surrogateescape")
        summary = store.summary_path(folder, key)
        stored = store.load_summary(summary)
        if stored is not None and stored[0] == state:
            store.mark_used(summary)
            notes.extend(stored[2])
            return stored[1]
        if stored is not None and isinstance(stored[3], dict) and not stored[2]:
            based = _from_base(listed, stored[1], stored[3], folder, pricing, stats, file_notes, index_notes,
                               max_entry_bytes)
            if based is not None:
                _save_summary(summary, state, based[0], file_notes, based[1], index_notes)
                notes.extend(file_notes)
                notes.extend(index_notes)
                store.prune(folder)
                return based[0]
            stats = _Stats()
            file_notes.clear()
            index_notes.clear()
    done = 0
    bar = None
    if progress:
        from flightdeck.index.progress import ReadProgress

        bar = ReadProgress(len(listed), sum(_size(p) for p in listed))
    covered: dict[str, Covered | None] = {}
    builds = _Builds(listed, folder, pricing, jobs, max_entry_bytes)
    was_enabled = gc.isenabled()
    gc.disable()  # as in ingest.scan: millions of acyclic objects, nothing to collect
    try:
        for path in listed:
            name = str(path)
            if name in builds.names:
                covered[name] = _built_file(name, builds.take(name), folder, agg, lo, hi, file_notes, stats,
                                            index_notes)
            else:
                covered[name] = _one_file(path, folder, pricing, agg, lo, hi, file_notes, stats, index_notes,
                                          max_entry_bytes)
            stats.files += 1
            if bar is not None:
                done += _size(path)
                bar.update(stats.files, done, stats.parsed)
    finally:
        builds.close()
        if was_enabled:
            gc.enable()
        if bar is not None:
            bar.close()
    notes.extend(file_notes)
    if summary is not None:
        _save_summary(summary, state, agg, file_notes, covered, index_notes)
    notes.extend(index_notes)
    store.prune(folder)  # a successful run: entries unused for a month go
    return agg


def _save_summary(path: Path, state: bytes, agg: Aggregator, file_notes: list[str],
                  covered: dict[str, Covered | None], notes: list[str]) -> None:
    """Store the summary; it covers each log only if every log has an entry to go on from."""
    full = {name: cov for name, cov in covered.items() if cov is not None}
    try:
        store.save_summary(path, state, agg, file_notes, full if len(full) == len(covered) else None)
    except OSError as exc:
        notes.append(f"index summary not saved: {exc}")


def files_state(files: list[Path]) -> bytes:
    """Every file's path, device, inode, size and mtime: what tells an unchanged history.

    What a stored report summary and the cockpit's stored engine state must match.

    Args:
        files: the logs, in the order they are read.
    """
    parts = []
    for p in files:
        try:
            st = os.stat(p)
        except OSError:
            parts.append(f"{p}\0-")
            continue
        parts.append(f"{p}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts).encode("utf-8", "surrogateescape")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # vanished: the read says so
        return 0
