#!/usr/bin/env python3
"""A simulated agent, instrumented with flightdeck: read this as the example to copy.

It works like a real agent, without a network: each loop iteration observes
(a vector-store lookup), plans (a streamed Anthropic call), acts (an OpenAI
call, then a tool), reflects (a streamed OpenAI call), sometimes classifies
with a local model, and now and then compacts its memory with Gemini. Token
counts, prompt caching and latencies are simulated; everything flightdeck
sees is real: the Recorder times the stages, reads each provider's own usage
payload, prices it, writes the events, and obeys the monitor.

The instrumentation is all in ``Agent``; look for ``rec.``:

* ``rec.model(name)`` before each call: the model to use now (``d`` in the
  monitor steps it down the ladder given in ``downgrades``, ``u`` restores);
* ``with rec.call(...) as call:`` around each step; ``call.sent()``,
  ``call.first_token()``, ``call.received()`` mark the stages, so the work
  before (memory lookup, prompt building) is ``pre`` and the tool call after
  it is ``post``; ``call.set_usage(raw)`` takes the provider's payload as is;
* entering ``rec.call`` waits while the monitor (``p``) or a guardrail has the
  agent paused;
* ``rec.stats(window)``: the agent reads its own rolling figures to compact
  memory when its prompts grow, and to pick a faster model when latency degrades;
* ``Recorder(rules=..., on_alert=..., on_token_spike=...)``: guardrails that hold
  even with no monitor running.

Scripted incidents (by loop iteration): a slow vector store (the ``pre``
stage), a prompt change that busts the cache (cache hit rate falls), and a
self-reflection loop with growing context (the ``loop`` rule pauses the agent
until someone resumes it).

    python demo/agent.py --out run.jsonl --speed 5      # then: flightdeck tail run.jsonl
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightdeck import Recorder
from flightdeck.core.rules import Firing

HERE = Path(__file__).resolve().parent

# The agent's models, and the cheaper rung for each (the downgrade ladder).
PLAN_MODEL = "claude-sonnet-4-5"
ACT_MODEL = "gpt-4.1"
REFLECT_MODEL = "gpt-4o"
MEMORY_MODEL = "gemini-2.0-flash"
LOCAL_MODEL = "llama3.1:8b"
DOWNGRADES = {
    "claude-sonnet-4-5": "claude-haiku-4-5",
    "gpt-4.1": "gpt-4.1-mini",
    "gpt-4o": "gpt-4o-mini",
}

# Scripted incidents, in loop iterations.
SLOW_VECTOR_STORE = range(8, 14)
CACHE_BUST = range(18, 24)
REFLECTION_LOOP_AT = 28

SYSTEM_PROMPT_TOKENS = 6_000  # instructions + tool definitions: the cached prefix
COMPACT_ABOVE_TOKENS = 16_000  # mean prompt size (from rec.stats) that triggers compaction
SLOW_P90_MS = 9_000  # p90 step time (from rec.stats) above which planning moves to a faster model


# ---------------------------------------------------------------------------
# The simulation: time, prompt caches and provider payloads. Nothing here
# knows about flightdeck; it stands in for the network.


class SimClock:
    """Simulated time runs ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float) -> None:
        self.speed = max(speed, 0.01)

    def sleep(self, sim_seconds: float) -> None:
        time.sleep(max(0.0, sim_seconds) / self.speed)

    def monotonic(self) -> float:
        # Given to the Recorder, so the stages it records are simulated durations:
        # at --speed 10 a 4 s call takes 0.4 s of wall time but is recorded as 4 s.
        return time.perf_counter() * self.speed


@dataclass
class PromptCache:
    """A provider's prompt cache: a prefix is cheap to re-read after its first write."""

    ttl: float = 300.0
    entries: dict[tuple[str, str], float] = field(default_factory=dict)

    def lookup(self, model: str, prefix_id: str, now: float) -> bool:
        key = (model, prefix_id)
        hit = key in self.entries and now - self.entries[key] < self.ttl
        self.entries[key] = now
        return hit


@dataclass
class Request:
    provider: str
    model: str
    prefix_id: str  # identifies the cacheable prefix (system prompt version + memory)
    prefix_tokens: int
    fresh_tokens: int  # the uncached rest: this step's observation
    output_tokens: int
    stream: bool = True


