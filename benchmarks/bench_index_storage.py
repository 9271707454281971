"""How to store the index's decoded events: the candidates measured on the same events.

Reads the events of a history through the index's reader (``--path``, a folder
of logs), then for each storage: bytes on disk, encode time, and the time to
get the Event objects back (what a warm report needs), plus the import time
of the library (numpy: its import only, if installed). SQLite stores 20
columns only (not tags, prompt_hash, message, price_source, ...), so it is
smaller than a store that keeps everything a figure may need.

    python benchmarks/bench_index_storage.py --path DIR
"""

from __future__ import annotations

import argparse
import gc
import math
import pickle
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from flightdeck.core.events import Event, Latency, Usage
from flightdeck.index.reader import _capture
from flightdeck.ingest.scan import detect_file_format, expand, open_log

_COLS = ("ts", "kind", "id", "run", "agent", "provider", "route", "model", "name", "cost_usd", "cost_status",
         "input", "output", "cache_read", "cache_write", "reasoning", "cache_write_1h", "ttft", "gen", "total")


def events_of(path: str) -> list[Event]:
    out: list[Event] = []
    for p in expand([path]):
        with open_log(p) as f:
            out.extend(_capture(f, str(p), detect_file_format(p), 0, p.stat().st_size).events)
    return out


def best(fn: Callable[[], object], rounds: int = 3) -> float:
    """Best of ``rounds``, the cyclic GC off as the index's reader has it."""
    times = []
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return min(times)


def import_ms(module: str) -> float | None:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(proc.stdout) * 1000 if proc.returncode == 0 else None


def sqlite_rows(events: list[Event]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for e in events:
        u = e.usage or Usage()
        lat = e.latency_ms or Latency()
        rows.append((e.ts, e.kind, e.id, e.run, e.agent, e.provider, e.route, e.model, e.name,
                     e.cost_usd if isinstance(e.cost_usd, str) else None, e.cost_status, u.input_tokens,
                     u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens,
                     u.cache_write_1h_tokens, lat.ttft, lat.gen, lat.total))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", required=True)
    args = ap.parse_args()
    events = events_of(args.path)
    print(f"{len(events)} events (machine shared: figures are noisy)")
    enc = msgspec.msgpack.Encoder()
    dec = msgspec.msgpack.Decoder(list[Event])
    results = []
    blob = enc.encode(events)
    results.append(("msgpack (msgspec, core dep)", len(blob), best(lambda: enc.encode(events)),
                    best(lambda: dec.decode(blob)), import_ms("msgspec")))
    jenc, jdec = msgspec.json.Encoder(), msgspec.json.Decoder(list[Event])
    jblob = jenc.encode(events)
    results.append(("JSON (msgspec)", len(jblob), best(lambda: jenc.encode(events)),
                    best(lambda: jdec.decode(jblob)), import_ms("msgspec")))
    pblob = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
    results.append(("pickle", len(pblob), best(lambda: pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)),
                    best(lambda: pickle.loads(pblob)), import_ms("pickle")))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "i.sqlite"
        rows = sqlite_rows(events)

        def write() -> None:
            db.unlink(missing_ok=True)
            con = sqlite3.connect(db)
            con.execute(f"create table e ({', '.join(_COLS)})")
            con.executemany(f"insert into e values ({', '.join('?' * len(_COLS))})", rows)
            con.commit()
            con.close()

        def read() -> list[Event]:
            con = sqlite3.connect(db)
            out = []
            for r in con.execute("select * from e"):
                out.append(Event(ts=r[0], kind=r[1], id=r[2], run=r[3], agent=r[4], provider=r[5], route=r[6],
                                 model=r[7], name=r[8], cost_usd=r[9], cost_status=r[10],
                                 usage=Usage(input_tokens=r[11], output_tokens=r[12], cache_read_tokens=r[13],
                                             cache_write_tokens=r[14], reasoning_tokens=r[15],
                                             cache_write_1h_tokens=r[16]),
                                 latency_ms=Latency(ttft=r[17], gen=r[18], total=r[19])))
            con.close()
            return out

        w = best(write)
        results.append(("SQLite (20 columns, stdlib)", db.stat().st_size, w, best(read), import_ms("sqlite3")))
    np_ms = import_ms("numpy")
    if np_ms is not None:
        results.append(("numpy .npy columns (import only)", 0, math.nan, math.nan, np_ms))
    print(f"{'storage':34} {'MB':>7} {'encode s':>9} {'to Events s':>12} {'import ms':>10}")
    for name, size, e, d, imp in results:
        imp_s = f"{imp:10.0f}" if imp is not None else "       n/a"
        print(f"{name:34} {size / 1e6:7.1f} {e:9.3f} {d:12.3f} {imp_s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
