"""Realistic flightdeck v1 telemetry for benchmarks and tests.

Writes JSON Lines built with ``flightdeck.core.events`` structs, so the lines
are exactly what the recorder writes: several providers, models, runs and
agents, step names, streamed and non-streamed calls, cache reads and writes,
costs as decimal strings (a few unknown, local ones at zero), a sprinkling of
signal_ack, alert and run_start/run_end events, ids from ``IdSource`` (one
per writer, interleaved as concurrent agents would be).

The generator keeps the exact sum of the costs it wrote (a Decimal), so a
reader can be checked to the last digit.

    python benchmarks/gen_events.py OUT.jsonl --events 100000 [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event, format_usd

# provider, route, model, $/MTok (input, output, cache_read, cache_write)
MODELS: tuple[tuple[str, str, str, tuple[str, str, str, str] | None], ...] = (
    ("anthropic", "direct", "claude-3-5-sonnet", ("3", "15", "0.3", "3.75")),
    ("anthropic", "direct", "claude-3-5-haiku", ("0.8", "4", "0.08", "1")),
    ("openai", "direct", "gpt-4o", ("2.5", "10", "1.25", "0")),
    ("openai", "direct", "gpt-4o-mini", ("0.15", "0.6", "0.075", "0")),
    ("google", "direct", "gemini-1.5-pro", ("1.25", "5", "0.3125", "0")),
    ("openrouter", "proxy", "deepseek/deepseek-chat", ("0.27", "1.1", "0.07", "0")),
    ("mistral", "direct", "mistral-large-latest", ("2", "6", "2", "0")),
    ("ollama", "local", "llama3.1:8b", None),
    ("cohere", "direct", "some-new-model-x", None),  # no known rate: unpriced
)
STEP_NAMES = ("plan", "act", "reflect", "memory_compaction", "tool_select", "summarize")
AGENTS = ("researcher", "coder", "critic", "planner")
START_TS = 1764216000.0
_MTOK = Decimal(1_000_000)


@dataclass
class Generated:
    events: int  # llm_call events written
    lines: int  # all lines written
    cost_usd: Decimal  # exact sum of every llm_call's cost_usd
    unpriced: int


class _Writer:
    """One agent in one run: its own IdSource, step counter and clock offset."""

    def __init__(self, rng: random.Random, run: str, agent: str) -> None:
        self.ids = IdSource(rng.randbytes(6).hex())
        self.run = run
        self.agent = agent
        self.step = 0


def _call(rng: random.Random, w: _Writer, ts: float) -> tuple[Event, Decimal | None]:
    provider, route, model, rates = MODELS[min(int(rng.expovariate(0.45)), len(MODELS) - 1)]
    stream = rng.random() < 0.7
    prompt = int(rng.lognormvariate(8.0, 1.0)) + 50
    cache_read = int(prompt * rng.random() * 0.9) if rng.random() < 0.6 else 0
    cache_write = int((prompt - cache_read) * 0.5) if rng.random() < 0.15 else 0
    inp = prompt - cache_read - cache_write
    out = int(rng.lognormvariate(5.5, 0.9)) + 1
    reasoning = int(out * rng.random() * 0.5) if rng.random() < 0.2 else 0
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read,
                  cache_write_tokens=cache_write, reasoning_tokens=reasoning)
    if route == "local":
        cost: Decimal | None = Decimal(0)
        status = "local"
    elif rates is None:
        cost, status = None, "unknown"
    else:
        r_in, r_out, r_cr, r_cw = (Decimal(x) for x in rates)
        cost = (inp * r_in + out * r_out + cache_read * r_cr + cache_write * r_cw) / _MTOK
        status = "priced"
    pre = rng.lognormvariate(3.5, 0.8)
    ttft = rng.lognormvariate(6.0, 0.5) if stream else None
    gen = rng.lognormvariate(6.8, 0.7)
    post = rng.lognormvariate(2.5, 1.2)
    total = pre + (ttft or 0.0) + gen + post
    w.step += 1
    ev = Event(
        v=1, ts=round(ts, 3), kind="llm_call", id=w.ids(), run=w.run, agent=w.agent,
        provider=provider, route=route, model=model, name=rng.choice(STEP_NAMES), step=w.step,
        stream=stream, usage=usage,
        cost_usd=format_usd(cost) if cost is not None else None, cost_status=status,
        latency_ms=Latency(pre=round(pre, 1), ttft=round(ttft, 1) if ttft is not None else None,
                           gen=round(gen, 1), post=round(post, 1), total=round(total, 1)),
        prompt_hash=rng.randbytes(8).hex(),
        error="RateLimitError" if rng.random() < 0.01 else None,
    )
    return ev, (Decimal(ev.cost_usd) if ev.cost_usd else None)  # type: ignore[arg-type]


def generate(path: str | Path, events: int, *, seed: int = 1, writers: int = 8) -> Generated:
    """Write ``events`` llm_call lines (plus a few other kinds) to ``path``."""
    rng = random.Random(seed)
    pool = [_Writer(rng, f"r-{i // len(AGENTS)}", AGENTS[i % len(AGENTS)]) for i in range(writers)]
    total = Decimal(0)
    unpriced = lines = 0
    ts = START_TS
    with open(path, "wb", buffering=1 << 20) as f:
        write = f.write
        for w in pool:
            write(encode_event(Event(v=1, ts=ts, kind="run_start", id=w.ids(), run=w.run, agent=w.agent)))
            lines += 1
        for _ in range(events):
            ts += rng.expovariate(4.0)  # ~4 calls a second across the fleet
            w = pool[rng.randrange(writers)]
            ev, cost = _call(rng, w, ts)
            if cost is None:
                unpriced += 1
            else:
                total += cost
            write(encode_event(ev))
            lines += 1
            if rng.random() < 0.002:
                write(encode_event(Event(
                    v=1, ts=ts, kind="alert", id=w.ids(), run=w.run, agent=w.agent, rule="loop",
                    metric="repeat_prompt", value=3.0, threshold=3.0, action="alert")))
                lines += 1
            elif rng.random() < 0.001:
                write(encode_event(Event(
                    v=1, ts=ts, kind="signal_ack", id=w.ids(), run=w.run, agent=w.agent,
                    ref=f"c-{rng.randbytes(4).hex()}", cmd="pause",
                    state={"paused": True, "models": {}})))
                lines += 1
        for w in pool:
            write(encode_event(Event(v=1, ts=ts, kind="run_end", id=w.ids(), run=w.run, agent=w.agent)))
            lines += 1
    return Generated(events=events, lines=lines, cost_usd=total, unpriced=unpriced)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = generate(args.out, args.events, seed=args.seed)
    print(f"{result.events} llm_calls, {result.lines} lines, cost_usd {result.cost_usd}, "
          f"unpriced {result.unpriced} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
