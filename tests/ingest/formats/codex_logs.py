"""Codex CLI rollout lines in the exact shape Codex writes (openai/codex ``protocol.rs``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def iso(ts: float) -> str:
    """Codex's timestamp spelling: ``2026-11-20T10:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def line(ts: float, kind: str, payload: dict[str, Any]) -> bytes:
    return json.dumps({"timestamp": iso(ts), "type": kind, "payload": payload}, separators=(",", ":")).encode()


def session_meta(ts: float, sid: str, *, cwd: str = "/home/u/app", forked_from: str | None = None,
                 subagent_of: str | None = None) -> bytes:
    payload: dict[str, Any] = {"id": sid, "timestamp": iso(ts), "cwd": cwd, "originator": "codex_cli_rs",
                               "cli_version": "0.63.0", "instructions": None, "model_provider": "openai",
                               "source": "cli"}
    if forked_from is not None:
        payload["forked_from_id"] = forked_from
    if subagent_of is not None:
        payload["source"] = {"subagent": {"thread_spawn": {"parent_thread_id": subagent_of, "depth": 1}}}
    return line(ts, "session_meta", payload)


def turn_context(ts: float, model: str = "gpt-5-codex", cwd: str = "/home/u/app") -> bytes:
    return line(ts, "turn_context", {"cwd": cwd, "approval_policy": "on-request", "model": model,
                                     "effort": "medium", "summary": "auto",
                                     "sandbox_policy": {"type": "workspace-write"}})


def usage(inp: int, cached: int, out: int, reasoning: int) -> dict[str, int]:
    return {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out,
            "reasoning_output_tokens": reasoning, "total_tokens": inp + out}


def rate_limits(primary: float, secondary: float, resets: float) -> dict[str, Any]:
    return {"limit_id": "codex", "limit_name": None,
            "primary": {"used_percent": primary, "window_minutes": 300, "resets_at": int(resets)},
            "secondary": {"used_percent": secondary, "window_minutes": 10080, "resets_at": int(resets) + 86400},
            "credits": None, "plan_type": "plus"}


def token_count(ts: float, total: dict[str, int] | None, last: dict[str, int] | None,
                limits: dict[str, Any] | None = None) -> bytes:
    info = None if total is None else {"total_token_usage": total, "last_token_usage": last,
                                       "model_context_window": 272000}
    return line(ts, "event_msg", {"type": "token_count", "info": info, "rate_limits": limits})


def user_message(ts: float, text: str = "fix the test") -> bytes:
    return line(ts, "event_msg", {"type": "user_message", "message": text, "images": []})


class Session:
    """A rollout being written: calls add to the cumulative totals, as Codex does."""

    def __init__(self, sid: str, t0: float, *, model: str = "gpt-5-codex", **meta: Any) -> None:
        self.sid, self.t, self.model = sid, t0, model
        self.lines = [session_meta(t0, sid, **meta), turn_context(t0 + 0.01, model)]
        self.tot = usage(0, 0, 0, 0)
        self.calls: list[dict[str, int]] = []

    def call(self, inp: int, cached: int, out: int, reasoning: int, *, limits: dict[str, Any] | None = None,
             repeats: int = 1, gap: float = 7.0) -> None:
        """One model call: its token_count, written ``repeats`` times (rate-limit updates)."""
        self.t += gap
        last = usage(inp, cached, out, reasoning)
        self.tot = {k: self.tot[k] + last[k] for k in self.tot}
        self.calls.append(last)
        self.lines.append(user_message(self.t - 1))
        for i in range(repeats):
            self.lines.append(token_count(self.t + i * 0.2, dict(self.tot), last, limits))

    def data(self) -> bytes:
        return b"\n".join(self.lines) + b"\n"
