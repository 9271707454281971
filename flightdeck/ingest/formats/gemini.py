"""Gemini CLI chat recordings: ``~/.gemini/tmp/<project>/chats/session-*.jsonl`` and legacy ``.json``.

Sources:

- google-gemini/gemini-cli ``packages/core/src/services/chatRecordingService.ts``:
  a ``.jsonl`` recording is an upsert log. Its first line is the session's
  metadata (``sessionId``, ``projectHash``, ``startTime``, ``lastUpdated``);
  each message record (``id``, ``timestamp``, ``type`` = ``user`` /
  ``gemini`` / ``info`` / ``error`` / ``warning``, ``content``, ``model``,
  ``tokens``, ``thoughts``, ``toolCalls``) is appended again, whole, every
  time it changes: the last copy of an id wins. ``{"$set": {...}}`` patches
  the metadata (``$set.messages`` replaces the message list: session start,
  compression); ``{"$rewindTo": id}`` truncates the conversation. A legacy
  ``.json`` is one ``ConversationRecord`` document with a ``messages`` list;
  resuming a legacy session copies it into a ``.jsonl`` while the ``.json``
  stays. Sub-agent recordings live in ``chats/<parentId>/<id>.jsonl``.
- ``tokens`` is ``{input, output, cached, thoughts, tool, total}``, the
  Gemini API's ``usageMetadata`` (``promptTokenCount`` ... ): input includes
  cached, ``total = input + output + thoughts + tool``; tokens go through
  ``normalize_usage("google", ...)`` (the same rule as the SDK).
- ``$GEMINI_CLI_HOME`` replaces the home folder (gemini-cli
  ``packages/core/src/utils/paths.ts`` ``homedir()``); ccusage's
  ``GEMINI_DATA_DIR`` (``apps/ccusage/src/adapter/gemini/paths.ts``) names
  ``tmp`` folders directly.

Rules: an event's id is ``gemini:<sessionId>:<message id>``, so the copy of
a session in a ``.json`` and a ``.jsonl`` counts once (ccusage counts both).
A record is held until another ``gemini`` record of the file starts, or the
file ends, so its last copy is the one counted. A rewound message was still
billed: ``$rewindTo`` does not un-count it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import msgspec

from flightdeck.core.events import KIND_LLM_CALL, Event, Rejected, parse_ts
from flightdeck.ingest.formats.common import ParseResult, priced

GEMINI_AGENT: Final = "gemini-cli"
SKIPPED: Final = "gemini-cli skipped: "
MAX_DOCUMENT_BYTES: Final = 64 << 20  # a legacy session document larger than this is refused, not read


def _as_usage_metadata(tokens: dict[str, Any]) -> dict[str, Any]:
    """Gemini CLI's ``tokens`` in the API's own ``usageMetadata`` names (what the CLI copied them from)."""
    names = {"input": "promptTokenCount", "output": "candidatesTokenCount", "cached": "cachedContentTokenCount",
             "thoughts": "thoughtsTokenCount", "tool": "toolUsePromptTokenCount", "total": "totalTokenCount"}
    return {api: tokens[key] for key, api in names.items() if key in tokens and tokens[key] is not None}


class Gemini:
    """One recording (``.jsonl``): the session from its metadata line, each message's last copy."""

    name = "gemini-cli"

    def __init__(self) -> None:
        self.session: str | None = None
        self.project: str | None = None
        self._held: dict[str, Event] = {}
        self._released: dict[str, Event] = {}
        self.copies = 0

    def parse(self, line: bytes) -> ParseResult:
        try:
            doc = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return Rejected("bad gemini-cli line", str(exc)[:200])
        if not isinstance(doc, dict):
            return Rejected("bad gemini-cli line", "a gemini-cli line is not an object")
        if "$rewindTo" in doc:
            return []  # the conversation is truncated; the rewound calls were billed all the same
        patch = doc.get("$set")
        if isinstance(patch, dict):
            self._metadata(patch)
            out: list[Event] = []
            messages = patch.get("messages")
            for msg in messages if isinstance(messages, list) else ():
                got = self._message(msg)
                if isinstance(got, list):
                    out.extend(got)
            return out
        if "id" not in doc and ("sessionId" in doc or "projectHash" in doc):
            self._metadata(doc)
            return []
        return self._message(doc)

    def flush(self) -> list[Event]:
        """Every held message, as its last copy stands."""
        out = list(self._held.values())
        for ev in out:
            self._remember(ev)
        self._held.clear()
        return out

    @property
    def holding(self) -> int:
        """How many messages wait for a later copy."""
        return len(self._held)

    def _metadata(self, doc: dict[str, Any]) -> None:
        sid = doc.get("sessionId")
        if isinstance(sid, str) and sid and self.session is None:
            self.session = sid
        project = doc.get("projectHash")
        if isinstance(project, str) and project and self.project is None:
            self.project = project

    def _message(self, doc: Any) -> ParseResult:
        ev = message_event(doc, self.session, self.project)
        if not isinstance(ev, Event):
            return ev if ev is not None else []
        if ev.id in self._held:
            self.copies += 1
            self._held[ev.id] = ev  # the last copy wins
            return []
        done = self._released.get(ev.id)
        if done is not None:
            if done.usage != ev.usage:
                return Rejected(SKIPPED + "later copy after release", f"message {ev.id} changed after it was counted")
            return [done]  # the same copy again: the aggregator's duplicate
        out = self.flush()  # a new response started: the ones before it are final
        self._held[ev.id] = ev
        return out

    def _remember(self, ev: Event) -> None:
        if len(self._released) >= 256:
            del self._released[next(iter(self._released))]
        self._released[ev.id] = ev


