"""Cockpit under load: key-to-sidecar latency, CPU, and time to first screen.

Runs the real app headless (``App.run_test``) on the real ingest ``Engine``
while a separate writer process appends telemetry at ``--rate`` events per
second, and compares against baselines measured in the same run:

- key latency: ``p`` pressed -> the pause line visible in the sidecar
  (``App.simulate_key``, then a stat every 0.5 ms), idle vs loaded;
- CPU: the monitor process's CPU seconds per wall second (all threads) and
  the UI thread's alone, idle app vs loaded app, and the UI thread at a fifth
  of the rate (rendering is per tick, so it should not grow with the rate);
- first screen: how long until the first frame on a large log vs an empty one.

    /tmp/venv/bin/python benchmarks/bench_cockpit.py [--rate 5000] [--seconds 6] [--presses 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.core.control import sidecar_path
from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.ingest.engine import Engine

WRITER = r"""
import sys, time
from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ids = IdSource()
models = ("claude-3-5-sonnet", "gpt-4o-mini", "gemini-1.5-flash")
steps = ("plan", "reflect", "act", "memory_compaction")
tick = 0.01
per_tick = rate * tick
written, carry = 0, 0.0
start = time.monotonic()
with open(path, "ab", buffering=0) as f:
    while (now := time.monotonic()) - start < seconds:
        carry += per_tick
        n = int(carry); carry -= n
        ts = time.time()
        chunk = b"".join(encode_event(Event(
            v=1, ts=ts, kind="llm_call", id=ids(), run="r-bench", agent="bench", provider="anthropic",
            route="direct", model=models[i % 3], name=steps[i % 4], stream=True,
            usage=Usage(input_tokens=900, output_tokens=300, cache_read_tokens=5000, cache_write_tokens=200),
            cost_usd="0.004500", cost_status="priced",
            latency_ms=Latency(pre=20.0, ttft=350.0, gen=800.0, post=30.0, total=1200.0))) for i in range(n))
        f.write(chunk)
        written += n
        time.sleep(max(0.0, start + (tick * (written / per_tick if per_tick else 0)) - time.monotonic()))
