"""Overhead of ``rec.instrument`` per call: the same SDK calls, unwrapped and wrapped, in one run.

    python benchmarks/bench_instrument.py [--calls N] [--rounds R]

The real OpenAI and Anthropic SDKs talk to an in-process transport
(``httpx2.MockTransport``) that returns canned response bytes (the fake
provider's bodies from ``tests/fakeprovider.py``), so the network does not
dominate and what differs between the two sides is exactly what flightdeck
adds: the wrapper, the stream proxy, normalising, pricing and writing the
event to a file. Bare and wrapped batches alternate (pairs interleaved), over
several rounds; the table gives min and median per call, wall and CPU time,
and the difference. Budget: 30 us per call on top of the SDK's own time.

A second table isolates flightdeck's share exactly: the same wrappers around a
stand-in method that returns the SDK's own response objects (parsed once, by
the SDK, from the same bytes), against that stand-in unwrapped. On a shared
machine the SDK's own 1-3 ms per call swing by more than the overhead, so the
first table bounds it and the second measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import anthropic  # noqa: E402
import httpx2  # noqa: E402
import openai  # noqa: E402
from fakeprovider import (  # noqa: E402
    ANTHROPIC_USAGE,
    CHAT_USAGE,
    TEXT,
    _chunk,
    anthropic_message,
    chat_completion,
)

from flightdeck.recorder.recorder import Recorder  # noqa: E402

BUDGET_US = 30.0
MESSAGES: Any = [{"role": "user", "content": "hi"}]  # Any: the SDKs type their message params


def _sse(events: Sequence[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(head + "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n")
    return "".join(out).encode()


CHAT_JSON = json.dumps(chat_completion("gpt-4o-2024-08-06")).encode()
CHAT_SSE = _sse([(None, _chunk("gpt-4o", {"role": "assistant", "content": ""}))]
                + [(None, _chunk("gpt-4o", {"content": t})) for t in TEXT]
                + [(None, _chunk("gpt-4o", {}, finish="stop")), (None, _chunk("gpt-4o", None, usage=CHAT_USAGE)),
                   (None, "[DONE]")])
MSG_JSON = json.dumps(anthropic_message("claude-haiku-4-5")).encode()
_start: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                          "content": [], "stop_reason": None, "stop_sequence": None,
                          "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}}
MSG_SSE = _sse([("message_start", {"type": "message_start", "message": _start}),
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}})]
               + [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": t}}) for t in TEXT]
               + [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                  ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                     "usage": {"output_tokens": 400}}),
                  ("message_stop", {"type": "message_stop"})])


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    stream = bool(body.get("stream"))
    if request.url.path.endswith("/chat/completions"):
        data, kind = (CHAT_SSE, "text/event-stream") if stream else (CHAT_JSON, "application/json")
    else:
        data, kind = (MSG_SSE, "text/event-stream") if stream else (MSG_JSON, "application/json")
    return httpx2.Response(200, content=data, headers={"content-type": kind})


def _clients() -> tuple[openai.OpenAI, anthropic.Anthropic]:
    transport = httpx2.MockTransport(_handler)
    oc = openai.OpenAI(api_key="k", base_url="http://bench.invalid/v1", max_retries=0,
                       http_client=httpx2.Client(transport=transport))
    ac = anthropic.Anthropic(api_key="k", base_url="http://bench.invalid", max_retries=0,
                             http_client=httpx2.Client(transport=transport))
    return oc, ac


def _cases(oc: Any, ac: Any) -> dict[str, Callable[[], Any]]:
    def chat() -> Any:
        return oc.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    def chat_stream() -> Any:
        for _ in oc.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}):
            pass

    def messages() -> Any:
        return ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)

    def messages_stream() -> Any:
        for _ in ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, stream=True):
            pass

    return {"chat": chat, "chat stream": chat_stream, "messages": messages, "messages stream": messages_stream}


class _Replay:
    """An SDK stream stand-in: the SDK's own parsed events, replayed."""

    __slots__ = ("_it",)

    def __init__(self, events: list[Any]) -> None:
        self._it = iter(events)

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        return None


class _Stand:
    """A resource whose ``create`` returns canned SDK objects (a response, or a replayed stream)."""

    def __init__(self, reply: Any, events: list[Any]) -> None:
        self.reply, self.events = reply, events

    def create(self, **kwargs: Any) -> Any:
        return _Replay(self.events) if kwargs.get("stream") else self.reply


def _isolated(rec: Recorder) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """(bare, wrapped) cases over stand-ins holding the SDK's own parsed objects."""
    from flightdeck.recorder.instrument.streams import AnthropicObserver, ChatObserver
    from flightdeck.recorder.instrument.wrap import Target, patch_method

    oc, ac = _clients()
    chat = _Stand(oc.chat.completions.create(model="gpt-4o", messages=MESSAGES),
                  list(oc.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)))
    msg = _Stand(ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES),
                 list(ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES,
                                         stream=True)))
    bare_chat, bare_msg = _Stand(chat.reply, chat.events), _Stand(msg.reply, msg.events)
    patch_method(chat, "create", Target(rec, "openai", "direct", "chat", lambda: ChatObserver(False), chat=True),
                 is_async=False)
    patch_method(msg, "create", Target(rec, "anthropic", "direct", None, AnthropicObserver), is_async=False)

    def cases(c: Any, m: Any) -> dict[str, Callable[[], Any]]:
        def chat_stream() -> None:
            for _ in c.create(model="gpt-4o", messages=MESSAGES, stream=True,
                              stream_options={"include_usage": True}):
                pass

        def messages_stream() -> None:
            for _ in m.create(model="claude-haiku-4-5", messages=MESSAGES, stream=True):
                pass

        return {"chat": lambda: c.create(model="gpt-4o", messages=MESSAGES), "chat stream": chat_stream,
                "messages": lambda: m.create(model="claude-haiku-4-5", messages=MESSAGES),
                "messages stream": messages_stream}

    return cases(bare_chat, bare_msg), cases(chat, msg)


