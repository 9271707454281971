"""The parse-once index: a second ``report``, ``tail --once`` and cockpit start against the cold one.

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

each for three modes (``--modes``): ``report --json``; ``tail --once --json``;
and ``engine``, the cockpit's engine without its screen, started as ``tail``
starts it (history on the ingest thread) and timed until its figures are
complete (``wait_backfilled``), interpreter start included.

Prints min and median of each, the ratios to the cold run of the same round,
the index size against the log size, and checks the totals agree.

    python benchmarks/bench_index.py --lines 200000 --rounds 3 [--modes report,tail,engine] [--keep DIR [--reuse]]
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
from bench_env import bytecode_env

# The cockpit's engine in a child: started as ``tail`` starts it for the screen
# (history on the ingest thread, settle=False), until its figures are complete.
ENGINE_CHILD = """
import sys
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.live import snapshot_line
index = None
if "--no-cache" not in sys.argv:
    from flightdeck.index.live import FollowIndex
    index = FollowIndex()
engine = Engine([sys.argv[1]], index=index)
engine.start()
engine.wait_backfilled()
sys.stdout.buffer.write(snapshot_line(engine.snapshot()))
engine.stop()
"""


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


def age(projects: Path, seconds: float = 3600.0, only: list[Path] | None = None) -> None:
    """Date every log (or those in ``only``) ``seconds`` back, as a real history is: the
    cockpit's engine hands out what a quiet file's reader holds (ingest.engine.SETTLE_SECONDS,
    from the file's last write), so a history written moments ago would be counted
    differently from one run to the next as it crosses that age.

    After growing the history only the files it changed are dated again: a real
    history's other logs keep their mtime, and one whose mtime changed is read
    again by the index (the same size and a new mtime may be a rewrite)."""
    when = time.time() - seconds
    for p in projects.rglob("*.jsonl") if only is None else only:
        if p.exists():
            os.utime(p, (when, when))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="generate the history here and keep it")
    ap.add_argument("--reuse", action="store_true", help="with --keep: use the history already there")
    ap.add_argument("--modes", default="report,tail,engine",
                    help="what to time, comma separated: report, tail (tail --once --json), engine (the cockpit's)")
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
    age(projects)
    log_bytes = du(projects)
    files = len(list(projects.rglob("*.jsonl")))
    print(f"history: {gen.lines} lines, {log_bytes / 1e6:.1f} MB, {files} files (machine shared: figures are noisy)")
    py = sys.executable
    commands = {
        "report": [py, "-m", "flightdeck", "report", str(projects), "--json"],
        "tail": [py, "-m", "flightdeck", "tail", str(projects), "--once", "--json"],
        # The cockpit's engine, without the screen: started as the cockpit starts it
        # (backfill on the ingest thread, settle=False), timed until it has complete figures.
        "engine": [py, "-c", ENGINE_CHILD, str(projects)],
    }
    modes = [m for m in args.modes.split(",") if m]
    runs = ("cold", "warm", "grown", "no-cache")
    times: dict[str, dict[str, list[tuple[float, float, int]]]] = {m: {k: [] for k in runs} for m in modes}
    ratios: dict[str, dict[str, list[float]]] = {m: {"warm": [], "grown": [], "warm cpu": [], "grown cpu": []}
                                                 for m in modes}
    index_bytes: dict[str, int] = {}
    try:
        for r in range(args.rounds):
            results: dict[str, dict[str, tuple[float, float, int, dict[str, object]]]] = {m: {} for m in modes}
            envs = {}
            for m in modes:
                cache = root / f"cache-{m}-{r}"
                shutil.rmtree(cache, ignore_errors=True)
                env = bytecode_env(root, XDG_CACHE_HOME=str(cache))  # bytecode as an installed package has it
                envs[m] = env
                if r == 0:
                    run([*commands["report"], "--no-cache", "--since", "2100-01-01"], env)  # bytecode, not timed
                results[m]["cold"] = run(commands[m], env)
                results[m]["warm"] = run(commands[m], env)
                index_bytes[m] = du(cache)
            undo = grow(projects, gen, 0.01, 1000 + r)
            changed = [p for p, _size in undo]
            age(projects, only=changed)  # the grown run and the fresh one must see the same quiet files
            try:
                for m in modes:
                    results[m]["grown"] = grown = run(commands[m], envs[m])
                    fresh = run([*commands[m], "--no-cache"], envs[m])
                    assert grown[3]["cost_usd"] == fresh[3]["cost_usd"], (
                        m, grown[3]["cost_usd"], fresh[3]["cost_usd"], grown[3].get("source"))
                    assert grown[3]["tokens"] == fresh[3]["tokens"]
            finally:
                restore(undo)
                age(projects, only=changed)
            for m in modes:
                res = results[m]
                res["no-cache"] = run([*commands[m], "--no-cache"], envs[m])
                cold = res["cold"]
                for a in (res["warm"], res["no-cache"]):
                    assert a[3]["cost_usd"] == cold[3]["cost_usd"] and a[3]["tokens"] == cold[3]["tokens"], m
                for name in runs:
                    times[m][name].append(res[name][:3])
                for name in ("warm", "grown"):
                    ratios[m][name].append(res[name][0] / cold[0])
                    ratios[m][f"{name} cpu"].append(res[name][1] / cold[1])
                first = results[modes[0]]["cold"][3]
                # Every mode counts the same history: the cockpit's engine too (it was
                # short of released files' held responses past tail.open_limit() files).
                assert (cold[3]["cost_usd"], cold[3]["tokens"]) == (first["cost_usd"], first["tokens"]), (
                    m, cold[3]["cost_usd"], modes[0], first["cost_usd"])
                print(f"round {r + 1} {m}: cold {cold[0]:.2f}s, warm {res['warm'][0]:.3f}s, "
                      f"after 1 % {res['grown'][0]:.2f}s, --no-cache {res['no-cache'][0]:.2f}s; "
                      f"total {cold[3]['cost_usd']} USD")
                shutil.rmtree(root / f"cache-{m}-{r}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    for m in modes:
        print(f"\n{m}: {'run':10} {'wall min':>9} {'wall med':>9} {'cpu min':>8} {'cpu med':>8} {'peak RSS MB':>12}")
        for name, rows in times[m].items():
            walls, cpus, rss = [x[0] for x in rows], [x[1] for x in rows], [x[2] for x in rows]
            print(f"{'':{len(m) + 2}}{name:10} {min(walls):9.3f} {statistics.median(walls):9.3f} {min(cpus):8.3f} "
                  f"{statistics.median(cpus):8.3f} {max(rss) / 1e6:12.1f}")
        print(f"{m}: ratios to the cold run of the same round (min / median):")
        for name, vals in ratios[m].items():
            print(f"  {name:10} {min(vals):.3f}x / {statistics.median(vals):.3f}x")
        print(f"{m}: index size: {index_bytes[m] / 1e6:.1f} MB = {index_bytes[m] / log_bytes:.1%} of the logs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
