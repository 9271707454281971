"""``report`` over several cores loads the price data once, in the parent, before the workers fork."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
