"""The UNIX socket server: many agents, refusals, stale sockets, hostile clients."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest

from flightdeck.core.events import Event, Rejected, decode_command
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.server import SocketError, SocketServer, clear_stale
from tests.ingest.test_engine import v1, wait_for


def connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def read_line(s: socket.socket, timeout: float = 3.0) -> bytes:
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    d = tmp_path / "sock"
    return d / "fd.sock"


def test_several_agents_stream_and_get_commands(sock_path: Path) -> None:
    with Engine(socket_path=sock_path) as eng:
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(sock_path.parent).st_mode) == 0o700
        agents = [connect(sock_path) for _ in range(3)]
        for i, s in enumerate(agents):
            s.sendall(v1(agent=f"ag{i}") + v1(agent=f"ag{i}"))
        wait_for(lambda: eng.snapshot().events == 6)
        assert eng.snapshot().source.connections == 3
        cmd = eng.send("pause", target={"agent": "ag1"})
        got = decode_command(read_line(agents[1]))
        assert got.id == cmd.id and got.cmd == "pause"
        agents[0].settimeout(0.2)
        with pytest.raises(TimeoutError):
            agents[0].recv(100)  # not its target
        for s in agents:
            s.close()
        wait_for(lambda: eng.snapshot().source.connections == 0)
    assert not sock_path.exists()  # removed on stop


def test_other_user_is_refused_and_shown(sock_path: Path) -> None:
    batches: list[tuple[list[Event], list[Rejected]]] = []
    notices: list[str] = []
    server = SocketServer(sock_path, lambda e, r: batches.append((e, r)), on_notice=notices.append,
                          peercred=lambda s: (4242, os.getuid() + 1, 100))
    server.start()
    try:
        s = connect(sock_path)
        try:
            s.sendall(v1())
            s.settimeout(3)
            assert s.recv(10) == b""  # closed on us
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed before or with our line unread: also a refusal
        wait_for(lambda: server.refused == 1)
        assert any(f"uid {os.getuid() + 1}" in n and "4242" in n for n in notices)
        assert batches == []
    finally:
        server.stop()


def test_garbage_and_disconnect_mid_line_are_counted_others_unaffected(sock_path: Path) -> None:
    with Engine(socket_path=sock_path) as eng:
        good = connect(sock_path)
        bad = connect(sock_path)
        bad.sendall(b"garbage\n\x00\x01\n" + v1() + b'{"v":1,"ts":1,"kind":"llm_call"')  # ends mid-line
        bad.close()
        good.sendall(v1())
        wait_for(lambda: eng.snapshot().events == 2 and eng.snapshot().rejected == 3)
        assert eng.snapshot().rejected_reasons.get("truncated line") == 1
        good.sendall(v1())
        wait_for(lambda: eng.snapshot().events == 3)
        good.close()


def test_over_long_line_cuts_off_that_client_alone(sock_path: Path) -> None:
    got: list[int] = []
    notices: list[str] = []
    server = SocketServer(sock_path, lambda e, r: got.append(len(e)), on_notice=notices.append, max_line=1000)
    server.start()
    try:
        flood = connect(sock_path)
        other = connect(sock_path)
        try:
            flood.sendall(b"x" * 5000)
        except OSError:
            pass
        wait_for(lambda: any("cut off" in n for n in notices))
        other.sendall(v1())
        wait_for(lambda: sum(got) == 1)
        assert server.connections == 1
        other.close()
        flood.close()
    finally:
        server.stop()


def test_stuck_client_is_dropped_when_its_commands_pile_up(sock_path: Path) -> None:
    with Engine(socket_path=sock_path) as eng:
        stuck = connect(sock_path)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wait_for(lambda: eng.snapshot().source.connections == 1)
        t0 = time.monotonic()
        for _ in range(20000):  # never read: the kernel buffers fill, then ours
            eng.send("resume", reason="x" * 100)
            if eng.snapshot().source.connections == 0:
                break
        assert eng.snapshot().source.connections == 0
        assert time.monotonic() - t0 < 30
        assert any("does not read" in n for n in eng.snapshot().source.notices)
        stuck.close()


def test_stale_socket_is_replaced(sock_path: Path) -> None:
    sock_path.parent.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays, nobody listens: a crashed monitor
    with Engine(socket_path=sock_path) as eng:
        s = connect(sock_path)
        s.sendall(v1())
        wait_for(lambda: eng.snapshot().events == 1)
        assert any("stale" in n for n in eng.snapshot().source.notices)
        s.close()


def test_live_socket_is_not_taken_over(sock_path: Path) -> None:
    first = Engine(socket_path=sock_path)
    first.start()
    try:
        with pytest.raises(SocketError, match="another monitor is listening"):
            Engine(socket_path=sock_path).start()
        s = connect(sock_path)  # the first monitor still serves
        s.close()
    finally:
        first.stop()


def test_non_socket_file_is_never_deleted(sock_path: Path) -> None:
    sock_path.parent.mkdir(mode=0o700)
    sock_path.write_text("precious")
    with pytest.raises(SocketError, match="not a socket"):
        clear_stale(sock_path)
    assert sock_path.read_text() == "precious"


def test_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(SocketError, match="written by others"):
        SocketServer(d / "fd.sock", lambda e, r: None).bind()


def test_cli_exit_code_3_when_socket_is_served(sock_path: Path) -> None:
    from flightdeck.cli import main

    first = Engine(socket_path=sock_path)
    first.start()
    try:
        assert main(["tail", "--socket", str(sock_path), "--json"]) == 3
    finally:
        first.stop()


def test_real_recorders_over_the_socket_pause_and_ack(sock_path: Path) -> None:
    from flightdeck.recorder.recorder import Recorder

    with Engine(socket_path=sock_path) as eng:
        recs = [Recorder(socket=sock_path, run=f"r{i}", agent=f"agent{i}") for i in range(2)]
        try:
            for rec in recs:
                with rec.call(provider="anthropic", model="claude-3-5-sonnet") as call:
                    call.sent()
                    call.received()
                    call.set_usage({"input_tokens": 100, "output_tokens": 5})
            wait_for(lambda: eng.snapshot().events == 2, 15)  # generous: the machine may be busy
            cmd = eng.send("pause", target={"agent": "agent0"})
            wait_for(lambda: recs[0].paused, 15)
            recs[0].model("claude-3-5-sonnet")  # the recorder applies commands on its next call site
            wait_for(lambda: any(c.id == cmd.id and c.ack_ms is not None for c in eng.snapshot().commands), 15)
            assert not recs[1].paused
        finally:
            for rec in recs:
                rec.close()


def test_client_sending_only_garbage_is_cut_off_alone(sock_path: Path) -> None:
    from flightdeck.ingest import server as server_mod

    with Engine(socket_path=sock_path) as eng:
        good = connect(sock_path)
        bad = connect(sock_path)
        wait_for(lambda: eng.snapshot().source.connections == 2)
        try:
            bad.sendall(b"not json at all\n" * (server_mod.MAX_GARBAGE_RUN + 5))
        except OSError:
            pass
        wait_for(lambda: eng.snapshot().source.connections == 1)
        wait_for(lambda: eng.snapshot().rejected > server_mod.MAX_GARBAGE_RUN)
        assert any("bad lines in a row" in n for n in eng.snapshot().source.notices)
        good.sendall(v1())
        wait_for(lambda: eng.events_counted == 1)
        good.close()
        bad.close()


# --- under load (issue 9) ---------------------------------------------------------------

_LOADED_SERVER = r"""
import json, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (120, 120))
from flightdeck.ingest.server import SocketServer
counted, notices = [], []
server = SocketServer(sys.argv[1], lambda evs, rej: counted.extend(evs), on_notice=notices.append,
                      idle_evict=float(sys.argv[2]))
