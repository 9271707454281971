"""Fault injection: a Recorder against a full disk, a vanishing folder, a dead and a stopped
monitor, and fork. Every call is either delivered or counted as dropped, and the count itself
is delivered, in the ``dropped`` field of a later event.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rec_helpers import FakeMono, Monitor

from flightdeck.core.events import Event, Usage, decode_line
from flightdeck.recorder.recorder import Recorder
from flightdeck.recorder.sinks import FileSink, SocketSink


def one_call(rec: Recorder, step: int, pad: str = "") -> None:
    with rec.call(provider="openai", model="gpt-4o", step=step, tags={"pad": pad} if pad else None) as c:
        c.set_usage(Usage(input_tokens=1))


def decoded(data: bytes) -> tuple[list[Event], int]:
    """The events in ``data`` and how many non-empty lines were not events (torn ones)."""
    events, bad = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        ev = decode_line(line)
        if isinstance(ev, Event):
            events.append(ev)
        else:
            bad += 1
    return events, bad


def assert_accounted(events: list[Event], rec: Recorder, calls_made: int) -> None:
    """Each call delivered once or counted dropped; the drop count delivered in full.

    run_start and run_end are delivered in every scenario, so every drop is a call.
    """
    calls = {e.id for e in events if e.kind == "llm_call"}
    kinds = [e.kind for e in events]
    assert "run_start" in kinds and kinds[-1] == "run_end"
    assert rec.dropped > 0, "the fault did not bite: nothing was dropped"
    assert len(calls) + rec.dropped == calls_made
    assert sum(e.dropped or 0 for e in events) == rec.dropped


# -- a full disk ------------------------------------------------------------------------------


class FullDisk:
    """A folder on a 64 KiB tmpfs that ``fill()`` fills and ``free()`` frees."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self) -> None:
        with open(self.filler, "wb", buffering=0) as f:
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
            with contextlib.suppress(OSError):
                while True:  # the last partial page
                    f.write(b"\0")

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def full_disk() -> Iterator[FullDisk]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    root = Path(tempfile.mkdtemp(prefix="fd-tmpfs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(root)],
                             capture_output=True).returncode == 0
    try:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (the /dev/full test covers a full disk)")
        yield FullDisk(root)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_full_disk_on_a_small_tmpfs(full_disk: FullDisk) -> None:
    log = full_disk.root / "r.jsonl"
    rec = Recorder(log, agent="a")
    made = 0
    for _ in range(3):
        one_call(rec, made)
        made += 1
    full_disk.fill()
    for _ in range(40):  # the rest of the log's last page, then ENOSPC: a torn line, then drops
        one_call(rec, made, pad="x" * 300)
        made += 1
    assert rec.dropped > 0
    full_disk.free()
    for _ in range(3):
        one_call(rec, made)
        made += 1
    rec.close()
    events, torn = decoded(log.read_bytes())
    assert torn <= 1  # at most the line the disk filled in; the next starts on a fresh line
    assert_accounted(events, rec, made)


def test_full_disk_with_dev_full(tmp_path: Path) -> None:
    """The same without a mount: the open descriptor is pointed at /dev/full (every write ENOSPC)."""
    log = tmp_path / "r.jsonl"
    sink = FileSink(log)
    rec = Recorder(log, sink=sink, agent="a")
    one_call(rec, 0)
    real_fd = os.dup(sink._fd)  # type: ignore[arg-type]
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, sink._fd)  # type: ignore[arg-type]
    for i in range(1, 11):
        one_call(rec, i)
    assert rec.dropped == 10
    os.dup2(real_fd, sink._fd)  # type: ignore[arg-type]
    os.close(full)
    os.close(real_fd)
    one_call(rec, 11)
    rec.close()
    events, torn = decoded(log.read_bytes())
    assert torn == 0
    assert_accounted(events, rec, 12)


# -- a vanishing folder -----------------------------------------------------------------------


def test_vanishing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    log = folder / "r.jsonl"
    mono = FakeMono()
    sink = FileSink(log, check_interval=0, clock=mono)
    rec = Recorder(log, sink=sink, agent="a")
    one_call(rec, 0)
    shutil.rmtree(folder)  # what was in it is gone with it: the user's doing, not a loss of ours
    folder.write_text("a file where the folder was")  # and it cannot be made again for now
    for i in range(1, 5):
        one_call(rec, i)  # each counted, none raised
    assert rec.dropped == 4 and sink.error is not None
    assert rec.faults["sink"] == 1  # one open failed; the next is tried 5 s later, lines meanwhile dropped
    folder.unlink()
    mono.advance(FileSink._RETRY_OPEN_S)
    for i in range(5, 7):
        one_call(rec, i)  # the folder is made again (0700) and the file with it
    rec.close()
    assert (folder.stat().st_mode & 0o777) == 0o700
    events, torn = decoded(log.read_bytes())
    assert torn == 0
    calls = [e for e in events if e.kind == "llm_call"]
    assert [e.step for e in calls] == [5, 6] and calls[0].dropped == 4
    assert sum(e.dropped or 0 for e in events) == rec.dropped == 4