def message_event(doc: Any, session: str | None, project: str | None) -> Event | Rejected | None:
    """A message record's event: None for a record that costs nothing (a user turn, an info line)."""
    if not isinstance(doc, dict) or doc.get("type") != "gemini":
        return None
    tokens = doc.get("tokens")
    if tokens is None:
        return None  # a reply still streaming, or one the API gave no usage for: counted when its copy has them
    if not isinstance(tokens, dict):
        return Rejected("bad gemini-cli tokens", "tokens is not an object")
    msg_id = doc.get("id")
    if not isinstance(msg_id, str) or not msg_id:
        return Rejected("bad gemini-cli message", "a gemini message without an id")
    stamp = doc.get("timestamp")
    if not isinstance(stamp, str):
        return Rejected("missing timestamp", "gemini-cli message without timestamp")
    try:
        ts = parse_ts(stamp)
    except (ValueError, OverflowError):
        return Rejected("bad timestamp", f"timestamp {stamp!r}")
    from flightdeck.core.normalize import normalize_usage

    try:
        usage = normalize_usage("google", _as_usage_metadata(tokens))
    except ValueError as exc:
        return Rejected("bad gemini-cli tokens", str(exc))
    model = doc.get("model")
    model = model if isinstance(model, str) and model else "unknown"
    cost, status = priced("google", model, usage, ts, route="direct")
    run = session or "gemini-cli"
    return Event(
        v=1,
        ts=ts,
        kind=KIND_LLM_CALL,
        id=f"gemini:{run}:{msg_id}",
        run=run,
        agent=GEMINI_AGENT,
        provider="google",
        route="direct",
        model=model,
        usage=usage,
        cost_usd=cost,
        cost_status=status,
        tags={"project": project} if project else None,
    )


def read_legacy_session(path: str | os.PathLike[str]) -> tuple[list[Event], list[Rejected]]:
    """A legacy ``session-*.json`` document: its gemini messages' events. Never raises.

    Only a regular file is opened, and only up to ``MAX_DOCUMENT_BYTES``.
    """
    p = Path(path)
    try:
        if not p.is_file():
            return [], [Rejected("not a regular file", str(p))]
        with open(p, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        return [], [Rejected("unreadable gemini-cli session", f"{p}: {exc.strerror or exc}")]
    if len(data) > MAX_DOCUMENT_BYTES:
        return [], [Rejected("gemini-cli session too large", f"{p}: over {MAX_DOCUMENT_BYTES} bytes")]
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:  # a file being rewritten, cut short: tried again when it changes
        return [], [Rejected("bad gemini-cli session", f"{p.name}: {str(exc)[:200]}")]
    if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
        return [], [Rejected("bad gemini-cli session", f"{p.name}: no messages list")]
    sid = doc.get("sessionId") if isinstance(doc.get("sessionId"), str) else p.stem
    project = doc.get("projectHash") if isinstance(doc.get("projectHash"), str) else None
    events: list[Event] = []
    rejects: list[Rejected] = []
    for msg in doc["messages"]:
        ev = message_event(msg, sid, project)
        if isinstance(ev, Event):
            events.append(ev)
        elif ev is not None:
            rejects.append(ev)
    return events, rejects
