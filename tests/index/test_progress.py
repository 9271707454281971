"""Progress of a cold read: on a terminal's stderr only, never on stdout or a pipe."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from flightdeck.index.progress import ReadProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_shows_files_bytes_rate() -> None:
    tty = Terminal()
    bar = ReadProgress(4, 8 << 20, tty, delay=0)
    bar.update(1, 2 << 20, 2 << 20)
    bar.update(2, 4 << 20, 3 << 20)
    bar.close()
    out = tty.getvalue()
    assert "2/4 files, 3.0 MiB parsed" in out
    assert "MB" in out  # bytes read and their rate (rich's download columns)


def test_nothing_when_not_a_terminal() -> None:
    pipe = io.StringIO()
    bar = ReadProgress(4, 8 << 20, pipe, delay=0)
    bar.update(1, 2 << 20, 2 << 20)
    bar.close()
    assert pipe.getvalue() == ""


def test_nothing_before_the_delay_nor_for_the_last_file() -> None:
    tty = Terminal()
    bar = ReadProgress(2, 100, tty, delay=3600)
    bar.update(1, 50, 50)
    bar = ReadProgress(1, 100, tty, delay=0)
    bar.update(1, 100, 100)  # done already: no bar to flash
    bar.close()
    assert tty.getvalue() == ""


def test_report_piped_prints_json_only(v1_history: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "flightdeck", "report", str(v1_history), "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(proc.stdout)
    assert doc["events"] > 0
    assert "files" not in proc.stderr and "MiB" not in proc.stderr
