"""After os.fork() the child records under its own ids and, on a socket, has its own sender."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rec_helpers import Monitor, read_events

from flightdeck.core.events import Usage
from flightdeck.recorder.recorder import Recorder


def one_call(rec: Recorder, step: int = 0) -> None:
    with rec.call(provider="openai", model="gpt-4o", step=step) as c:
        c.set_usage(Usage(input_tokens=1))


def in_child(body: Callable[[], bool]) -> int:
    """Fork; run ``body`` in the child, which exits 0 when it returns True. Returns the child's pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, reported through the exit code
        code = 3
        try:
            code = 0 if body() else 1
        finally:
            os._exit(code)
    return pid


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def prefix(event_id: str) -> str:
    return event_id.rsplit("-", 1)[0]


def test_child_of_a_file_recorder_has_its_own_ids(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, agent="a")
    one_call(rec)

    def child() -> bool:
        for i in range(5):
            one_call(rec, step=100 + i)
        return True

    pid = in_child(child)
    for i in range(5):
        one_call(rec, step=i)
    assert exit_code(pid) == 0
    rec.close()
    events = read_events(log)
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)  # before the fix half of them repeated the parent's
    calls = [e for e in events if e.kind == "llm_call"]
    assert len(calls) == 11
    child_prefixes = {prefix(e.id) for e in calls if e.step is not None and e.step >= 100}
    parent_prefixes = {prefix(e.id) for e in calls if e.step is not None and e.step < 100}
    assert len(child_prefixes) == 1 and len(parent_prefixes) == 1 and child_prefixes != parent_prefixes


@pytest.fixture
def sock_path() -> Iterator[str]:
    d = Path("/tmp") / f"fdf-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    d.mkdir()
    yield str(d / "m.sock")
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def test_child_of_a_socket_recorder_delivers(sock_path: str) -> None:
    monitor = Monitor(sock_path)
    rec = Recorder(socket=sock_path, agent="a")
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 1)  # run_start: the parent is connected

        def child() -> bool:
            for i in range(5):
                one_call(rec, step=100 + i)
            return rec.flush(10.0)

        pid = in_child(child)
        for i in range(3):
            one_call(rec, step=i)
        assert exit_code(pid) == 0  # the child's flush saw every line handed to the monitor

        def counted(ev: list) -> bool:  # type: ignore[type-arg]
            return len([e for e in ev if e.kind == "llm_call"]) == 8

        assert monitor.wait_for(counted)
        calls = [e for e in monitor.events() if e.kind == "llm_call"]
        assert sorted(e.step for e in calls) == [0, 1, 2, 100, 101, 102, 103, 104]
        assert len({prefix(e.id) for e in calls}) == 2
        assert len({e.id for e in calls}) == 8
    finally:
        rec.close(1.0)
        monitor.close()


def test_a_child_that_never_records_opens_no_connection(sock_path: str) -> None:
    monitor = Monitor(sock_path)
    rec = Recorder(socket=sock_path, agent="a")
    try:
        assert monitor.wait_for(lambda ev: len(ev) == 1)

        def child() -> bool:
            return rec._sink._thread is None  # type: ignore[attr-defined]

        assert exit_code(in_child(child)) == 0
        assert len(monitor.conns) == 1
    finally:
        rec.close(1.0)
        monitor.close()
