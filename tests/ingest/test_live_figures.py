"""``tail --once --json`` through the command: the live figures worked out by hand (SPEC 5.1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event

_ids = IdSource("abcabcabcabc")


def line(ts: float, cost: str | None, run: str = "r-1", ttft: float = 100.0) -> bytes:
    return encode_event(Event(
        v=1, ts=ts, kind="llm_call", id=_ids(), run=run, provider="openai", route="direct", model="gpt-4o",
        stream=True, usage=Usage(input_tokens=10, output_tokens=1), cost_usd=cost,
        cost_status="priced" if cost else "unknown", latency_ms=Latency(ttft=ttft, total=ttft * 2)))


def tail_once(path: Path) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([sys.executable, "-m", "flightdeck", "tail", str(path), "--once", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_windows_slide_burn_is_honest_and_future_calls_stay_out(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "run.jsonl"
    path.write_bytes(
        line(now - 200.0, "0.70", ttft=900.0)  # the run's first call, 200 s ago: in 5m, not in 1m
        + line(now - 30.0, "0.30", ttft=100.0)  # 30 s ago: in 1m whatever second it is
        + line(now + 86400.0, "5", run="r-skewed")  # a writer a day ahead: totals only
        + line(now - 20.0, None)  # no usage seen: unpriced, never 0
    )
    doc = tail_once(path)
    assert doc["events"] == 4 and doc["cost_usd"] == "6.000000" and doc["unpriced"] == 1
    assert doc["future_events"] == 1
    w1, w5 = doc["windows"]["1m"], doc["windows"]["5m"]
    assert w1["events"] == 2 and w1["cost_usd"] == "0.300000" and w1["unpriced"] == 1
    assert w1["burn_usd_per_hour"] == "18.000000"  # 0.30 over the whole 60 s (the run is older): 0.30 x 60
    assert w5["events"] == 3 and w5["cost_usd"] == "1.000000"
    # 5m: $1.00 over the ~200 s the run has existed (not 300 s): ~ $18/h, not $12/h
    assert 17.0 < float(w5["burn_usd_per_hour"]) <= 18.0
    assert doc["windows"]["60m"]["cost_usd"] == "1.000000"
    # nearest rank over the two streamed calls with a ttft in 5m: p90 is the larger
    assert w5["ttft_ms"]["p50"] == 100.0 and w5["ttft_ms"]["p90"] == 900.0
    assert doc["projection"]["basis"] == "5m burn"
    assert doc["folded_groups"] == {}
    runs = {r["key"] for r in doc["breakdowns"]["run"]}
    assert runs == {"r-1", "r-skewed"}


def test_the_live_monitor_says_how_many_groups_it_folded(tmp_path: Path) -> None:
    now = time.time()
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"".join(line(now - 100 + i * 0.1, "0.01", run=f"r-{i:04d}") for i in range(520)))
    doc = tail_once(path)
    runs = {r["key"]: r["events"] for r in doc["breakdowns"]["run"]}
    assert len(runs) == 501 and runs["(other)"] == 20  # 500 kept, 20 folded into "(other)"
    assert doc["folded_groups"] == {"run": 20}
    assert doc["cost_usd"] == "5.200000" and doc["windows"]["5m"]["events"] == 520
