"""Sinks: shared O_APPEND files, and a socket sink that never blocks the agent."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rec_helpers import Monitor, read_events

from flightdeck.core.control import new_command
from flightdeck.core.events import Event, Usage, decode_line, encode_command
from flightdeck.recorder.recorder import Recorder
from flightdeck.recorder.sinks import FileSink, SocketSink

WRITER = r"""
import sys
from flightdeck.core.events import Usage
from flightdeck.recorder.recorder import Recorder
path, agent, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rec = Recorder(path, agent=agent, run="shared", stats=False)
pad = agent * 2000  # lines of ~10 KB: far beyond PIPE_BUF, so only O_APPEND keeps them whole
for i in range(n):
    with rec.call(provider="openai", model="gpt-4o", step=i, tags={"pad": pad}) as c:
        c.set_usage(Usage(input_tokens=i))
rec.close()
"""


def test_several_processes_share_one_file_without_torn_lines(tmp_path: Path) -> None:
    log = tmp_path / "shared.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log), name, "300"])
        for name in ("ab", "cd", "ef", "gh")
    ]
    for p in procs:
        assert p.wait(60) == 0
    lines = log.read_bytes().split(b"\n")
    assert lines.pop() == b""
    events = [decode_line(line) for line in lines]
    assert all(isinstance(e, Event) for e in events), "a torn or interleaved line"
    calls = [e for e in events if isinstance(e, Event) and e.kind == "llm_call"]
    for name in ("ab", "cd", "ef", "gh"):
        steps = [e.step for e in calls if e.agent == name]
        assert steps == list(range(300))
        assert all(e.tags["pad"] == name * 2000 for e in calls if e.agent == name)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_file_sink_counts_drops_until_acknowledged(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "x.jsonl")
    sink.close()
    assert sink.write(b"{}\n") is False
    assert sink.write(b"{}\n") is False
    assert sink.pending_drops() == 2
    sink.ack_drops(2)
    assert sink.pending_drops() == 0 and sink.total_dropped == 2


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    # AF_UNIX paths are limited to ~100 bytes; pytest's tmp_path can be longer.
    d = Path("/tmp") / f"fdt-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    d.mkdir()
    yield str(d / "m.sock")
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def test_socket_sink_without_monitor_queues_then_drops(sock_path: str) -> None:
    sink = SocketSink(sock_path, maxlen=10, backoff_min=0.01, backoff_max=0.05)
    results = [sink.write(b'{"n":%d}\n' % i) for i in range(50)]
    # Nobody listening: the first 10 wait in the queue, the rest are dropped and counted.
    assert results == [True] * 10 + [False] * 40
    assert sink.pending_drops() == 40
    monitor = Monitor(sock_path)
    try:
        assert monitor.wait_for(lambda _e: len(monitor.lines) == 10)
        assert monitor.lines == [b'{"n":%d}' % i for i in range(10)]
    finally:
        sink.close(1.0)
        monitor.close()


def test_recorder_reports_socket_drops_in_its_next_event(sock_path: str) -> None:
    rec = Recorder(socket=sock_path, agent="a", stats=False)
    rec._sink.close(0)  # type: ignore[attr-defined]
    rec._sink = SocketSink(sock_path, maxlen=5, backoff_min=0.01, backoff_max=0.05)  # small queue
    for _ in range(20):
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
    monitor = Monitor(sock_path)
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 5)
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
        assert monitor.wait_for(lambda ev: len(ev) == 6)
        assert monitor.events()[-1].dropped == 15
    finally:
        rec.close(1.0)
        monitor.close()


def test_close_is_bounded_when_the_monitor_never_reads(sock_path: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen()
    try:
        sink = SocketSink(sock_path, maxlen=100_000)
        conn, _ = server.accept()  # connected, but the monitor never reads
        line = b"x" * 65536 + b"\n"
        accepted = sum(sink.write(line) for _ in range(200))  # ~13 MB: more than the socket buffers
        assert accepted == 200  # the agent never waited on the socket
        sink.close(0.2)
        assert sink.total_dropped > 0  # what could not be delivered in the bounded close is counted
        conn.close()
    finally:
        server.close()


def test_socket_commands_reach_only_the_targeted_agent(sock_path: str) -> None:
    monitor = Monitor(sock_path)
    a = Recorder(socket=sock_path, run="r-1", agent="researcher")
    b = Recorder(socket=sock_path, run="r-2", agent="writer")
    try:
        assert monitor.wait_for(lambda ev: len([e for e in ev if e.kind == "run_start"]) == 2)
        cmd = new_command("pause", target={"agent": "writer"})
        monitor.broadcast(encode_command(cmd))
        deadline = time.monotonic() + 10
        while not b.paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.paused and not a.paused
        assert monitor.wait_for(lambda ev: any(e.kind == "signal_ack" for e in ev))
        acks = [e for e in monitor.events() if e.kind == "signal_ack"]
        assert [(x.agent, x.ref, x.state["paused"]) for x in acks] == [("writer", cmd.id, True)]
        with a.call(provider="openai", model="gpt-4o") as c:  # the other agent carries on
            c.set_usage(Usage(input_tokens=1))
        assert monitor.wait_for(lambda ev: any(e.kind == "llm_call" and e.agent == "researcher" for e in ev))
    finally:
        a.close(1.0)
        b.close(1.0)
        monitor.close()


def test_reconnects_after_the_monitor_restarts(sock_path: str) -> None:
    first = Monitor(sock_path)
    rec = Recorder(socket=sock_path, agent="a", stats=False)
    rec._sink.backoff_max = 0.05  # type: ignore[attr-defined]
    try:
        assert first.wait_for(lambda ev: len(ev) == 1)
        first.close()
        os.unlink(sock_path)
        second = Monitor(sock_path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e.kind == "llm_call" for e in second.events()):
            with rec.call(provider="openai", model="gpt-4o") as c:
                c.set_usage(Usage(input_tokens=1))
            time.sleep(0.02)
        assert any(e.kind == "llm_call" for e in second.events())
        assert rec._sink.connects >= 2  # type: ignore[attr-defined]
        second.close()
    finally:
        rec.close(0.5)


def test_file_log_round_trip_reads_back(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    with Recorder(log) as rec, rec.call(provider="openai", model="gpt-4o") as c:
        c.set_usage(Usage(input_tokens=1))
    assert [e.kind for e in read_events(log)] == ["run_start", "llm_call", "run_end"]


def test_idle_socket_agent_acknowledges_at_once(sock_path: str) -> None:
    monitor = Monitor(sock_path)
    rec = Recorder(socket=sock_path, agent="idle", stats=False)
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 1)
        cmd = new_command("pause")
        monitor.broadcast(encode_command(cmd))
        # The agent makes no call and never asks: the sink's thread applies and answers.
        assert monitor.wait_for(lambda ev: any(e.kind == "signal_ack" and e.ref == cmd.id for e in ev))
        assert rec.paused
    finally:
        rec.close(1.0)
        monitor.close()


def test_a_drop_count_is_settled_only_when_its_line_is_delivered(sock_path: str) -> None:
    sink = SocketSink(sock_path, maxlen=2, backoff_min=0.01, backoff_max=0.05)  # nobody listening
    assert sink.write(b"a\n") and sink.write(b"b\n")
    assert not sink.write(b"c\n")  # the queue is full: dropped, counted
    assert sink.pending_drops() == 1
    sink.maxlen = 3  # room again
    assert sink.write(b'{"dropped":1}\n', 1)
    # Queued, not delivered: the count rides on that line, so no other line may carry it ...
    assert sink.pending_drops() == 0
    sink.close(0)
    # ... and when the line is lost (close with nobody to deliver to), the count is pending again.
    assert sink.total_dropped == 4 and sink.pending_drops() == 4


def test_a_drop_count_is_settled_when_its_line_is_sent(sock_path: str) -> None:
    sink = SocketSink(sock_path, maxlen=1, backoff_min=0.01, backoff_max=0.05)
    assert sink.write(b'{"n":0}\n') and not sink.write(b'{"n":1}\n')
    monitor = Monitor(sock_path)
    try:
        assert monitor.wait_for(lambda _e: len(monitor.lines) == 1)
        assert sink.write(b'{"n":2,"dropped":1}\n', sink.pending_drops())
        assert sink.flush(10.0)
        assert sink.pending_drops() == 0 and sink.total_dropped == 1
    finally:
        sink.close(1.0)
        monitor.close()


class OldStyleSink:
    """A sink of the first protocol: ``write(line)`` with no drop count."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.fail = 0
        self.unreported = 0

    def write(self, line: bytes) -> bool:
        if self.fail:
            self.fail -= 1
            self.unreported += 1
            return False
        self.lines.append(line)
        return True

    def pending_drops(self) -> int:
        return self.unreported

    def ack_drops(self, n: int) -> None:
        self.unreported -= n

    def poll_commands(self) -> list:  # type: ignore[type-arg]
        return []

    def close(self, timeout: float = 2.0) -> None:
        pass


