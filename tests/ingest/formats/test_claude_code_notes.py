"""A Claude Code line whose ``usage`` says more than flightdeck reads is counted as a note, never dropped.

The known keys are those of anthropic-sdk-python ``types/usage.py`` (Usage)
plus what Claude Code 2.x writes beside them (``iterations``); a real 2.x
line carries ``service_tier``, ``server_tool_use``, ``inference_geo``,
``speed`` and ``iterations: []`` and must give no note.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event, Usage
from flightdeck.core.pricing import price
from flightdeck.core.report import render_table
from flightdeck.index.reader import scan_indexed
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.formats import FileFormat
from flightdeck.ingest.formats.claude_code import NOTED, ClaudeCode
from flightdeck.ingest.scan import scan

MODEL = "claude-sonnet-4-5-20250929"
TS = "2026-11-20T10:00:00.000Z"


def usage_2x(out: int = 412, **extra: Any) -> dict[str, Any]:
    """``message.usage`` exactly as Claude Code 2.x writes it (every key it writes today)."""
    usage: dict[str, Any] = {
        "input_tokens": 4, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 5000,
        "output_tokens": out, "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 200},
        "inference_geo": "", "iterations": [], "speed": "standard",
    }
    usage.update(extra)
    return usage


def line(msg_id: str, usage: dict[str, Any], *, ts: str = TS, req: str | None = None) -> bytes:
    row = {"parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/home/u/proj",
           "sessionId": "sess-1", "version": "2.1.9", "type": "assistant", "uuid": "u-" + msg_id, "timestamp": ts,
           "requestId": req or "req_" + msg_id,
           "message": {"id": msg_id, "type": "message", "role": "assistant", "model": MODEL,
                       "content": [{"type": "text", "text": "ok"}], "usage": usage}}
    return json.dumps(row, separators=(",", ":")).encode()


def parse_all(lines: list[bytes]) -> tuple[list[Event], FileFormat]:
    f = FileFormat()
    events: list[Event] = []
    for raw in lines:
        got = f.parse(raw)
        assert isinstance(got, list), got
        events.extend(got)
    events.extend(f.flush())
    return events, f


def test_every_key_claude_code_writes_today_is_known() -> None:
    events, f = parse_all([line("msg_A", usage_2x())])
    assert len(events) == 1
    assert f.take_notes() == {}


def test_an_unknown_usage_key_is_a_note_and_the_line_is_priced_from_the_known_buckets() -> None:
    plain, _ = parse_all([line("msg_A", usage_2x())])
    noted, f = parse_all([line("msg_A", usage_2x(context_window_tokens_2026=91234))])
    assert f.take_notes() == {NOTED + "context_window_tokens_2026": 1}
    assert f.take_notes() == {}  # taken once
    (a,), (b,) = plain, noted
    assert b.usage == a.usage and b.cost_usd == a.cost_usd and b.cost_usd is not None
    usage = Usage(input_tokens=4, output_tokens=412, cache_read_tokens=5000, cache_write_tokens=200)
    assert Decimal(b.cost_usd) == price("anthropic", MODEL, usage, b.ts, route="direct").usd


def test_each_line_with_the_key_is_noted_once_and_only_accepted_lines() -> None:
    parser = ClaudeCode()
    lines = [line("msg_A", usage_2x(8, novel=1)), line("msg_A", usage_2x(300, novel=1)),
             line("msg_B", usage_2x(9, novel=1, other_new={"x": 1}), ts="not a time")]
    results = [parser.parse(raw) for raw in lines]
    assert results[:2] == [[], []] and not isinstance(results[2], list)  # the bad timestamp: rejected
    assert parser.take_notes() == {NOTED + "novel": 2}  # the rejected line's keys are not noted


def test_compaction_iterations_are_noted_since_their_tokens_are_not_in_the_cost() -> None:
    steps = [{"type": "compaction", "input_tokens": 180000, "output_tokens": 3500},
             {"type": "message", "input_tokens": 23000, "output_tokens": 1000}]
    (ev,), f = parse_all([line("msg_A", usage_2x(iterations=steps))])
    assert ev.usage is not None and ev.usage.output_tokens == 412
    assert f.take_notes() == {NOTED + "iterations (compaction steps: their tokens are not counted)": 1}


def test_thinking_tokens_are_read_as_reasoning_on_the_typed_path_too() -> None:
    # output_tokens_details used to be dropped by the typed decode; both paths now read it alike.
    raw = line("msg_A", usage_2x(output_tokens_details={"thinking_tokens": 120}))
    (ev,), f = parse_all([raw])
    assert ev.usage is not None and ev.usage.reasoning_tokens == 120 and ev.usage.output_tokens == 412
    assert f.take_notes() == {}
    generic = ClaudeCode()._parse_generic(raw)
    assert isinstance(generic, list) and generic[0].usage == ev.usage and generic[0].cost_usd == ev.cost_usd
    bad = ClaudeCode().parse(line("msg_B", usage_2x(output_tokens_details={"thinking_tokens": 413})))
    assert not isinstance(bad, list) and "thinking_tokens" in bad.detail  # more thinking than output: refused


def write_log(tmp_path: Path) -> Path:
    folder = tmp_path / "projects" / "-home-u-proj"
    folder.mkdir(parents=True)
    path = folder / "sess-1.jsonl"
    rows = [line("msg_A", usage_2x(8, novel_key=3)), line("msg_A", usage_2x(412, novel_key=3)),
            line("msg_B", usage_2x(20), ts="2026-11-20T10:01:00.000Z")]
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_report_counts_notes_cold_and_from_the_index(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    cold = scan([path]).snapshot()
    assert cold.events == 2 and cold.rejected == 0
    assert cold.notes == {NOTED + "novel_key": 2}
    for _ in range(2):  # the first run builds the index entry, the second replays it
        snap = scan_indexed([path], root=tmp_path / "cache").snapshot()
        assert snap.notes == cold.notes and snap.events == 2
    assert snap.to_json()["notes"] == {NOTED + "novel_key": 2}


def test_merged_aggregators_add_their_notes() -> None:
    a, b = Aggregator(live=False), Aggregator(live=False)
    a.note("x", 2)
    b.note("x")
    b.note("y", 4)
    a.merge(b)
    assert a.snapshot().notes == {"x": 3, "y": 4}


def test_the_table_names_notes_as_text() -> None:
    agg = Aggregator(live=False)
    agg.note(NOTED + "evil\x1b[31mred", 3)
    out = render_table(agg.snapshot(), ("model",))
    (row,) = [r for r in out.splitlines() if r.lstrip().startswith("notes")]
    assert "3 lines counted, not read whole" in row and "\x1b" not in row and "evil" in row


def test_the_live_engine_counts_notes(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    engine = Engine([path])
    engine.start()
    try:
        assert engine.wait_backfilled(10)
        snap = engine.snapshot()
    finally:
        engine.stop()
    assert snap.notes == {NOTED + "novel_key": 2}


def test_report_json_and_table_show_notes_from_the_cli(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    doc = json.loads(subprocess.run([sys.executable, "-m", "flightdeck", "report", str(path), "--json"],
                                    capture_output=True, text=True, env=env, check=True).stdout)
    assert doc["notes"] == {NOTED + "novel_key": 2} and doc["rejected"] == 0 and doc["events"] == 2
    table = subprocess.run([sys.executable, "-m", "flightdeck", "report", str(path)],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert f"notes         2 lines counted, not read whole: {NOTED}novel_key 2" in table


def test_tail_once_json_carries_notes(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    env = {**os.environ, "HOME": str(tmp_path)}
    got = subprocess.run([sys.executable, "-m", "flightdeck", "tail", str(path), "--once", "--json"],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    assert json.loads(got.stdout)["notes"] == {NOTED + "novel_key": 2}


def test_an_unknown_part_of_a_priced_breakdown_is_noted() -> None:
    split = {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 0, "ephemeral_24h_input_tokens": 50}
    (ev,), f = parse_all([line("msg_A", usage_2x(cache_creation=split,
                                                 output_tokens_details={"thinking_tokens": 9, "summary_tokens": 3}))])
    assert ev.usage is not None and ev.usage.cache_write_tokens == 200 and ev.usage.reasoning_tokens == 9
    assert f.take_notes() == {NOTED + "cache_creation.ephemeral_24h_input_tokens": 1,
                              NOTED + "output_tokens_details.summary_tokens": 1}
