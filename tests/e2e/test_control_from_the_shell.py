"""`flightdeck pause|resume|downgrade|restore` reaching a real Recorder in another process, and back.

The agent is a small loop around the real Recorder in a subprocess; the
commands are the real CLI in subprocesses too. Waits poll with a generous
deadline: nothing here asserts a speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flightdeck.core.control import sidecar_path
from flightdeck.core.events import Event, decode_line

AGENT = textwrap.dedent('''
    import sys, time
    from flightdeck import Recorder
    rec = Recorder(sys.argv[1], run="r-shell", agent="worker", stats=False, poll_interval=0.02,
                   downgrades={"gpt-4o": "gpt-4o-mini"})
    while True:
        with rec.call(provider="openai", model=rec.model("gpt-4o"), name="plan") as call:
            call.sent()
            call.received()
            call.set_usage({"prompt_tokens": 100, "completion_tokens": 10})
        time.sleep(0.02)
''')


def calls(path: Path) -> list[Event]:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        ev = decode_line(line)
        if isinstance(ev, Event) and ev.kind == "llm_call":
            out.append(ev)
    return out


def wait_until(pred, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def flightdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flightdeck", *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "run.jsonl"
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    proc = subprocess.Popen([sys.executable, str(script), str(log)], stderr=subprocess.PIPE,
                            env=os.environ.copy())
    try:
        wait_until(lambda: log.exists() and len(calls(log)) >= 3, "the agent's first calls")
        yield log
    finally:
        proc.kill()
        proc.wait()


def test_pause_and_resume_from_the_shell_reach_the_agent_and_back(agent: Path) -> None:
    paused = flightdeck("pause", str(agent), "--wait", "20", "--reason", "lunch")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("pause: acked by worker (run r-shell) in ") and ": paused" in paused.stdout
    assert oct(sidecar_path(agent).stat().st_mode & 0o777) == "0o600"
    before = len(calls(agent))
    resumed = flightdeck("resume", str(agent), "--wait", "20")
    assert resumed.returncode == 0, resumed.stderr
    assert ": running" in resumed.stdout
    wait_until(lambda: len(calls(agent)) > before + 2, "calls after the resume")


def test_downgrade_to_then_restore(agent: Path) -> None:
    done = flightdeck("downgrade", str(agent), "--to", "gpt-4o=gpt-4.1-nano", "--agent", "worker", "--wait", "20")
    assert done.returncode == 0, done.stderr
    assert "models gpt-4o→gpt-4.1-nano" in done.stdout
    wait_until(lambda: calls(agent)[-1].model == "gpt-4.1-nano", "a call on the new model")
    back = flightdeck("restore", str(agent), "--wait", "20")
    assert back.returncode == 0 and "models as asked" in back.stdout, back


def test_a_target_no_agent_matches_gets_no_ack(agent: Path) -> None:
    missed = flightdeck("pause", str(agent), "--agent", "nobody", "--wait", "0.5")
    assert missed.returncode == 4
    assert "no ack within 0.5 s" in missed.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert flightdeck("pause").returncode == 2
    assert flightdeck("pause", str(tmp_path / "missing.jsonl")).returncode == 2
    assert flightdeck("pause", str(tmp_path)).returncode == 2
    (tmp_path / "r.jsonl").write_bytes(b"")
    bad_to = flightdeck("downgrade", str(tmp_path / "r.jsonl"), "--to", "nonsense")
    assert bad_to.returncode == 2 and "MODEL=REPLACEMENT" in bad_to.stderr
    assert flightdeck("pause", str(tmp_path / "r.jsonl"), "--run", "a", "--agent", "b").returncode == 2
    assert flightdeck("pause", str(tmp_path / "r.jsonl"), "--wait", "-1").returncode == 2
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    refused = flightdeck("pause", str(fifo), "--wait", "0.1")
    assert refused.returncode == 2 and "not a regular file" in refused.stderr


SOCKET_AGENT = AGENT.replace("Recorder(sys.argv[1],", "Recorder(socket=sys.argv[1],")


def test_pause_through_the_monitor_serving_a_socket(tmp_path: Path) -> None:
    from flightdeck.core.snapshot import AGENT_PAUSED, AGENT_RUNNING
    from flightdeck.ingest.engine import Engine

    sock = tmp_path / "mon" / "fd.sock"
    script = tmp_path / "agent.py"
    script.write_text(SOCKET_AGENT)
    with Engine(socket_path=sock) as eng:
        lonely = flightdeck("pause", "--socket", str(sock), "--wait", "0.5")
        assert lonely.returncode == 4 and "no agent is connected" in lonely.stderr
        proc = subprocess.Popen([sys.executable, str(script), str(sock)], env=os.environ.copy())
        try:
            wait_until(lambda: eng.snapshot().events >= 3, "the socket agent's first calls")
            paused = flightdeck("pause", "--socket", str(sock), "--wait", "20")
            assert paused.returncode == 0, paused.stderr
            assert paused.stdout.startswith("pause: acked by worker") and ": paused" in paused.stdout
            row = next(r for r in eng.snapshot().agent_rows if r.agent == "worker")
            assert (row.status, row.paused_by) == (AGENT_PAUSED, "shell")
            assert any(c.origin == "shell" and c.ack_ms is not None for c in eng.snapshot().commands)
            resumed = flightdeck("resume", "--socket", str(sock), "--wait", "20")
            assert resumed.returncode == 0 and ": running" in resumed.stdout, resumed.stderr
            wait_until(lambda: next(r for r in eng.snapshot().agent_rows if r.agent == "worker").status
                       == AGENT_RUNNING, "the agent running again")
        finally:
            proc.kill()
            proc.wait()
    assert flightdeck("pause", "--socket", str(sock), "--wait", "0.5").returncode == 2  # nobody listening
