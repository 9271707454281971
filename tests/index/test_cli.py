"""``flightdeck report`` through the index and with ``--no-cache``: the same output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def report(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "flightdeck", "report", *args, "--json", "--by", "model,run"],
                          capture_output=True, text=True, timeout=120, check=True)
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc.pop("recent_rejects", None)  # stamped with the time each reject was counted
    return doc


def test_report_cached_equals_no_cache(cc_history: Path, v1_history: Path) -> None:
    paths = (str(cc_history), str(v1_history))
    want = report(*paths, "--no-cache")
    cache = Path.home() / ".cache" / "flightdeck" / "index"
    assert not cache.exists()  # --no-cache neither reads nor writes the index
    cold = report(*paths)
    assert list(cache.glob("*.idx"))
    warm = report(*paths)
    assert cold == want
    assert warm == want
    since = report(*paths, "--since", "1764003000")
    assert since == report(*paths, "--since", "1764003000", "--no-cache")
