"""Load on `flightdeck tail --otlp`: many senders, a fixed total span rate, exact accounting.

Starts ``flightdeck tail --otlp 127.0.0.1:PORT --json --interval 1`` as a
subprocess, then ``--senders`` threads in this process each POST
``ExportTraceServiceRequest`` protobuf bodies of ``--batch`` GenAI spans
(distinct span ids, the shape the OpenTelemetry SDK's OTLPSpanExporter sends)
over a keep-alive connection, paced so that all of them together send
``--rate`` spans per second for ``--seconds``. A request refused with 503
(queue full) is counted and not resent: the point is to see that the monitor
refuses rather than grows.

Every second it prints the spans sent, accepted, refused and counted by the
monitor (from its ``--json`` snapshots) and the lag (accepted - counted).
At the end: whether counted == accepted exactly, whether the monitor's
``otlp queue full`` rejects equal the senders' 503s, the lag's trend (the
mean of the last third against the first third: a growing lag is a monitor
that falls behind), and the monitor's peak RSS.

    python benchmarks/bench_otlp.py --senders 50 --rate 20000 --seconds 60

The senders share the machine with the monitor: on a small or busy machine
the rate actually offered is printed next to the rate asked for.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    return KeyValue(key=key, value=AnyValue(int_value=value))


def body(sender: int, seq: int, batch: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", f"agent-{sender}"))
    spans = rs.scope_spans.add().spans
    now = time.time_ns()
    attrs = [kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "openai"),
             kv("gen_ai.request.model", "gpt-4o"), kv("gen_ai.usage.input_tokens", 1200),
             kv("gen_ai.usage.cache_read.input_tokens", 200), kv("gen_ai.usage.output_tokens", 100),
             kv("gen_ai.conversation.id", f"conv-{sender}")]
    trace_id = sender.to_bytes(8, "big") + seq.to_bytes(8, "big")
    for i in range(batch):
        spans.append(Span(trace_id=trace_id, span_id=(i + 1).to_bytes(8, "big"), name="chat gpt-4o",
                          kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now - 800_000_000,
                          end_time_unix_nano=now, attributes=attrs))
    return req.SerializeToString()


class Sender(threading.Thread):
    def __init__(self, n: int, port: int, per_second: float, batch: int, until: float) -> None:
        super().__init__(daemon=True)
        self.n, self.port, self.batch, self.until = n, port, batch, until
        self.interval = batch / per_second
        self.sent = self.accepted = self.refused = self.errors = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        seq = 0
        next_at = time.monotonic() + (self.n % 50) * self.interval / 50  # spread the senders
        while time.monotonic() < self.until:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += self.interval
            data = body(self.n, seq, self.batch)
            seq += 1
            try:
                conn.request("POST", "/v1/traces", data, {"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                with self.lock:
                    self.errors += 1
                continue
            with self.lock:
                self.sent += self.batch
                if status == 200:
                    self.accepted += self.batch
                elif status == 503:
                    self.refused += 1
                else:
                    self.errors += 1
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--senders", type=int, default=50)
    ap.add_argument("--rate", type=float, default=20000, help="spans per second, all senders together")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--batch", type=int, default=100, help="spans per request (the SDK sends up to 512)")
    args = ap.parse_args()

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "flightdeck", "tail", "--otlp", f"127.0.0.1:{port}",
                             "--json", "--interval", "1"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    snaps: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            snaps.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    start = time.monotonic()
    until = start + args.seconds
    senders = [Sender(i, port, args.rate / args.senders, args.batch, until) for i in range(args.senders)]
    for s in senders:
        s.start()
    samples: list[tuple[float, int, int]] = []  # (t, accepted, counted)
    print(f"{'t':>5} {'sent':>9} {'accepted':>9} {'refused':>8} {'counted':>9} {'lag':>7}")
    while any(s.is_alive() for s in senders):
        time.sleep(1.0)
        accepted = sum(s.accepted for s in senders)
        sent = sum(s.sent for s in senders)
        refused = sum(s.refused for s in senders)
        counted = snaps[-1]["events"] if snaps else 0
        t = time.monotonic() - start
        samples.append((t, accepted, counted))
        print(f"{t:5.0f} {sent:9d} {accepted:9d} {refused:8d} {counted:9d} {accepted - counted:7d}", flush=True)
    elapsed = time.monotonic() - start
    accepted = sum(s.accepted for s in senders)
    refused = sum(s.refused for s in senders)
    errors = sum(s.errors for s in senders)
    sent = sum(s.sent for s in senders)
    drain_start = time.monotonic()
    while time.monotonic() - drain_start < 120 and (not snaps or snaps[-1]["events"] < accepted):
        time.sleep(0.5)
    drain = time.monotonic() - drain_start
    time.sleep(1.5)
    final = snaps[-1] if snaps else {}
    proc.terminate()
    proc.wait(timeout=30)
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    counted = final.get("events", 0)
    full = final.get("rejected_reasons", {}).get("otlp queue full", 0)
    third = max(1, len(samples) // 3)
    lag_first = sum(a - c for _, a, c in samples[:third]) / third
    lag_last = sum(a - c for _, a, c in samples[-third:]) / third
    print()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end (shared: contended)")
    print(f"asked {args.rate:.0f} spans/s from {args.senders} senders for {args.seconds:.0f} s; "
          f"offered {sent / elapsed:.0f} spans/s ({sent} spans in {elapsed:.1f} s)")
    print(f"accepted {accepted} spans ({accepted / elapsed:.0f}/s); refused {refused} requests with 503 "
          f"({refused * args.batch} spans); transport errors {errors}")
    print(f"monitor counted {counted} ({'== accepted, exact' if counted == accepted else 'MISMATCH'}); "
          f"its 'otlp queue full' rejects {full} ({'== senders 503s' if full == refused else 'MISMATCH'})")
    print(f"lag (accepted - counted) mean: first third {lag_first:.0f}, last third {lag_last:.0f}; "
          f"drained {drain:.1f} s after the senders stopped")
    print(f"monitor peak RSS {rss_kb / 1024:.0f} MiB")
    return 0 if counted == accepted and full == refused else 1


if __name__ == "__main__":
    sys.exit(main())
