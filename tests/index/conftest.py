"""Generated histories for the parse-once index tests: v1 and Claude Code, with
duplicates across files, bad lines and an unfinished last line."""

from __future__ import annotations

import importlib.util
import random
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from flightdeck.core.events import Event, Latency, Usage, encode_event

REPO = Path(__file__).resolve().parents[2]


def load_bench(name: str) -> ModuleType:
    """A module of benchmarks/ (not a package), loaded by path."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def v1_lines(rng: random.Random, n: int, start: float, prefix: str) -> list[bytes]:
    """``n`` v1 llm_call lines with varied models, costs (some unknown) and latencies."""
    out = []
    ts = start
    for i in range(n):
        ts += rng.uniform(0.1, 30)
        cost = None if rng.random() < 0.1 else f"{rng.randint(0, 10**6) / 10**6:.6f}"
        ev = Event(v=1, ts=ts, kind="llm_call", id=f"{prefix}-{i}", run=f"r-{rng.randint(0, 5)}",
                   agent=rng.choice(("a", "b", None)), provider="anthropic", route="direct",
                   model=rng.choice(("claude-sonnet-4-5", "claude-haiku-4-5")), name=rng.choice(("plan", "act")),
                   stream=True,
                   usage=Usage(input_tokens=rng.randint(0, 5000), output_tokens=rng.randint(10, 900),
                               cache_read_tokens=rng.randint(0, 20000), cache_write_tokens=rng.randint(0, 900)),
                   cost_usd=cost, cost_status="priced" if cost else "unknown",
                   latency_ms=Latency(ttft=rng.uniform(50, 900), gen=rng.uniform(100, 5000),
                                      total=rng.uniform(200, 9000)))
        out.append(encode_event(ev).rstrip(b"\n"))
    return out


@pytest.fixture
def v1_history(tmp_path: Path) -> Path:
    """Three v1 logs; b.jsonl repeats 30 ids of a.jsonl; bad lines; c.jsonl has no final newline."""
    rng = random.Random(5)
    root = tmp_path / "v1"
    root.mkdir()
    a = v1_lines(rng, 400, 1_764_000_000.0, "a")
    (root / "a.jsonl").write_bytes(b"\n".join(a) + b"\n")
    b = [*a[100:130], b"{not json", b'{"v":1,"kind":"llm_call"}', *v1_lines(rng, 300, 1_764_003_000.0, "b")]
    (root / "b.jsonl").write_bytes(b"\n".join(b) + b"\n")
    c = v1_lines(rng, 200, 1_764_006_000.0, "c")
    (root / "c.jsonl").write_bytes(b"\n".join(c))  # the last line unfinished (no newline)
    return root


@pytest.fixture
def cc_history(tmp_path: Path) -> Path:
    """A generated Claude Code history (streamed copies) plus a resumed session's copy of another."""
    bench = load_bench("bench_claude_code")
    gen = bench.Generator(tmp_path / "cc", 3, 0.2)
    gen.generate(6000)
    projects = tmp_path / "cc" / "projects"
    first = sorted(projects.rglob("*.jsonl"), key=str)[0]
    resumed = projects / "-home-dev-resumed"
    resumed.mkdir()
    # A resumed session starts with the old one's lines: every message repeats.
    shutil.copy(first, resumed / "zz-resumed.jsonl")
    return projects
