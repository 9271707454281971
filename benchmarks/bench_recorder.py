"""Overhead of a recorded call against a bare loop doing the same agent-side work.

Prints per-call microseconds and ratios; both measured in this run, on this machine.

    python benchmarks/bench_recorder.py [--calls N] [--rounds R] [--profile] [--instructions]

Variants: the bare loop (builds the same usage dict, no recording); a naive
hand-rolled JSON logger (the second baseline: what "just log it" costs); a Recorder
writing to a file (stats on and off); and a Recorder with the demo's rules.
The "usage" passed is a raw Anthropic usage dict, so normalising and pricing
are part of what is measured, as in a real agent. Every round runs each
variant once, in turn (interleaved); the table gives min and median, wall and
CPU time, and the ratio to the naive logger of the same round. ``--profile``
adds where the recorded calls' time goes; ``--instructions`` adds each
variant's instructions per call, counted by valgrind (the same on every run,
however contended the machine: ``bench_env.marginal_instructions``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from flightdeck.recorder.recorder import Recorder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import marginal_instructions

REPO = Path(__file__).resolve().parents[1]
# Issue 11's budget: the recorder's own cost per call, a default recorder (stats on).
TARGET_US = 15.0


def raw_usage(i: int) -> dict[str, int]:
    return {"input_tokens": 1200 + (i & 7), "output_tokens": 350, "cache_read_input_tokens": 8000,
            "cache_creation_input_tokens": 0}


Timing = tuple[float, float]  # (wall, cpu) seconds


def _timed(loop: Callable[[], None]) -> Timing:
    w0, c0 = time.perf_counter(), time.process_time()
    loop()
    return time.perf_counter() - w0, time.process_time() - c0


def bare(n: int) -> Timing:
    def loop() -> None:
        sink = []
        for i in range(n):
            u = raw_usage(i)
            sink.append(u)
            if len(sink) > 64:
                sink.clear()

    return _timed(loop)


def naive_log(n: int, path: Path) -> Timing:
    """A hand-rolled logger: one json.dumps + os.write per call, no timing, pricing or control."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def loop() -> None:
        for i in range(n):
            line = json.dumps({"v": 1, "ts": time.time(), "kind": "llm_call", "model": "m", "usage": raw_usage(i)})
            os.write(fd, line.encode() + b"\n")

    try:
        return _timed(loop)
    finally:
        os.close(fd)


def recorded(n: int, path: Path, **kw: object) -> Timing:
    rec = Recorder(path, run="bench", agent="bench", **kw)  # type: ignore[arg-type]
    model = rec.model("claude-3-5-sonnet-20241022")

    def loop() -> None:
        for i in range(n):
            with rec.call(provider="anthropic", model=model, name="step", stream=True, step=i) as c:
                c.sent()
                c.first_token()
                c.received()
                c.set_usage(raw_usage(i))
        if rec._agg is not None:
            rec.stats()  # folds what is pending: rec.stats() figures are part of what "stats on" costs

    try:
        return _timed(loop)
    finally:
        rec.close()


def alert_only_rules() -> dict:
    """The demo's rules, every action turned into ``alert``: evaluated on every call,
    but a spend limit reached mid-benchmark must not pause the loop."""
    data = tomllib.loads((REPO / "demo" / "rules.toml").read_text())
    for rule in data["rule"]:
        rule["action"] = "alert"
        rule.pop("to", None)
    return data


