"""The control sidecar: 0600 append by the monitor, incremental read by the agent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flightdeck.core.control import (
    MAX_COMMAND_BYTES,
    MAX_DOWNGRADE_ENTRIES,
    SidecarReader,
    append_command,
    new_command,
    sidecar_path,
)
from flightdeck.core.events import encode_command
from flightdeck.core.fsopen import NotRegularFile


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


def test_append_after_a_partial_line_starts_a_fresh_line(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    side.write_bytes(b'{"v":1,"id":"c-dead","ts":1,"cmd":"pau')  # a writer died mid-line
    os.chmod(side, 0o600)
    reader = SidecarReader(side)
    append_command(side, new_command("pause"))
    cmds = reader.poll()
    assert [c.cmd for c in cmds] == ["pause"]  # the command is not glued to the torn line
    assert len(reader.errors) == 1  # the torn line is rejected on its own
    append_command(side, new_command("resume"))  # a file ending in a newline gets no blank line
    assert side.read_bytes().count(b"\n\n") == 0
    assert [c.cmd for c in reader.poll()] == ["resume"]


def test_append_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    os.mkfifo(side, 0o600)
    with pytest.raises(NotRegularFile, match="FIFO"):
        append_command(side, new_command("pause"))  # no reader on the FIFO: would block forever
    fd = os.open(side, os.O_RDONLY | os.O_NONBLOCK)  # a reader present: still refused, nothing written
    try:
        with pytest.raises(NotRegularFile):
            append_command(side, new_command("pause"))
        assert os.read(fd, 100) == b""
    finally:
        os.close(fd)


def test_append_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    side = tmp_path / "run.jsonl.control"
    side.symlink_to(target)
    with pytest.raises(OSError):
        append_command(side, new_command("pause"))
    assert not target.exists()


def test_reader_never_raises_on_odd_paths(tmp_path: Path) -> None:
    loop = tmp_path / "loop.control"
    loop.symlink_to(loop)  # ELOOP on every stat
    reader = SidecarReader(loop, start_at_end=True)
    assert reader.poll() == [] and reader.poll() == []
    assert reader.errors and "Too many levels of symbolic links" in reader.errors[0]
    fifo = tmp_path / "fifo.control"
    os.mkfifo(fifo, 0o600)
    reader = SidecarReader(fifo)
    assert reader.poll() == []  # a FIFO is never opened (that would block)
    assert any("FIFO" in e for e in reader.errors)


def test_command_bounds_on_both_ends(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    big = {f"m{i}": "small" for i in range(MAX_DOWNGRADE_ENTRIES + 1)}
    with pytest.raises(ValueError, match="over the limit of 1000"):
        append_command(side, new_command("downgrade", to=big))
    with pytest.raises(ValueError, match="bytes is over the limit"):
        append_command(side, new_command("pause", reason="x" * MAX_COMMAND_BYTES))
    # A line over the bound that reaches the agent anyway is refused there too.
    reader = SidecarReader(side)
    side.write_bytes(encode_command(new_command("pause", reason="x" * MAX_COMMAND_BYTES)))
    os.chmod(side, 0o600)
    append_command(side, new_command("resume"))
    assert [c.cmd for c in reader.poll()] == ["resume"]
    assert any("over the limit" in e for e in reader.errors)


def test_a_large_sidecar_is_read_in_slices(tmp_path: Path) -> None:
    side = tmp_path / "run.jsonl.control"
    lines = [encode_command(new_command("pause", reason="r" * 1000)) for _ in range(3000)]  # ~3 MB
    side.write_bytes(b"".join(lines))
    os.chmod(side, 0o600)
    reader = SidecarReader(side)
    got = []
    for _ in range(10):
        got += reader.poll()
    assert len(got) == 3000 and not reader.errors
