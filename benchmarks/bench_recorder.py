"""Overhead of a recorded call against a bare loop doing the same agent-side work.

Prints per-call microseconds and ratios; both measured in this run, on this machine.

    python benchmarks/bench_recorder.py [--calls N]

Variants: the bare loop (builds the same usage dict, no recording); a naive
hand-rolled JSON logger (the second baseline: what "just log it" costs); a Recorder
writing to a file (stats on and off); and a Recorder with the demo's rules.
The "usage" passed is a raw Anthropic usage dict, so normalising and pricing
are part of what is measured, as in a real agent.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tomllib
from pathlib import Path

from flightdeck.recorder.recorder import Recorder

REPO = Path(__file__).resolve().parents[1]


def raw_usage(i: int) -> dict[str, int]:
    return {"input_tokens": 1200 + (i & 7), "output_tokens": 350, "cache_read_input_tokens": 8000,
            "cache_creation_input_tokens": 0}


def bare(n: int) -> float:
    sink = []
    t0 = time.perf_counter()
    for i in range(n):
        u = raw_usage(i)
        sink.append(u)
        if len(sink) > 64:
            sink.clear()
    return time.perf_counter() - t0


def naive_log(n: int, path: Path) -> float:
    """A hand-rolled logger: one json.dumps + os.write per call, no timing, pricing or control."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    t0 = time.perf_counter()
    for i in range(n):
        line = json.dumps({"v": 1, "ts": time.time(), "kind": "llm_call", "model": "m", "usage": raw_usage(i)})
        os.write(fd, line.encode() + b"\n")
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return elapsed


def recorded(n: int, path: Path, **kw: object) -> float:
    rec = Recorder(path, run="bench", agent="bench", **kw)  # type: ignore[arg-type]
    model = rec.model("claude-3-5-sonnet-20241022")
    t0 = time.perf_counter()
    for i in range(n):
        with rec.call(provider="anthropic", model=model, name="step", stream=True, step=i) as c:
            c.sent()
            c.first_token()
            c.received()
            c.set_usage(raw_usage(i))
    elapsed = time.perf_counter() - t0
    rec.close()
    return elapsed


def alert_only_rules() -> dict:
    """The demo's rules, every action turned into ``alert``: evaluated on every call,
    but a spend limit reached mid-benchmark must not pause the loop."""
    data = tomllib.loads((REPO / "demo" / "rules.toml").read_text())
    for rule in data["rule"]:
        rule["action"] = "alert"
        rule.pop("to", None)
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    n = ap.parse_args().calls
    with tempfile.TemporaryDirectory() as d:
        recorded(min(n, 1000), Path(d) / "warm.jsonl")  # imports, pricing caches
        # Best of 3 for each: the machine is shared, the minimum is the least disturbed run.
        base = min(bare(n) for _ in range(3))
        naive = min(naive_log(n, Path(d) / f"n{i}.jsonl") for i in range(3))
        rows = [
            ("naive json.dumps + os.write", naive),
            ("recorder, stats off", min(recorded(n, Path(d) / f"a{i}.jsonl", stats=False) for i in range(3))),
            ("recorder, stats on", min(recorded(n, Path(d) / f"b{i}.jsonl") for i in range(3))),
            ("recorder, stats + demo rules",
             min(recorded(n, Path(d) / f"c{i}.jsonl", rules=alert_only_rules()) for i in range(3))),
        ]
    print(f"{n} calls; bare loop {base / n * 1e6:.2f} us/call (baseline)")
    for name, t in rows:
        print(f"{name:32s} {t / n * 1e6:8.2f} us/call  vs bare {t / base:7.1f}x  vs naive log {t / naive:5.2f}x"
              f"  overhead {(t - base) / n * 1e6:7.2f} us/call")


if __name__ == "__main__":
    main()