class SimulatedProviders:
    """Answers a Request after realistic delays, with the usage payload the real API returns."""

    # (ttft seconds, output tokens per second) per model family
    SPEEDS = {
        "claude-sonnet-4-5": (0.9, 70.0),
        "claude-haiku-4-5": (0.45, 140.0),
        "gpt-4.1": (0.7, 80.0),
        "gpt-4.1-mini": (0.35, 150.0),
        "gpt-4o": (0.6, 90.0),
        "gpt-4o-mini": (0.3, 160.0),
        "gemini-2.0-flash": (0.35, 200.0),
        "llama3.1:8b": (0.15, 60.0),
    }

    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self.caches: dict[str, PromptCache] = {}
        self.sim_now = 0.0  # simulated seconds, for cache lifetimes

    def complete(self, call: Any, req: Request) -> Any:
        """Send ``req``; marks the stages on ``call`` as the response arrives; returns the raw usage."""
        ttft, rate = self.SPEEDS.get(req.model, (0.6, 80.0))
        ttft *= self.rng.lognormvariate(0, 0.35)
        gen = req.output_tokens / rate * self.rng.uniform(0.85, 1.2)
        cache = self.caches.setdefault(req.provider, PromptCache())
        warm = cache.lookup(req.model, req.prefix_id, self.sim_now)
        call.sent()
        self.clock.sleep(ttft)
        if req.stream:
            call.first_token()
        self.clock.sleep(gen)
        call.received()
        self.sim_now += ttft + gen
        return self._usage_payload(req, warm)

    def _usage_payload(self, req: Request, warm: bool) -> Any:
        """The usage exactly as each provider's API reports it."""
        if req.provider == "anthropic":
            read, write = (req.prefix_tokens, 0) if warm else (0, req.prefix_tokens)
            # A stream's events, from message_start to message_delta.
            return [
                {"type": "message_start", "message": {
                    "id": f"msg_{self.rng.getrandbits(48):012x}", "type": "message", "role": "assistant",
                    "model": req.model, "usage": {
                        "input_tokens": req.fresh_tokens, "cache_read_input_tokens": read,
                        "cache_creation_input_tokens": write, "output_tokens": 1}}},
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_stop", "index": 0},
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                 "usage": {"output_tokens": req.output_tokens}},
                {"type": "message_stop"},
            ]
        prompt = req.prefix_tokens + req.fresh_tokens
        if req.provider == "openai":
            # Automatic caching, in 128-token steps, for prompts of 1024 tokens or more.
            cached = (req.prefix_tokens // 128) * 128 if warm and prompt >= 1024 else 0
            return {"prompt_tokens": prompt, "completion_tokens": req.output_tokens,
                    "total_tokens": prompt + req.output_tokens,
                    "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
        if req.provider == "google":
            cached = req.prefix_tokens if warm else 0
            meta = {"promptTokenCount": prompt, "candidatesTokenCount": req.output_tokens,
                    "totalTokenCount": prompt + req.output_tokens}
            if cached:
                meta["cachedContentTokenCount"] = cached
            return {"usageMetadata": meta, "modelVersion": req.model}
        # ollama: the final response body
        return {"model": req.model, "done": True, "prompt_eval_count": prompt,
                "eval_count": req.output_tokens, "total_duration": 0}


# ---------------------------------------------------------------------------
# The agent, instrumented.


class Agent:
    def __init__(self, rec: Recorder, llm: SimulatedProviders, clock: SimClock, rng: random.Random,
                 *, quiet: bool = False) -> None:
        self.rec = rec
        self.llm = llm
        self.clock = clock
        self.rng = rng
        self.quiet = quiet
        self.memory_tokens = 1_500
        # Memory as of the last compaction: it sits in the prompt right after the
        # system prompt, so the provider's cache holds it until the next compaction.
        self.memory_snapshot = 1_500
        self.compactions = 0
        self.prompt_version = "v1"
        self.loop_alert = False
        self.compact_next = False
        self.prefer_fast_planner = False
        self.loop_at = REFLECTION_LOOP_AT
        self.slow_store = SLOW_VECTOR_STORE
        self.cache_bust = CACHE_BUST

    # Guardrail callbacks, registered with the Recorder.
    def on_alert(self, firing: Firing) -> None:
        self.say(f"guardrail {firing.rule}: {firing.message} -> {firing.action}")
        if firing.metric == "loop":
            self.loop_alert = True

    def on_token_spike(self, firing: Firing) -> None:
        self.compact_next = True  # truncate context before the next plan

    # -- one iteration of the loop --------------------------------------------------
    def step(self, i: int) -> None:
        self.check_own_numbers(i)
        if i in self.cache_bust:
            # The incident: someone put the current time into the system prompt, so
            # its prefix is new on every call and the prompt cache never hits.
            self.prompt_version = f"v2-{i}"
        elif self.cache_bust and i == self.cache_bust.stop:
            self.prompt_version = "v3"
        self.plan(i)
        self.act(i)
        if i == self.loop_at:
            self.reflection_loop(i)
        else:
            self.reflect(i)
        if i % 3 == 1:
            self.classify(i)
        if self.compact_next or (i % 6 == 5):
            self.update_memory(i)

    def check_own_numbers(self, i: int) -> None:
        """The agent reads its own rolling figures (the monitor's aggregation) and adapts."""
        if i == 0 or i % 4:
            return
        stats = self.rec.stats(300)
        if stats.mean_prompt_tokens and stats.mean_prompt_tokens > COMPACT_ABOVE_TOKENS:
            self.compact_next = True
        slow = stats.p90_total_ms is not None and stats.p90_total_ms > SLOW_P90_MS
        if slow != self.prefer_fast_planner:
            self.prefer_fast_planner = slow
            self.say(f"p90 step time {stats.p90_total_ms:.0f} ms: "
                     + ("planning with the faster model" if slow else "back to the usual planner"))

    def plan(self, i: int) -> None:
        model = self.rec.model(DOWNGRADES[PLAN_MODEL] if self.prefer_fast_planner else PLAN_MODEL)
        with self.rec.call(provider="anthropic", model=model, name="plan", step=i, stream=True) as call:
            # pre: retrieve memories, build the prompt
            self.clock.sleep(self.vector_lookup_seconds(i))
            observation = self.rng.randint(400, 1_600)
            messages = [self.system_prompt(), {"role": "user", "content": f"observation {i}"}]
            call.set_prompt(messages)
            usage = self.llm.complete(call, Request(
                "anthropic", model, self.cache_prefix(), SYSTEM_PROMPT_TOKENS + self.memory_snapshot,
                self.memory_tokens - self.memory_snapshot + observation, self.rng.randint(250, 600)))
            call.set_usage(usage)
            self.clock.sleep(self.rng.uniform(0.005, 0.03))  # post: parse the plan
        self.say(f"step {i}: planned with {model}")

    def act(self, i: int) -> None:
        model = self.rec.model(ACT_MODEL)
        with self.rec.call(provider="openai", model=model, name="act", step=i, stream=False) as call:
            messages = [self.system_prompt(), {"role": "user", "content": f"act on plan {i}"}]
            call.set_prompt(messages)
            usage = self.llm.complete(call, Request(
                "openai", model, self.prompt_version, 2_500, self.rng.randint(300, 900),
                self.rng.randint(60, 220), stream=False))
            call.set_usage(usage)
            # post: run the tool the model chose (web search, code run, file read)
            call.tag("tool", self.rng.choice(["web_search", "python", "read_file"]))
            self.clock.sleep(self.rng.lognormvariate(math.log(0.6), 0.5))
        self.memory_tokens += self.rng.randint(250, 700)

    def reflect(self, i: int) -> None:
        model = self.rec.model(REFLECT_MODEL)
        with self.rec.call(provider="openai", model=model, name="reflect", step=i, stream=True) as call:
            call.set_prompt([self.system_prompt(), {"role": "user", "content": f"reflect on step {i}"}])
            usage = self.llm.complete(call, Request(
                "openai", model, self.cache_prefix(), 2_000 + self.memory_snapshot,
                self.memory_tokens - self.memory_snapshot + self.rng.randint(200, 500),
                self.rng.randint(80, 250)))
            call.set_usage(usage)
            self.clock.sleep(self.rng.uniform(0.01, 0.04))  # post: write the lesson to memory

    def reflection_loop(self, i: int) -> None:
        """The incident: the agent keeps reflecting on the same failure, its scratchpad growing.

        The request is the same every time (the failure and the question; the
        scratchpad is what grows), so its prompt_hash repeats and the ``loop``
        guardrail pauses the agent. After a resume, the agent breaks out.
        """
        scratchpad = 0
        question = [self.system_prompt(),
                    {"role": "user", "content": "The tool call failed: 403 Forbidden. Why did it fail?"}]
        for attempt in range(12):
            if self.loop_alert:
                self.say("loop guardrail fired: giving up on this reflection and moving on")
                self.loop_alert = False
                return
            model = self.rec.model(REFLECT_MODEL)
            with self.rec.call(provider="openai", model=model, name="reflect", step=i, stream=True) as call:
                call.set_prompt(question)
                call.tag("attempt", attempt + 1)
                usage = self.llm.complete(call, Request(
                    "openai", model, self.cache_prefix(), 2_000 + self.memory_snapshot,
                    self.memory_tokens - self.memory_snapshot + 400 + scratchpad, self.rng.randint(400, 700)))
                call.set_usage(usage)
            scratchpad += 3_500
            self.say(f"step {i}: reflecting again (attempt {attempt + 1}, scratchpad {scratchpad} tokens)")

    def classify(self, i: int) -> None:
        with self.rec.call(provider="ollama", model=LOCAL_MODEL, name="classify", step=i) as call:
            usage = self.llm.complete(call, Request("ollama", LOCAL_MODEL, "none", 0, self.rng.randint(200, 600),
                                                    self.rng.randint(5, 20), stream=False))
            call.set_usage(usage)

    def update_memory(self, i: int) -> None:
        with self.rec.call(provider="google", model=MEMORY_MODEL, name="memory_compaction", step=i) as call:
            self.clock.sleep(self.rng.uniform(0.02, 0.08))  # pre: gather the notes to summarise
            usage = self.llm.complete(call, Request("google", MEMORY_MODEL, f"mem-{i}", 1_000,
                                                    self.memory_tokens, self.rng.randint(300, 800), stream=False))
            call.set_usage(usage)
            self.clock.sleep(self.rng.uniform(0.01, 0.05))  # post: replace the notes with the summary
        before, self.memory_tokens = self.memory_tokens, max(1_500, self.memory_tokens // 3)
        self.memory_snapshot = self.memory_tokens
        self.compactions += 1
        self.compact_next = False
        self.say(f"step {i}: memory compacted {before} -> {self.memory_tokens} tokens")

    # -- helpers ----------------------------------------------------------------------------
    def vector_lookup_seconds(self, i: int) -> float:
        if i in self.slow_store:  # the incident: the vector store is degraded
            return self.rng.uniform(2.5, 4.0)
        return self.rng.lognormvariate(math.log(0.06), 0.3)

    def cache_prefix(self) -> str:
        """Names the cacheable prefix: the system prompt's version and the memory snapshot."""
        return f"{self.prompt_version}/mem{self.compactions}"

    def system_prompt(self) -> dict[str, str]:
        return {"role": "system", "content": f"You are a research agent. Prompt {self.prompt_version}."}

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[agent] {text}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="A simulated agent recorded with flightdeck.")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="telemetry file (JSON Lines)")
    where.add_argument("--socket", help="stream to a monitor: flightdeck tail --socket PATH")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
    ap.add_argument("--steps", type=int, default=0, help="stop after N iterations (0: run until interrupted)")
    ap.add_argument("--rules", default=str(HERE / "rules.toml"), help="guardrails file; 'none' for none")
    ap.add_argument("--run", default=None, help="run id (default: demo-<seed>-<time>)")
    ap.add_argument("--agent", default="researcher")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--loop-at", type=int, default=REFLECTION_LOOP_AT, metavar="N",
                    help=f"iteration of the self-reflection loop incident (default {REFLECTION_LOOP_AT}; -1: none)")
    ap.add_argument("--slow-store-at", type=int, default=SLOW_VECTOR_STORE.start, metavar="N",
                    help=f"first of the {len(SLOW_VECTOR_STORE)} iterations with a slow vector store "
                         f"(default {SLOW_VECTOR_STORE.start}; -1: none)")
    ap.add_argument("--cache-bust-at", type=int, default=CACHE_BUST.start, metavar="N",
                    help=f"first of the {len(CACHE_BUST)} iterations whose prompt busts the cache "
                         f"(default {CACHE_BUST.start}; -1: none)")
    return ap.parse_args(argv)


