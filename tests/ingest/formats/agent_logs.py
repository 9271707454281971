"""Gemini CLI recordings and OpenCode storage in the tools' exact shapes, for the tests."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


# -- Gemini CLI (packages/core/src/services/chatRecordingService.ts) -------------------


def gemini_tokens(inp: int, out: int, cached: int, thoughts: int, tool: int = 0) -> dict[str, int]:
    return {"input": inp, "output": out, "cached": cached, "thoughts": thoughts, "tool": tool,
            "total": inp + out + thoughts + tool}


def gemini_meta(session: str, ts: float, project: str = "9f2c1a") -> dict[str, Any]:
    return {"sessionId": session, "projectHash": project, "startTime": iso(ts), "lastUpdated": iso(ts), "kind": "main"}


def gemini_user(mid: str, ts: float, text: str = "explain this") -> dict[str, Any]:
    return {"id": mid, "timestamp": iso(ts), "type": "user", "content": [{"text": text}]}


def gemini_reply(mid: str, ts: float, tokens: dict[str, int] | None, model: str = "gemini-2.5-pro",
                 tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": mid, "timestamp": iso(ts), "type": "gemini", "content": "Here is how.",
                           "thoughts": [{"subject": "Plan", "description": "read it", "timestamp": iso(ts)}],
                           "tokens": tokens, "model": model}
    if tool_calls is not None:
        row["toolCalls"] = tool_calls
    return row


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"\n".join(json.dumps(r, separators=(",", ":")).encode() for r in rows) + b"\n"


# -- OpenCode (packages/opencode/src/session/session.sql.ts, message-v2.ts) ------------


def oc_tokens(inp: int, out: int, reasoning: int, read: int, write: int) -> dict[str, Any]:
    return {"input": inp, "output": out, "reasoning": reasoning, "cache": {"read": read, "write": write}}


def oc_assistant(mid: str, session: str, created_ms: int, last_step: dict[str, Any], cost: float, *,
                 completed: bool = True, provider: str = "anthropic",
                 model: str = "claude-sonnet-4-5-20250929") -> dict[str, Any]:
    time: dict[str, int] = {"created": created_ms}
    if completed:
        time["completed"] = created_ms + 9000
    return {"id": mid, "sessionID": session, "role": "assistant", "time": time, "parentID": "msg_user",
            "modelID": model, "providerID": provider, "mode": "build", "agent": "build",
            "path": {"cwd": "/home/u/site", "root": "/home/u/site"}, "cost": cost, "tokens": last_step}


def oc_step(pid: str, mid: str, session: str, tokens: dict[str, Any], cost: float) -> dict[str, Any]:
    return {"id": pid, "sessionID": session, "messageID": mid, "type": "step-finish", "reason": "tool-calls",
            "snapshot": "4b825dc6", "cost": cost, "tokens": tokens}


OC_SCHEMA = """
CREATE TABLE message (id text PRIMARY KEY NOT NULL, session_id text NOT NULL, time_created integer NOT NULL,
                      time_updated integer NOT NULL, data text NOT NULL);
CREATE TABLE part (id text PRIMARY KEY NOT NULL, message_id text NOT NULL, session_id text NOT NULL,
                   time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
"""


def oc_database(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.executescript(OC_SCHEMA)
    con.execute("PRAGMA journal_mode=WAL")
    return con


def oc_insert(con: sqlite3.Connection, message: dict[str, Any], parts: list[dict[str, Any]], updated: int) -> None:
    """Write a message and its parts as OpenCode does (upserts; ``time_updated`` in ms)."""
    con.execute("INSERT OR REPLACE INTO message VALUES (?, ?, ?, ?, ?)",
                (message["id"], message["sessionID"], message["time"]["created"], updated, json.dumps(message)))
    for part in parts:
        con.execute("INSERT OR REPLACE INTO part VALUES (?, ?, ?, ?, ?, ?)",
                    (part["id"], part["messageID"], part["sessionID"], updated, updated, json.dumps(part)))
    con.commit()
