"""Instructions per call of ``rec.instrument``'s wrappers, counted by valgrind (the same on every run).

    python benchmarks/icount_instrument.py [--calls N] [--cases a,b,...]

Wall and CPU timings on a shared machine swing by 30-50 % between rounds;
instruction counts do not. This runs itself under ``valgrind --tool=cachegrind
--cache-sim=no`` once: the parent imports and warms everything, then forks one
child per case with N calls and one with 2N; a case's figure is the marginal
count, (2N run - N run) / N, so imports, set-up and warm-up cancel out.
Deterministic on purpose: each child has its own recorder with stats off and
the sidecar poll throttled away (both are driven by the wall clock), 50
warm-up calls, then ``gc.freeze()``.

Cases (the stand-ins of ``bench_instrument``'s "alone" table: the SDK's own
parsed objects, no HTTP):

- ``bare:X`` / ``wrap:X``: the call unwrapped / wrapped (X = chat, chat stream,
  messages, messages stream); flightdeck's share is wrap - bare.
- ``manual:X``: a hand-written ``rec.call`` passing the same usage payload the
  wrapper passes (so wrap - bare - manual is the wrapper's own part).
- ``chunks:X``: per chunk: the stream with 100 more text chunks, minus the stream,
  over 100 (wrapped - bare is the proxy's cost per chunk); ``think:X`` the same
  with 100 thinking chunks before the text.
Needs valgrind on PATH. The machine's other load does not change the counts.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

KINDS = ("chat", "chat stream", "messages", "messages stream")
CASES = ([f"bare:{k}" for k in KINDS] + [f"wrap:{k}" for k in KINDS] + [f"manual:{k}" for k in KINDS]
         + [f"{side}{n}:{k}" for side in ("chunks-bare", "chunks-wrap", "think-wrap") for k in ("chat", "messages")
            for n in ("", "+100")])


def _make(case: str, rec: Any) -> Callable[[], Any]:
    """The function one call of ``case`` runs (see the module docstring)."""
    import bench_instrument as bench

    from flightdeck.recorder.instrument.streams import AnthropicObserver, ChatObserver, with_tier
    from flightdeck.recorder.instrument.wrap import Target, patch_method

    side, kind = case.split(":")
    if side in ("bare", "wrap"):
        bare, wrapped = bench._isolated(rec)
        return (bare if side == "bare" else wrapped)[kind]
    oc, ac = bench._clients()
    chat_events = list(oc.chat.completions.create(model="gpt-4o", messages=bench.MESSAGES, stream=True))
    msg_events = list(ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=bench.MESSAGES,
                                         stream=True))
    if side == "manual":
        stream = kind.endswith("stream")
        provider, model, api = ("openai", "gpt-4o", "chat") if kind.startswith("chat") else (
            "anthropic", "claude-haiku-4-5", None)
        if kind == "chat":
            reply = oc.chat.completions.create(model="gpt-4o", messages=bench.MESSAGES)
            usage: Any = with_tier(reply.usage, reply.service_tier)
        elif kind == "messages":
            usage = ac.messages.create(model=model, max_tokens=64, messages=bench.MESSAGES).usage
        else:
            obs: Any = ChatObserver(False) if kind == "chat stream" else AnthropicObserver()
            for event in chat_events if kind == "chat stream" else msg_events:
                obs.observe(event)  # the payload the proxy passes, read by the phase-one method
            usage = obs.final_usage()

        def manual() -> None:
            with rec.call(provider=provider, model=model, stream=stream, api=api) as call:
                call.set_prompt([bench.MESSAGES])
                call.sent()
                if stream:
                    call.first_token()
                call.received()
                call.set_usage(usage)

        return manual
    extra = 100 if side.endswith("+100") else 0
    if side.startswith("think"):
        from anthropic.types import RawContentBlockDeltaEvent
        from openai.types.chat import ChatCompletionChunk

        think = ChatCompletionChunk.model_validate(
            {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
             "choices": [{"index": 0, "delta": {"content": None, "reasoning_content": "hm"}, "finish_reason": None}]})
        athink = RawContentBlockDeltaEvent.model_validate(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}})
        events = (chat_events[:1] + [think] * extra + chat_events[1:] if kind == "chat"
                  else msg_events[:2] + [athink] * extra + msg_events[2:])
    else:  # more text chunks after the first
        events = (chat_events[:2] + [chat_events[2]] * extra + chat_events[2:] if kind == "chat"
                  else msg_events[:3] + [msg_events[3]] * extra + msg_events[3:])
    stand = bench._Stand(None, events)
    if "-wrap" in side:
        if kind == "chat":
            patch_method(stand, "create", Target(rec, "openai", "direct", "chat", lambda: ChatObserver(False),
                                                 chat=True), is_async=False)
        else:
            patch_method(stand, "create", Target(rec, "anthropic", "direct", None, AnthropicObserver), is_async=False)
    model = "gpt-4o" if kind == "chat" else "claude-haiku-4-5"
    options = {"stream_options": {"include_usage": True}} if kind == "chat" else {}

    def read() -> None:
        for _ in stand.create(model=model, messages=bench.MESSAGES, stream=True, **options):
            pass

    return read


def _recorder() -> Any:
    from flightdeck.recorder.recorder import Recorder

    rec = Recorder(Path(tempfile.mkdtemp()) / "ic.jsonl", run="ic", stats=False)
    rec.poll_interval = 1e9  # the sidecar check is once per poll_interval of wall time: keep it out
    return rec


def _child_runs(calls: int, cases: list[str]) -> None:
    """Under valgrind: warm every case here, then a child per (case, N) and (case, 2N)."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # the kept rates: written once, here
    rec = _recorder()
    for case in cases:
        fn = _make(case, rec)
        for _ in range(3):
            fn()
    rec.close()
    for case in cases:
        for n in (calls, 2 * calls):
            pid = os.fork()
            if pid == 0:
                rec = _recorder()
                fn = _make(case, rec)
                for _ in range(50):
                    fn()
                gc.collect()
                gc.freeze()
                for _ in range(n):
                    fn()
                rec.close()
                os._exit(0)
            os.waitpid(pid, 0)
            print(f"PID {pid} {n} {case}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100, help="N (each case runs N and 2N calls)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if args.child:
        _child_runs(args.calls, cases)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}  # compiled once, not in every child
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "flightdeck-icount-pyc"))
    done = subprocess.run([valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           sys.executable, __file__, "--child", "--calls", str(args.calls), "--cases", ",".join(cases)],
                          capture_output=True, text=True, env=env, check=False)
    refs = {int(p): int(v.replace(",", "")) for p, v in re.findall(r"==(\d+)== I\s+refs:\s+([\d,]+)", done.stderr)}
    runs: dict[str, dict[int, int]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("PID "):
            _, pid, n, case = line.split(" ", 3)
            if int(pid) in refs:
                runs.setdefault(case, {})[int(n)] = refs[int(pid)]
    per = {case: (r[2 * args.calls] - r[args.calls]) / args.calls for case, r in runs.items() if len(r) == 2}
    if not per:
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"instructions per call (valgrind, marginal over N={args.calls} -> {2 * args.calls} calls)")
    for case in cases:
        if case in per:
            print(f"  {case:<26} {per[case]:10.0f}")
    for kind in KINDS:
        if {f"wrap:{kind}", f"bare:{kind}", f"manual:{kind}"} <= per.keys():
            share = per[f"wrap:{kind}"] - per[f"bare:{kind}"]
            print(f"  {kind:<16} flightdeck's share {share:8.0f}, of which the wrapper's own "
                  f"(over a hand-written rec.call) {share - per[f'manual:{kind}']:8.0f}")
    for what in ("chunks", "think"):
        for kind in ("chat", "messages"):
            keys = [f"{what}-wrap:{kind}", f"{what}-wrap+100:{kind}", "chunks-bare:" + kind, "chunks-bare+100:" + kind]
            if set(keys) <= per.keys():
                wrapped = (per[keys[1]] - per[keys[0]]) / 100
                bare = (per[keys[3]] - per[keys[2]]) / 100
                print(f"  per {'thinking ' if what == 'think' else ''}chunk, {kind:<9} wrapped {wrapped:7.0f}, "
                      f"bare {bare:6.0f}: the proxy's {wrapped - bare:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
