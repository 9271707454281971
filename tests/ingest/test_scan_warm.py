"""``report`` over several cores loads the price data once, in the parent, before the workers fork."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.ingest.formats.test_claude_code import block_line, user_line


def _loaded_after_warming(path: Path, fmt: str | None) -> bool:
    code = textwrap.dedent(f"""
        import sys
        from flightdeck.ingest.scan import Segment, _warm_pricing
        assert "genai_prices" not in sys.modules
        _warm_pricing([Segment({str(path)!r}, 0, {path.stat().st_size}, {fmt!r})])
        print("genai_prices" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_a_claude_code_log_loads_the_prices_before_the_fork(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    log.write_bytes(b"\n".join([user_line(), block_line("msg_1", 40)]) + b"\n")
    assert _loaded_after_warming(log, "claude-code")


def test_a_v1_log_without_cache_reads_loads_nothing(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    log.write_text('{"v":1,"ts":1764216000.0,"kind":"run_start","id":"a-0","run":"r"}\n')
    assert not _loaded_after_warming(log, "flightdeck-v1")


def test_a_parallel_scan_keeps_every_id_once_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merged Aggregator's ids are the set scan keeps for the ranges (merged once, not twice):
    every id of every range is in it, redone ranges included, and nothing else."""
    from flightdeck.core.events import Event, IdSource, Usage, encode_event
    from flightdeck.ingest import scan as scan_mod

    monkeypatch.setattr(scan_mod, "PARALLEL_MIN_BYTES", 0)
    ids = IdSource()
    lines = [encode_event(Event(v=1, ts=1_764_216_000.0 + i, kind="llm_call", id=ids() if i % 3 else f"msg_{i}",
                                run="r", provider="openai", route="direct", model="gpt-4o",
                                usage=Usage(input_tokens=10, output_tokens=2), cost_usd="0.000100",
                                cost_status="priced")) for i in range(900)]
    (tmp_path / "a.jsonl").write_bytes(b"".join(lines[:600]))
    (tmp_path / "b.jsonl").write_bytes(b"".join(lines[300:900]))  # repeats: its range is redone
    agg = scan_mod.scan([tmp_path], jobs=3)
    one = scan_mod.scan([tmp_path], jobs=1)
    assert (agg.events, agg.duplicates) == (one.events, one.duplicates) == (900, 300)
    for line in lines:
        assert json.loads(line)["id"] in agg.seen
    assert "msg_1" not in agg.seen and f"{ids.prefix}-{10**6:x}" not in agg.seen