def test_a_sink_of_the_older_protocol_still_works(tmp_path: Path) -> None:
    sink = OldStyleSink()
    rec = Recorder(tmp_path / "r.jsonl", sink=sink)
    sink.fail = 2
    for _ in range(3):
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
    rec.close()
    events = [decode_line(line) for line in sink.lines]
    assert [getattr(e, "kind", None) for e in events] == ["run_start", "llm_call", "run_end"]
    assert events[1].dropped == 2 and sink.unreported == 0  # type: ignore[union-attr]
    assert not rec.faults


def test_an_error_in_the_sender_thread_does_not_end_delivery(sock_path: str) -> None:
    monitor = Monitor(sock_path)

    def broken_hook() -> None:
        raise RuntimeError("a bug in the command hook")

    sink = SocketSink(sock_path, on_command=broken_hook, backoff_min=0.01, backoff_max=0.05)
    try:
        assert sink.write(b'{"n":0}\n')
        assert monitor.wait_for(lambda _e: len(monitor.lines) == 1)
        monitor.broadcast(encode_command(new_command("pause")))  # the hook raises in the sender thread
        for i in range(1, 4):
            assert sink.write(b'{"n":%d}\n' % i)
        assert monitor.wait_for(lambda _e: {b'{"n":1}', b'{"n":2}', b'{"n":3}'} <= set(monitor.lines))
    finally:
        sink.close(1.0)
        monitor.close()
