"""Helpers for the integration tests (a plain module, named so it clashes with no other folder's)."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from flightdeck.core.events import Event, decode_line

MILLION = Decimal(1_000_000)
# Stage checks are correctness checks on a contended machine: a stage must be at
# least what the fake server waited, and at most that plus this slack. A late
# first chunk moves time from gen to ttft, so streams check ttft and ttft + gen.
SLACK_MS = 2500.0


def calls(path: Path) -> list[Event]:
    """The llm_call events in ``path``, in order."""
    out = []
    for line in path.read_bytes().splitlines():
        ev = decode_line(line)
        assert isinstance(ev, Event), (line, ev)
        if ev.kind == "llm_call":
            out.append(ev)
    return out


def wait_calls(path: Path, n: int, timeout: float = 15.0) -> list[Event]:
    """The llm_call events once there are ``n`` (LiteLLM logs from a worker thread)."""
    deadline = time.monotonic() + timeout
    while True:
        found = calls(path) if path.exists() else []
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def within(value: float | None, low_ms: float) -> bool:
    """``value`` measured a wait of at least ``low_ms`` (minus 5 ms of clock rounding), with slack above."""
    return value is not None and low_ms - 5.0 <= value <= low_ms + SLACK_MS


def usage_of(ev: Event) -> tuple[int, int, int, int, int, int]:
    u = ev.usage
    assert u is not None
    return (u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
            u.reasoning_tokens, u.cache_write_1h_tokens)
