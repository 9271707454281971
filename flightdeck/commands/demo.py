"""``flightdeck demo``: the cockpit beside a simulated agent, nothing to set up.

The agent (``demo/agent.py``) runs as a separate process using the real
Recorder, writing to a telemetry file; the cockpit follows that file with the
demo's guardrails (``demo/rules.toml``) and sends commands back through the
file's ``.control`` sidecar, exactly as ``flightdeck tail FILE`` would.
``--headless`` runs only the agent, in the foreground.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import flightdeck

EXIT_USAGE = 2


def demo_dir() -> Path:
    """The demo folder: shipped in the wheel, or at the top of a source checkout."""
    package = Path(flightdeck.__file__).resolve().parent
    for candidate in (package / "_shipped" / "demo", package.parent / "demo"):
        if (candidate / "agent.py").is_file():
            return candidate
    raise FileNotFoundError("the demo agent (demo/agent.py) is not installed with this flightdeck")


# The demo's fleet: (agent, seed offset, its own scripted incidents). Each agent
# keeps realistic per-call timings (a plan streams for seconds); there are
# several of them, each with an incident early in its run, so the screen has
# data within seconds and an incident within the first minute:
#   critic      its vector store is slow from the start (the pre stage of plan)
#   researcher  loops on a failed tool call at iteration 1: the loop rule pauses it
#   coder       a prompt that busts the prompt cache: the cache rule alerts
FLEET: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("researcher", 0, ("--loop-at", "1", "--slow-store-at", "8", "--cache-bust-at", "18")),
    ("critic", 1, ("--loop-at", "-1", "--slow-store-at", "0", "--cache-bust-at", "12")),
    ("coder", 2, ("--loop-at", "-1", "--slow-store-at", "-1", "--cache-bust-at", "1")),
)


def agent_command(args: argparse.Namespace, out: Path, *, quiet: bool, member: int | None = None) -> list[str]:
    """The command line of one simulated agent; ``member`` picks one of FLEET (None: the agent's defaults)."""
    seed = args.seed
    cmd = [sys.executable, str(demo_dir() / "agent.py"), "--out", str(out), "--speed", str(args.speed)]
    if member is not None:
        name, offset, incidents = FLEET[member]
        seed += offset
        cmd += ["--agent", name, *incidents]
    cmd += ["--seed", str(seed)]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    if quiet:
        cmd.append("--quiet")
    return cmd


def _fail(message: str) -> int:
    print(f"flightdeck demo: {message}", file=sys.stderr)
    return EXIT_USAGE


def _stop(proc: subprocess.Popen[bytes], timeout: float = 3.0) -> None:
    """Interrupt the agent (so it writes run_end), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


def run_headless(args: argparse.Namespace) -> int:
    out = Path(args.out or "flightdeck-demo.jsonl")
    print(f"flightdeck demo: the agent writes {out}; watch it with `flightdeck tail {out}`", file=sys.stderr)
    proc = subprocess.Popen(agent_command(args, out, quiet=False))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        return 130


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        return _fail("--speed must be more than 0")
    if args.steps < 0:
        return _fail("--steps must be 0 (run until quit) or more")
    if not 1 <= args.agents <= len(FLEET):
        return _fail(f"--agents must be 1 to {len(FLEET)}")
    try:
        rules = demo_dir() / "rules.toml"
    except FileNotFoundError as exc:
        return _fail(str(exc))
    if args.headless:
        return run_headless(args)

    from flightdeck.cockpit.app import run_cockpit
    from flightdeck.ingest.engine import Engine

    with tempfile.TemporaryDirectory(prefix="flightdeck-demo-") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "demo.jsonl"
        # Create the file before the agent starts, so the monitor follows it from the first line.
        out.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        procs = [subprocess.Popen(agent_command(args, out, quiet=True, member=i), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(args.agents)]
        code = 0
        try:
            engine = Engine([out], rules_path=rules)
            engine.start()
            try:
                code = int(run_cockpit(engine, theme=args.theme) or 0)
            finally:
                engine.stop()
        finally:
            for proc in procs:
                _stop(proc)
        print(goodbye(len(procs), out, kept=bool(args.out)), file=sys.stderr)
        return code


def goodbye(agents: int, out: Path, *, kept: bool) -> str:
    """What quitting the demo did: the simulated agents stopped, and where their log is (or was)."""
    who = "the simulated agent" if agents == 1 else f"the {agents} simulated agents"
    if kept:
        return f"flightdeck demo: stopped {who}; the log is {out} (`flightdeck report {out}`)"
    whose = "its" if agents == 1 else "their"
    return (f"flightdeck demo: stopped {who}; {whose} log was {out}, removed with its temporary folder "
            "(keep it next time with --out FILE)")
