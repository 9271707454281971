"""The control sidecar: 0600 append by the monitor, incremental read by the agent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flightdeck.core.control import SidecarReader, append_command, new_command, sidecar_path


def test_sidecar_name() -> None:
    assert sidecar_path("/x/run.jsonl") == Path("/x/run.jsonl.control")


def test_append_creates_0600_and_reader_sees_each_command_once(tmp_path: Path) -> None:
    side = sidecar_path(tmp_path / "run.jsonl")
    reader = SidecarReader(side)
    assert reader.poll() == []
    append_command(side, new_command("pause", reason="spend"))
    assert stat.S_IMODE(os.stat(side).st_mode) == 0o600
    first = reader.poll()
    assert [c.cmd for c in first] == ["pause"] and first[0].reason == "spend"
    assert reader.poll() == []
    append_command(side, new_command("resume"))
    assert [c.cmd for c in reader.poll()] == ["resume"]


def test_partial_and_bad_lines(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    reader = SidecarReader(side)
    os.write(fd, b'garbage\n{"v":1,"id":"c-1","ts":1,"cmd":"pau')
    assert reader.poll() == []
    assert reader.errors  # the garbage line is reported, not raised
    os.write(fd, b'se"}\n')
    assert [c.id for c in reader.poll()] == ["c-1"]
    os.close(fd)


def test_start_at_end_skips_old_commands(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    append_command(side, new_command("pause"))
    reader = SidecarReader(side, start_at_end=True)
    assert reader.poll() == []
    append_command(side, new_command("resume"))
    assert [c.cmd for c in reader.poll()] == ["resume"]


def test_replaced_sidecar_is_read_from_start(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    reader = SidecarReader(side)
    append_command(side, new_command("pause"))
    assert len(reader.poll()) == 1
    side.unlink()
    append_command(side, new_command("downgrade"))
    assert [c.cmd for c in reader.poll()] == ["downgrade"]


def test_world_writable_sidecar_is_not_obeyed(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    append_command(side, new_command("pause"))
    os.chmod(side, 0o666)
    reader = SidecarReader(side)
    assert reader.poll() == []
    assert any("writable by others" in e for e in reader.errors)