server.start()
hog = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[3]))]  # descriptors the monitor uses elsewhere
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps({"events": len(counted), "accept_failures": server.accept_failures, "evicted": server.evicted,
                  "full_refused": server.full_refused, "cap": server.max_connections, "notices": notices}), flush=True)
server.stop()
"""


def _flood(path: Path, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.05)
        try:
            s.connect(str(path))
        except OSError:  # the backlog is full: that client waits outside, as a real one would
            s.close()
            continue
        socks.append(s)
    return socks


@pytest.mark.parametrize(("hog", "expect"), [(80, "out of descriptors"), (0, "connections")])
def test_idle_connections_past_the_fd_limit_neither_spin_nor_lock_out_new_agents(
        sock_path: Path, hog: int, expect: str) -> None:
    import json
    import subprocess
    import sys

    sock_path.parent.mkdir(mode=0o700)
    proc = subprocess.Popen([sys.executable, "-c", _LOADED_SERVER, str(sock_path), "0.3", str(hog)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        idle = _flood(sock_path, 300)  # connected, then silent
        time.sleep(1.0)  # a spinning loop would call accept() tens of thousands of times meanwhile
        agent = connect(sock_path)
        agent.sendall(v1(agent="late"))
        time.sleep(1.0)  # its place is made once an idle one has been silent 0.3 s
        proc.stdin.write("\n")
        proc.stdin.flush()
        doc = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    for s in idle:
        s.close()
    assert doc["events"] == 1, doc  # the new agent was served
    assert doc["accept_failures"] < 100, doc  # rested, not retried in a tight loop
    assert doc["evicted"] >= 1 and any(expect in n for n in doc["notices"]), doc


def test_a_client_that_breaks_the_parser_is_cut_off_alone(sock_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flightdeck.ingest import formats

    real = formats.FileFormat.parse

    def fragile(self, line):  # type: ignore[no-untyped-def]
        if b"boom" in line:
            raise RuntimeError("parser bug")
        return real(self, line)

    monkeypatch.setattr(formats.FileFormat, "parse", fragile)
    with Engine(socket_path=sock_path) as eng:
        bad = connect(sock_path)
        bad.sendall(b'{"boom":1}\n')
        wait_for(lambda: any("parser bug" in n for n in eng.snapshot().source.notices))
        good = connect(sock_path)
        good.sendall(v1(agent="after"))
        wait_for(lambda: eng.snapshot().events == 1)
        bad.close()
        good.close()


def test_a_deeply_nested_first_line_never_kills_the_socket_thread(sock_path: Path) -> None:
    with Engine(socket_path=sock_path) as eng:
        deep = connect(sock_path)
        deep.sendall(b'{"a":' * 100_000 + b"\n")
        wait_for(lambda: eng.snapshot().rejected == 1)
        later = connect(sock_path)
        later.sendall(v1(agent="later"))
        wait_for(lambda: eng.snapshot().events == 1)
        deep.close()
        later.close()
