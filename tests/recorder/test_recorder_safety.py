"""The agent never sees telemetry fail: odd control and log paths, odd exceptions, rotation, symlinks."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from rec_helpers import FakeMono, of_kind, read_events

from flightdeck.core.control import MAX_DOWNGRADE_ENTRIES, append_command, new_command, sidecar_path
from flightdeck.core.events import Usage, decode_line, encode_command
from flightdeck.recorder.recorder import Recorder
from flightdeck.recorder.sinks import FileSink

NOBODY = 65534


def one_call(rec: Recorder, model: str = "gpt-4o") -> None:
    with rec.call(provider="openai", model=model) as c:
        c.set_usage(Usage(input_tokens=1))


def flightdeck_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("flightdeck:")]


# -- 1. errors on the control path are counted and warned once, never raised ------------------


def test_symlink_loop_at_the_sidecar_never_raises(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "r.jsonl"
    side = sidecar_path(log)
    side.symlink_to(side)  # every stat of it fails with ELOOP
    rec = Recorder(log, agent="a")
    for _ in range(3):
        one_call(rec)
    assert not rec.paused
    rec.close()
    assert len(of_kind(log, "llm_call")) == 3
    assert rec.faults["control"] >= 3  # every failure counted ...
    warnings = [w for w in flightdeck_lines(capfd.readouterr().err) if "control channel" in w]
    assert len(warnings) == 1 and "Too many levels of symbolic links" in warnings[0]  # ... warned once


CHILD_UNSEARCHABLE = """
import json, os, sys
from flightdeck.core.events import Usage
from flightdeck.recorder.recorder import Recorder
import flightdeck.core.normalize, flightdeck.core.pricing  # imported lazily: load them while still root,
# since the checkout itself may not be readable by the plain user (a 0700 temporary folder)
folder = sys.argv[1]
os.setgid({uid}); os.setuid({uid})  # root can search anything: become a plain user
rec = Recorder(os.path.join(folder, "r.jsonl"), agent="a")
def call():
    with rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
call()
os.chmod(folder, 0)  # the folder becomes unsearchable under the running agent
raised = None
try:
    for _ in range(3):
        call()
    rec.poll()
except Exception as exc:
    raised = repr(exc)
