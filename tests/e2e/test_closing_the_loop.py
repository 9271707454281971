"""End to end, with real processes: the demo agent, the monitor's engine and the cockpit.

Each agent here is ``demo/agent.py`` in its own process, using the real
Recorder; the monitor is the real ``ingest.engine.Engine`` (and, for the key
press, the real Textual cockpit). Waits poll the telemetry file or the
engine's snapshot with a generous deadline: nothing here asserts a speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.events import Event, decode_line

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "demo" / "agent.py"
DEADLINE = 30.0


def events(path: Path) -> list[Event]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:  # the last piece may be a partial line
        ev = decode_line(line)
        assert isinstance(ev, Event), (line, ev)
        out.append(ev)
    return out


def wait_until(pred: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def calls(path: Path, agent: str | None = None) -> list[Event]:
    return [e for e in events(path) if e.kind == "llm_call" and (agent is None or e.agent == agent)]


def acks(path: Path) -> list[Event]:
    return [e for e in events(path) if e.kind == "signal_ack"]


class Agents:
    """Starts demo agents and makes sure each is stopped at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, speed: float = 40, rules: str = "none", loop_at: int = -1) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(AGENT), "--speed", str(speed), "--rules", rules,
               "--loop-at", str(loop_at), "--quiet", *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def agents() -> Iterator[Agents]:
    a = Agents()
    yield a
    a.stop_all()


def assert_quiet_while_paused(path: Path, ack: Event, agent: str | None = None) -> None:
    """No call *starts* after the pause was acknowledged.

    A call already in flight when the pause arrived may still finish and be
    written after the ack; one that started later would prove the pause leaked.
    """
    time.sleep(0.6)  # long enough for several calls at the test speed, were the agent running
    for ev in calls(path, agent):
        if ev.ts > ack.ts:
            # Recorded stage times are simulated (speed x wall): convert back to wall time.
            wall_total = (ev.latency_ms.total or 0.0) / 1000.0 / 40
            assert ev.ts - wall_total <= ack.ts + 0.05, "a call started while the agent was paused"


def test_recorder_paused_and_resumed_through_the_monitor(tmp_path: Path, agents: Agents) -> None:
    from flightdeck.ingest.engine import Engine

    log = tmp_path / "run.jsonl"
    agents.start("--out", str(log), "--agent", "solo")
    wait_until(lambda: len(calls(log)) >= 3, "the agent's first calls")
    engine = Engine([log])
    engine.start()
    try:
        wait_until(lambda: engine.snapshot().events >= 3, "the engine to see the calls")
        pause = engine.send("pause", reason="test")
        wait_until(lambda: any(a.ref == pause.id for a in acks(log)), "the pause ack")
        ack = next(a for a in acks(log) if a.ref == pause.id)
        assert ack.state["paused"] is True and ack.cmd == "pause"
        assert_quiet_while_paused(log, ack)
        n_paused = len(calls(log))
        downgrade = engine.send("downgrade")
        resume = engine.send("resume")
        wait_until(lambda: any(a.ref == resume.id for a in acks(log)), "the resume ack")
        wait_until(lambda: len(calls(log)) >= n_paused + 4, "calls after the resume")
        by_ref = {a.ref: a for a in acks(log)}
        assert by_ref[downgrade.id].state["models"]["claude-sonnet-4-5"] == "claude-haiku-4-5"
        assert by_ref[resume.id].state["paused"] is False
        # The calls made after the resume use the downgraded models. The first may
        # not: it was held at the door with its model already chosen.
        later = [c.model for c in calls(log) if c.ts > by_ref[resume.id].ts]
        assert set(later) & {"claude-haiku-4-5", "gpt-4.1-mini", "gpt-4o-mini"}
        assert not set(later[1:]) & {"claude-sonnet-4-5", "gpt-4.1", "gpt-4o"}
        # The monitor matched each ack to the command it sent.
        wait_until(lambda: all(r.acked_at is not None for r in engine.snapshot().commands
                               if r.id in {pause.id, resume.id}), "the engine to match the acks")
    finally:
        engine.stop()


