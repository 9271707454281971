"""``flightdeck statusline``: Claude Code's ``statusLine`` command, recording its rate limits.

Claude Code runs the command on each render with a JSON object on stdin
(``model.display_name``, ``cost.total_cost_usd``, ``rate_limits.five_hour`` /
``seven_day`` with ``used_percentage`` and ``resets_at``, ...) and shows the
first line it prints. This prints a short line (model, session cost, each
window's used percent and time to reset) and records the windows
(``ingest.claude_status``), so ``report`` and the cockpit show the
provider's own figures.

It never hangs and never fails the status line: stdin is read for at most
``READ_SECONDS`` and ``MAX_INPUT`` bytes; bad input prints a plain line;
the exit status is always 0. Every string from the JSON is shown as text.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from flightdeck.core.plan_windows import SHORT_NAMES, PlanWindow, span_text
from flightdeck.core.sanitize import clean

READ_SECONDS: Final = 2.0
MAX_INPUT: Final = 256 * 1024


def read_input(fd: int, *, seconds: float = READ_SECONDS, limit: int = MAX_INPUT) -> bytes | None:
    """Stdin's bytes up to EOF (or what came before ``seconds`` ran out); None for a terminal or too much.

    Args:
        fd: the descriptor to read (0).
        seconds: how long to wait for EOF in all.
        limit: the most bytes accepted.
    """
    if os.isatty(fd):
        return None
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        ready = select.select([fd], [], [], left)[0] if left > 0 else []
        if not ready:  # stdin left open: what came is judged as it is (a whole object still parses)
            return b"".join(chunks)
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _text(value: Any, width: int = 40) -> str | None:
    return clean(value[:width]) if isinstance(value, str) and value else None


def _cost(payload: dict[str, Any]) -> str | None:
    cost = payload.get("cost")
    usd = cost.get("total_cost_usd") if isinstance(cost, dict) else None
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not math.isfinite(usd) or usd < 0:
        return None
    try:
        return f"${Decimal(repr(usd)).quantize(Decimal('0.01'))}"  # to the cent: a status line, not a ledger
    except InvalidOperation:
        return None


def _window(w: PlanWindow, now: float) -> str:
    name = SHORT_NAMES.get(w.which, clean(w.which))
    part = f"{name} {w.used_percent:.0f}%"
    if w.resets_at is not None:
        part += f" ↻{span_text(w.resets_at - now)}"
    full = w.to_json().get("full_at")
    if isinstance(full, float) and full > now and w.used_percent < 100:
        part += f" full in {span_text(full - now)}"
    return part


def status_line(payload: dict[str, Any], windows: list[PlanWindow], now: float) -> str:
    """The line to print: model, session cost, then each window (in the order reported).

    Args:
        payload: the status-line JSON object.
        windows: its rate-limit windows (as merged with the recorded ones, for the projection).
        now: wall time.
    """
    model = payload.get("model")
    name = None
    if isinstance(model, dict):
        name = _text(model.get("display_name")) or _text(model.get("id"))
    parts = [name or "Claude"]
    cost = _cost(payload)
    if cost is not None:
        parts.append(cost)
    parts.extend(_window(w, now) for w in windows)
    return " · ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Print the status line and record the windows; always 0 (a failing status line helps nobody)."""
    try:
        return _run(args)
    except Exception as exc:  # never a traceback in the user's status bar
        print("flightdeck: status line unavailable")
        print(clean(f"flightdeck statusline: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return 0


def _run(args: argparse.Namespace) -> int:
    from flightdeck.ingest import claude_status

    raw = read_input(sys.stdin.fileno())
    payload: Any = None
    if raw is not None:
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            payload = None
    if not isinstance(payload, dict):
        print("flightdeck: no status JSON on stdin (set me as Claude Code's statusLine command)")
        return 0
    now = time.time()
    windows = claude_status.windows_of(payload, now)
    shown = windows
    if windows and not args.no_record:
        try:
            claude_status.record(windows)
            merged = claude_status.read_state()
            shown = [merged.get(w.which, w) for w in windows]  # with the cycle's first sight: a burn
        except OSError as exc:
            print(clean(f"flightdeck statusline: rate limits not recorded: {exc}"), file=sys.stderr)
    print(status_line(payload, shown, now))
    return 0
