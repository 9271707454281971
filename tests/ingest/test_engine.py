"""The engine end to end on real files, and `flightdeck tail` headless."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.cli import main
from flightdeck.core.control import SidecarReader
from flightdeck.core.events import Event, IdSource, Usage, encode_event
from flightdeck.ingest.engine import Engine, parse_filter
from flightdeck.ingest.live import parse_budget, run_json, snapshot_line
from tests.ingest.formats.test_formats import cc_line

IDS = IdSource()


def v1(agent: str = "a", model: str = "claude-3-5-sonnet", cost: str = "0.001000", ts: float | None = None,
       kind: str = "llm_call") -> bytes:
    return encode_event(Event(v=1, ts=ts if ts is not None else time.time(), kind=kind, id=IDS(), run="r-" + agent,
                              agent=agent, provider="anthropic", route="direct", model=model,
                              usage=Usage(input_tokens=100, output_tokens=10), cost_usd=cost, cost_status="priced"))


def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_backfill_counts_history_then_follows(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"".join(v1() for _ in range(50)) + b"garbage\n")
    with Engine([path]) as eng:
        assert eng.wait_backfilled(5)
        snap = eng.snapshot()
        assert snap.events == 50 and snap.rejected == 1 and snap.total.cost_usd == Decimal("0.05")
        assert snap.source.backfill_done_bytes == snap.source.backfill_total_bytes == path.stat().st_size
        with open(path, "ab") as f:
            f.write(v1(cost="0.000500"))
        wait_for(lambda: eng.snapshot().events == 51)
        assert eng.snapshot().total.cost_usd == Decimal("0.0505")
        assert eng.snapshot().source.last_event_wall is not None


def test_file_created_after_start_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "later.jsonl"
    with Engine([path]) as eng:
        eng.wait_backfilled(5)
        assert eng.snapshot().events == 0
        path.parent.mkdir()
        path.write_bytes(v1() + v1())
        wait_for(lambda: eng.snapshot().events == 2)


def test_claude_code_folder_counts_each_response_once(tmp_path: Path) -> None:
    proj = tmp_path / "projects" / "-home-u-proj"
    proj.mkdir(parents=True)
    lines = [cc_line("user"), cc_line(), cc_line(), cc_line(msg_id="msg_02")]
    (proj / "sess-1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    eng = Engine([tmp_path / "projects"])
    eng.backfill()
    snap = eng.snapshot()
    assert snap.events == 2 and snap.duplicates == 1
    assert snap.total.cost_usd == Decimal("0.010386") * 2
    assert eng.control_paths == []  # foreign formats get no sidecar
    eng.send("pause")
    assert not (proj / "sess-1.jsonl.control").exists()


def test_send_appends_to_sidecar_of_v1_files_only_and_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(v1())
    eng = Engine([path])
    eng.backfill()
    cmd = eng.send("downgrade", to={"claude-3-5-sonnet": "claude-3-5-haiku"}, reason="test")
    sidecar = tmp_path / "run.jsonl.control"
    assert stat.S_IMODE(os.stat(sidecar).st_mode) == 0o600
    (got,) = SidecarReader(sidecar).poll()
    assert got.id == cmd.id and got.to == {"claude-3-5-sonnet": "claude-3-5-haiku"}
    assert [c.id for c in eng.snapshot().commands] == [cmd.id]


def test_set_filter_recounts_history(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(v1(agent="alpha") + v1(agent="beta", model="gpt-4o") + v1(agent="beta"))
    eng = Engine([path])
    eng.backfill()
    assert eng.snapshot().events == 3
    eng.set_filter("agent:beta")
    assert eng.snapshot().events == 2
    eng.set_filter("model:GPT")
    assert eng.snapshot().events == 1
    eng.set_filter("alp")
    assert eng.snapshot().events == 1
    eng.set_filter(None)
    assert eng.snapshot().events == 3


def test_filter_parsing() -> None:
    f = parse_filter("run:r-x")
    assert f is not None and parse_filter("  ") is None


def test_monitor_rules_pause_the_agent(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "spend"\ntype = "spend"\nwindow = "10m"\nthreshold = 0.0025\naction = "pause"\n')
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    with Engine([path], rules_path=rules) as eng:
        eng.wait_backfilled(5)
        with open(path, "ab") as f:
            f.write(v1() + v1() + v1())
        wait_for(lambda: len(eng.snapshot().commands) == 1)
        snap = eng.snapshot()
        assert snap.commands[0].origin == "rule:spend" and snap.commands[0].cmd == "pause"
        assert snap.alerts[-1].source == "monitor"
        assert (tmp_path / "run.jsonl.control").exists()


def test_budget_parsing() -> None:
    assert parse_budget("2.00/10m") == (Decimal("2.00"), 600)
    assert parse_budget("5/1h") == (Decimal("5"), 3600)
    with pytest.raises(ValueError, match="USD/WINDOW"):
        parse_budget("two dollars")


def test_run_json_prints_snapshots_with_windows(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(v1() + v1())
    out = io.StringIO()
    run_json(Engine([path], budget=(Decimal("1"), 600)), 0.05, out, count=3)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 3
    last = lines[-1]
    for key in ("events", "rejected", "duplicates", "cost_usd", "unpriced", "tokens", "cache_hit_rate",
                "ttft_ms", "stages_ms", "windows"):
        assert key in last
    assert last["events"] == 2 and set(last["windows"]) == {"1m", "5m", "15m", "60m"}
    assert last["budget"]["spent_usd"] == "0.002000"


def test_cli_once_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(v1() + v1() + b"{bad\n")
    assert main(["tail", str(path), "--once", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["events"] == 2 and doc["rejected"] == 1 and doc["cost_usd"] == "0.002000"


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--json"]) == 2
    assert main(["tail", str(tmp_path / "missing.jsonl"), "--once", "--json"]) == 2
    assert main(["tail", str(tmp_path), "--json", "--budget", "lots"]) == 2
    assert "flightdeck tail:" in capsys.readouterr().err


def test_snapshot_line_is_one_json_line(tmp_path: Path) -> None:
    eng = Engine([tmp_path / "none.jsonl"])
    line = snapshot_line(eng.snapshot())
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and json.loads(line)["events"] == 0


def test_folder_of_mixed_formats_detects_each_file(tmp_path: Path) -> None:
    (tmp_path / "agent.jsonl").write_bytes(v1(cost="0.001000"))
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / "s.jsonl").write_bytes(b"garbage first line\n" + cc_line() + b"\n")
    litellm = {"id": "x1", "call_type": "completion", "response_cost": 0.25, "model": "gpt-4o",
               "custom_llm_provider": "openai", "prompt_tokens": 10, "completion_tokens": 5,
               "startTime": 1760000000.0, "endTime": 1760000001.0, "model_group": "gpt-4o"}
    (tmp_path / "proxy.jsonl").write_bytes(json.dumps(litellm).encode() + b"\n")
    eng = Engine([tmp_path])
    eng.backfill()
    snap = eng.snapshot()
    assert snap.events == 3 and snap.rejected == 1
    assert snap.total.cost_usd == Decimal("0.001") + Decimal("0.010386") + Decimal("0.25")
    assert [p.name for p in eng.control_paths] == ["agent.jsonl.control"]
