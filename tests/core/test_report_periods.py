"""``report --by day|week|month|session``: ccusage's tables, worked out by hand, through the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event

T0 = 1_764_216_000.0  # Thursday 2025-11-27 04:00 UTC
DAY = 86400.0
_ids = IdSource("0a0b0c0d0e0f")


def line(ts: float, model: str, cost: str | None, run: str, **usage: int) -> bytes:
    return encode_event(Event(
        v=1, ts=ts, kind="llm_call", id=_ids(), run=run, provider="anthropic", route="direct", model=model,
        stream=True, usage=Usage(**usage), cost_usd=cost, cost_status="priced" if cost else "unknown",
        latency_ms=Latency(ttft=100.0, total=500.0)))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "periods.jsonl"
    path.write_bytes(
        # Thu 2025-11-27: two models, session s1
        line(T0, "claude-a", "0.500000", "s1", input_tokens=100, output_tokens=10, cache_read_tokens=1000,
             cache_write_tokens=50)
        + line(T0 + 3600, "claude-b", "0.250000", "s1", input_tokens=200, output_tokens=20)
        # Fri 2025-11-28 23:59:59 (still the 28th in UTC): session s2, one unpriced call
        + line(T0 + DAY + 20 * 3600 - 1, "claude-a", "1.000000", "s2", input_tokens=1, output_tokens=2)
        + line(T0 + DAY + 20 * 3600 - 1, "claude-c", None, "s2", input_tokens=7)
        # Sat 2025-12-27: another month and week; session s1 again
        + line(T0 + 30 * DAY, "claude-b", "2.000000", "s1", output_tokens=5)
    )
    return path


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flightdeck", "report", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def rows(doc: dict[str, Any], dim: str) -> list[dict[str, Any]]:
    return doc["by"][dim]


def test_by_day_week_month_session_as_json(log: Path) -> None:
    proc = report(str(log), "--by", "day,week,month,session", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    days = rows(doc, "day")
    assert [r["key"] for r in days] == ["2025-11-27", "2025-11-28", "2025-12-27"]
    d1 = days[0]
    assert d1["models"] == ["claude-a", "claude-b"]
    assert d1["tokens"] == {"input_tokens": 300, "output_tokens": 30, "cache_read_tokens": 1000,
                            "cache_write_tokens": 50, "reasoning_tokens": 0}
    assert d1["cost_usd"] == "0.750000" and d1["events"] == 2 and d1["unpriced"] == 0
    d2 = days[1]
    assert d2["models"] == ["claude-a", "claude-c"] and d2["cost_usd"] == "1.000000" and d2["unpriced"] == 1
    assert days[2]["models"] == ["claude-b"] and days[2]["cost_usd"] == "2.000000"
    weeks = rows(doc, "week")  # Monday-start weeks, named by their Monday
    assert [(r["key"], r["events"], r["cost_usd"]) for r in weeks] == [
        ("2025-11-24", 4, "1.750000"), ("2025-12-22", 1, "2.000000")]
    months = rows(doc, "month")
    assert [(r["key"], r["models"], r["cost_usd"]) for r in months] == [
        ("2025-11", ["claude-a", "claude-b", "claude-c"], "1.750000"), ("2025-12", ["claude-b"], "2.000000")]
    sessions = {r["key"]: r for r in rows(doc, "session")}
    assert sessions["s1"]["cost_usd"] == "2.750000" and sessions["s1"]["last_activity"] == "2025-12-27"
    assert sessions["s1"]["models"] == ["claude-a", "claude-b"]
    assert sessions["s2"]["cost_usd"] == "1.000000" and sessions["s2"]["last_activity"] == "2025-11-28"
    assert doc["cost_usd"] == "3.750000" and doc["unpriced"] == 1


def test_by_day_as_a_table(log: Path) -> None:
    proc = report(str(log), "--by", "day")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "by day:" in out
    table = out[out.index("by day:"):].splitlines()
    assert table[1].split() == ["date", "models", "input", "output", "cache", "create", "cache", "read",
                                "total", "tokens", "cost", "USD"]
    first = table[3].split()
    # input 300, output 30, cache create 50, cache read 1000: 1,380 tokens
    assert first == ["2025-11-27", "claude-a,", "claude-b", "300", "30", "50", "1,000", "1,380", "0.750000"]
    # 1 + 2 + 7 tokens; the unpriced call's tokens count, its cost does not (marked *)
    assert table[4].split()[-3:] == ["10", "1.000000", "*"]
    assert table[7].split() == ["total", "308", "37", "50", "1,000", "1,395", "3.750000", "*"]


def test_report_by_run_keeps_ten_thousand_sessions(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"".join(line(T0 + i, "claude-a", "0.000001", f"run-{i}", input_tokens=1)
                              for i in range(10_000)))
    proc = report(str(path), "--by", "run", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    keys = [r["key"] for r in doc["by"]["run"]]
    assert len(keys) == 10_000 and len(set(keys)) == 10_000 and "(other)" not in keys
    assert doc["cost_usd"] == "0.010000" and doc["folded_groups"] == {}


def test_a_bad_period_is_a_usage_error(log: Path) -> None:
    proc = report(str(log), "--by", "fortnight")
    assert proc.returncode == 2 and "day, week, month, session" in proc.stderr
