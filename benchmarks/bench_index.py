"""The parse-once index: a second ``report`` against the cold one, in the same run.

Generates a Claude Code history (``bench_claude_code.Generator``: sessions
with streamed copies of each response, several models), then, in interleaved
rounds, each in child processes, with wall time, CPU time (user + system of
the child) and peak RSS:

- ``cold``: ``flightdeck report --json`` with an empty cache (parses all,
  writes the index);
- ``warm``: the same again (the history unchanged);
- ``grown``: after 1 % new lines (half in new sessions, half appended to
  existing ones), then the history is put back as it was;
- ``no-cache``: ``report --no-cache`` (the parallel scan without the index).

Prints min and median of each, the ratios to the cold run of the same round,
the index size against the log size, and checks the totals agree.

    python benchmarks/bench_index.py --lines 200000 --rounds 3 [--keep DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_claude_code import Generator  # a sibling script, not a package


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, dict[str, object]]:
    """Wall seconds, CPU seconds, peak RSS bytes and the JSON output of one child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out: dict[str, bytes] = {}

    def drain(name: str, stream: IO[bytes]) -> None:
        out[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("o", proc.stdout), ("e", proc.stderr))]
    for t in threads:
        t.start()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {out.get('e', b'').decode()[-800:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss * 1024, json.loads(out["o"])


def grow(projects: Path, gen: Generator, share: float, seed: int) -> list[tuple[Path, int | None]]:
    """Add ``share`` of the history's lines: new sessions, and lines appended to existing ones.

    Returns what to undo: (file, its old size) for grown files, (file, None) for new ones.
    """
    undo: list[tuple[Path, int | None]] = []
    target = max(2, int(gen.lines * share))
    files = sorted(projects.rglob("*.jsonl"), key=str)
    before = set(files)
    extra = Generator(projects.parent / f"grow-{seed}", seed, 0.0)
    extra.generate(target // 2)  # new sessions, in the history's own projects
    for src in sorted((projects.parent / f"grow-{seed}" / "projects").rglob("*.jsonl"), key=str):
        dst = projects / src.parent.name / f"new-{seed}-{src.name}"
        dst.parent.mkdir(exist_ok=True)
        shutil.move(src, dst)
        undo.append((dst, None))
    shutil.rmtree(projects.parent / f"grow-{seed}")
    more = Generator(projects.parent / f"more-{seed}", seed + 1, 0.0)
    more.generate(target - target // 2)
    sessions = sorted((projects.parent / f"more-{seed}" / "projects").rglob("*.jsonl"), key=str)
    for i, src in enumerate(sessions):  # each appended to an existing session: it went on
        dst = sorted(before, key=str)[(i * 7919) % len(before)]
        undo.append((dst, dst.stat().st_size))
        with open(dst, "ab") as f:
            f.write(src.read_bytes())
    shutil.rmtree(projects.parent / f"more-{seed}")
    return undo


def restore(undo: list[tuple[Path, int | None]]) -> None:
    for path, size in reversed(undo):
        if size is None:
            path.unlink()
        else:
            with open(path, "r+b") as f:
                f.truncate(size)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="generate the history here and keep it")
    ap.add_argument("--reuse", action="store_true", help="with --keep: use the history already there")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="fd-index-"))
    projects = root / "projects"
    gen = Generator(root, 1, 0.0)
    if not (args.reuse and projects.is_dir()):
        shutil.rmtree(projects, ignore_errors=True)
        t0 = time.perf_counter()
        gen.generate(args.lines)
        print(f"generated {gen.lines} lines in {time.perf_counter() - t0:.1f}s")
    else:
        gen.lines = sum(p.read_bytes().count(b"\n") for p in projects.rglob("*.jsonl"))
    log_bytes = du(projects)
    files = len(list(projects.rglob("*.jsonl")))
    print(f"history: {gen.lines} lines, {log_bytes / 1e6:.1f} MB, {files} files (machine shared: figures are noisy)")
    py = sys.executable
    report = [py, "-m", "flightdeck", "report", str(projects), "--json"]
    times: dict[str, list[tuple[float, float, int]]] = {k: [] for k in ("cold", "warm", "grown", "no-cache")}
    ratios: dict[str, list[float]] = {"warm": [], "grown": [], "warm cpu": [], "grown cpu": []}
    index_bytes = 0
    try:
        for r in range(args.rounds):
            cache = root / f"cache-{r}"
            shutil.rmtree(cache, ignore_errors=True)
            env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPYCACHEPREFIX=str(root / "pycache"))
            # Bytecode cached as an installed package has it (this machine sets PYTHONDONTWRITEBYTECODE).
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if r == 0:
                run([*report, "--no-cache", "--since", "2100-01-01"], env)  # writes the bytecode, not timed
            cold = run(report, env)
            warm = run(report, env)
            index_bytes = du(cache)
            undo = grow(projects, gen, 0.01, 1000 + r)
            try:
                grown = run(report, env)
                grown_fresh = run([*report, "--no-cache"], env)
                assert grown[3]["cost_usd"] == grown_fresh[3]["cost_usd"]
                assert grown[3]["tokens"] == grown_fresh[3]["tokens"]
            finally:
                restore(undo)
            nocache = run([*report, "--no-cache"], env)
            for a in (warm, nocache):
                assert a[3]["cost_usd"] == cold[3]["cost_usd"] and a[3]["tokens"] == cold[3]["tokens"]
            for name, res in (("cold", cold), ("warm", warm), ("grown", grown), ("no-cache", nocache)):
                times[name].append(res[:3])
            ratios["warm"].append(warm[0] / cold[0])
            ratios["grown"].append(grown[0] / cold[0])
            ratios["warm cpu"].append(warm[1] / cold[1])
            ratios["grown cpu"].append(grown[1] / cold[1])
            print(f"round {r + 1}: cold {cold[0]:.2f}s, warm {warm[0]:.3f}s, after 1 % {grown[0]:.2f}s, "
                  f"--no-cache {nocache[0]:.2f}s; total {cold[3]['cost_usd']} USD")
            shutil.rmtree(cache)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'run':10} {'wall min':>9} {'wall med':>9} {'cpu min':>8} {'cpu med':>8} {'peak RSS MB':>12}")
    for name, rows in times.items():
        walls, cpus, rss = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
        print(f"{name:10} {min(walls):9.3f} {statistics.median(walls):9.3f} {min(cpus):8.3f} "
              f"{statistics.median(cpus):8.3f} {max(rss) / 1e6:12.1f}")
    print("\nratios to the cold run of the same round (min / median):")
    for name, vals in ratios.items():
        print(f"  {name:10} {min(vals):.3f}x / {statistics.median(vals):.3f}x")
    print(f"index size: {index_bytes / 1e6:.1f} MB = {index_bytes / log_bytes:.1%} of the logs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
