"""Server CPU with 300 idle connections pushed past a low descriptor limit.

The monitor's socket server runs in a child with ``RLIMIT_NOFILE`` 120; this
process opens 300 connections and leaves them silent, then reads the child's
CPU time over five seconds from /proc. A listener left readable on EMFILE
spins (measured on the first wave: ~50 % of a core); resting it costs nothing.

    python benchmarks/bench_socket_flood.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (120, 120))
from flightdeck.ingest.server import SocketServer
server = SocketServer(sys.argv[1], lambda e, r: None, on_notice=lambda t: None)
server.start()
print("ready", flush=True)
sys.stdin.readline()
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o700)
    path = os.path.join(folder, "s.sock")
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    socks = []
    for _ in range(300):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(0.05)
        try:
            s.connect(path)
        except OSError:  # the backlog is full: this client waits outside
            s.close()
            continue
        socks.append(s)
    time.sleep(0.5)
    c0, t0 = _cpu_seconds(child.pid), time.monotonic()
    time.sleep(5)
    c1, t1 = _cpu_seconds(child.pid), time.monotonic()
    print(f"server CPU with {len(socks)} idle connections past a 120-fd limit: "
          f"{100 * (c1 - c0) / (t1 - t0):.0f} % of a core")
    child.kill()
    child.wait()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
