"""``flightdeck report --by day`` and ``--by model``, exact on generated histories of each agent CLI.

A real ``flightdeck report`` process, a fake ``$HOME`` holding one tool's logs
(then all four), no PATH given (discovery finds them). Every figure is checked
against totals summed in ``histories.py`` from the generated payloads and the
providers' list prices, worked by hand (never flightdeck's pricer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.histories import TOOLS, Bill, totals

ROOT = Path(__file__).resolve().parents[2]
FOUND = {"claude-code": "Claude Code: 2 sessions", "codex": "Codex: 2 sessions", "gemini-cli": "Gemini CLI: 2 sessions",
         "opencode": "OpenCode: 1 database"}


def report(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)),
           "TZ": "UTC"}
    got = subprocess.run([sys.executable, "-m", "flightdeck", "report", *args], env=env, capture_output=True,
                         text=True, timeout=180)
    assert got.returncode == 0, got.stderr
    return got


def shown(amount: Decimal) -> str:
    """A USD amount as the table prints it: six places, more only when they are not zeros."""
    six = amount.quantize(Decimal("0.000001"))
    return str(six) if six == amount else format(amount.normalize(), "f")


def check_rows(rows: list[dict[str, Any]], want: dict[str, dict[str, object]]) -> None:
    got = {r["key"]: r for r in rows}
    assert set(got) == set(want)
    for key, w in want.items():
        r, tok = got[key], got[key]["tokens"]
        assert (r["events"], tok["input_tokens"], tok["output_tokens"], tok["cache_write_tokens"],
                tok["cache_read_tokens"]) == (w["calls"], w["input"], w["output"], w["cache_write"],
                                              w["cache_read"]), key
        assert Decimal(r["cost_usd"]) == w["cost"], key
        assert r["unpriced"] == 0


def check_report(home: Path, bills: list[Bill], found: str) -> dict[str, Any]:
    got = report(home, "--json", "--by", "day,model")
    assert found in got.stderr
    doc = json.loads(got.stdout)
    assert doc["rejected"] == 0 and doc["unpriced"] == 0 and doc["notes"] == {}
    assert doc["events"] == len(bills)
    by_day, by_model = totals(bills, "day"), totals(bills, "model")
    assert len(by_day) >= 3  # the history spans several UTC days
    check_rows(doc["by"]["day"], by_day)
    check_rows(doc["by"]["model"], by_model)
    assert Decimal(doc["cost_usd"]) == sum((b.cost for b in bills), Decimal(0))
    # The ccusage-style table prints the same figures, digit for digit.
    table = report(home, "--by", "day").stdout
    for day, w in by_day.items():
        (row,) = [line for line in table.splitlines() if line.strip().startswith(day)]
        cells = row.split()
        assert cells[-1] == shown(w["cost"]), row  # type: ignore[arg-type]
        assert cells[-6:-1] == [f"{n:,}" for n in (w["input"], w["output"], w["cache_write"], w["cache_read"],
                                                   sum(w[k] for k in ("input", "output", "cache_write",
                                                                      "cache_read")))], row  # type: ignore[misc]
    return doc


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_tool_alone_is_exact_by_day_and_model(tmp_path: Path, tool: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bills = TOOLS[tool](home)
    doc = check_report(home, bills, FOUND[tool])
    assert {r["key"] for r in doc["by"]["model"]} == {b.model for b in bills}


def test_all_four_tools_at_once_are_exact_by_day_and_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    bills = [b for make in TOOLS.values() for b in make(home)]
    doc = check_report(home, bills, "; ".join(FOUND[t] for t in ("claude-code", "codex", "gemini-cli", "opencode")))
    # Sonnet 4.5 is used by Claude Code and OpenCode alike: one row, both tools' calls.
    sonnet = {r["key"]: r for r in doc["by"]["model"]}["claude-sonnet-4-5-20250929"]
    assert sonnet["events"] == 14
    # Run again: answered through the parse-once index, the same figures.
    again = json.loads(report(home, "--json", "--by", "day,model").stdout)
    assert again["by"] == doc["by"] and again["cost_usd"] == doc["cost_usd"]
