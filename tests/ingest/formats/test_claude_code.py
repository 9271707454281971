"""Claude Code 2.x as it really writes: streamed copies, missing requestIds, sidechains, fast mode.

The lines are shaped as Claude Code 2.x writes them (one line per content
block, the usage repeated on each, ``output_tokens`` growing; sub-agent
transcripts under ``<session>/subagents/``), as in ccusage's fixtures
(``apps/ccusage/src/adapter/claude/data-loader.ts``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.events import Event, Rejected, Usage
from flightdeck.core.pricing import Pricer, Rates, default_pricer, price, set_default_pricer
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.formats import ClaudeCode, FileFormat
from flightdeck.ingest.scan import scan

MODEL = "claude-sonnet-4-5-20250929"


def block_line(msg_id: str, out: int, *, req: str | None = "req_1", session: str = "sess-1", block: str = "text",
               ts: str = "2026-11-20T10:00:00.000Z", sidechain: bool = False, read: int = 5000,
               agent_id: str | None = None, speed: str | None = None, model: str = MODEL) -> bytes:
    """One content block of a streamed response, as Claude Code 2.x writes it."""
    usage: dict[str, Any] = {"input_tokens": 4, "cache_creation_input_tokens": 200, "cache_read_input_tokens": read,
                             "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 0},
                             "output_tokens": out, "service_tier": "standard"}
    if speed is not None:
        usage["speed"] = speed
    content = {"thinking": {"type": "thinking", "thinking": "...", "signature": "sig"},
               "text": {"type": "text", "text": "Let me look."},
               "tool_use": {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/x"}}}[block]
    row: dict[str, Any] = {
        "parentUuid": "p-" + msg_id, "isSidechain": sidechain, "userType": "external", "cwd": "/home/u/proj",
        "sessionId": session, "version": "2.0.76", "gitBranch": "main", "type": "assistant",
        "uuid": f"u-{msg_id}-{block}-{out}", "timestamp": ts,
        "message": {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [content],
                    "stop_reason": None, "stop_sequence": None, "usage": usage},
    }
    if req is not None:
        row["requestId"] = req
    if agent_id is not None:
        row["agentId"] = agent_id
    return json.dumps(row, separators=(",", ":")).encode()


def user_line(text: str = "go on", session: str = "sess-1") -> bytes:
    return json.dumps({"type": "user", "sessionId": session, "uuid": "uu", "timestamp": "2026-11-20T10:00:00.000Z",
                       "message": {"role": "user", "content": text}}).encode()


def streamed(msg_id: str, outs: tuple[int, ...] = (8, 8, 412), **kw: Any) -> list[bytes]:
    """A response written as thinking, text and tool_use lines, output growing."""
    blocks = ("thinking", "text", "tool_use")
    return [block_line(msg_id, out, block=blocks[i % 3], **kw) for i, out in enumerate(outs)]


def read_all(lines: list[bytes]) -> tuple[list[Event], list[Rejected], FileFormat]:
    f = FileFormat()
    events: list[Event] = []
    rejects: list[Rejected] = []
    for line in lines:
        got = f.parse(line)
        if isinstance(got, Rejected):
            rejects.append(got)
        else:
            events.extend(got)
    events.extend(f.flush())
    return events, rejects, f


def test_the_most_complete_copy_of_a_streamed_response_counts() -> None:
    lines = [user_line(), *streamed("msg_A", req="req_A"), user_line("tool result"),
             *streamed("msg_B", (3, 977), req="req_B")]
    events, rejects, f = read_all(lines)
    assert rejects == []
    assert [(e.id, e.usage.output_tokens) for e in events] == [("msg_A", 412), ("msg_B", 977)]  # type: ignore[union-attr]
    assert f.take_copies() == 3  # the other lines: duplicates
    usage = Usage(input_tokens=4, output_tokens=412, cache_read_tokens=5000, cache_write_tokens=200)
    assert events[0].cost_usd is not None
    assert Decimal(events[0].cost_usd) == price("anthropic", MODEL, usage, events[0].ts, route="direct").usd


def test_a_response_is_handed_out_when_its_thread_moves_on() -> None:
    f = FileFormat()
    assert f.parse(block_line("msg_A", 8)) == []
    assert f.parse(user_line()) == []  # a tool result between the blocks changes nothing
    assert f.parse(block_line("msg_A", 300, block="tool_use")) == []
    (done,) = f.parse(block_line("msg_B", 5, req="req_B"))  # type: ignore[misc]
    assert done.id == "msg_A" and done.usage.output_tokens == 300  # type: ignore[union-attr]
    # A sub-agent's response in between (same file, older versions) does not complete the main one.
    assert f.parse(block_line("msg_S", 5, req="req_S", sidechain=True, agent_id="a1")) == []
    assert f.parse(block_line("msg_B", 50, req="req_B")) == []
    assert [e.id for e in f.flush()] == ["msg_B", "msg_S"]


def test_lines_without_request_id_are_deduplicated_by_message_id() -> None:
    events, _rejects, _f = read_all([*streamed("msg_A", req=None), *streamed("msg_B", (2, 30), req=None)])
    assert [(e.id, e.usage.output_tokens) for e in events] == [("msg_A", 412), ("msg_B", 30)]  # type: ignore[union-attr]


def test_a_sidechain_rewrite_of_a_parent_message_counts_once_as_the_parent(tmp_path: Path) -> None:
    proj = tmp_path / "projects" / "-home-u-proj"
    (proj / "sess-1" / "subagents").mkdir(parents=True)
    parent = streamed("msg_P", req="req_P")
    # Same file: the /btw side question re-writes msg_P under a new requestId with a larger context.
    rewrite = block_line("msg_P", 412, req="req_BTW", sidechain=True, read=90_000, block="tool_use")
    (proj / "sess-1.jsonl").write_bytes(b"\n".join([*parent, rewrite, *streamed("msg_Q", (1, 9), req="req_Q")]) + b"\n")
    # A sub-agent's own transcript copies the parent message too.
    (proj / "sess-1" / "subagents" / "agent-a1.jsonl").write_bytes(
        b"\n".join([block_line("msg_P", 412, req="req_SUB", sidechain=True, read=120_000, agent_id="a1"),
                    *streamed("msg_S", (2, 70), req="req_S", sidechain=True, agent_id="a1")]) + b"\n")
    for jobs in (1, 2):
        snap = scan([tmp_path / "projects"], jobs=jobs, by=("model", "name")).snapshot()
        assert snap.events == 3  # msg_P, msg_Q, msg_S
        tok = snap.total.tokens
        assert tok.output_tokens == 412 + 9 + 70
        assert tok.cache_read_tokens == 3 * 5000  # the parent's context, not the re-writes' larger ones
        assert snap.rejected == 0


def test_report_keeps_the_largest_copy_exactly_across_files_and_processes(tmp_path: Path) -> None:
    folder = tmp_path / "projects" / "-p"
    folder.mkdir(parents=True)
    expected_out = 0
    for s in range(6):
        lines = []
        for k in range(50):
            outs = (1 + k % 3, 1 + k % 3, 100 + s * 50 + k)
            expected_out += outs[-1]
            lines += streamed(f"msg_{s}_{k}", outs, req=f"req_{s}_{k}", session=f"s{s}")
            lines.append(user_line(session=f"s{s}"))
        (folder / f"s{s}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # A resumed session copies an earlier one's history into a new file: counted once.
    (folder / "s9.jsonl").write_bytes((folder / "s0.jsonl").read_bytes())
    whole = scan([tmp_path], jobs=1).snapshot()
    split = scan([tmp_path], jobs=3).snapshot()
    for snap in (whole, split):
        assert snap.events == 300
        assert snap.total.tokens.output_tokens == expected_out
    assert whole.total.cost_usd == split.total.cost_usd
    first_copy = 300 * 0 + sum(1 + k % 3 for _s in range(6) for k in range(50))
    assert first_copy < expected_out  # what keeping the first copy counted


@pytest.fixture
def recording_pricer() -> Iterator[list[str | None]]:
    seen: list[str | None] = []
    before = default_pricer()

    class Recording(Pricer):
        def rates(self, provider: str, model: str, when: Any = None, route: str | None = None, *,
                  service_tier: str | None = None, speed: str | None = None) -> Rates | None:
            seen.append(speed)
            return super().rates(provider, model, when, route, service_tier=service_tier, speed=speed)

    set_default_pricer(Recording())
    try:
        yield seen
    finally:
        set_default_pricer(before)


def test_fast_mode_is_on_the_event_and_reaches_the_pricer(recording_pricer: list[str | None]) -> None:
    events, _r, _f = read_all([block_line("msg_F", 100, speed="fast", model="claude-opus-4-6"),
                               block_line("msg_N", 100, req="req_N", model="claude-opus-4-6")])
    assert [e.speed for e in events] == ["fast", None]
    assert "fast" in recording_pricer and None in recording_pricer


def test_skipped_lines_are_counted_with_their_reason(tmp_path: Path) -> None:
    progress = json.dumps({"type": "progress", "sessionId": "sess-1", "timestamp": "2026-11-20T10:00:00.000Z",
                           "data": {"type": "agent_progress", "message": {"type": "assistant", "message": {
                               "id": "msg_sub", "model": MODEL, "usage": {"input_tokens": 3, "output_tokens": 9}}}}})
    lines = [user_line(), json.dumps({"sessionId": "sess-1", "leafUuid": "x"}).encode(), progress.encode(),
             json.dumps({"type": "assistant", "sessionId": "sess-1", "message": {"id": "m", "model": MODEL}}).encode(),
             *streamed("msg_A")]
    path = tmp_path / "sess-1.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    snap = scan([path]).snapshot()
    assert snap.events == 1
    assert snap.rejected_reasons == {
        "claude-code skipped: line without type": 1,
        "claude-code skipped: progress line with usage": 1,
        "claude-code skipped: assistant line without usage": 1,
    }


def test_a_larger_copy_after_release_is_counted_as_skipped_never_silently() -> None:
    parser = ClaudeCode()
    parser.parse(block_line("msg_A", 8))
    (ev,) = parser.flush()
    assert ev.usage.output_tokens == 8  # type: ignore[union-attr]
    late = parser.parse(block_line("msg_A", 400, block="tool_use"))
    assert isinstance(late, Rejected) and late.reason == "claude-code skipped: larger copy after release"
    assert parser.parse(block_line("msg_A", 8)) == [ev]  # the same copy again: the aggregator's duplicate


def test_live_engine_counts_the_complete_copy(tmp_path: Path) -> None:
    proj = tmp_path / "projects" / "-p"
    proj.mkdir(parents=True)
    path = proj / "sess-1.jsonl"
    path.write_bytes(b"\n".join(streamed("msg_A", (8, 8))) + b"\n")
    eng = Engine([tmp_path / "projects"])
    eng.start()
    try:
        assert eng.wait_backfilled(10)
        with path.open("ab") as f:  # the response's last block arrives, then the next response starts
            f.write(block_line("msg_A", 640, block="tool_use") + b"\n" + user_line() + b"\n")
            f.write(block_line("msg_B", 3, req="req_B") + b"\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and eng.snapshot().total.tokens.output_tokens < 640:
            time.sleep(0.05)
        snap = eng.snapshot()
    finally:
        eng.stop()
    # History ended mid-response: following live, msg_A was held, its last copy
    # replaced the first, and msg_B's start completed it. msg_B stays held (its
    # thread has not moved on) until the file is quiet for SETTLE_SECONDS.
    assert snap.events == 1 and snap.total.tokens.output_tokens == 640
    assert snap.rejected == 0 and snap.duplicates == 2


def test_interleaved_subagents_without_agent_id_keep_their_largest_copies() -> None:
    # Older versions wrote parallel Task sub-agents into the main file, lines interleaved.
    lines = [block_line("msg_S1", 4, req="r1", sidechain=True), block_line("msg_S2", 6, req="r2", sidechain=True),
             block_line("msg_S1", 90, req="r1", sidechain=True, block="tool_use"),
             block_line("msg_S2", 70, req="r2", sidechain=True, block="tool_use")]
    events, rejects, _f = read_all(lines)
    assert rejects == []
    assert sorted((e.id, e.usage.output_tokens) for e in events) == [("msg_S1", 90), ("msg_S2", 70)]  # type: ignore[union-attr]
