"""The socket ev/s figure against the true rate, with agents sending one line per send().

Senders (processes, several connections each) write one event per
``sendall`` at a fixed total rate for a while; the monitor's
``events_per_second`` is compared with the events it really counted over the
same last five seconds. Prints both and their ratio (1.00 is a true figure).

    python benchmarks/bench_socket_rate.py [--rate 20000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import tempfile
import time
from pathlib import Path

from flightdeck.core.events import Event, IdSource, Usage, encode_event
from flightdeck.ingest.engine import RATE_SECONDS, Engine


def _sender(path: str, rate: float, seconds: float, conns: int, start_at: float) -> None:
    ids = IdSource()
    socks = []
    for _ in range(conns):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    line = encode_event(Event(v=1, ts=time.time(), kind="llm_call", id=ids(), run="r", provider="openai",
                              model="gpt-4o", usage=Usage(input_tokens=1)))
    while time.time() < start_at:
        time.sleep(0.001)
    sent, t0 = 0, time.monotonic()
    while (now := time.monotonic() - t0) < seconds:
        due = int(now * rate)
        while sent < due:
            ev = line.replace(b'"id":"', b'"id":"' + ids().encode() + b"x", 1)
            socks[sent % conns].sendall(ev)  # one line per send: the many small batches of real agents
            sent += 1
        time.sleep(0.0005)
    for s in socks:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--conns", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s" / "fd.sock"
        eng = Engine(socket_path=path)
        eng.start()
        start_at = time.time() + 0.5
        procs = [mp.Process(target=_sender, args=(str(path), args.rate / args.procs, args.seconds, args.conns,
                                                  start_at)) for _ in range(args.procs)]
        for p in procs:
            p.start()
        time.sleep(0.5 + args.seconds - RATE_SECONDS - 1.0)
        before, t_before = eng.events_counted, time.monotonic()
        time.sleep(RATE_SECONDS)
        figure = eng.snapshot().source.events_per_second
        true = (eng.events_counted - before) / (time.monotonic() - t_before)
        for p in procs:
            p.join()
        eng.stop()
    print(f"asked {args.rate:,.0f}/s; counted {true:,.0f}/s; the ev/s figure says {figure:,.0f}/s; "
          f"figure/true = {figure / true:.2f}")


if __name__ == "__main__":
    main()