# -- a dead and a stopped monitor ---------------------------------------------------------------


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="fd-mon-", dir="/tmp"))  # AF_UNIX paths must be short
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_dead_monitor_then_a_new_one(sock_dir: Path) -> None:
    path = str(sock_dir / "m.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the socket file stays, nobody listens: connect() is refused
    sink = SocketSink(path, maxlen=20, backoff_min=0.01, backoff_max=0.05)
    rec = Recorder(socket=path, sink=sink, agent="a")
    made = 0
    for _ in range(100):
        one_call(rec, made)
        made += 1
    assert rec.dropped == 81  # run_start and 19 calls wait in the queue
    os.unlink(path)
    monitor = Monitor(path)
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 20)
        for _ in range(5):
            one_call(rec, made)
            made += 1
        rec.close(10.0)
        assert monitor.wait_for(lambda ev: bool(ev) and ev[-1].kind == "run_end")
        assert_accounted(monitor.events(), rec, made)
    finally:
        monitor.close()


class TailProcess:
    """A real ``flightdeck tail --socket PATH --json`` that the test can stop and continue."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flightdeck", "tail", "--socket", path, "--json", "--interval", "0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        self.sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)

    def snapshots_until(self, pred: Any, timeout: float = 60.0) -> dict[str, Any]:
        """Read snapshot lines until one satisfies ``pred``; returns it."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.sel.select(0.2):
                chunk = self.proc.stdout.read(1 << 20) or b""
                if not chunk and self.proc.poll() is not None:
                    break
                self.buf += chunk
                *lines, self.buf = self.buf.split(b"\n")
                for line in lines:
                    last = json.loads(line)
                    if pred(last):
                        return last
        raise AssertionError(f"no such snapshot; last: {last and {k: last[k] for k in ('events', 'dropped')}}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def cont(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sel.close()


def test_stopped_monitor(sock_dir: Path) -> None:
    path = str(sock_dir / "m.sock")
    tail = TailProcess(path)
    try:
        tail.snapshots_until(lambda s: True)  # serving
        sink = SocketSink(path, maxlen=50)
        rec = Recorder(socket=path, sink=sink, agent="a")
        tail.snapshots_until(lambda s: s["runs_started"] == 1)  # connected
        tail.stop()  # SIGSTOP: the monitor is alive but reads nothing
        made = 0
        while rec.dropped == 0 or made < 200:  # fill the socket's buffers, then the queue
            one_call(rec, made, pad="p" * 2000)
            made += 1
            assert made < 100_000, "nothing was ever dropped"
        tail.cont()
        rec.close(30.0)  # drains, then run_end carries the last count
        final = tail.snapshots_until(lambda s: s["runs_ended"] == 1)
        assert rec.dropped > 0
        assert final["events"] + rec.dropped == made  # every call delivered or counted
        assert final["dropped"] == rec.dropped  # and the count itself delivered
        assert final["rejected"] == 0
    finally:
        tail.close()


# -- fork ----------------------------------------------------------------------------------------


def test_fork_with_a_socket_and_a_file(sock_dir: Path, tmp_path: Path) -> None:
    path = str(sock_dir / "m.sock")
    monitor = Monitor(path)
    on_socket = Recorder(socket=path, agent="s")
    log = tmp_path / "r.jsonl"
    on_file = Recorder(log, agent="f")
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 1)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 3
            try:
                for i in range(100, 120):
                    one_call(on_socket, i)
                    one_call(on_file, i)
                code = 0 if on_socket.flush(20.0) and on_socket.dropped == on_file.dropped == 0 else 1
            finally:
                os._exit(code)
        for i in range(20):
            one_call(on_socket, i)
            one_call(on_file, i)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        on_socket.close(10.0)
        on_file.close()
        assert monitor.wait_for(lambda ev: bool(ev) and ev[-1].kind == "run_end")
        for events in (monitor.events(), decoded(log.read_bytes())[0]):
            calls = [e for e in events if e.kind == "llm_call"]
            assert len({e.id for e in calls}) == len(calls) == 40  # none lost, none taken for a duplicate
            assert sorted(e.step for e in calls) == list(range(20)) + list(range(100, 120))
    finally:
        monitor.close()
