"""Claude's plan windows in ``flightdeck report``: the computed 5-hour blocks, and the provider's when recorded.

The report (one process, parallel, through the index) must show the same
blocks as the live engine over the same events; fresh windows recorded by
``flightdeck statusline`` replace the computed block, labelled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event, Usage
from flightdeck.core.plan_windows import BLOCK_SECONDS, ClaudeBlocks
from flightdeck.core.report import parse_dims
from flightdeck.ingest import claude_status
from flightdeck.ingest.engine import Engine
from tests.ingest.formats.test_claude_code import streamed

H = 3600.0
STABLE = ("started_at", "resets_at", "first_call", "last_call", "calls", "tokens", "cost_usd", "unpriced")
# One call's tokens as streamed() writes them: input 4, cache write 200, cache read 5000, output 412.
CALL_TOKENS = 4 + 200 + 5000 + 412


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def history(folder: Path, now: float, tag: str = "") -> list[float]:
    """Two sessions: three calls 30 h ago (one block), two in the last hour (the block in progress)."""
    folder.mkdir(parents=True, exist_ok=True)
    # Whole milliseconds, as Claude Code writes them.
    ms = [int((now - ago) * 1000) for ago in (30 * H, 29 * H, 27 * H, 40 * 60, 10 * 60)]
    for session, part in (("s-old", ms[:3]), ("s-new", ms[3:])):
        lines = [line for i, t in enumerate(part)
                 for line in streamed(f"msg_{tag}{session}_{i}", ts=iso(t), req=f"req_{tag}{session}_{i}",
                                     session=tag + session)]
        (folder / f"{session}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return [t / 1000 for t in ms]


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flightdeck", "report", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def stable(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: w[k] for k in STABLE} for w in windows if w["source"] == "computed"]


def test_report_blocks_match_the_live_engine_and_the_rules(tmp_path: Path) -> None:
    now = time.time()
    stamps = history(tmp_path / "logs", now)
    doc = json.loads(report(str(tmp_path / "logs"), "--json", "--by", "block").stdout)
    blocks = doc["by"]["block"]
    old_start = stamps[0] - stamps[0] % H
    new_start = stamps[3] - stamps[3] % H
    assert [(b["started_at"], b["resets_at"], b["calls"], b["tokens"], b["active"]) for b in blocks] == [
        (old_start, old_start + BLOCK_SECONDS, 3, 3 * CALL_TOKENS, False),
        (new_start, new_start + BLOCK_SECONDS, 2, 2 * CALL_TOKENS, True),
    ]
    assert sum(Decimal(b["cost_usd"]) for b in blocks) == Decimal(doc["cost_usd"])
    assert all(b["used_percent"] is None and b["source"] == "computed" for b in blocks)
    (current,) = doc["plan_windows"]
    assert current["active"] and current["started_at"] == new_start and current["first_call"] == stamps[3]
    eng = Engine([tmp_path / "logs"])
    eng.backfill()
    live = eng.snapshot().to_json()["plan_windows"]
    assert stable(live) == stable([current])


@pytest.mark.parametrize("how", [("--no-cache", "--jobs", "2"), ("--no-cache", "--jobs", "1"), ()],
                         ids=["parallel", "one-process", "index"])
def test_every_way_of_reading_gives_the_same_blocks(tmp_path: Path, how: tuple[str, ...]) -> None:
    now = time.time()
    history(tmp_path / "logs", now)
    for i in range(4):  # more files, so a parallel read splits them between workers
        history(tmp_path / "logs" / f"more{i}", now - i * 7 * H, tag=f"t{i}")
    first = json.loads(report(str(tmp_path / "logs"), "--json", "--by", "block,day", *how).stdout)
    again = json.loads(report(str(tmp_path / "logs"), "--json", "--by", "block,day", *how).stdout)
    base = json.loads(report(str(tmp_path / "logs"), "--json", "--by", "block", "--no-cache", "--jobs", "1").stdout)
    assert stable(first["by"]["block"]) == stable(again["by"]["block"]) == stable(base["by"]["block"])
    assert sum(b["calls"] for b in first["by"]["block"]) == first["events"] == 25


def test_recorded_windows_replace_the_computed_block_in_report(tmp_path: Path) -> None:
    now = time.time()
    history(tmp_path / "logs", now)
    payload = {"rate_limits": {"five_hour": {"used_percentage": 62.0, "resets_at": int(now + 2 * H)},
                               "seven_day": {"used_percentage": 18.5, "resets_at": int(now + 4 * 86400)}}}
    claude_status.record(claude_status.windows_of(payload, now - 60))
    doc = json.loads(report(str(tmp_path / "logs"), "--json").stdout)
    by = {(w["source"], w["window"]): w for w in doc["plan_windows"]}
    assert set(by) == {("reported", "five_hour"), ("reported", "seven_day")}
    assert by[("reported", "five_hour")]["used_percent"] == 62.0
    table = report(str(tmp_path / "logs")).stdout
    assert "claude-code five_hour: 62.0 % used" in table and "[reported by the provider" in table
    assert "5h-block" not in table


def test_a_stale_record_leaves_the_computed_block_and_says_why(tmp_path: Path) -> None:
    now = time.time()
    history(tmp_path / "logs", now)
    payload = {"rate_limits": {"seven_day": {"used_percentage": 18.5, "resets_at": int(now + 4 * 86400)}}}
    claude_status.record(claude_status.windows_of(payload, now - 9 * H))
    got = report(str(tmp_path / "logs"))
    assert "claude-code 5h-block" in got.stdout and "[computed as ccusage does" in got.stdout
    assert "seven_day window last seen 9 h ago" in got.stderr


def test_a_report_without_claude_code_calls_has_no_claude_windows(tmp_path: Path) -> None:
    v1 = tmp_path / "run.jsonl"
    v1.write_text(json.dumps({"v": 1, "ts": time.time() - 60, "kind": "llm_call", "id": "c1", "run": "r",
                              "provider": "openai", "model": "gpt-4o-mini", "cost_usd": "0.01",
                              "usage": {"input_tokens": 10, "output_tokens": 2}}) + "\n")
    claude_status.record(claude_status.windows_of(
        {"rate_limits": {"five_hour": {"used_percentage": 5, "resets_at": int(time.time() + H)}}}, time.time()))
    doc = json.loads(report(str(v1), "--json", "--by", "block").stdout)
    assert doc["plan_windows"] == [] and doc["by"]["block"] == []
    assert "(no Claude Code calls)" in report(str(v1), "--by", "block").stdout


def test_blocks_merge_as_if_one_had_read_everything() -> None:
    def call(i: int, ts: float, cost: str | None) -> Event:
        return Event(v=1, ts=ts, kind="llm_call", id=f"c{i}", run="r", agent="claude-code", provider="anthropic",
                     model="m", usage=Usage(input_tokens=10, output_tokens=i), cost_usd=cost)

    t0 = 1_795_000_000.0 - 1_795_000_000.0 % H
    calls = [call(i, t0 + i * 1700, None if i == 3 else f"0.00{i}") for i in range(1, 12)]
    whole, a, b = ClaudeBlocks(), Aggregator(live=False), Aggregator(live=False)
    whole.add_calls(calls)
    a.add_many(calls[::2])
    b.add_many(calls[1::2])
    a.merge(b)
    assert a.claude_blocks is not None and a.claude_blocks.blocks() == whole.blocks()
    assert [x["calls"] for x in whole.blocks()] == [10, 1] and whole.blocks()[0]["unpriced"] == 1


def test_block_is_a_report_dimension() -> None:
    assert parse_dims("block,day") == ("block", "day")
    with pytest.raises(ValueError, match="block"):
        parse_dims("blocks")
    assert os.environ.get("XDG_STATE_HOME") is None  # the conftest keeps the state file in the test home


def test_window_summary_is_plain_text_and_counts_down() -> None:
    from flightdeck.core.plan_windows import span_text, window_summary

    assert [span_text(s) for s in (-5, 59, 2700, 7740, 3 * 86400 + 11 * 3600)] == ["0m", "0m", "45m", "2h09m", "3d11h"]
    hostile = {"source": "reported", "agent": "codex\x1b[2J[bold]x", "window": "weekly\x07", "used_percent": 41.6,
               "resets_at": 1000.0 + 90, "full_at": 1000.0 - 5}
    line = window_summary(hostile, 1000.0)
    assert "\x1b" not in line and "\x07" not in line
    assert line.endswith(" 42% ↻1m")  # a full_at already past is not a countdown
    assert window_summary({"source": "computed", "agent": "claude-code", "window": "5h-block", "used_percent": None,
                           "cost_usd": "0.004", "resets_at": 900.0}, 1000.0) == "claude-code 5h block $0.00 (computed)"
