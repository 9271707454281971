"""Streaming whole logs into Aggregators, on every core (``flightdeck report``).

Memory stays constant whatever the size of the logs: files are read in binary
in fixed chunks, and a line longer than ``MAX_LINE_BYTES`` is skipped to its
newline and counted as rejected without ever being held whole. v1 lines are
decoded ``DECODE_LINES`` at a time by one ``decode_each`` call (a group with
a bad line is redone line by line) and counted with ``Aggregator.add_many``.

Big inputs are cut into byte ranges at line boundaries, one per process; each
worker returns its Aggregator and the parent merges them in file order.
Dedupe stays exact across ranges: after the first pass, a range whose ids
meet ids of an earlier range is scanned again with those earlier ids
preloaded, so a repeated id counts once wherever the copies fall. That second
pass costs nothing when (as usual) no id repeats across ranges.

Only regular files are opened (``ingest.openfile``): a FIFO or a device
named as PATH is an error, one found in a folder is skipped with a notice,
so nothing can hang or feed a report forever. A UTF-8 byte order mark at the
start of a file is skipped, not counted as a bad first line.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO, Final

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.dedupe import SeenIds
from flightdeck.core.events import (
    COST_STATUSES,
    KIND_LLM_CALL,
    MAX_LINE_BYTES,
    ROUTES,
    TS_MAX,
    TS_MIN,
    Event,
    Rejected,
    bounded,
    decode_each,
    decode_line,
    validate,
)
from flightdeck.ingest.formats import FORMATS, FileFormat, LineFormat, detect_format
from flightdeck.ingest.openfile import open_regular, refusal

V1: Final = "flightdeck-v1"
# What the inlined validation lets through without asking validate() (None: absent).
_STATUSES: Final = frozenset({*COST_STATUSES, None})
_ROUTES: Final = frozenset({*ROUTES, None})
CHUNK_BYTES: Final = 1 << 20
# Lines decoded per decode_each call: few enough that their events are still in
# the CPU cache when they are counted (1 MiB blocks measured 30 % slower); about
# the 64 KiB blocks of before at the recorder's ~500 bytes a line.
DECODE_LINES: Final = 128
# Below this much input, starting processes costs more than it saves.
PARALLEL_MIN_BYTES: Final = 16 << 20
_DETECT_LINES: Final = 50
_DETECT_READ: Final = 16 << 10  # first read of a file's head when detecting its format
TASKS_PER_WORKER: Final = 2
MIN_TASK_BYTES: Final = 8 << 20
# How much of the log's head is looked at for a cache read (see _warm_pricing).
_WARM_BYTES: Final = 256 << 10
BOM: Final = b"\xef\xbb\xbf"  # UTF-8 byte order mark, which some editors and Windows tools write


class ScanError(Exception):
    """A path that cannot be read (missing, unreadable); the message says which."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes [start, end) of one file, cut at line boundaries."""

    path: str
    start: int
    end: int
    fmt: str | None  # a formats.FORMATS name, None to detect from the lines