os.chmod(folder, 0o700)
rec.close()
print(json.dumps({{"raised": raised, "faults": rec.faults}}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_unsearchable_log_folder_never_raises() -> None:
    base = Path(tempfile.mkdtemp(prefix="fd-unsearchable-"))  # pytest's own folder is root's alone
    try:
        os.chmod(base, 0o755)
        folder = base / "logs"
        folder.mkdir()
        os.chown(folder, NOBODY, NOBODY)
        # The child imports as root (the venv lives under /root), then drops to nobody.
        script = CHILD_UNSEARCHABLE.format(uid=NOBODY)
        out = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["raised"] is None
        assert result["faults"]["control"] >= 1
        assert "r.jsonl.control: [Errno 13] Permission denied" in out.stderr
        # Written through the descriptor opened before: nothing lost.
        assert len([e for e in read_events(folder / "r.jsonl") if e.kind == "llm_call"]) == 4
    finally:
        shutil.rmtree(base)


# -- 6. an exception that cannot be printed keeps its event ------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_exception_whose_str_raises_keeps_the_event(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    with pytest.raises(Unprintable), rec.call(provider="openai", model="gpt-4o") as c:
        c.tag("k", Unprintable())  # a tag value whose __str__ raises is skipped, not raised
        raise Unprintable()
    rec.close()
    (ev,) = of_kind(log, "llm_call")
    assert ev.error == "Unprintable: <unprintable: __str__ raised RuntimeError>"
    assert not rec.faults.get("record")


# -- 7. a FIFO at the log path -------------------------------------------------------------

FIFO_AGENT = """
import sys
from flightdeck.core.events import Usage
from flightdeck.recorder.recorder import Recorder
rec = Recorder(sys.argv[1], agent="a")
with rec.call(provider="openai", model="gpt-4o") as c:
    c.set_usage(Usage(input_tokens=1))
rec.close()
print(rec.dropped)
"""


def test_fifo_at_the_log_path_is_refused_without_hanging(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    os.mkfifo(log, 0o600)
    # In a child: before the fix its open() blocks forever, which must not hang the suite.
    out = subprocess.run([sys.executable, "-c", FIFO_AGENT, str(log)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 3  # run_start, the call, run_end: every line counted as dropped
    assert "is a FIFO, not a regular file" in out.stderr
    assert stat.S_ISFIFO(os.lstat(log).st_mode)


# -- 8. rotation: the path is reopened when it names another file -----------------------------


def test_reopens_after_rename_at_most_once_per_check_interval(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    mono = FakeMono()
    sink = FileSink(log, clock=mono)  # the default interval: one stat a second at most
    rec = Recorder(log, sink=sink, agent="a")
    one_call(rec)
    log.rename(tmp_path / "r.jsonl.1")  # logrotate, without copytruncate
    log.write_bytes(b"")
    os.chmod(log, 0o600)
    one_call(rec)  # within the same second: still the old file, no stat
    assert sink.reopens == 0
    mono.advance(1.0)
    one_call(rec)
    assert sink.reopens == 1
    rec.close()
    assert [e.kind for e in read_events(tmp_path / "r.jsonl.1")] == ["run_start", "llm_call", "llm_call"]
    assert [e.kind for e in read_events(log)] == ["llm_call", "run_end"]


def test_recreates_a_deleted_file_and_refuses_a_fifo_swapped_in(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    sink = FileSink(log, check_interval=0)
    rec = Recorder(log, sink=sink)
    one_call(rec)
    log.unlink()
    one_call(rec)  # the path is gone: a new file is started, not the unlinked one fed
    assert [e.kind for e in read_events(log)] == ["llm_call"]
    log.unlink()
    os.mkfifo(log, 0o600)
    one_call(rec)  # never blocks on the FIFO: refused, counted
    assert rec.dropped == 1 and sink.error is not None and "FIFO" in sink.error
    rec.close()


# -- 9. symlinks at the log path, private folders ---------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a symlink to another user")
def test_symlink_owned_by_another_user_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "victim"
    log = tmp_path / "r.jsonl"
    log.symlink_to(target)
    os.lchown(log, NOBODY, NOBODY)
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    assert not target.exists()
    assert rec.dropped == 3
    assert any(f"symlink owned by uid {NOBODY}" in w for w in flightdeck_lines(capfd.readouterr().err))


def test_symlink_in_a_world_writable_folder_is_refused_unless_sticky(tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # anyone can swap the link: refused even though it is ours
    target = tmp_path / "mine.jsonl"
    log = shared / "r.jsonl"
    log.symlink_to(target)
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    assert not target.exists() and rec.dropped == 3
    assert any("world-writable folder" in w for w in flightdeck_lines(capfd.readouterr().err))
    os.chmod(shared, 0o1777)  # sticky, like /tmp: only the link's owner can replace our link
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    assert rec.dropped == 0
    assert [e.kind for e in read_events(target)] == ["run_start", "llm_call", "run_end"]


def test_own_symlink_in_a_private_folder_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    log = tmp_path / "r.jsonl"
    log.symlink_to(target)
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    assert [e.kind for e in read_events(target)] == ["run_start", "llm_call", "run_end"]


@pytest.mark.parametrize("umask", [0o022, 0o277, 0o000])
def test_created_folders_are_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    log = tmp_path / "a" / "b" / "r.jsonl"
    old = os.umask(umask)
    try:
        rec = Recorder(log)
        one_call(rec)
        rec.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert len(of_kind(log, "llm_call")) == 1


# -- 3. a torn line after a full disk ---------------------------------------------------------


def test_line_after_a_torn_write_starts_on_a_fresh_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, agent="a")
    real_write = os.write
    state = {"torn": False}

    def disk_full_mid_line(fd: int, data: bytes) -> int:
        if state["torn"]:
            raise OSError(28, "No space left on device")  # finishing the line fails too
        if b'"llm_call"' in bytes(data):
            state["torn"] = True
            return real_write(fd, bytes(data)[:20])  # the disk fills after 20 bytes
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full_mid_line)
    one_call(rec)  # torn: 20 bytes on disk, the rest refused
    monkeypatch.setattr(os, "write", real_write)
    one_call(rec)
    rec.close()
    lines = log.read_bytes().split(b"\n")
    assert lines.pop() == b""
    decoded = [decode_line(line) for line in lines]
    kinds = [getattr(d, "kind", "rejected") for d in decoded]
    assert kinds == ["run_start", "rejected", "llm_call", "run_end"]  # the torn line is alone
    assert decoded[2].dropped == 1  # type: ignore[union-attr]
    assert rec.dropped == 1


# -- 4. downgrade mappings are bounded and applied in one pass ----------------------------------


def test_downgrade_mapping_over_the_bound_is_acknowledged_not_applied(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    side = sidecar_path(log)
    huge = new_command("downgrade", to={f"m{i}": "small" for i in range(MAX_DOWNGRADE_ENTRIES + 1)})
    fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(fd, encode_command(huge))  # written by hand: append_command refuses to send it
    os.close(fd)
    assert rec.model("m0") == "m0"
    fits = new_command("downgrade", to={f"m{i}": "small" for i in range(MAX_DOWNGRADE_ENTRIES)})
    append_command(side, fits)
    assert rec.model("m0") == "small" and rec.model("m999") == "small"
    rec.close()
    acks = {a.ref: a for a in of_kind(log, "signal_ack")}
    assert acks[huge.id].message == "not applied: downgrade mapping of 1001 models is over the limit of 1000"
    assert acks[huge.id].state["models"] == {}
    assert acks[fits.id].message is None and len(acks[fits.id].state["models"]) == MAX_DOWNGRADE_ENTRIES


def test_a_mapping_applies_to_the_state_before_the_command(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    assert rec.model("a") == "a"
    append_command(sidecar_path(log), new_command("downgrade", to={"a": "b", "b": "c"}))
    assert rec.model("a") == "b"  # one step, not on through b to c
    assert rec.model("b") == "c"
    append_command(sidecar_path(log), new_command("downgrade", to={"b": "d"}))  # names the model now used
    assert rec.model("a") == "d"
    rec.close()


# -- 10. a paused agent says so on its stderr ---------------------------------------------------


def test_pause_and_resume_each_print_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, run="r-42", agent="researcher")
    side = sidecar_path(log)
    hostile = "spend 2.31 USD in 10m > 2.00\x1b]0;pwned\x07"  # a terminal-title escape
    append_command(side, new_command("pause", origin="rule:spend", reason=hostile))
    append_command(side, new_command("pause", origin="key"))  # already paused: no second line
    assert rec.paused
    append_command(side, new_command("resume", origin="key"))
    assert not rec.paused
    rec.close()
    lines = flightdeck_lines(capfd.readouterr().err)
    assert len(lines) == 2
    assert lines[0] == ("flightdeck: agent researcher (run r-42) paused by rule:spend: "
                        "spend 2.31 USD in 10m > 2.00\\x1b]0;pwned\\x07; waiting before its next model call. "
                        f"Resume with: flightdeck resume {log}")
    assert lines[1].startswith("flightdeck: agent researcher (run r-42) resumed by key after ")


def test_socket_agent_names_the_socket_in_its_resume_hint(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sock = "/tmp/no monitor here.sock"
    rec = Recorder(socket=sock, agent="a")
    rec.pause("testing")
    rec.close(0.1)
    (line,) = [w for w in flightdeck_lines(capfd.readouterr().err) if "paused" in w]
    assert line.endswith("Resume with: flightdeck resume --socket '/tmp/no monitor here.sock'")
    assert "paused by agent: testing" in line


def test_a_log_ending_in_a_torn_line_is_continued_on_a_fresh_line(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    log.write_bytes(b'{"v":1,"ts":1764216000,"kind":"llm_call","id":"x-1","ru')  # an earlier run's full disk
    os.chmod(log, 0o600)
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    lines = log.read_bytes().split(b"\n")
    assert lines[0].endswith(b'"ru') and lines.pop() == b""
    assert [getattr(decode_line(x), "kind", "rejected") for x in lines] == ["rejected", "run_start", "llm_call",
                                                                           "run_end"]


def test_after_a_failed_write_a_torn_line_of_another_writer_is_not_glued_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, agent="a")
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    one_call(rec)  # nothing of ours written: the disk is full
    monkeypatch.setattr(os, "write", real_write)
    with open(log, "ab") as other:  # another process sharing the file got half a line in
        other.write(b'{"v":1,"kind":"llm_call","id":"other-1","ru')
    one_call(rec)
    rec.close()
    lines = log.read_bytes().split(b"\n")
    assert lines.pop() == b""
    kinds = [getattr(decode_line(x), "kind", "rejected") for x in lines]
    assert kinds == ["run_start", "rejected", "llm_call", "run_end"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_a_log_file_owned_by_another_user_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "r.jsonl"
    log.write_bytes(b"")
    os.chmod(log, 0o666)  # planted in a shared folder, open to all
    os.chown(log, NOBODY, NOBODY)
    rec = Recorder(log)
    one_call(rec)
    rec.close()
    assert log.read_bytes() == b"" and rec.dropped == 3
    assert any(f"belongs to uid {NOBODY}" in w for w in flightdeck_lines(capfd.readouterr().err))


def test_usage_reading_never_raises_when_the_normaliser_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    from flightdeck.recorder import recorder
    from flightdeck.recorder.recorder import _read_usage

    monkeypatch.setitem(sys.modules, "flightdeck.core.normalize", None)  # any import of it now raises
    monkeypatch.setattr(recorder, "_NORMALIZE", None)  # as before the first call imported it
    reading = _read_usage("openai", {"prompt_tokens": 3}, None)
    assert reading.usage is None and reading.problems and "usage not read: " in reading.problems[0]