def _manual(rec: Recorder, calls: int, rounds: int) -> tuple[float, float]:
    """(wall, cpu) min per call of the manual API doing the same as a wrapped ``messages.create``."""
    _, ac = _clients()
    usage = ac.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES).usage

    def one() -> None:
        with rec.call(provider="anthropic", model="claude-haiku-4-5", stream=False) as call:
            call.set_prompt([MESSAGES])
            call.sent()
            call.received()
            call.set_usage(usage)  # the SDK's object as it is, as the recorder's docs say

    runs = [_batch(one, calls) for _ in range(rounds)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _naive(path: Path, calls: int, rounds: int) -> tuple[float, float]:
    """(wall, cpu) min per call of the cheapest possible logger: json.dumps + one os.write."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    usage = {"input_tokens": 100, "output_tokens": 400, "cache_read_input_tokens": 5000}

    def one() -> None:
        os.write(fd, json.dumps({"v": 1, "ts": time.time(), "kind": "llm_call", "usage": usage}).encode() + b"\n")

    try:
        runs = [_batch(one, calls) for _ in range(rounds)]
    finally:
        os.close(fd)
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _batch(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - w0) / n * 1e6, (time.process_time() - c0) / n * 1e6


def _table(bare: dict[str, Callable[[], Any]], wrapped: dict[str, Callable[[], Any]], calls: int,
           rounds: int, cpu_overheads: dict[str, list[float]] | None = None) -> float:
    """Interleaved bare/wrapped batches per case; prints the table; returns the worst median overhead.

    Args:
        cpu_overheads: if given, filled with each case's per-round CPU overheads (us per call).
    """
    for name in bare:  # warm both paths (imports, price caches)
        _batch(bare[name], 20)
        _batch(wrapped[name], 20)
    print(f"{'case':<16} {'bare min/med':>17} {'wrapped min/med':>20} "
          f"{'overhead wall min/med':>22} {'overhead cpu min/med':>21}")
    worst = 0.0
    for name in bare:
        bw, ww, dw, dc = [], [], [], []
        for _ in range(rounds):
            b = _batch(bare[name], calls)
            w = _batch(wrapped[name], calls)
            bw.append(b[0])
            ww.append(w[0])
            dw.append(w[0] - b[0])
            dc.append(w[1] - b[1])
        med = statistics.median(dw)
        worst = max(worst, med)
        if cpu_overheads is not None:
            cpu_overheads[name] = dc
        print(f"{name:<16} {min(bw):8.1f}/{statistics.median(bw):<8.1f} {min(ww):10.1f}/"
              f"{statistics.median(ww):<9.1f} {min(ww) - min(bw):11.1f}/{med:<10.1f} "
              f"{min(dc):10.1f}/{statistics.median(dc):<10.1f}")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per batch")
    ap.add_argument("--rounds", type=int, default=7, help="bare/wrapped pairs per case")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(Path(tmp) / "bench.jsonl", run="bench", stats=True)
        bare = _cases(*_clients())
        oc, ac = _clients()
        rec.instrument(oc, provider="openai", route="direct")
        rec.instrument(ac, provider="anthropic", route="direct")
        wrapped = _cases(oc, ac)
        print("SDK calls over an in-process transport (us per call)")
        worst = _table(bare, wrapped, args.calls, args.rounds)
        print("\nflightdeck's share alone: stand-ins returning the SDK's own objects (us per call)")
        iso_bare, iso_wrapped = _isolated(rec)
        iso_cpu: dict[str, list[float]] = {}
        iso = _table(iso_bare, iso_wrapped, args.calls * 5, args.rounds, iso_cpu)
        print(f"\ntarget (issue 11): flightdeck's share at most {BUDGET_US:.0f} us a call (CPU, the alone table):")
        for name, overs in iso_cpu.items():
            med = statistics.median(overs)
            verdict = "met" if med <= BUDGET_US else ("met at the min only" if min(overs) <= BUDGET_US else "not met")
            print(f"  {name:<16} min {min(overs):6.1f} / median {med:6.1f} us: {verdict}")
        manual = _manual(rec, args.calls * 5, args.rounds)
        naive = _naive(Path(tmp) / "naive.jsonl", args.calls * 5, args.rounds)
        print(f"\nreference, same recorder: a hand-written rec.call with the same usage: "
              f"wall min {manual[0]:.1f} us, cpu min {manual[1]:.1f} us per call; the wrapper's own part "
              "is the alone figure minus this")
        print(f"baseline, same run: a bare json.dumps + os.write of a small line: wall min {naive[0]:.1f} us, "
              f"cpu min {naive[1]:.1f} us per call (the floor of any per-call log line on this machine); "
              f"hand-written rec.call / that = {manual[1] / naive[1]:.1f}x")
        rec.close()
        print(f"events written: {rec.events_written}; dropped: {rec.dropped}")
    print(f"worst median overhead: {worst:.1f} us over the SDK, {iso:.1f} us alone "
          f"(budget {BUDGET_US:.0f} us; the machine is shared: read the min and CPU columns as the floor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