def expand(paths: Sequence[str | os.PathLike[str]], notices: list[str] | None = None) -> list[Path]:
    """Files to read: each file as given, each folder as every *.jsonl below it (sorted).

    Args:
        paths: files and folders as the user named them.
        notices: where to say which files below a folder were skipped
            (a FIFO, a device, a socket: never opened).

    Raises ScanError for a named path that is missing, unreadable, or not a
    regular file.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ScanError(f"{path}: no such file or folder") from None
        except OSError as exc:
            raise ScanError(f"{path}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            out.extend(_regular_below(path, notices))
        elif not stat.S_ISREG(st.st_mode):
            raise ScanError(refusal(path, st.st_mode))
        elif not os.access(path, os.R_OK):
            raise ScanError(f"{path}: permission denied")
        else:
            out.append(path)
    return out


def _regular_below(folder: Path, notices: list[str] | None) -> list[Path]:
    """Every regular *.jsonl below ``folder``, sorted; others are named in ``notices``."""
    found: list[Path] = []
    # Sorted as strings: "s.jsonl" before "s/subagents/..." (a Path sorts the
    # folder first), so a session is read before its sub-agents, whose copies
    # of its messages then count as duplicates.
    for p in sorted(folder.rglob("*.jsonl"), key=str):
        try:
            mode = os.stat(p).st_mode
        except OSError:  # vanished, or a dangling symlink: nothing to read
            continue
        if stat.S_ISREG(mode):
            found.append(p)
        elif not stat.S_ISDIR(mode) and notices is not None:
            notices.append(refusal(p, mode))
    return found


def open_log(path: str | os.PathLike[str]) -> BinaryIO:
    """A regular file opened for binary reading (``ingest.openfile``); OSError otherwise.

    Args:
        path: the file.
    """
    return os.fdopen(open_regular(path), "rb")


def read_batches(f: BinaryIO, start: int = 0, end: int | None = None, *,
                 newlines: bool = False) -> Iterator[list[bytes] | int]:
    """Lines of bytes [start, end) of ``f``, a chunk's worth at a time.

    Yields lists of lines (newline stripped) and, for a line longer than
    ``MAX_LINE_BYTES``, an int: its length. Such a line is skipped, never
    buffered whole. A last line without a newline is yielded as it is.

    The same lines as splitting each of ``read_blocks``' blocks (a test pins
    it), but each chunk is split as it is read: one copy of the bytes instead
    of three (slice, join, split), 0.51 -> 0.36 s CPU over 279 MB of Claude
    Code logs.

    Args:
        f: the file, opened in binary.
        start: the first byte to read (a line start).
        end: the byte to stop at (a line start), None for the end of the file.
        newlines: keep each line's newline (all but a last line without one;
            a line's length against ``MAX_LINE_BYTES`` never counts it), for
            a reader that ignores trailing whitespace (the v1 decoder).
            ``BytesIO.readlines`` finds newlines with ``memchr`` where
            ``bytes.split`` tests byte by byte: 3.2k -> 0.8k instructions a
            line (valgrind, a 1 MiB chunk of v1 events).
    """
    nl = 1 if newlines else 0  # the newline a kept line ends with
    if start == 0 and f.read(len(BOM)) == BOM:
        start = len(BOM)  # not part of the first line
    f.seek(start)
    remaining = math.inf if end is None else end - start
    tail = b""  # the start of the line in progress
    skipped = 0  # > 0 while inside an over-long line: its length so far
    while remaining > 0:
        chunk = f.read(int(min(CHUNK_BYTES, remaining)))
        if not chunk:
            break
        remaining -= len(chunk)
        if newlines:
            # A chunk inside an over-long line is not copied (readlines would).
            lines = BytesIO(chunk).readlines() if b"\n" in chunk else [chunk]
            last = b"" if lines[-1].endswith(b"\n") else lines.pop()
        else:
            lines = chunk.split(b"\n")
            last = lines.pop()  # what follows the chunk's last newline: a line in progress
        if not lines:  # no line ends here: all of it belongs to the line in progress
            if skipped:
                skipped += len(last)
            else:
                tail += last
                if len(tail) > MAX_LINE_BYTES:
                    skipped, tail = len(tail), b""
            continue
        if skipped:
            yield skipped + len(lines[0]) - nl
            skipped = 0
            del lines[0]
        elif tail:
            if len(tail) + len(lines[0]) - nl > MAX_LINE_BYTES:
                yield len(tail) + len(lines[0]) - nl
                del lines[0]
            else:
                lines[0] = tail + lines[0]
            tail = b""
        if lines:
            yield lines
        tail = last
        if len(tail) > MAX_LINE_BYTES:
            skipped, tail = len(tail), b""
    if skipped:
        yield skipped
    elif tail:
        yield [tail]


def read_blocks(f: BinaryIO, start: int = 0, end: int | None = None) -> Iterator[bytes | int]:
    """Bytes [start, end) of ``f`` as blocks of whole lines, a chunk's worth at a time.

    Each block ends at a newline (the last may not). A line longer than
    ``MAX_LINE_BYTES`` is yielded as an int, its length, and never buffered
    whole: the v1 fast path decodes a whole block in one call.
    """
    if start == 0 and f.read(len(BOM)) == BOM:
        start = len(BOM)  # not part of the first line
    f.seek(start)
    remaining = math.inf if end is None else end - start
    tail = b""
    skipped = 0  # > 0 while inside an over-long line
    while remaining > 0:
        chunk = f.read(int(min(CHUNK_BYTES, remaining)))
        if not chunk:
            break
        remaining -= len(chunk)
        if skipped:
            i = chunk.find(b"\n")
            if i < 0:
                skipped += len(chunk)
                continue
            yield skipped + i
            skipped = 0
            chunk = chunk[i + 1 :]
        cut = chunk.rfind(b"\n")
        if cut < 0:  # no line ends here: all of it belongs to the line in progress
            tail += chunk
            if len(tail) > MAX_LINE_BYTES:
                skipped, tail = len(tail), b""
            continue
        if tail:
            first = chunk.find(b"\n")
            if len(tail) + first > MAX_LINE_BYTES:
                yield len(tail) + first
                chunk = chunk[first + 1 :]
                cut -= first + 1
                tail = b""
        block = tail + chunk[: cut + 1] if tail else chunk[: cut + 1]
        tail = chunk[cut + 1 :]
        if len(tail) > MAX_LINE_BYTES:
            skipped, tail = len(tail), b""
        if block:
            yield block
    if skipped:
        yield skipped
    elif tail:
        yield tail


def _feed(agg: Aggregator, f: BinaryIO, seg: Segment, since: float, until: float) -> None:
    """Decode the segment's lines into ``agg``: the v1 fast path, or a foreign format.

    v1: the lines of each chunk (``read_batches``: one split per chunk) are
    decoded ``DECODE_LINES`` at a time by one ``decode_each`` call and the
    valid events added with one ``add_many``. A group with a bad line fails
    as a whole; only that group is then decoded line by line, so a bad line
    never hides a good one.
    """
    fmt = seg.fmt
    if fmt != V1:
        _feed_foreign(agg, f, seg, since, until)
        return
    reject = agg.reject
    for batch in read_batches(f, seg.start, seg.end, newlines=True):
        if type(batch) is int:
            reject("line too long", f"{batch} bytes")
            continue
        for at in range(0, len(batch), DECODE_LINES):  # type: ignore[arg-type]
            _feed_lines(agg, batch[at : at + DECODE_LINES], since, until)  # type: ignore[index]


def _feed_lines(agg: Aggregator, lines: list[bytes], since: float, until: float) -> None:
    """The lines decoded each alone in one ``decode_each`` call; one by one only if one is bad.

    A line may end with its newline (``read_batches(newlines=True)``): the
    decoder skips it as whitespace, and the line-by-line path strips it, so
    a bad line's reason is the one ``decode_line`` gives the bare line.
    """
    reject = agg.reject
    try:
        events = decode_each(lines)
    except ValueError:  # msgspec's DecodeError and ValidationError
        _feed_mixed(agg, lines, since, until)
        return
    # Every line an Event (the usual group): no Rejected to look for, and a
    # report without --since/--until tests no window per event. Per line
    # ~0.6k instructions less than the mixed loop (valgrind, v1 events).
    whole = since == -math.inf and until == math.inf
    good: list[Event] = []
    keep = good.append
    for ev in events:
        # validate()'s checks, inlined for the common valid call; any
        # doubt (an ISO ts, another kind, a bad value) goes to validate().
        ts = ev.ts
        u = ev.usage
        if not (type(ts) is float and TS_MIN <= ts < TS_MAX and ev.kind == KIND_LLM_CALL
                and u is not None and ev.model is not None and ev.provider is not None
                and ev.cost_status in _STATUSES and ev.route in _ROUTES
                and u.reasoning_tokens <= u.output_tokens
                and u.cache_write_1h_tokens <= u.cache_write_tokens):
            checked = validate(ev)
            if type(checked) is Rejected:
                reject(checked.reason, checked.detail)
                continue
            ts = ev.ts  # an ISO ts, now in seconds
        if whole or since <= ts < until:  # type: ignore[operator]
            keep(ev)
    agg.add_many(good)


def _feed_mixed(agg: Aggregator, lines: list[bytes], since: float, until: float) -> None:
    """``_feed_lines`` for a group with a bad line: each line decoded alone by ``decode_line``."""
    reject = agg.reject
    good: list[Event] = []
    keep = good.append
    for line in lines:
        if line.endswith(b"\n"):
            line = line[:-1]
        ev = decode_line(line)
        if isinstance(ev, Rejected):
            if line.strip():  # blank lines are not events, nor errors
                reject(ev.reason, ev.detail)
        elif since <= ev.ts < until:  # type: ignore[operator]
            keep(ev)
    agg.add_many(good)


def _feed_foreign(agg: Aggregator, f: BinaryIO, seg: Segment, since: float, until: float, *,
                  parser: FileFormat | None = None,
                  before_flush: Callable[[FileFormat], None] | None = None) -> None:
    """Parse the segment with ``parser`` (default: a fresh one of the segment's format).

    ``before_flush`` sees the parser once the segment's lines are read and
    before what it holds is handed out (the parse-once index stores it there,
    to go on from that point when the file grows).
    """
    if parser is None:
        parser = FileFormat(_fresh_format(seg.fmt))
    fixed = parser.format
    # A known format is called directly (FileFormat.parse only adds detection
    # and the catch below, which gives the same Rejected it would).
    parse = fixed.parse if fixed is not None else parser.parse
    reject = agg.reject
    # A parser hands out the same Event object again for a repeated response
    # (Claude Code's content blocks). When it is the event added last, its id
    # is already in the dedupe set, so add() would only count a duplicate:
    # count it here, without hashing the id again. The others of a batch go
    # to the aggregator in one add_many call (same result as add, cheaper).
    last: Event | None = None
    repeats = 0
    # An index build (flightdeck.index) keeps each repeat as an event, so that
    # a later --since counts it exactly when its event is counted.
    keep_repeat = getattr(agg, "keep_repeat", None)
    # A reader whose events already meet the line format's bounds (it checks
    # each before handing it out) says so: ``bounded`` would check them twice.
    checked = getattr(fixed, "CHECKED", False) is True
    for batch in read_batches(f, seg.start, seg.end):
        if type(batch) is int:
            reject("line too long", f"{batch} bytes")
            continue
        good: list[Event] = []
        keep = good.append
        for line in batch:  # type: ignore[union-attr]
            if not line or line.isspace():  # what `not line.strip()` says, without copying the line
                continue
            try:
                result = parse(line)
            except Exception as exc:  # a parser bug must not lose the rest of the log
                if fixed is not None:  # what FileFormat.parse makes of it
                    reject(f"bad {fixed.name} line", f"{type(exc).__name__}: {exc}"[:300])
                else:
                    reject("parse error", f"{type(exc).__name__}: {exc}")
                continue
            if type(result) is list:
                if not result:  # most Claude Code lines: a copy held, a costless line
                    continue
                if not checked:
                    result = bounded(result)  # the line format's bounds, as FileFormat.parse applies them
            if isinstance(result, Rejected):
                reject(result.reason, result.detail)
                continue
            for ev in result:
                if ev is last:
                    if keep_repeat is not None:
                        keep_repeat(ev)
                    else:
                        repeats += 1
                elif since <= ev.ts < until:  # type: ignore[operator]
                    keep(ev)
                    last = ev
        agg.add_many(good)
    if before_flush is not None:
        before_flush(parser)
    # A reader may hold a response until its last copy (Claude Code's
    # streamed lines): the segment, a whole file, has ended.
    agg.add_many([ev for ev in parser.flush() if since <= ev.ts < until])  # type: ignore[operator]
    agg.duplicates += repeats + parser.take_copies()
    for reason, n in parser.take_notes().items():  # lines accepted but not read whole
        agg.note(reason, n)


def _fresh_format(name: str | None) -> LineFormat | None:
    """A new instance of the named format: parsers keep per-file state (the
    Claude Code parser's repeat cache), which must not leak between files."""
    shared = FORMATS.get(name) if name else None
    if shared is None:
        return None
    try:
        return type(shared)()
    except TypeError:  # a format that needs arguments: it keeps no state of ours
        return shared


def detect_file_format(path: str | os.PathLike[str]) -> str | None:
    """The format a file is in from its first lines; None if they do not tell.

    Looks at the first ``_DETECT_LINES`` lines of the file's first
    ``CHUNK_BYTES``, then at the partial line there (the file's last line
    when it is shorter and has no final newline). The head is read a little
    at a time: the first line usually decides, and ``plan`` asks this of
    every file before any work is shared out.
    """
    try:
        with open_log(path) as f:
            if f.read(len(BOM)) != BOM:
                f.seek(0)
            head, eof, looked = b"", False, 0
            while True:
                if not eof and len(head) < CHUNK_BYTES:
                    want = min(max(len(head), _DETECT_READ), CHUNK_BYTES - len(head))
                    if looked >= _DETECT_LINES:
                        want = CHUNK_BYTES - len(head)  # only the partial line is left to see
                    more = f.read(want)
                    eof = len(more) < want
                    head += more
                lines = head.split(b"\n")
                tail = lines.pop()
                for line in lines[looked:_DETECT_LINES]:
                    looked += 1
                    if line.strip() and not isinstance(found := detect_format(line), Rejected):
                        return found.name
                if eof or len(head) >= CHUNK_BYTES:
                    if tail.strip() and not isinstance(found := detect_format(tail), Rejected):
                        return found.name
                    return None
    except OSError:
        return None


def _scan_segments(segments: Sequence[Segment], since: float, until: float, by: tuple[str, ...],
                   recent: int, prior: SeenIds | None = None,
                   notices: list[str] | None = None) -> Aggregator:
    """The segments' events into a new Aggregator; a file that cannot be opened is
    named in ``notices`` and the others are read (one file never stops the rest)."""
    agg = Aggregator(live=False, breakdowns=by, recent=recent)
    if prior is not None:
        agg.seen = prior  # earlier ranges' ids: repeats of them count as duplicates
    # The aggregates hold no reference cycles; the cyclic collector would only
    # walk millions of short-lived events for nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for seg in segments:
            try:
                f = open_log(seg.path)
            except OSError as exc:  # vanished or replaced since it was listed
                if notices is not None:
                    notices.append(f"{seg.path}: not read: {exc}")
                continue
            with f:
                _feed(agg, f, seg, since, until)
    finally:
        if was_enabled:
            gc.enable()
    return agg


def _run_task(
    args: tuple[tuple[Segment, ...], float, float, tuple[str, ...], int, SeenIds | None],
) -> tuple[Aggregator, list[str]]:
    segments, since, until, by, recent, prior = args
    notices: list[str] = []
    return _scan_segments(segments, since, until, by, recent, prior, notices), notices


def _line_start_at_or_after(f: BinaryIO, offset: int, size: int) -> int:
    """The first line start >= offset (size if none)."""
    if offset <= 0:
        return 0
    f.seek(offset - 1)
    while True:
        block = f.read(1 << 16)
        if not block:
            return size
        i = block.find(b"\n")
        if i >= 0:
            return f.tell() - len(block) + i + 1
    # unreachable


def plan(files: Sequence[Path], parts: int) -> list[tuple[Segment, ...]]:
    """Cut the files into about ``parts`` runs of segments of equal bytes, in order.

    Cuts fall at line starts, so every line belongs to exactly one segment.
    """
    sizes = [p.stat().st_size for p in files]
    total = sum(sizes)
    names = [str(p) for p in files]
    formats = [detect_file_format(p) for p in files]
    bounds: list[tuple[int, int]] = [(0, 0)]  # (file index, offset), ascending
    file_starts = [0]
    for size in sizes:
        file_starts.append(file_starts[-1] + size)
    for k in range(1, max(parts, 1)):
        g = total * k // parts
        i = next(j for j in range(len(files)) if file_starts[j] <= g < file_starts[j + 1] or j == len(files) - 1)
        if formats[i] != V1:
            # Foreign logs repeat one response on consecutive lines (Claude
            # Code writes a line per content block, the last the most
            # complete). A reader holds a response until its last copy, which
            # needs the whole file: cut such logs at the nearest file boundary.
            i = i if g - file_starts[i] <= file_starts[i + 1] - g else i + 1
            off = 0
            if i >= len(files):
                continue
        else:
            with open_log(files[i]) as f:
                off = _line_start_at_or_after(f, g - file_starts[i], sizes[i])
        if (i, off) > bounds[-1]:
            bounds.append((i, off))
    bounds.append((len(files), 0))
    tasks: list[tuple[Segment, ...]] = []
    for (fi, fo), (ti, to) in itertools.pairwise(bounds):
        segs = []
        for i in range(fi, min(ti, len(files) - 1) + 1):
            start = fo if i == fi else 0
            end = to if i == ti else sizes[i]
            if end > start:
                segs.append(Segment(names[i], start, end, formats[i]))
        if segs:
            tasks.append(tuple(segs))
    return tasks


def scan(
    paths: Sequence[str | os.PathLike[str]],
    *,
    jobs: int = 0,
    since: float | None = None,
    until: float | None = None,
    by: Sequence[str] = ("model",),
    recent: int = 200,
    notices: list[str] | None = None,
) -> Aggregator:
    """Every event of the files (and folders) into one Aggregator(live=False).

    Args:
        paths: files and folders (every *.jsonl below a folder).
        jobs: processes to use (0: one per core); small inputs use one regardless.
        since: keep events with since <= ts.
        until: keep events with ts < until.
        by: the breakdowns to keep.
        recent: how many recent calls the snapshot lists.
        notices: where to say what was not read (a FIFO in a folder, a file
            that vanished); ``None`` to drop them.

    Raises ScanError for a named path that is missing, unreadable or not a
    regular file.
    """
    notes: list[str] = [] if notices is None else notices
    listed = expand(paths, notes)
    files: list[Path] = []
    sizes: list[int] = []
    for p in listed:
        try:
            sizes.append(p.stat().st_size)
        except OSError as exc:  # vanished since it was listed: the others are still read
            notes.append(f"{p}: not read: {exc}")
            continue
        files.append(p)
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    dims = tuple(by)
    total = sum(sizes)
    workers = jobs if jobs > 0 else (os.cpu_count() or 1)
    if workers <= 1 or total < PARALLEL_MIN_BYTES:
        segments = plan(files, 1)
        return _scan_segments(segments[0] if segments else (), lo, hi, dims, recent, notices=notes)
    # Several ranges per worker: on a shared machine a worker that is slowed
    # down takes fewer of them instead of holding everyone up at the end.
    parts = max(workers, min(workers * TASKS_PER_WORKER, total // MIN_TASK_BYTES))
    tasks = plan(files, parts)
    if len(tasks) == 1:
        return _scan_segments(tasks[0], lo, hi, dims, recent, notices=notes)
    return _scan_parallel(tasks, lo, hi, dims, recent, workers, notes)


def _warm_pricing(segments: Sequence[Segment]) -> None:
    """Load the price data in this process if the logs will need it: an agent CLI's log, or a cache read.

    The "money the cache saved" figure needs rates, and the first lookup
    loads genai-prices (~0.2 s of CPU). Done once here, before the workers
    are forked, they inherit the loaded data instead of each loading it.
    A log whose head has no cache read loads nothing (a worker that meets one
    later loads the data itself, as before).
    """
    if any(s.fmt not in (V1, None) for s in segments):
        # The agent CLIs' readers price every call they read (Claude Code's
        # assistant lines): each worker would load the data (~0.3 s of CPU
        # each, measured on 300k Claude Code lines); loaded once here, it is shared.
        try:
            from flightdeck.core.pricing import default_pricer

            default_pricer().rates("anthropic", "claude-sonnet-4-5", time.time(), route="direct")
        except Exception:  # warming is an optimisation: any failure is the workers' to meet
            pass
        return
    seg = next((s for s in segments if s.fmt == V1), None)
    if seg is None:
        return
    try:
        with open_log(seg.path) as f:
            f.seek(seg.start)
            head = f.read(min(_WARM_BYTES, seg.end - seg.start))
    except OSError:
        return
    for line in head.split(b"\n")[:-1]:
        if b'"cache_read_tokens"' not in line or b'"cache_read_tokens":0' in line:
            continue
        ev = decode_line(line)
        if type(ev) is Rejected or ev.kind != KIND_LLM_CALL:  # type: ignore[union-attr]
            continue
        if not ev.usage or not ev.usage.cache_read_tokens or type(ev.ts) is not float:  # type: ignore[union-attr]
            continue
        try:
            from flightdeck.core.pricing import default_pricer

            default_pricer().rates(ev.provider or "", ev.model or "", ev.ts, route=ev.route)  # type: ignore[union-attr]
        except Exception:  # warming is an optimisation: any failure is the workers' to meet
            pass
        return


def _scan_parallel(tasks: list[tuple[Segment, ...]], lo: float, hi: float, dims: tuple[str, ...],
                   recent: int, workers: int, notices: list[str]) -> Aggregator:
    # Imported here: a small log (one process) need not load multiprocessing.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_all_start_methods, get_context

    if method_is_fork := "fork" in get_all_start_methods():
        _warm_pricing(tasks[0])
    method = "fork" if method_is_fork else "spawn"
    merged: Aggregator | None = None
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=get_context(method)) as pool:
        # Results come back in task order and are merged as they come, so the
        # parent holds one Aggregator plus the one arriving.
        prior = SeenIds()  # every id of the ranges before the current one
        redo = []
        for i, (agg, notes) in enumerate(pool.map(_run_task, [(t, lo, hi, dims, recent, None) for t in tasks])):
            notices.extend(notes)
            if i and agg.seen.intersects(prior):
                # This range repeats ids of earlier ones, and counted them again:
                # scan it again with the earlier ids preloaded.
                redo.append(pool.submit(_run_task, (tasks[i], lo, hi, dims, recent, prior.copy())))
                prior.merge(agg.seen)
                continue
            if merged is None:
                # The first range's ids start the set of every id, which is
                # the merged Aggregator's own: each range's ids are merged once,
                # not once here and again in Aggregator.merge (0.26 s of a 300k-line report).
                merged, prior = agg, agg.seen
                continue
            prior.merge(agg.seen)
            merged.merge(agg, ids=False)
        for future in redo:
            again, _notes = future.result()  # the same files again: their notices are in already
            assert merged is not None  # the first range is never redone
            merged.merge(again, ids=False)  # its ids (and the earlier ranges' it was given) are in prior
    assert merged is not None
    return merged
