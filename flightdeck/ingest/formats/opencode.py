"""OpenCode: ``~/.local/share/opencode/opencode.db`` (SQLite) and legacy ``storage/`` JSON files.

Sources:

- sst/opencode ``packages/opencode/src/session/session.sql.ts``: tables
  ``message (id, session_id, time_created, time_updated, data)`` and
  ``part (id, message_id, session_id, time_created, time_updated, data)``,
  ``data`` a JSON document. ``message-v2.ts``: an assistant message has
  ``role``, ``providerID``, ``modelID``, ``time {created, completed}`` (ms),
  ``tokens {input, output, reasoning, cache {read, write}}``, ``cost``,
  ``path {cwd, root}``; a ``step-finish`` part has ``cost`` and ``tokens`` of
  the same shape. ``input`` excludes the cache; ``output`` excludes
  reasoning.
- Before the database: ``storage/message/<sessionID>/<messageID>.json`` and
  ``storage/part/<messageID>/<partID>.json`` (ccusage
  ``apps/ccusage/src/adapter/opencode/loader.ts``, which reads both and
  dedupes by message id).

Rules: a multi-step assistant message (tool calls in between) keeps only the
LAST step's tokens in ``message.tokens`` while its ``cost`` is the sum: the
message's usage is the sum of its ``step-finish`` parts (``message.tokens``
only when it has none; ccusage reads ``message.tokens`` and misses the
earlier steps). OpenCode's own ``cost`` is kept beside flightdeck's price in
``tags.tool_cost_usd``. Ids are ``opencode:<message id>``, so the database
and the legacy files count a message once.

The database is opened read-only (``file:...?mode=ro``, ``uri=True``) with a
short busy timeout, so OpenCode is never locked out; a busy database is
retried a few times, then skipped with a notice (read again at its next
change).
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec

from flightdeck.core.events import KIND_LLM_CALL, Event, Rejected, Usage
from flightdeck.ingest.formats.common import num, priced

OPENCODE_AGENT: Final = "opencode"
BUSY_RETRIES: Final = 3
MAX_JSON_BYTES: Final = 16 << 20


def _tokens(raw: Any) -> Usage | None:
    """OpenCode's ``tokens`` as canonical buckets; None when it is not that shape."""
    if not isinstance(raw, dict):
        return None
    cache = _obj(raw.get("cache"))

    def count(d: Any, key: str) -> int | None:
        v = d.get(key, 0) if isinstance(d, dict) else 0
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v != int(v):
            return None
        return int(v)

    parts = [count(raw, "input"), count(raw, "output"), count(raw, "reasoning"), count(cache, "read"),
             count(cache, "write")]
    if any(p is None for p in parts):
        return None
    inp, out, reasoning, read, write = (p or 0 for p in parts)
    return Usage(input_tokens=inp, output_tokens=out + reasoning, reasoning_tokens=reasoning,
                 cache_read_tokens=read, cache_write_tokens=write)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(input_tokens=a.input_tokens + b.input_tokens, output_tokens=a.output_tokens + b.output_tokens,
                 reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
                 cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
                 cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens)


def message_event(msg_id: str, session: str | None, data: Any, steps: Iterable[Any], *,
                  completed_only: bool = False) -> Event | Rejected | None:
    """An assistant message (``data``) and its ``step-finish`` parts as one event.

    None for what costs nothing (a user message, no tokens) and, with
    ``completed_only``, for a message still being written.
    """
    if not isinstance(data, dict) or data.get("role") != "assistant":
        return None
    times = _obj(data.get("time"))
    if completed_only and not times.get("completed"):
        return None
    usage: Usage | None = None
    step_cost = 0.0
    n_steps = 0
    for part in steps:
        if not isinstance(part, dict) or part.get("type") != "step-finish":
            continue
        got = _tokens(part.get("tokens"))
        if got is None:
            return Rejected("bad opencode tokens", f"step-finish part of {msg_id}")
        usage = got if usage is None else _add(usage, got)
        step_cost += num(part.get("cost")) or 0.0
        n_steps += 1
    if usage is None:
        usage = _tokens(data.get("tokens"))
        if usage is None:
            return None if data.get("tokens") is None else Rejected("bad opencode tokens", f"message {msg_id}")
    if not (usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens):
        return None
    created = num(times.get("created"))
    if created is None:
        return Rejected("missing timestamp", f"opencode message {msg_id} without time.created")
    ts = created / 1000.0
    provider = _text(data.get("providerID")) or "unknown"
    model = _text(data.get("modelID")) or "unknown"
    cost, status = priced(provider, model, usage, ts, route="direct")
    tags: dict[str, str] = {}
    own = num(data.get("cost"))
    if n_steps:
        own = step_cost
    if own is not None:
        tags["tool_cost_usd"] = repr(own)
    path = _obj(data.get("path"))
    project = path.get("root") or path.get("cwd")
    if isinstance(project, str) and project:
        tags["project"] = project
    sid = session or _text(data.get("sessionID")) or "opencode"
    error = data.get("error")
    return Event(
        v=1,
        ts=ts,
        kind=KIND_LLM_CALL,
        id=f"opencode:{msg_id}",
        run=sid,
        agent=OPENCODE_AGENT,
        provider=provider,
        route="direct",
        model=model,
        usage=usage,
        cost_usd=cost,
        cost_status=status,
        error=str(error.get("name") or "error") if isinstance(error, dict) else None,
        tags=tags or None,
    )


