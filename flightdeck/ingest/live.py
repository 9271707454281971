"""The headless live feed: ``tail --json`` and ``tail --once --json``.

One JSON object per line on stdout (``Snapshot.to_json()``), flushed each
time, so ``flightdeck tail run.jsonl --json | jq`` works live.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import TextIO

import orjson

from flightdeck.core.snapshot import Snapshot
from flightdeck.ingest.engine import Engine

_BUDGET = re.compile(r"^\s*\$?([0-9]+(?:\.[0-9]+)?)\s*/\s*([0-9]+)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_budget(text: str) -> tuple[Decimal, int]:
    """``2.00/10m`` -> (Decimal("2.00"), 600). ValueError with the expected form otherwise."""
    m = _BUDGET.match(text)
    if not m:
        raise ValueError(f"--budget {text!r}: expected USD/WINDOW such as 2.00/10m (window in s, m, h or d)")
    try:
        limit = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(f"--budget {text!r}: {m.group(1)!r} is not an amount") from None
    seconds = int(m.group(2)) * _UNIT[m.group(3)]
    if seconds <= 0:
        raise ValueError(f"--budget {text!r}: the window must be longer than 0")
    return limit, seconds


def snapshot_line(snap: Snapshot) -> bytes:
    doc = snap.to_json()
    src = snap.source
    doc["source"] = {
        "description": src.description,
        "files": src.files,
        "connections": src.connections,
        "backfilling": src.backfilling,
        "backfill_done_bytes": src.backfill_done_bytes,
        "backfill_total_bytes": src.backfill_total_bytes,
        "last_event_wall": src.last_event_wall,
        "events_per_second": src.events_per_second,
        "refused_peers": src.refused_peers,
        "notices": list(src.notices),
    }
    try:
        return orjson.dumps(doc, default=str) + b"\n"
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers; token sums of valid lines can pass
        # 2^64 (10^15 per call), and the standard library writes them exactly.
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _write(out: TextIO, line: bytes) -> None:
    """Write one whole line, even when a signal (``kill PID``) lands mid-write.

    A TextIOWrapper's write to a full pipe, interrupted by a signal whose
    handler does not raise, can return having written only part of the line
    (seen: 128 KiB of a 200 KB line); the reader then gets half a JSON object.
    So the bytes go to the descriptor with ``os.write`` until every one is out
    (PEP 475 retries EINTR; a partial write is continued here).
    """
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # a StringIO in tests, or a closed stream
        out.write(line.decode())
        out.flush()
        return
    out.flush()  # whatever the stream still holds goes first
    view = memoryview(line)
    while view:
        view = view[os.write(fd, view) :]


def print_once(engine: Engine, out: TextIO | None = None) -> None:
    """Read everything there is now, print one object."""
    out = out if out is not None else sys.stdout  # looked up now: tests and callers swap it
    engine.backfill(final=True)  # nothing follows: a last line without a newline is read too
    _write(out, snapshot_line(engine.snapshot()))


def _stop_on_sigterm(stop: threading.Event) -> None:
    """``kill PID`` (or Ctrl-C) ends a headless feed cleanly: after a whole line, exit 0,
    the socket file removed. A KeyboardInterrupt raised mid-write would cut the line."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
        signal.signal(signal.SIGINT, lambda _sig, _frame: stop.set())


def run_json(
    engine: Engine,
    interval: float,
    out: TextIO | None = None,
    *,
    stop: threading.Event | None = None,
    count: int | None = None,
) -> None:
    """One snapshot line per ``interval`` seconds until ``stop`` is set (or ``count`` lines)."""
    stop = stop or threading.Event()
    out = out if out is not None else sys.stdout
    _stop_on_sigterm(stop)
    engine.start()
    try:
        printed = 0
        next_at = time.monotonic() + interval
        while not stop.is_set():
            if stop.wait(max(0.0, next_at - time.monotonic())):
                break
            next_at += interval
            _write(out, snapshot_line(engine.snapshot()))
            printed += 1
            if count is not None and printed >= count:
                break
    finally:
        engine.stop()
