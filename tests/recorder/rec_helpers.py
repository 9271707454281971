"""Shared helpers for the recorder tests (a plain module: conftest names clash across folders)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from flightdeck.core.events import Event, decode_line


class FakeMono:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def read_events(path: Path) -> list[Event]:
    out = []
    for line in path.read_bytes().splitlines():
        ev = decode_line(line)
        assert isinstance(ev, Event), (line, ev)
        out.append(ev)
    return out


def of_kind(path: Path, kind: str) -> list[Event]:
    return [e for e in read_events(path) if e.kind == kind]


class Monitor:
    """A minimal monitor: accepts agents, collects their lines, can send commands back."""

    def __init__(self, path: str) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        os.chmod(path, 0o600)
        self.server.listen()
        self.conns: list[socket.socket] = []
        self.lines: list[bytes] = []
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.05)
        while not self.stop:
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            *done, buf = buf.split(b"\n")
            with self.lock:
                self.lines.extend(done)

    def events(self) -> list[Event]:
        with self.lock:
            return [e for e in (decode_line(x) for x in self.lines) if isinstance(e, Event)]

    def broadcast(self, line: bytes) -> None:
        for c in self.conns:
            c.sendall(line)

    def wait_for(self, pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.events()):
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.server.close()