def test_a_rule_pauses_a_runaway_loop_on_its_own(tmp_path: Path, agents: Agents) -> None:
    log = tmp_path / "run.jsonl"
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "loop"\ntype = "loop"\nthreshold = 4\nwindow = "2m"\naction = "pause"\n')
    proc = agents.start("--out", str(log), "--steps", "6", rules=str(rules), loop_at=2)
    # No monitor anywhere: the agent's own Recorder enforces the rule.
    wait_until(lambda: any(e.kind == "alert" for e in events(log)), "the loop alert")
    alert = next(e for e in events(log) if e.kind == "alert")
    assert (alert.rule, alert.metric, alert.action, alert.value) == ("loop", "loop", "pause", 4.0)
    wait_until(lambda: acks(log), "the agent's ack of its own pause")
    ack = acks(log)[0]
    assert ack.cmd == "pause" and ack.state["paused"] is True
    reflects = [c for c in calls(log) if c.name == "reflect" and c.step == 2]
    assert len(reflects) == 4 and len({c.prompt_hash for c in reflects}) == 1
    # Growing context: each repeat of the same request had a bigger prompt.
    sizes = [c.usage.prompt_tokens for c in reflects]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] + 9000
    assert_quiet_while_paused(log, ack)
    assert proc.poll() is None  # waiting, not crashed
    # A person resumes it from the monitor's side (the sidecar): the agent goes on to finish.
    append_command(sidecar_path(log), new_command("resume", origin="key"))
    assert proc.wait(DEADLINE) == 0
    kinds = [e.kind for e in events(log)]
    assert kinds[-1] == "run_end"
    assert [a.cmd for a in acks(log)] == ["pause", "resume"]
    assert max(c.step for c in calls(log)) == 5


def test_two_agents_on_one_socket_command_targeted_at_one(agents: Agents) -> None:
    from flightdeck.ingest.engine import Engine

    sock_dir = Path("/tmp") / f"fd-e2e-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    sock_dir.mkdir(mode=0o700)
    sock = sock_dir / "m.sock"
    engine = Engine([], socket_path=sock)
    engine.start()
    try:
        agents.start("--socket", str(sock), "--agent", "researcher", "--run", "r-a")
        agents.start("--socket", str(sock), "--agent", "writer", "--run", "r-b", "--seed", "8")

        def per_agent() -> dict[str | None, int]:
            rows = engine.snapshot().breakdowns.get("agent", ())
            return {g.key: g.figures.calls for g in rows}

        wait_until(lambda: all(per_agent().get(a, 0) >= 2 for a in ("researcher", "writer")), "both agents")
        cmd = engine.send("pause", target={"agent": "writer"})

        def writer_state() -> object:
            return next((a for a in engine.snapshot().agents if a.agent == "writer" and a.paused), None)

        wait_until(writer_state, "the writer's pause ack")
        time.sleep(0.6)  # let a call that was in flight at the pause finish
        before = per_agent()
        wait_until(lambda: per_agent().get("researcher", 0) >= before["researcher"] + 3, "the researcher going on")
        after = per_agent()
        assert after["writer"] == before["writer"], "the paused writer made calls"
        states = {a.agent: a.paused for a in engine.snapshot().agents}
        assert states.get("researcher", False) is False
        acked = [r for r in engine.snapshot().commands if r.id == cmd.id]
        assert acked and acked[0].acked_at is not None
    finally:
        engine.stop()
        agents.stop_all()
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()


async def test_demo_cockpit_p_pauses_and_resumes(tmp_path: Path, agents: Agents) -> None:
    from flightdeck.cockpit.app import FlightdeckApp
    from flightdeck.ingest.engine import Engine

    log = tmp_path / "demo.jsonl"
    agents.start("--out", str(log))
    wait_until(lambda: len(calls(log)) >= 2, "the agent's first calls")
    engine = Engine([log], rules_path=REPO / "demo" / "rules.toml")
    app = FlightdeckApp(engine, refresh_interval=0.1)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_async(pilot, lambda: engine.snapshot().events >= 2, "the cockpit's first calls")
        await pilot.press("p")
        await wait_async(pilot, lambda: any(a.cmd == "pause" for a in acks(log)), "the pause ack")
        ack = next(a for a in acks(log) if a.cmd == "pause")
        assert ack.state["paused"] is True
        await wait_async(pilot, lambda: any(a.paused for a in engine.snapshot().agents), "the engine seeing the pause")
        assert_quiet_while_paused(log, ack)
        n = len(calls(log))
        await pilot.press("p")
        await wait_async(pilot, lambda: any(a.cmd == "resume" for a in acks(log)), "the resume ack")
        await wait_async(pilot, lambda: len(calls(log)) >= n + 3, "calls after the resume")
        await pilot.press("q")
    engine.stop()


async def wait_async(pilot: object, pred: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError(f"timed out waiting for {what}")
