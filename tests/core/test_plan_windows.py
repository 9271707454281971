"""Plan windows: reported windows merged across files, Claude's 5-hour blocks as ccusage computes them."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from flightdeck.core.plan_windows import BLOCK_SECONDS, ClaudeBlocks, PlanWindow, merge_windows, window_from_codex
from flightdeck.ingest.engine import Engine

H = 3600.0
T0 = 1_795_000_000.0 - 1_795_000_000.0 % H  # an hour boundary


def test_blocks_start_on_the_hour_and_split_on_end_or_gap() -> None:
    b = ClaudeBlocks()
    b.add(T0 + 25 * 60, 100, "0.50")        # block 1 starts at T0 (floored to the hour)
    b.add(T0 + 4 * H + 50 * 60, 50, "0.25")  # still inside: ends at T0 + 5h
    b.add(T0 + 5 * H + 10, 10, None)         # after the end: block 2 at T0 + 5h
    b.add(T0 + 11 * H, 7, "0.01")            # more than 5h after the previous call: block 3
    blocks = b.blocks()
    assert [(x["start"], x["calls"], x["tokens"], x["cost"], x["unpriced"]) for x in blocks] == [
        (T0, 2, 150, Decimal("0.75"), 0),
        (T0 + 5 * H, 1, 10, Decimal(0), 1),
        (T0 + 11 * H, 1, 7, Decimal("0.01"), 0),
    ]
    now = T0 + 11 * H + 30 * 60
    cur = b.current(now)
    assert cur is not None and cur["source"] == "computed" and cur["used_percent"] is None
    assert cur["resets_at"] == T0 + 11 * H + BLOCK_SECONDS
    assert cur["burn_usd_per_hour"] == "0.020000"  # 0.01 USD over 30 minutes
    assert b.current(T0 + 17 * H) is None  # after the block: none in progress


def test_reported_windows_keep_the_latest_and_the_cycle_start() -> None:
    a = window_from_codex({"used_percent": 10, "window_minutes": 300, "resets_at": 1_795_010_000}, "primary",
                          1_795_000_000.0, "pro")
    b = window_from_codex({"used_percent": 30, "window_minutes": 300, "resets_at": 1_795_010_030}, "primary",
                          1_795_001_000.0, "pro")
    c = window_from_codex({"used_percent": 2, "window_minutes": 300, "resets_in_seconds": 18_000}, "primary",
                          1_795_020_000.0, "pro")
    assert a is not None and b is not None and c is not None
    into: dict[str, PlanWindow] = {}
    merge_windows(into, [b, a])  # files read in any order
    (w,) = into.values()
    assert w.used_percent == 30 and w.first_percent == 10 and w.full_at() == 1_795_001_000.0 + 70 * 50
    merge_windows(into, [c])  # a new cycle: its own start
    (w,) = into.values()
    assert w.used_percent == 2 and w.first_at == 1_795_020_000.0 and w.resets_at == 1_795_038_000.0
    assert window_from_codex({"used_percent": 140}, "primary", 0.0, None) is None
    assert window_from_codex({"used_percent": "lots"}, "primary", 0.0, None) is None


def test_engine_snapshot_has_both_kinds(tmp_path: Path) -> None:
    from tests.ingest.formats.codex_logs import Session, rate_limits
    from tests.ingest.formats.test_claude_code import streamed

    now = time.time()
    s = Session("cx", now - 1200)
    s.call(100, 0, 10, 0, limits=rate_limits(12.0, 3.0, now + 3 * H))
    (tmp_path / "rollout-cx.jsonl").write_bytes(s.data())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 600))
    (tmp_path / "cc.jsonl").write_bytes(b"\n".join(streamed("msg_A", ts=stamp)) + b"\n")
    eng = Engine([tmp_path])
    eng.backfill()
    doc = {(w["source"], w["window"]): w for w in eng.snapshot().to_json()["plan_windows"]}
    assert doc[("reported", "primary")]["used_percent"] == 12.0
    assert doc[("reported", "secondary")]["window_minutes"] == 10080
    block = doc[("computed", "5h-block")]
    assert block["calls"] == 1 and block["used_percent"] is None and "not recorded" in block["limit"]


def test_claude_status_line_windows_are_read_with_either_reset_spelling() -> None:
    from flightdeck.core.plan_windows import window_from_claude

    a = window_from_claude("five_hour", {"used_percentage": 23.5, "resets_at": 1_795_010_000}, T0)
    b = window_from_claude("five_hour", {"used_percentage": 23.5, "resets_at": "2026-11-18T13:53:20Z"}, T0)
    assert a is not None and b is not None and a.resets_at == b.resets_at == 1_795_010_000.0
    assert a.window_minutes == 300 and a.agent == "claude-code" and a.to_json()["source"] == "reported"
    over = window_from_claude("seven_day", {"used_percentage": 105, "resets_at": None}, T0)
    assert over is not None and over.resets_at is None and over.full_at() == T0  # already past its limit
    for bad in ({"used_percentage": True}, {"used_percentage": float("nan")}, {"used_percentage": -1}, [], None):
        assert window_from_claude("five_hour", bad, T0) is None