def _incident(start: int, length: int) -> range:
    return range(start, start + length) if start >= 0 else range(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    clock = SimClock(args.speed)
    rules = None if args.rules == "none" else args.rules
    agent: Agent | None = None

    def on_alert(f: Firing) -> None:
        if agent is not None:
            agent.on_alert(f)

    def on_token_spike(f: Firing) -> None:
        if agent is not None:
            agent.on_token_spike(f)

    rec = Recorder(
        args.out, socket=args.socket,
        run=args.run or f"demo-{args.seed}-{int(time.time())}", agent=args.agent,
        downgrades=DOWNGRADES, rules=rules,
        on_alert=on_alert, on_token_spike=on_token_spike,
        monotonic=clock.monotonic,
        poll_interval=0.05,
    )
    agent = Agent(rec, SimulatedProviders(clock, rng), clock, rng, quiet=args.quiet)
    agent.loop_at = args.loop_at
    agent.slow_store = _incident(args.slow_store_at, len(SLOW_VECTOR_STORE))
    agent.cache_bust = _incident(args.cache_bust_at, len(CACHE_BUST))
    try:
        i = 0
        while args.steps <= 0 or i < args.steps:
            agent.step(i)
            i += 1
    except KeyboardInterrupt:
        pass
    finally:
        rec.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
