"""The monitor's side of the control file: a FIFO at the sidecar never freezes a send, and
a sidecar ending in a torn line does not swallow the next command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flightdeck.core.control import sidecar_path
from flightdeck.core.events import Usage
from flightdeck.ingest.engine import Engine
from flightdeck.recorder.recorder import Recorder

SEND = """
import json, sys
from flightdeck.ingest.engine import Engine
eng = Engine([sys.argv[1]])
eng.backfill()
eng.send("pause", reason="spend")
print(json.dumps(list(eng.snapshot().source.notices)))
"""


def test_fifo_at_the_sidecar_is_the_sends_error_not_a_freeze(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    with Recorder(log, agent="a") as rec, rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
    os.mkfifo(sidecar_path(log), 0o600)
    # In a child, so that a send that blocks (as before the fix) fails the test instead of hanging it.
    out = subprocess.run([sys.executable, "-c", SEND, str(log)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    notices = json.loads(out.stdout)
    assert any("is a FIFO, not a regular file" in n for n in notices), notices


def test_a_torn_sidecar_line_does_not_swallow_the_next_command(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    rec = Recorder(log, agent="a")
    side = sidecar_path(log)
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(fd, b'{"v":1,"id":"c-torn","ts":1,"cmd":"res')  # a monitor died mid-line
    os.close(fd)
    eng = Engine([log])
    eng.backfill()
    cmd = eng.send("pause", reason="spend")
    assert rec.paused
    rec.close()
    acks = [json.loads(line) for line in log.read_bytes().splitlines() if b'"signal_ack"' in line]
    assert [a["ref"] for a in acks] == [cmd.id]