print(written)
"""


def size_of(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def seed_log(path: Path, events: int) -> None:
    ids = IdSource()
    now = time.time()
    with path.open("wb") as f:
        batch = []
        for i in range(events):
            batch.append(encode_event(Event(
                v=1, ts=now - events * 0.01 + i * 0.01, kind="llm_call", id=ids(), run="r-seed",
                provider="openai", route="direct", model="gpt-4o-mini", name="plan", stream=False,
                usage=Usage(input_tokens=500, output_tokens=100), cost_usd="0.000300", cost_status="priced",
                latency_ms=Latency(pre=5.0, gen=400.0, post=5.0, total=410.0))))
            if len(batch) == 5000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))


async def measure(log: Path, *, rate: float, seconds: float, presses: int) -> dict[str, float]:
    """Run the app on ``log`` (with a writer at ``rate`` if > 0); key latency and CPU."""
    engine = Engine([log])
    app = FlightdeckApp(engine, refresh_interval=0.25)
    writer = None
    sidecar = sidecar_path(log)
    async with app.run_test(size=(160, 48), headless=True) as pilot:
        await pilot.pause(0.5)
        if rate > 0:
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(rate), str(seconds + 2)],
                                      stdout=subprocess.PIPE)
            await asyncio.sleep(1.0)  # let ingest reach its steady state
        events_before = app.live.events if app.live else 0
        cpu0, ui0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        latencies: list[float] = []
        gap = seconds / max(presses, 1)
        for _ in range(presses):
            await asyncio.sleep(gap)
            size = size_of(sidecar)
            t0 = time.perf_counter()
            # The key goes through the app's message queue like a terminal's;
            # we then stat the sidecar every 0.5 ms until the line is there.
            app.simulate_key("p")
            deadline = t0 + 2.0
            while size_of(sidecar) == size and time.perf_counter() < deadline:
                await asyncio.sleep(0.0005)
            latencies.append((time.perf_counter() - t0) * 1000)
        wall = time.perf_counter() - wall0
        cpu, ui = time.process_time() - cpu0, time.thread_time() - ui0
        events_after = app.live.events if app.live else 0
        ticks = app.ticks
    written = int(writer.communicate()[0] or 0) if writer else 0
    return {
        "cpu_per_s": cpu / wall,
        "ui_cpu_per_s": ui / wall,
        "key_p50_ms": statistics.median(latencies),
        "key_max_ms": max(latencies),
        "ingested_per_s": (events_after - events_before) / wall,
        "written": written,
        "ticks": ticks,
    }


async def first_screen(log: Path) -> tuple[float, float]:
    """Seconds until the first frame shows, and until backfill is done."""
    engine = Engine([log])
    app = FlightdeckApp(engine, refresh_interval=0.25)
    t0 = time.perf_counter()
    async with app.run_test(size=(160, 48), headless=True) as pilot:
        while app.ticks == 0:
            await asyncio.sleep(0.005)
        first = time.perf_counter() - t0
        while engine.backfilling or not app.live or app.live.source.backfilling:
            await asyncio.sleep(0.02)
        done = time.perf_counter() - t0
        await pilot.pause()
    return first, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--big", type=int, default=200_000, help="events in the large log for first-screen")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        idle_log, busy_log = Path(tmp, "idle.jsonl"), Path(tmp, "busy.jsonl")
        idle_log.touch()
        busy_log.touch()
        idle = asyncio.run(measure(idle_log, rate=0, seconds=args.seconds, presses=args.presses))
        busy = asyncio.run(measure(busy_log, rate=args.rate, seconds=args.seconds, presses=args.presses))
        low_log = Path(tmp, "low.jsonl")
        low_log.touch()
        low = asyncio.run(measure(low_log, rate=args.rate / 5, seconds=args.seconds, presses=args.presses))
        empty_log, big_log = Path(tmp, "empty.jsonl"), Path(tmp, "big.jsonl")
        empty_log.touch()
        seed_log(big_log, args.big)
        asyncio.run(first_screen(empty_log))  # warm-up: imports, CSS parse
        empty_first, _ = asyncio.run(first_screen(empty_log))
        big_first, big_done = asyncio.run(first_screen(big_log))
    print(f"writer target {args.rate:.0f} ev/s; monitor ingested {busy['ingested_per_s']:.0f} ev/s "
          f"({busy['written']} lines written)")
    print(f"key p -> sidecar   idle p50 {idle['key_p50_ms']:.1f} ms max {idle['key_max_ms']:.1f} ms | "
          f"loaded p50 {busy['key_p50_ms']:.1f} ms max {busy['key_max_ms']:.1f} ms | "
          f"ratio p50 {busy['key_p50_ms'] / idle['key_p50_ms']:.2f}x")
    print(f"process CPU/s      idle {idle['cpu_per_s']:.3f} | loaded {busy['cpu_per_s']:.3f} | "
          f"ratio {busy['cpu_per_s'] / max(idle['cpu_per_s'], 1e-9):.1f}x")
    print(f"UI thread CPU/s    idle {idle['ui_cpu_per_s']:.3f} | loaded {busy['ui_cpu_per_s']:.3f} | "
          f"ratio {busy['ui_cpu_per_s'] / max(idle['ui_cpu_per_s'], 1e-9):.1f}x")
    print(f"UI thread CPU/s at {args.rate / 5:.0f} vs {args.rate:.0f} ev/s: {low['ui_cpu_per_s']:.3f} vs "
          f"{busy['ui_cpu_per_s']:.3f} (ratio {busy['ui_cpu_per_s'] / max(low['ui_cpu_per_s'], 1e-9):.2f}x for 5x the events)")
    print(f"first screen       empty log {empty_first * 1000:.0f} ms | {args.big} events "
          f"{big_first * 1000:.0f} ms (ratio {big_first / empty_first:.2f}x), backfill done {big_done:.2f} s")


if __name__ == "__main__":
    main()
