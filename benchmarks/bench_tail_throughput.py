"""Sustained ingest: another process appends 20,000 events/s; does the monitor keep up?

A writer process appends v1 lines at ``--rate`` events/s (batches every 10
ms, as a busy fleet would) for ``--seconds`` (default 60). The Engine follows
the file in this process. Every second the lag (events written minus events
counted) is sampled; "no growing lag" means the median lag in the last quarter
is no larger than in the first, and every sample of the last quarter stays
below one second's worth of events.

Printed in the same run: the lag samples, the monitor's CPU use (one core =
100 %), and the baseline: the rate the same Engine reads the finished file
from scratch (its capacity), as a ratio to the offered rate.

    python benchmarks/bench_tail_throughput.py [--rate 20000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.ingest.engine import Engine

MODELS = ("claude-3-5-sonnet", "claude-3-5-haiku", "gpt-4o", "gpt-4o-mini")


def writer(path: str, rate: int, seconds: float, written, started) -> None:  # type: ignore[no-untyped-def]
    ids = IdSource()
    batch_every = 0.01
    per_batch = max(1, int(rate * batch_every))
    n = 0
    with open(path, "ab", buffering=0) as fh:
        started.set()
        t0 = time.perf_counter()
        next_at = t0
        while time.perf_counter() - t0 < seconds:
            now = time.time()
            lines = b"".join(
                encode_event(Event(v=1, ts=now, kind="llm_call", id=ids(), run=f"r{(n + i) % 7}", agent=f"a{(n + i) % 3}",
                                   provider="openai" if "gpt" in MODELS[(n + i) % 4] else "anthropic", route="direct",
                                   model=MODELS[(n + i) % 4], name="step", stream=True,
                                   usage=Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=800),
                                   cost_usd="0.001234", cost_status="priced",
                                   latency_ms=Latency(pre=5.0, ttft=300.0 + i, gen=700.0, post=3.0, total=1008.0 + i)))
                for i in range(per_batch)
            )
            fh.write(lines)
            n += per_batch
            written.value = n
            next_at += batch_every
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "busy.jsonl"
        path.write_bytes(b"")
        ctx = mp.get_context("spawn")
        written = ctx.Value("q", 0, lock=False)
        started = ctx.Event()
        eng = Engine([path])
        eng.start()
        eng.wait_backfilled(10)
        time.sleep(0.5)
        proc = ctx.Process(target=writer, args=(str(path), args.rate, args.seconds, written, started))
        proc.start()
        started.wait(30)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        samples: list[tuple[float, int, int]] = []
        send_ms: list[float] = []
        while proc.is_alive():
            time.sleep(1.0)
            samples.append((time.perf_counter() - t0, written.value, eng.events_counted))
            s0 = time.perf_counter()
            eng.send("resume", reason="benchmark: send() under load")  # a key press while ingesting
            send_ms.append((time.perf_counter() - s0) * 1000)
        proc.join()
        total = written.value
        deadline = time.perf_counter() + 30
        while eng.events_counted < total and time.perf_counter() < deadline:
            time.sleep(0.01)
        drain_s = time.perf_counter() - t0 - samples[-1][0] if samples else 0.0
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        counted = eng.events_counted
        eng.stop()

        fresh = Engine([path])
        b0 = time.perf_counter()
        fresh.backfill()
        capacity = fresh.events_counted / (time.perf_counter() - b0)

    lags = [w - c for _t, w, c in samples]
    q = max(1, len(lags) // 4)
    # A growing lag shows in the typical sample, not in one spike (a shared
    # machine stalls now and then): compare the quarters' medians, and keep
    # every sample of the last quarter under one second's worth of events.
    first, last = statistics.median(lags[:q]), statistics.median(lags[-q:])
    worst_last = max(lags[-q:])
    print(f"offered {args.rate} events/s for {args.seconds:.0f}s: {total} written, {counted} counted "
          f"(all counted {drain_s:.2f}s after the writer stopped)")
    print("lag (events behind) each second: " + " ".join(str(x) for x in lags))
    grows = last > max(first, args.rate // 10) or worst_last >= args.rate
    print(f"median lag first quarter {first:.0f}, last quarter {last:.0f}; worst in the last quarter {worst_last} "
          f"(one second = {args.rate}): {'LAG GROWS' if grows else 'no growing lag'}")
    if send_ms:
        print(f"send() under load: max {max(send_ms):.1f} ms, mean {sum(send_ms) / len(send_ms):.1f} ms (must be < 100)")
    print(f"monitor CPU while following: {100 * cpu / wall:.0f}% of one core")
    print(f"baseline: the same engine reads the finished file at {capacity:,.0f} events/s = "
          f"{capacity / args.rate:.2f}x the offered rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