def _safe_event(msg_id: str, session: str | None, data: Any, steps: Iterable[Any],
                completed_only: bool) -> Event | Rejected | None:
    """``message_event`` that never raises: a shape nobody foresaw is one rejected message."""
    try:
        return message_event(msg_id, session, data, steps, completed_only=completed_only)
    except Exception as exc:  # one odd row must not lose the others
        return Rejected("bad opencode message", f"{msg_id}: {type(exc).__name__}: {exc}"[:300])


def _json(text: Any) -> Any:
    if isinstance(text, bytes | str):
        try:
            return msgspec.json.decode(text)
        except msgspec.DecodeError:
            return None
    return text


class DbRead:
    """What one read of the database gave: events, rejects, a notice, the new watermark."""

    __slots__ = ("events", "notice", "rejects", "watermark")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejects: list[Rejected] = []
        self.notice: str | None = None
        self.watermark = 0


def read_database(path: str | os.PathLike[str], *, since_updated: int = 0, completed_only: bool = False,
                  sleep: float = 0.05) -> DbRead:
    """Messages updated after ``since_updated`` (ms), read-only, never raising.

    A busy or locked database is retried ``BUSY_RETRIES`` times, then left
    for the next change with a notice.
    """
    out = DbRead()
    out.watermark = since_updated
    p = Path(path)
    if not p.is_file():
        out.notice = f"{p}: not a regular file"
        return out
    uri = "file:" + urllib.parse.quote(str(p.absolute())) + "?mode=ro"
    for attempt in range(BUSY_RETRIES):
        try:
            _query(uri, since_updated, completed_only, out)
            return out
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or attempt == BUSY_RETRIES - 1:
                out.notice = f"opencode database {p}: {exc}" + ("; skipped until it changes" if busy else "")
                out.events, out.rejects = [], []
                return out
            time.sleep(sleep * (attempt + 1))
        except sqlite3.DatabaseError as exc:  # not a database, a schema we do not know
            out.notice = f"opencode database {p}: {exc}"
            return out
    return out


def _query(uri: str, since: int, completed_only: bool, out: DbRead) -> None:
    con = sqlite3.connect(uri, uri=True, timeout=0.2)
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(message)")}
        if not columns:
            return  # an OpenCode database without messages yet
        updated = "time_updated" in columns
        where = "WHERE m.time_updated > ?" if updated else ""
        args: tuple[Any, ...] = (since,) if updated else ()
        rows = con.execute(f"SELECT m.id, m.session_id, m.data{', m.time_updated' if updated else ''} "
                           f"FROM message m {where}", args).fetchall()
        steps: dict[str, list[Any]] = {}
        if rows:
            part_rows = con.execute(
                f"SELECT p.message_id, p.data FROM part p JOIN message m ON m.id = p.message_id {where} "
                f"{'AND' if updated else 'WHERE'} p.data LIKE '%step-finish%'", args).fetchall()
            for mid, data in part_rows:
                steps.setdefault(mid, []).append(_json(data))
    finally:
        con.close()
    for row in rows:
        mid, session, data = row[0], row[1], _json(row[2])
        if updated and isinstance(row[3], int):
            out.watermark = max(out.watermark, row[3])
        if data is None:
            out.rejects.append(Rejected("bad opencode message", f"{mid}: data is not JSON"))
            continue
        ev = _safe_event(str(mid), session if isinstance(session, str) else None, data, steps.get(mid, ()),
                         completed_only)
        if isinstance(ev, Event):
            out.events.append(ev)
        elif ev is not None:
            out.rejects.append(ev)


def _read_json(path: Path) -> Any:
    try:
        if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
            return None
        return _json(path.read_bytes())
    except OSError:
        return None


def read_storage(storage: str | os.PathLike[str], *, completed_only: bool = False,
                 only: set[Path] | None = None) -> tuple[list[Event], list[Rejected]]:
    """Legacy ``storage/message/<session>/<message>.json`` files with their parts. Never raises.

    ``only``: just these message files (the ones that changed).
    """
    root = Path(storage)
    events: list[Event] = []
    rejects: list[Rejected] = []
    files = sorted(only) if only is not None else message_files(root)
    for path in files:
        data = _read_json(path)
        if data is None:
            rejects.append(Rejected("bad opencode message", f"{path.name}: not a readable JSON document"))
            continue
        mid = (_text(data.get("id")) if isinstance(data, dict) else None) or path.stem
        part_dir = root / "part" / mid
        parts = [_read_json(p) for p in sorted(part_dir.glob("*.json"))] if part_dir.is_dir() else []
        ev = _safe_event(mid, path.parent.name, data, parts, completed_only)
        if isinstance(ev, Event):
            events.append(ev)
        elif ev is not None:
            rejects.append(ev)
    return events, rejects


def message_files(storage: Path) -> list[Path]:
    """Every legacy message file below ``storage/message/``."""
    folder = storage / "message"
    try:
        return sorted(p for p in folder.glob("*/*.json") if p.is_file())
    except OSError:
        return []
