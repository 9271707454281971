"""The cockpit following Claude Code, Codex, Gemini CLI and OpenCode at once, found in a fake $HOME.

A real Engine on what discovery finds (no PATH), the real app under the
pilot; then each tool writes a new call with a model seen nowhere before, and
every one of them must reach the screen.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.ingest.discover import resolve_sources
from flightdeck.ingest.engine import Engine
from tests.e2e.histories import TOOLS
from tests.ingest.formats.agent_logs import gemini_reply, gemini_tokens, gemini_user, jsonl, oc_assistant, oc_insert
from tests.ingest.formats.agent_logs import oc_tokens as oc_tok
from tests.ingest.formats.codex_logs import token_count, turn_context, usage
from tests.ingest.formats.test_claude_code import block_line

from .conftest import wait_for

NEW_MODELS = {"claude-code": "claude-opus-4-5-20251101", "codex": "gpt-5.1-codex",
              "gemini-cli": "gemini-2.5-flash-lite", "opencode": "claude-opus-4-1-20250805"}


def append_new_calls(home: Path, now: float) -> None:
    """One new call in each tool's own log, each with a model the history never used."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    session = home / ".claude" / "projects" / "-home-u-app" / "cc-0.jsonl"
    with session.open("ab") as f:  # two responses: the second completes the first
        for k in range(2):
            f.write(block_line(f"msg_new{k}", 50, req=f"req_new{k}", session="cc-0", ts=stamp,
                               model=NEW_MODELS["claude-code"]) + b"\n")
    (rollout,) = (home / ".codex" / "sessions").rglob("rollout-*cx-0.jsonl")
    with rollout.open("ab") as f:
        total = usage(10**7, 0, 10**6, 0)  # a cumulative total past the history's: a new call
        f.write(turn_context(now, NEW_MODELS["codex"]) + b"\n")
        f.write(token_count(now, total, usage(1000, 0, 50, 0)) + b"\n")
    (chats,) = (home / ".gemini" / "tmp" / "9f2c1a" / "chats").glob("*gm0.jsonl")
    with chats.open("ab") as f:
        rows = []
        for k in range(2):
            rows += [gemini_user(f"nu{k}", now), gemini_reply(f"ng{k}", now, gemini_tokens(100, 5, 0, 0),
                                                              model=NEW_MODELS["gemini-cli"])]
        f.write(jsonl(rows))
    con = sqlite3.connect(home / ".local" / "share" / "opencode" / "opencode.db")
    oc_insert(con, oc_assistant("m-new", "oc-1", int(now * 1000), oc_tok(10, 5, 0, 0, 0), 0.0,
                                model=NEW_MODELS["opencode"]), [], 99)
    con.close()


async def test_the_cockpit_follows_all_four_tools_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for make in TOOLS.values():
        make(home)
    paths, documents = resolve_sources([], env={"HOME": str(home)}, say=False)
    engine = Engine(paths, documents=documents)
    app = FlightdeckApp(engine, refresh_interval=0.05)
    async with app.run_test(size=(200, 60)):
        assert engine.wait_backfilled(30)
        text = await wait_for(app, "gpt-5-codex", "gemini-2.5-pro", "claude-haiku-4-5", timeout=20.0)
        assert "gpt-5-codex" in text and "gemini-2.5-pro" in text and "claude-haiku-4-5" in text, text
        append_new_calls(home, time.time())
        text = await wait_for(app, *NEW_MODELS.values(), timeout=20.0)
        missing = [m for m in NEW_MODELS.values() if m not in text]
        assert not missing, text
        agents = {g.key for g in engine.snapshot().breakdowns["agent"]}
        assert agents == set(TOOLS)
