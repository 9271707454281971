"""Sources that are not JSON Lines: re-read when they change (OpenCode's database, legacy JSON files).

A ``DocumentSource`` is polled: when its files changed since the last poll
it reads what is new and returns the events not handed out before (an
event already handed out with the same usage is a re-read, not a
duplicate; one whose usage changed afterwards is counted under a
"skipped: ... changed after it was counted" reason, never silently).
``final``: the input ends here (``report``, ``tail --once``): messages still
being written count as they stand; following live they wait until done.

Only regular files are opened, read-only. No Textual.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from flightdeck.core.events import Event, Rejected, Usage
from flightdeck.ingest.formats import gemini, opencode


class DocumentBatch:
    """One poll's harvest."""

    __slots__ = ("events", "notices", "rejects")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.rejects: list[Rejected] = []
        self.notices: list[str] = []


class DocumentSource(Protocol):
    """Something the engine and ``report`` poll for events."""

    label: str

    def poll(self, *, final: bool) -> DocumentBatch: ...

    def rewind(self) -> None:
        """Forget what was handed out: the next poll reads everything again (a filter change)."""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class _Handed:
    """Ids handed out, with their usage: a re-read hands out only what is new."""

    def __init__(self, agent: str) -> None:
        self._usage: dict[str, Usage | None] = {}
        self._reason = f"{agent} skipped: changed after it was counted"

    def keep(self, batch: DocumentBatch, events: Sequence[Event]) -> None:
        for ev in events:
            seen = self._usage.get(ev.id, _NEVER)
            if seen is _NEVER:
                self._usage[ev.id] = ev.usage
                batch.events.append(ev)
            elif seen != ev.usage:
                self._usage[ev.id] = ev.usage
                batch.rejects.append(Rejected(self._reason, f"{ev.id}: its tokens changed after it was counted"))


_NEVER = Usage(input_tokens=-1)  # a sentinel no real usage equals


class OpenCodeDatabase:
    """``opencode.db``: re-queried (rows updated since the last read) when it or its WAL changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.label = f"OpenCode database {self.path}"
        self.rewind()

    def rewind(self) -> None:
        """Forget what was read: the next poll reads the whole database."""
        self._stamps: tuple[object, ...] | None = None
        self._watermark = 0
        self._handed = _Handed(opencode.OPENCODE_AGENT)

    def poll(self, *, final: bool) -> DocumentBatch:
        batch = DocumentBatch()
        stamps = (_stamp(self.path), _stamp(Path(str(self.path) + "-wal")))
        if stamps == self._stamps or stamps[0] is None:
            return batch
        read = opencode.read_database(self.path, since_updated=self._watermark, completed_only=not final)
        if read.notice is not None:
            batch.notices.append(read.notice)
            return batch  # busy or unreadable: tried again at the next change (stamps not taken)
        self._stamps = stamps
        self._watermark = read.watermark
        self._handed.keep(batch, read.events)
        batch.rejects.extend(read.rejects)
        return batch


class JsonFiles:
    """A folder of JSON documents, each re-read when its size or time changes."""

    def __init__(self, label: str, agent: str, lister: Callable[[], list[Path]],
                 reader: Callable[[list[Path], bool], tuple[list[Event], list[Rejected]]]) -> None:
        self.label = label
        self._agent = agent
        self._lister = lister
        self._reader = reader
        self.rewind()

    def rewind(self) -> None:
        """Forget what was read: the next poll reads every file."""
        self._stamps: dict[Path, tuple[int, int] | None] = {}
        self._handed = _Handed(self._agent)

    def poll(self, *, final: bool) -> DocumentBatch:
        batch = DocumentBatch()
        changed = []
        for path in self._lister():
            stamp = _stamp(path)
            if stamp != self._stamps.get(path):
                self._stamps[path] = stamp
                changed.append(path)
        if changed:
            events, rejects = self._reader(changed, final)
            self._handed.keep(batch, events)
            batch.rejects.extend(rejects)
        return batch


def gemini_legacy(tmp: Path) -> JsonFiles:
    """Gemini CLI's legacy ``<tmp>/<project>/chats/session-*.json`` documents."""

    def lister() -> list[Path]:
        try:
            return sorted(p for p in tmp.glob("*/chats/**/*.json") if p.is_file())
        except OSError:
            return []

    def reader(paths: list[Path], _final: bool) -> tuple[list[Event], list[Rejected]]:
        events: list[Event] = []
        rejects: list[Rejected] = []
        for p in paths:
            e, r = gemini.read_legacy_session(p)
            events.extend(e)
            rejects.extend(r)
        return events, rejects

    return JsonFiles(f"Gemini CLI legacy sessions in {tmp}", gemini.GEMINI_AGENT, lister, reader)


def opencode_storage(storage: Path) -> JsonFiles:
    """OpenCode's legacy ``storage/message/<session>/<message>.json`` files."""

    def reader(paths: list[Path], final: bool) -> tuple[list[Event], list[Rejected]]:
        return opencode.read_storage(storage, completed_only=not final, only=set(paths))

    return JsonFiles(f"OpenCode storage {storage}", opencode.OPENCODE_AGENT,
                     lambda: opencode.message_files(storage), reader)