def _profile(n: int, folder: Path) -> None:
    """Where a recorded call's time goes (stats on), by function, own time first."""
    profiler = cProfile.Profile()
    profiler.enable()
    recorded(n, folder / "profile.jsonl")
    profiler.disable()
    print(f"\nprofile of {n} recorded calls (stats on; cProfile inflates small functions):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def _one_loop(variant: str, n: int) -> None:
    """One variant's loop of ``n`` calls, alone (what ``--instructions`` runs under valgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loop.jsonl"
        recorded(200, Path(tmp) / "warm.jsonl")  # imports, pricing caches: the same in both counted runs
        if variant == "naive":
            naive_log(n, path)
        elif variant == "stats-off":
            recorded(n, path, stats=False)
        elif variant == "stats-on":
            recorded(n, path)
        elif variant == "rules":
            recorded(n, path, rules=alert_only_rules())
        else:
            raise SystemExit(f"unknown variant {variant!r}")


def _instructions(n: int) -> None:
    print(f"\ninstructions per call (valgrind, ({2 * n} calls - {n} calls) / {n}; the same on every run):")
    for variant, label in (("naive", "naive json.dumps + os.write"), ("stats-off", "recorder, stats off"),
                           ("stats-on", "recorder, stats on"), ("rules", "recorder, stats + demo rules")):
        count = marginal_instructions([sys.executable, __file__, "--loop", variant], n)
        if count is None:
            print("  valgrind is not installed: no counts")
            return
        print(f"  {label:30s} {count / 1000:8.1f}k")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--loop":  # bench_env.marginal_instructions runs this
        _one_loop(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5000, help="calls per batch")
    ap.add_argument("--rounds", type=int, default=5, help="rounds; every variant runs once per round, in turn")
    ap.add_argument("--profile", action="store_true", help="also print a profile of the recorded calls")
    ap.add_argument("--instructions", action="store_true",
                    help="also count each variant's instructions per call with valgrind (about a minute)")
    args = ap.parse_args()
    n = args.calls
    rules = alert_only_rules()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        recorded(min(n, 1000), d / "warm.jsonl")  # imports, pricing caches
        variants: dict[str, Callable[[int], Timing]] = {
            "bare loop (baseline)": bare,
            "naive json.dumps + os.write": lambda r: naive_log(n, d / f"n{r}.jsonl"),
            "recorder, stats off": lambda r: recorded(n, d / f"a{r}.jsonl", stats=False),
            "recorder, stats on": lambda r: recorded(n, d / f"b{r}.jsonl"),
            "recorder, stats + demo rules": lambda r: recorded(n, d / f"c{r}.jsonl", rules=rules),
        }
        runs: dict[str, list[Timing]] = {name: [] for name in variants}
        for r in range(args.rounds):  # interleaved: a slow spell of the machine hits every variant
            for name, run in variants.items():
                runs[name].append(bare(n) if run is bare else run(r))
        if args.profile:
            _profile(n, d)
    per = {name: [(w / n * 1e6, c / n * 1e6) for w, c in t] for name, t in runs.items()}
    base, naive = per["bare loop (baseline)"], per["naive json.dumps + os.write"]
    print(f"{n} calls x {args.rounds} rounds, us per call (wall and CPU: min / median); "
          "ratios are medians of the per-round ratios, so each compares runs made side by side")
    print(f"{'variant':30s} {'wall min/med':>16s} {'cpu min/med':>16s} {'overhead cpu med':>17s} "
          f"{'x naive (cpu)':>14s}")
    for name, rows in per.items():
        walls, cpus = [w for w, _ in rows], [c for _, c in rows]
        over = statistics.median(c - b[1] for (_, c), b in zip(rows, base, strict=True))
        ratio = statistics.median(c / nv[1] for (_, c), nv in zip(rows, naive, strict=True) if nv[1] > 0)
        print(f"{name:30s} {min(walls):7.2f}/{statistics.median(walls):<8.2f} {min(cpus):7.2f}/"
              f"{statistics.median(cpus):<8.2f} {over:17.2f} {ratio:14.2f}")
    print(f"\ntarget (issue 11): the recorder's own cost at most {TARGET_US:.0f} us a call, stats on "
          "(overhead = CPU over the bare loop of the same round):")
    for name in ("recorder, stats off", "recorder, stats on", "recorder, stats + demo rules"):
        overs = sorted(c - b[1] for (_, c), b in zip(per[name], base, strict=True))
        verdict = "met" if statistics.median(overs) <= TARGET_US else (
            "met at the min only" if overs[0] <= TARGET_US else "not met")
        print(f"  {name:30s} min {overs[0]:6.2f} / median {statistics.median(overs):6.2f} us: {verdict}"
              f"{'' if name.endswith('stats on') else ' (reported, not the target)'}")
    naive_med = statistics.median(c for _, c in naive)
    print(f"  same run: the naive json.dumps + os.write logger costs {naive_med:.2f} us (the machine's pace: "
          "on a shared machine read the ratios)")
    if args.instructions:
        _instructions(min(n, 2000))


if __name__ == "__main__":
    main()
