"""The Claude Code reader's lazy fast path (``ClaudeCode._lazy``) against building every copy at once.

``LAZY = False`` is the plain version: each copy is built, priced and checked
when it is read. The lazy path must give the same results line for line
(events, rejects and their reasons, copies), the same held responses at the
end, and the same report, on lines that take every branch: streamed copies,
sidechain re-writes, late copies after release, reported costs, odd usage
shapes, bad and out-of-range times, token totals whose cost leaves the line
format's bounds, synthetic placeholders, broken JSON.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.events import Rejected, check_event
from flightdeck.ingest.formats import ClaudeCode
from flightdeck.ingest.scan import scan

# claude-opus-4-6 and claude-sonnet-4-6 have dated prices (genai-prices: from 2026-03-13), so the
# times below fall on either side of that date (each copy priced from its own day's rates).
MODELS = ["claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001",
          "no-such-model-xyz", "<synthetic>", "claude-opus-4-6", "claude-sonnet-4-6"]


def _usage(rng: random.Random, out: int) -> dict[str, Any]:
    shape = rng.randrange(12)
    written = rng.randint(0, 4000)
    w1h = rng.choice((0, 0, written // 2))
    usage: dict[str, Any] = {"input_tokens": rng.randint(1, 60), "cache_read_input_tokens": rng.randint(0, 150_000),
                             "output_tokens": out, "service_tier": "standard"}
    if shape != 1:
        usage["cache_creation_input_tokens"] = written
    if shape != 2:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": written - w1h, "ephemeral_1h_input_tokens": w1h}
    if shape == 3:
        usage["input_tokens"] = "42"  # a spelling only the generic reader takes
    if shape == 4:
        usage["output_tokens"] = 10**14  # within MAX_TOKENS, but its cost is beyond $10^9
    if shape == 5:
        usage["speed"] = "fast"
    if shape == 6:
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": written + 5}
    if shape == 7:
        usage["type"] = "message_start"
    if shape == 8:
        del usage["input_tokens"]
    if shape == 9:
        usage["cache_read_input_tokens"] = 10**15  # beyond MAX_TOKENS
    if shape == 10:
        usage["output_tokens_details"] = {"thinking_tokens": rng.randint(0, out + 3)}  # > output: refused
    if shape == 11:
        usage["iterations"] = [{"input_tokens": 5, "output_tokens": 7}]  # the generic reader notes it
    return usage


def _lines(seed: int, responses: int = 400) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    ts = 1_773_360_000.0 - 75 * responses  # 2026-03-13 (a dated price change) about halfway
    for n in range(responses):
        ts += rng.uniform(1, 300)
        model = rng.choices(MODELS, (6, 2, 2, 1, 1, 2, 2))[0]
        msg = f"msg_{n % 350:04d}"  # some ids come back later: copies after release, resumed sessions
        req = rng.choice((f"req_{n}", f"req_{n}", None, "req_other"))
        agent = rng.choice((None, None, "a1", "a2"))
        side = rng.random() < 0.2
        final = rng.randint(5, 2500)
        for i in range(rng.randint(1, 4)):
            when = ts + i * 0.4
            stamp = _iso(when)
            pick = rng.randrange(40)
            if pick == 0:
                stamp = "2025-13-01T10:00:00.000Z"
            elif pick == 1:
                stamp = "2301-01-01T00:00:00.000Z"  # parses, but beyond the years 2000-2199
            elif pick == 2:
                stamp = "2025-10-01T10:00:00+02:00"  # another spelling: parse_ts itself
            row: dict[str, Any] = {
                "parentUuid": "p", "isSidechain": side, "userType": "external", "cwd": "/home/u/p",
                "sessionId": f"s{n % 7}", "version": "2.0.76", "type": "assistant", "uuid": f"u{n}-{i}",
                "timestamp": stamp,
                "message": {"id": msg if rng.random() > 0.05 else None, "type": "message", "role": "assistant",
                            "model": model, "content": [{"type": "text", "text": "x" * rng.randint(0, 40)}],
                            "usage": _usage(rng, min(final, rng.randint(1, 12) * (i + 1)))},
            }
            if req is not None:
                row["requestId"] = req
            if agent is not None:
                row["agentId"] = agent
            if pick == 3:
                row["costUSD"] = rng.uniform(0, 2)
            if pick == 4:
                del row["timestamp"]
            if pick == 5:
                row["message"]["usage"] = None
            if pick == 6:
                row["isApiErrorMessage"] = True
            line = json.dumps(row, separators=(",", ":")).encode()
            if pick == 7:
                line = line[: len(line) // 2]  # a torn write
            out.append(line)
        if rng.random() < 0.3:
            out.append(json.dumps({"type": "user", "sessionId": "s", "message": {"role": "user",
                                   "content": "the \"assistant\" said"}}).encode())
        if rng.random() < 0.05:
            out.append(b'{"type":"progress","data":{"message":{"usage":{"input_tokens":3}}}}')
    return out


def _iso(ts: float) -> str:
    from tests.ingest.formats.agent_logs import iso

    return iso(ts)


def _same(a: object, b: object) -> bool:
    if isinstance(a, Rejected) and isinstance(b, Rejected):
        return a.reason == b.reason and a.detail == b.detail
    return a == b


def _read(lines: list[bytes], lazy: bool) -> tuple[list[object], ClaudeCode]:
    cc = ClaudeCode()
    cc.LAZY = lazy
    return [cc.parse(line) for line in lines], cc


def test_the_lazy_path_gives_what_building_every_copy_gives() -> None:
    for seed in range(6):
        lines = _lines(seed)
        eager, plain = _read(lines, False)
        lazy, fast = _read(lines, True)
        for line, a, b in zip(lines, eager, lazy, strict=True):
            assert _same(a, b), (line, a, b)
        assert plain.copies == fast.copies
        assert plain.holding == fast.holding
        held = fast.flush()
        assert plain.flush() == held
        # ClaudeCode.CHECKED: what it hands out needs no second bounds check (scan skips bounded()).
        for ev in [e for r in lazy if isinstance(r, list) for e in r] + held:
            assert check_event(ev) is None
    # The branches were taken: calls, rejects of several kinds, and copies.
    reasons = {r.reason for r in eager if isinstance(r, Rejected)}
    assert {"bad timestamp", "bad cost_usd", "bad ts", "bad claude-code line", "missing timestamp",
            "claude-code skipped: assistant line without usage"} <= reasons, reasons
    assert any(isinstance(r, list) and r for r in eager) and plain.copies


# Lines that are not the usual assistant copy: the lazy path's one typed decode either answers
# them as the plain path's one-field decode does or leaves them to that path.
ODD_LINES = [
    b'{"type":"user","message":5}', b'{"type":"user","message":"text","note":"assistant"}',
    b'{"type":7,"message":{}}', b'{"type":7,"message":{},"note":"assistant"}', b'{"type":null}', b"{}",
    b"[1,2]", b"5", b'"assistant"', b'{"type":"user","message":', b'{"type":"assistant","message":',
    b'{"type":"assist\\u0061nt","message":{"id":"msg_esc","model":"claude-haiku-4-5-20251001",'
    b'"usage":{"input_tokens":3,"output_tokens":4}},"timestamp":"2026-03-01T10:00:00.000Z"}',
    b'{"type":"summary","summary":"the assistant","leafUuid":"x"}',
    b'{"type":"user","uuid":"\\q","message":{"role":"user"}}', b'{"type":"user","message":{"id":"\\q"}}',
    b'{"type":"user","isSidechain":"yes"}', b'{"type":"progress","data":{"message":{"usage":{}}}}',
    b'{"type":"system","timestamp":5,"content":"x"}', b'{"type":"user","message":{"usage":{"input_tokens":1}}}',
    b'{"type":"assistant","costUSD":"x","message":{"usage":{}}}', b'{"type":"assistant"} trailing',
]


def test_the_lazy_path_reads_other_lines_as_the_plain_path_does() -> None:
    rng = random.Random(7)
    lines = _lines(3, responses=120)
    for odd in ODD_LINES * 3:
        lines.insert(rng.randrange(len(lines) + 1), odd)
    eager, plain = _read(lines, False)
    lazy, fast = _read(lines, True)
    for line, a, b in zip(lines, eager, lazy, strict=True):
        assert _same(a, b), (line, a, b)
    assert plain.copies == fast.copies
    assert plain.flush() == fast.flush()
    assert any(isinstance(r, Rejected) for line, r in zip(lines, lazy) if line in ODD_LINES)


def built_events(monkeypatch: Any) -> list[str]:
    """The ids of the Events the reader builds from now on (``_call_event`` counted)."""
    import flightdeck.ingest.formats.claude_code as cc_mod

    built: list[str] = []
    real = cc_mod._call_event

    def counting(*args: Any) -> Any:
        ev = real(*args)
        built.append(ev.id)
        return ev

    monkeypatch.setattr(cc_mod, "_call_event", counting)
    return built


def test_the_lazy_path_builds_only_the_copies_it_hands_out(monkeypatch: Any) -> None:
    built = built_events(monkeypatch)
    from tests.ingest.formats.test_claude_code import streamed

    cc = ClaudeCode()
    got = [ev for line in streamed("msg_a") + streamed("msg_b") for ev in cc.parse(line)]  # type: ignore[union-attr]
    got += cc.flush()
    assert [ev.id for ev in got] == ["msg_a", "msg_b"]
    assert [ev.usage.output_tokens for ev in got] == [412, 412]  # type: ignore[union-attr]
    assert built == ["msg_a", "msg_b"]  # one Event per response, not one per copy (6 lines)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-sonnet-4-6"])
def test_dated_prices_take_the_lazy_path_too(monkeypatch: Any, model: str) -> None:
    # genai-prices dates a change of claude-opus-4-6's and claude-sonnet-4-6's prices: such
    # rates change only at UTC midnights, so they are cached per day and priced lazily, as others.
    from tests.ingest.formats.test_claude_code import streamed

    built = built_events(monkeypatch)
    lines = streamed("msg_a", model=model) + streamed("msg_b", model=model, ts="2026-03-13T00:00:01.000Z")
    cc = ClaudeCode()
    got = [ev for line in lines for ev in cc.parse(line)]  # type: ignore[union-attr]
    got += cc.flush()
    assert built == ["msg_a", "msg_b"]  # one Event per response: the lazy path
    plain = ClaudeCode()
    plain.LAZY = False
    want = [ev for line in lines for ev in plain.parse(line)] + plain.flush()  # type: ignore[union-attr]
    assert got == want and all(ev.cost_usd for ev in got)


def test_a_report_is_the_same_with_and_without_the_lazy_path(tmp_path: Path, monkeypatch: Any) -> None:
    folder = tmp_path / "projects" / "-home-u-p"
    folder.mkdir(parents=True)
    for seed in range(3):
        (folder / f"s{seed}.jsonl").write_bytes(b"\n".join(_lines(seed, 300)) + b"\n")
    snaps = []
    for lazy in (False, True):
        monkeypatch.setattr(ClaudeCode, "LAZY", lazy)
        agg = scan([tmp_path / "projects"], jobs=1, by=("model", "day", "session"))
        snaps.append((agg.snapshot(), agg.duplicates, agg.rejected))
    (a, dup_a, rej_a), (b, dup_b, rej_b) = snaps
    assert (dup_a, rej_a) == (dup_b, rej_b)
    assert a.total == b.total and a.breakdowns == b.breakdowns and a.rejected_reasons == b.rejected_reasons
    assert a.total.calls > 100 and a.total.unpriced > 0


def test_the_lazy_limit_keeps_every_priced_total_within_the_cost_bound() -> None:
    from decimal import Decimal

    from flightdeck.core.events import MAX_COST_USD, MAX_TOKENS, Usage
    from flightdeck.core.money import compile_rates
    from flightdeck.core.pricing import Rates
    from flightdeck.ingest.formats.claude_code import _lazy_limit

    def rates(**kw: Any) -> Rates:
        base = {"input": Decimal("15"), "output": Decimal("75"), "cache_read": Decimal("1.5"),
                "cache_write": Decimal("18.75"), "cache_write_1h": Decimal("30")}
        return Rates(**{**base, **kw})

    exact = compile_rates(rates())
    limit = _lazy_limit(exact)
    assert 0 < limit < MAX_TOKENS
    # The dearest split of the limit (all output) stays below $10^9; one token more need not.
    assert exact.cost_usd(Usage(output_tokens=limit)) < MAX_COST_USD  # type: ignore[union-attr]
    assert exact.cost_usd(Usage(output_tokens=limit + 1)) >= MAX_COST_USD  # type: ignore[union-attr]
    assert _lazy_limit(compile_rates(rates(per_request=Decimal("0.01")))) == -1  # a fee: priced at once
    assert _lazy_limit(compile_rates(rates(output=Decimal("1e-13")))) == -1  # finer than 12 places
    assert _lazy_limit(None) == -1
    free = compile_rates(rates(input=Decimal(0), output=Decimal(0), cache_read=Decimal(0), cache_write=Decimal(0),
                               cache_write_1h=Decimal(0)))
    assert _lazy_limit(free) == MAX_TOKENS - 1
