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


def agent_command(args: argparse.Namespace, out: Path, *, quiet: bool) -> list[str]:
    cmd = [sys.executable, str(demo_dir() / "agent.py"), "--out", str(out),
           "--seed", str(args.seed), "--speed", str(args.speed)]
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
        proc = subprocess.Popen(agent_command(args, out, quiet=True), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            engine = Engine([out], rules_path=rules)
            engine.start()
            try:
                return int(run_cockpit(engine, theme=args.theme) or 0)
            finally:
                engine.stop()
        finally:
            _stop(proc)
