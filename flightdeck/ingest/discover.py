"""Every coding agent's logs on this machine, found on their own (SPEC 5.3).

Where each tool writes, from its own source (and ccusage's adapters):

- Claude Code: ``$CLAUDE_CONFIG_DIR`` (several folders, comma-separated),
  else ``~/.config/claude`` and ``~/.claude``; sessions in ``<dir>/projects``
  (ccusage ``apps/ccusage/src/adapter/claude/paths.ts``).
- Codex CLI: ``$CODEX_HOME`` (default ``~/.codex``), ``sessions/`` and
  ``archived_sessions/`` (openai/codex ``codex-rs/core/src/rollout``).
- Gemini CLI: ``$GEMINI_CLI_HOME`` replaces the home folder
  (gemini-cli ``packages/core/src/utils/paths.ts``), sessions in
  ``.gemini/tmp/<project>/chats/``; ccusage's ``GEMINI_DATA_DIR`` (comma
  separated) names ``tmp`` folders directly.
- OpenCode: ``$OPENCODE_DATA_DIR`` (ccusage's name), else
  ``$XDG_DATA_HOME/opencode`` (default ``~/.local/share/opencode``):
  ``opencode.db`` and the legacy ``storage/``.

``discover`` only looks (stat and list); nothing is opened for writing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.plan_windows import ClaudeBlocks, block_json, claude_windows
from flightdeck.core.snapshot import Snapshot
from flightdeck.ingest.claude_status import fresh_windows
from flightdeck.ingest.documents import DocumentSource, OpenCodeDatabase, gemini_legacy, opencode_storage
from flightdeck.ingest.formats.opencode import message_files


@dataclass
class Found:
    """One tool's logs: JSONL folders to follow, documents to poll, and what to call them."""

    tool: str
    paths: list[Path] = field(default_factory=list)
    documents: list[DocumentSource] = field(default_factory=list)
    sessions: int = 0
    databases: int = 0

    def summary(self) -> str:
        """``Claude Code: 812 sessions`` / ``OpenCode: 1 database, 3 sessions``."""
        parts = []
        if self.databases:
            parts.append(f"{self.databases} database" + ("s" if self.databases != 1 else ""))
        if self.sessions or not parts:
            parts.append(f"{self.sessions} session" + ("s" if self.sessions != 1 else ""))
        return f"{self.tool}: " + ", ".join(parts)


def _list(value: str | None) -> list[Path]:
    return [Path(v.strip()).expanduser() for v in (value or "").split(",") if v.strip()]


def _count(folder: Path, pattern: str) -> int:
    try:
        return sum(1 for p in folder.glob(pattern) if p.is_file())
    except OSError:
        return 0


def _dirs(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir() and p.resolve() not in {q.resolve() for q in out}:
            out.append(p)
    return out


def claude_code(env: Mapping[str, str], home: Path) -> Found:
    """Claude Code's ``projects`` folders."""
    bases = _list(env.get("CLAUDE_CONFIG_DIR")) or [home / ".config" / "claude", home / ".claude"]
    found = Found("Claude Code")
    for projects in _dirs([b / "projects" for b in bases]):
        found.paths.append(projects)
        found.sessions += _count(projects, "*/*.jsonl")
    return found


def codex(env: Mapping[str, str], home: Path) -> Found:
    """Codex's ``sessions`` and ``archived_sessions`` folders."""
    base = Path(env["CODEX_HOME"]).expanduser() if env.get("CODEX_HOME") else home / ".codex"
    found = Found("Codex")
    for folder in _dirs([base / "sessions", base / "archived_sessions"]):
        found.paths.append(folder)
        found.sessions += _count(folder, "**/rollout-*.jsonl")
    return found


def gemini_cli(env: Mapping[str, str], home: Path) -> Found:
    """Gemini CLI's ``tmp`` folders (recordings in ``<project>/chats``)."""
    tmps = _list(env.get("GEMINI_DATA_DIR"))
    if not tmps:
        root = Path(env["GEMINI_CLI_HOME"]).expanduser() if env.get("GEMINI_CLI_HOME") else home
        tmps = [root / ".gemini" / "tmp"]
    found = Found("Gemini CLI")
    for tmp in _dirs(tmps):
        jsonl = _count(tmp, "*/chats/**/*.jsonl")
        legacy = _count(tmp, "*/chats/**/*.json")
        if not (jsonl or legacy):
            continue
        found.paths.append(tmp)
        found.documents.append(gemini_legacy(tmp))
        found.sessions += jsonl + legacy
    return found


def opencode_dir(env: Mapping[str, str], home: Path) -> Path:
    """Where OpenCode keeps its data."""
    if env.get("OPENCODE_DATA_DIR"):
        return Path(env["OPENCODE_DATA_DIR"]).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else home / ".local" / "share") / "opencode"


