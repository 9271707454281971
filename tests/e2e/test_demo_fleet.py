"""`flightdeck demo`'s fleet: several simulated agents, each with an incident early in its run.

Run at a higher --speed than the default so the test is short; the recorded
latencies are the simulated (realistic) ones either way. Waits poll the log
with a generous deadline: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import time
from pathlib import Path

from flightdeck.commands.demo import FLEET, agent_command, goodbye
from flightdeck.core.events import Event, decode_line


def events(path: Path) -> list[Event]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        ev = decode_line(line)
        if isinstance(ev, Event):
            out.append(ev)
    return out


def test_the_fleet_has_three_agents_and_an_early_loop_pause_and_cache_alert(tmp_path: Path) -> None:
    log = tmp_path / "demo.jsonl"
    args = argparse.Namespace(seed=7, speed=20.0, steps=0)
    procs = [subprocess.Popen(agent_command(args, log, quiet=True, member=i)) for i in range(len(FLEET))]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            evs = events(log)
            paused = [e for e in evs if e.kind == "signal_ack" and e.agent == "researcher" and e.cmd == "pause"]
            cache = [e for e in evs if e.kind == "alert" and e.rule == "cache" and e.agent == "coder"]
            if paused and cache:
                break
            time.sleep(0.1)
        evs = events(log)
        assert {e.agent for e in evs if e.kind == "llm_call"} == {"researcher", "critic", "coder"}
        alerts = {(e.agent, e.rule, e.action) for e in evs if e.kind == "alert"}
        assert ("researcher", "loop", "pause") in alerts and ("coder", "cache", "alert") in alerts
        # The critic's vector store is slow from its first plan: realistic seconds, not milliseconds.
        plans = [e for e in evs if e.kind == "llm_call" and e.agent == "critic" and e.name == "plan"]
        assert plans and all((p.latency_ms.pre or 0) > 2000 for p in plans[:3] if p.latency_ms)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(10)


def test_leaving_the_demo_says_what_stopped_and_where_the_log_is() -> None:
    kept = goodbye(3, Path("/tmp/run.jsonl"), kept=True)
    assert kept == "flightdeck demo: stopped the 3 simulated agents; the log is /tmp/run.jsonl " \
        "(`flightdeck report /tmp/run.jsonl`)"
    gone = goodbye(1, Path("/tmp/fd/demo.jsonl"), kept=False)
    assert gone.startswith("flightdeck demo: stopped the simulated agent; its log was /tmp/fd/demo.jsonl")
    assert "--out FILE" in gone


def test_demo_agents_out_of_range_is_a_usage_error() -> None:
    from flightdeck.cli import main

    assert main(["demo", "--agents", "0"]) == 2
    assert main(["demo", "--agents", str(len(FLEET) + 1)]) == 2
