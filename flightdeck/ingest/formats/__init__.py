"""Per-file format detection, and the foreign formats turned into v1 events.

A followed file may be flightdeck's own JSON Lines, a Claude Code session
log, LiteLLM StandardLoggingPayload lines, or the OTLP JSON the OpenTelemetry
Collector's file exporter writes. The first line that is valid JSON decides
the file's format; a garbage first line is rejected and detection is tried
again on the next one. Every foreign format goes through the same
``normalize_usage`` and ``price`` as the recorder, so a cost here means the
same thing as a cost the recorder wrote.

One module per reader; this package keeps the names other modules import
(``detect_format``, ``FileFormat``, ``FORMATS``, ``otlp_attributes``,
``cc_timestamp``, ...) importable from ``flightdeck.ingest.formats``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from flightdeck.core.events import MAX_LINE_BYTES, Event, Rejected, bounded, check_event
from flightdeck.core.plan_windows import PlanWindow
from flightdeck.ingest.formats.claude_code import (
    CLAUDE_CODE_AGENT,
    ClaudeCode,
    cc_timestamp,
)
from flightdeck.ingest.formats.codex import CODEX_AGENT, CODEX_TYPES, Codex
from flightdeck.ingest.formats.common import LineFormat, ParseResult
from flightdeck.ingest.formats.gemini import GEMINI_AGENT, Gemini
from flightdeck.ingest.formats.litellm import LiteLLM
from flightdeck.ingest.formats.otlp_json import OtlpJson, otlp_attributes
from flightdeck.ingest.formats.v1 import FlightdeckV1

__all__ = [
    "CLAUDE_CODE_AGENT",
    "CODEX_AGENT",
    "FLIGHTDECK_V1",
    "FORMATS",
    "GEMINI_AGENT",
    "ClaudeCode",
    "Codex",
    "FileFormat",
    "FlightdeckV1",
    "Gemini",
    "LineFormat",
    "LiteLLM",
    "OtlpJson",
    "ParseResult",
    "cc_timestamp",
    "detect_format",
    "otlp_attributes",
]

_CLAUDE_CODE_TYPES: Final = frozenset({"user", "assistant", "summary", "system", "file-history-snapshot"})
_LITELLM_KEYS: Final = frozenset({"response_cost", "call_type", "model_group", "hidden_params"})

FLIGHTDECK_V1: Final = FlightdeckV1()
FORMATS: Final[dict[str, LineFormat]] = {
    f.name: f for f in (FLIGHTDECK_V1, ClaudeCode(), LiteLLM(), OtlpJson(), Codex(), Gemini())
}


def detect_format(first_line: bytes) -> LineFormat | Rejected:
    """The format a file is in, judged from one line; Rejected if the line tells nothing."""
    if len(first_line) > MAX_LINE_BYTES:
        return Rejected("line too long", f"{len(first_line)} bytes")
    try:
        doc = msgspec.json.decode(first_line)
    except (msgspec.DecodeError, RecursionError) as exc:  # deep nesting: RecursionError
        return Rejected("not json", str(exc)[:200])
    if not isinstance(doc, dict):
        return Rejected("not an object", "line is not a JSON object")
    # A hostile line may carry any JSON as "type": only a string can name a format.
    kind = doc.get("type")
    if not isinstance(kind, str):
        kind = None
    if "kind" in doc and ("v" in doc or "run" in doc):
        return FORMATS["flightdeck-v1"]
    if "resourceSpans" in doc:
        return FORMATS["otlp-json"]
    if kind in CODEX_TYPES and "payload" in doc:
        return FORMATS["codex"]
    if "projectHash" in doc or "$set" in doc or "$rewindTo" in doc or kind == "gemini" \
            or ("startTime" in doc and "sessionId" in doc and "type" not in doc):
        return FORMATS["gemini-cli"]
    if "sessionId" in doc or kind in _CLAUDE_CODE_TYPES:
        return FORMATS["claude-code"]
    if len(_LITELLM_KEYS.intersection(doc)) >= 2:
        return FORMATS["litellm"]
    return Rejected("unknown format", "line matches no known log format: " + ",".join(sorted(doc)[:8]))


class FileFormat:
    """A file's format, decided by its first line that says something.

    Until then each line is offered to ``detect_format``; the one that decides
    is parsed too, so no line is lost.
    """

    __slots__ = ("format",)

    def __init__(self, fixed: LineFormat | None = None) -> None:
        self.format: LineFormat | None = fixed

    @property
    def name(self) -> str | None:
        return self.format.name if self.format is not None else None

    def parse(self, line: bytes) -> ParseResult:
        fmt = self.format
        if fmt is None:
            detected = detect_format(line)
            if isinstance(detected, Rejected):
                return detected
            # A fresh instance per file: a parser may keep per-file state.
            self.format = fmt = type(detected)() if detected is not FLIGHTDECK_V1 else detected
        try:
            result = fmt.parse(line)
        except Exception as exc:  # a payload shape nobody foresaw: one rejected line, never a crash
            return Rejected(f"bad {fmt.name} line", f"{type(exc).__name__}: {exc}"[:300])
        # The line format's bounds hold for foreign formats too (v1 was checked decoding).
        return bounded(result) if fmt is not FLIGHTDECK_V1 and type(result) is list else result

    def flush(self) -> list[Event]:
        """What the reader still holds (a response waiting for its last copy): the input ended.

        Readers that hold nothing have no ``flush``; this never raises.
        """
        flush = getattr(self.format, "flush", None)
        if flush is None:
            return []
        try:
            # Held responses meet the same bounds as the lines they came from.
            return [ev for ev in flush() if check_event(ev) is None]
        except Exception:  # a reader bug must not stop the others: what it held is lost, nothing else
            return []

    def take_copies(self) -> int:
        """Lines since the last call that were another copy of a held response (duplicates)."""
        n = int(getattr(self.format, "copies", 0) or 0)
        if n:
            self.format.copies = 0  # type: ignore[union-attr]
        return n

    def take_notes(self) -> dict[str, int]:
        """Lines since the last call that were accepted but not read whole, by note reason.

        Readers without notes give ``{}``; this never raises.
        """
        take = getattr(self.format, "take_notes", None)
        if take is None:
            return {}
        try:
            return dict(take())
        except Exception:  # a reader bug must not stop the others: its notes are lost, nothing else
            return {}

    @property
    def plan_windows(self) -> dict[str, PlanWindow]:
        """The rate-limit windows the file reported (Codex), by window; empty for other readers."""
        found = getattr(self.format, "plan_windows", None)
        return found if isinstance(found, dict) else {}

    @property
    def holding(self) -> int:
        """How many responses the reader holds (0 for readers that hold nothing)."""
        return int(getattr(self.format, "holding", 0) or 0)