def opencode(env: Mapping[str, str], home: Path) -> Found:
    """OpenCode's database and legacy message files."""
    base = opencode_dir(env, home)
    found = Found("OpenCode")
    db = base / "opencode.db"
    if db.is_file():
        found.documents.append(OpenCodeDatabase(db))
        found.databases = 1
    storage = base / "storage"
    legacy = message_files(storage) if storage.is_dir() else []
    if legacy:
        found.documents.append(opencode_storage(storage))
        found.sessions = len({p.parent.name for p in legacy})
    return found


def discover(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[Found]:
    """Every tool whose logs exist for this user, in a fixed order (empty ones left out)."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home()) if home is None else home
    tools = [claude_code(env, home), codex(env, home), gemini_cli(env, home), opencode(env, home)]
    return [t for t in tools if t.paths or t.documents]


def describe(found: list[Found]) -> str:
    """One line for stderr: ``Claude Code: 812 sessions, Codex: 40 sessions, OpenCode: 1 database``."""
    if not found:
        return "no agent logs found (Claude Code, Codex, Gemini CLI, OpenCode)"
    return "; ".join(f.summary() for f in found)


def paths_of(found: list[Found]) -> list[Path]:
    """The JSONL folders to read or follow."""
    return [p for f in found for p in f.paths]


def documents_of(found: list[Found]) -> list[DocumentSource]:
    """The document sources to poll."""
    return [d for f in found for d in f.documents]


def resolve_sources(given: list[str], *, env: Mapping[str, str] | None = None, home: Path | None = None,
                    say: bool = True) -> tuple[list[str | Path], list[DocumentSource]]:
    """The JSONL paths and documents to read: those given, or (none given) every agent log found.

    A given ``*.db`` file is an OpenCode database. Found ones are described
    on stderr (``say``). ValueError when nothing was given and nothing found.
    """
    if given:
        paths: list[str | Path] = []
        documents: list[DocumentSource] = []
        for raw in given:
            if raw.endswith(".db") and Path(raw).is_file():
                documents.append(OpenCodeDatabase(raw))
            else:
                paths.append(raw)
        return paths, documents
    found = discover(env, home)
    if say:
        print(f"flightdeck: found {describe(found)}", file=sys.stderr)
    if not found:
        raise ValueError("no PATH given and no agent logs found (Claude Code, Codex, Gemini CLI, OpenCode)")
    return list(paths_of(found)), documents_of(found)


def add_documents(agg: Aggregator, documents: list[DocumentSource], *, since: float | None = None,
                  until: float | None = None) -> None:
    """Read each document source to its end into ``agg`` (``report``); never raises for a bad source."""
    lo = -math.inf if since is None else since
    hi = math.inf if until is None else until
    for source in documents:
        try:
            batch = source.poll(final=True)
        except Exception as exc:  # one bad source never stops the others
            agg.reject("unreadable source", f"{source.label}: {type(exc).__name__}: {exc}")
            continue
        agg.add_many([ev for ev in batch.events if lo <= ev.ts < hi])  # type: ignore[operator]
        for rej in batch.rejects:
            agg.reject(rej.reason, rej.detail)
        for notice in batch.notices:
            print(f"flightdeck: {notice}", file=sys.stderr)


def with_plan_windows(snap: Snapshot, paths: list[str | Path], *, blocks: ClaudeBlocks | None = None,
                      now: float | None = None, notices: list[str] | None = None) -> Snapshot:
    """``snap`` with its plan windows, as ``report`` shows them.

    Args:
        snap: the report's snapshot.
        paths: what was read: the Codex rollouts below it give their reported windows.
        blocks: Claude's 5-hour blocks of the calls read (``Aggregator.claude_blocks``); with any,
            the windows Claude Code's status line recorded (fresh ones) or else the latest block.
        now: wall time (default the clock): which block is in progress, which record is fresh.
        notices: where to say why recorded windows were not used.
    """
    from flightdeck.ingest.formats.codex import windows_in
    from flightdeck.ingest.scan import ScanError, detect_file_format, expand

    plans: list[dict[str, Any]] = []
    try:
        # Codex names its rollouts rollout-*.jsonl: only those are opened again.
        files = [str(p) for p in expand(paths) if p.name.startswith("rollout-") and detect_file_format(p) == "codex"]
    except ScanError:
        files = []
    plans.extend(w.to_json() for w in windows_in(files).values())
    rows: tuple[dict[str, Any], ...] = ()
    if blocks is not None and blocks.seen:
        now = time.time() if now is None else now
        plans.extend(claude_windows(fresh_windows(now, notices=notices), blocks.latest(now)))
        rows = tuple(block_json(b, now) for b in blocks.blocks())
    if not plans and not rows:
        return snap
    return dataclasses.replace(snap, plan_windows=tuple(plans), blocks=rows)
