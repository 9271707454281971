"""Generated multi-day histories of Claude Code, Codex, Gemini CLI and OpenCode, with their expected bills.

Every log is written in the tool's own shape (the fixtures of
tests/ingest/formats); every expected cost is worked by hand here from the
tool's token semantics and the providers' list prices per million tokens,
never through flightdeck's pricer:

- Anthropic (anthropic.com/pricing): Claude Sonnet 4.5 input 3, output 15,
  5-minute cache write 3.75, cache read 0.30; Claude Haiku 4.5 1, 5, 1.25, 0.10.
- OpenAI (openai.com/api/pricing): GPT-5 / gpt-5-codex input 1.25, cached
  input 0.125, output 10; GPT-5 mini 0.25, 0.025, 2.
- Google (ai.google.dev/gemini-api/docs/pricing, prompts up to 200k):
  Gemini 2.5 Pro input 1.25, context cache 0.125, output (thinking
  included) 10; Gemini 2.5 Flash 0.30, 0.03, 2.50.

Token semantics, per tool: Claude Code's ``usage`` buckets are disjoint;
Codex's ``input_tokens`` include the cached ones and ``output_tokens`` the
reasoning; Gemini's ``input`` includes ``cached``, ``tool`` prompt tokens are
further input and ``thoughts`` are billed as output; OpenCode's ``input``
excludes the cache, ``output`` excludes ``reasoning`` (billed as output), and
a multi-step message is the sum of its step-finish parts.

Calls fall on several UTC days, some a fraction of a second either side of
midnight, so a call dated by anything but its own UTC timestamp lands on the
wrong day.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tests.ingest.formats.agent_logs import (
    gemini_meta,
    gemini_reply,
    gemini_tokens,
    gemini_user,
    jsonl,
    oc_assistant,
    oc_database,
    oc_insert,
    oc_step,
    oc_tokens,
)
from tests.ingest.formats.codex_logs import Session
from tests.ingest.formats.test_claude_code import block_line, user_line

MIDNIGHT = 1_794_960_000.0  # 2026-11-18T00:00:00Z
DAY = 86400.0
M = Decimal(1_000_000)

# USD per million tokens: (input, output, cache write (5 min), cache read).
LIST_PRICES: dict[str, tuple[str, str, str, str]] = {
    "claude-sonnet-4-5-20250929": ("3", "15", "3.75", "0.30"),
    "claude-haiku-4-5-20251001": ("1", "5", "1.25", "0.10"),
    "gpt-5-codex": ("1.25", "10", "0", "0.125"),
    "gpt-5-mini": ("0.25", "2", "0", "0.025"),
    "gemini-2.5-pro": ("1.25", "10", "0", "0.125"),
    "gemini-2.5-flash": ("0.30", "2.50", "0", "0.03"),
}


@dataclass(frozen=True)
class Bill:
    """One call as the report must count it: canonical buckets and the hand-worked cost."""

    ts: float
    model: str
    input: int  # plain input (no cache)
    output: int  # reasoning included
    cache_write: int
    cache_read: int

    @property
    def day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self.ts))

    @property
    def cost(self) -> Decimal:
        pin, pout, pwrite, pread = (Decimal(p) for p in LIST_PRICES[self.model])
        return (self.input * pin + self.output * pout + self.cache_write * pwrite + self.cache_read * pread) / M


def _iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


# Times of the calls (ms from MIDNIGHT), shared by the tools: three UTC days, two of them
# a moment either side of a midnight.
CALL_MS = (9 * 3600_000, 23 * 3600_000 + 59 * 60_000 + 59_800, 86400_000 + 150, 86400_000 + 14 * 3600_000,
           2 * 86400_000 - 400, 2 * 86400_000 + 300, 2 * 86400_000 + 20 * 3600_000)


def claude_code(home: Path, tag: str = "") -> list[Bill]:
    """Two sessions, two models; each response streamed as three lines, output growing."""
    bills = []
    proj = home / ".claude" / "projects" / "-home-u-app"
    proj.mkdir(parents=True, exist_ok=True)
    for s, model in enumerate(("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")):
        lines = []
        for k, ms in enumerate(CALL_MS):
            at = int(MIDNIGHT * 1000) + ms + s * 1000
            outs = (2, 9, 100 + 37 * k + s)
            read = 4000 + 500 * k
            for i, out in enumerate(outs):
                lines.append(block_line(f"msg_{tag}{s}_{k}", out, req=f"req_{tag}{s}_{k}", session=f"{tag}cc-{s}",
                                        ts=_iso_ms(at), read=read, model=model,
                                        block=("thinking", "text", "tool_use")[i]))
            lines.append(user_line(session=f"{tag}cc-{s}"))
            # block_line: input 4, 5-minute cache write 200, cache read `read`.
            bills.append(Bill(at / 1000, model, 4, outs[-1], 200, read))
        (proj / f"{tag}cc-{s}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return bills


def codex(home: Path, tag: str = "") -> list[Bill]:
    """Two rollouts (two models); every count written twice, as rate-limit updates do."""
    bills = []
    for s, model in enumerate(("gpt-5-codex", "gpt-5-mini")):
        first = MIDNIGHT + CALL_MS[0] / 1000 - 30
        sess = Session(f"{tag}cx-{s}", first, model=model)
        for k, ms in enumerate(CALL_MS):
            target = MIDNIGHT + ms / 1000 + s
            inp, cached, out, reasoning = 9000 + 100 * k, 6000 + 10 * k, 300 + k, 120
            sess.call(inp, cached, out, reasoning, repeats=2, gap=target - sess.t)
            bills.append(Bill(sess.t, model, inp - cached, out, 0, cached))
        day = time.strftime("%Y/%m/%d", time.gmtime(first))
        folder = home / ".codex" / "sessions" / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rollout-2026-11-18T08-59-30-{tag}cx-{s}.jsonl").write_bytes(sess.data())
    return bills


def gemini_cli(home: Path, tag: str = "") -> list[Bill]:
    """One recording per model; each reply written twice (no tokens yet, then the final ones)."""
    bills = []
    chats = home / ".gemini" / "tmp" / "9f2c1a" / "chats"
    chats.mkdir(parents=True, exist_ok=True)
    for s, model in enumerate(("gemini-2.5-pro", "gemini-2.5-flash")):
        rows = [gemini_meta(f"{tag}gm-{s}", MIDNIGHT + CALL_MS[0] / 1000 - 60)]
        for k, ms in enumerate(CALL_MS):
            ts = MIDNIGHT + (ms + s * 1000) / 1000
            inp, out, cached, thoughts, tool = 5000 + 10 * k, 80 + k, 3000, 20 + k, 7 * k
            rows += [gemini_user(f"u{s}{k}", ts - 2), gemini_reply(f"g{s}{k}", ts, None, model=model),
                     gemini_reply(f"g{s}{k}", ts, gemini_tokens(inp, out, cached, thoughts, tool), model=model)]
            bills.append(Bill(ts, model, inp - cached + tool, out + thoughts, 0, cached))
        (chats / f"session-2026-11-18T08-59-{tag}gm{s}.jsonl").write_bytes(jsonl(rows))
    return bills


def opencode(home: Path, tag: str = "") -> list[Bill]:
    """A database of two-step messages (message.tokens holds only the last step)."""
    bills = []
    data = home / ".local" / "share" / "opencode"
    data.mkdir(parents=True, exist_ok=True)
    con = oc_database(data / "opencode.db")
    for k, ms in enumerate(CALL_MS):
        created = int(MIDNIGHT * 1000) + ms
        a = oc_tokens(700 + k, 40, 10, 3000, 100 if k == 2 else 0)
        b = oc_tokens(50, 90 + k, 5, 3600, 0)
        mid = f"{tag}m{k}"
        steps = [oc_step(f"{mid}a", mid, f"{tag}oc-1", a, 0.01), oc_step(f"{mid}b", mid, f"{tag}oc-1", b, 0.01)]
        oc_insert(con, oc_assistant(mid, f"{tag}oc-1", created, b, 0.02), steps, k + 1)
        bills.append(Bill(created / 1000, "claude-sonnet-4-5-20250929", 750 + k, 40 + 10 + 90 + k + 5,
                          a["cache"]["write"], 6600))
    con.close()
    return bills


TOOLS = {"claude-code": claude_code, "codex": codex, "gemini-cli": gemini_cli, "opencode": opencode}


def totals(bills: list[Bill], key: str) -> dict[str, dict[str, object]]:
    """Per ``day`` or ``model``: the tokens in the report's buckets and the cost, summed from the bills."""
    out: dict[str, dict[str, object]] = defaultdict(
        lambda: {"calls": 0, "input": 0, "output": 0, "cache_write": 0, "cache_read": 0, "cost": Decimal(0)})
    for b in bills:
        row = out[b.day if key == "day" else b.model]
        row["calls"] += 1  # type: ignore[operator]
        for name in ("input", "output", "cache_write", "cache_read"):
            row[name] += getattr(b, name)  # type: ignore[operator]
        row["cost"] += b.cost  # type: ignore[operator]
    return dict(out)
