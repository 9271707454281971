"""The ledger: what is not a call. Commands and their acks, alerts, rejects, notes, run starts and ends.

It sees every event whatever the cockpit's filter: a filtered view still
shows that the agent acknowledged a pause, and which lines were rejected.
Every part is bounded (a hostile log cannot grow it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

from flightdeck.core.events import KIND_ALERT, KIND_RUN_END, KIND_RUN_START, KIND_SIGNAL_ACK, Command, Event
from flightdeck.core.snapshot import AgentState, AlertRow, ControlRow

OTHER: Final = "(other)"
MAX_REASONS: Final = 64
MAX_AGENTS: Final = 1000
MAX_COMMANDS: Final = 200
MAX_ALERTS: Final = 200
MAX_RECENT_REJECTS: Final = 50


class Ledger:
    """Commands, acks, agent states, alerts, rejects and the other kinds' counters."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rejected = 0
        self.unknown_kinds = 0
        self.runs_started = 0
        self.runs_ended = 0
        self.reasons: dict[str, int] = {}
        # Lines accepted but only partly read (a usage key the reader does not
        # know): counted apart from rejects, which were not counted at all.
        self.notes: dict[str, int] = {}
        self.recent_rejects: deque[tuple[float, str, str]] = deque(maxlen=MAX_RECENT_REJECTS)
        self.alerts: deque[AlertRow] = deque(maxlen=MAX_ALERTS)
        self.commands: dict[str, ControlRow] = {}
        self.agents: dict[tuple[str, str | None], AgentState] = {}

    def add(self, ev: Event, ts: float) -> None:
        """Count an event that is not an ``llm_call``.

        Args:
            ev: the event (any kind but llm_call).
            ts: its time as epoch seconds.
        """
        kind = ev.kind
        if kind == KIND_SIGNAL_ACK:
            self._ack(ev)
        elif kind == KIND_ALERT:
            self.alerts.append(AlertRow(
                ts=ts, rule=ev.rule or "", metric=ev.metric, value=ev.value,
                threshold=ev.threshold, action=ev.action, source="agent",
                run=ev.run, agent=ev.agent, message=ev.message))
        elif kind == KIND_RUN_START:
            self.runs_started += 1
        elif kind == KIND_RUN_END:
            self.runs_ended += 1
        else:
            self.unknown_kinds += 1

    def _ack(self, ev: Event) -> None:
        ref = ev.ref
        if ref is not None and ref in self.commands:
            row = self.commands[ref]
            if row.acked_at is None:
                acked_at = self.clock()
                self.commands[ref] = replace(row, acked_at=acked_at,
                                             ack_ms=(acked_at - row.sent_at) * 1000.0,
                                             ack_message=ev.message)
        state = ev.state
        if isinstance(state, dict):
            models_raw = state.get("models")
            models = ({k: v for k, v in models_raw.items() if isinstance(k, str) and isinstance(v, str)}
                      if isinstance(models_raw, dict) else {})
            key = (ev.run, ev.agent)
            if key not in self.agents and len(self.agents) >= MAX_AGENTS:
                return
            self.agents[key] = AgentState(run=ev.run, agent=ev.agent,
                                          paused=state.get("paused") is True, models=models)

    def reject(self, reason: str, detail: str = "") -> None:
        """Count a line that was not an event, under a short reason.

        Args:
            reason: short, names the field (a counter key; past 64 reasons they share "(other)").
            detail: the full message (kept for the last 50, cut to 300 characters).
        """
        self.rejected += 1
        reasons = self.reasons
        if reason not in reasons and len(reasons) >= MAX_REASONS:
            reason = OTHER
        reasons[reason] = reasons.get(reason, 0) + 1  # _bump inlined: once per rejected line
        self.recent_rejects.append((self.clock(), reason, detail[:300]))

    def note(self, reason: str, n: int = 1) -> None:
        """Count lines that were accepted but not read whole, under a short reason.

        Args:
            reason: short, names what was not read (a counter key; past 64 reasons they share "(other)").
            n: how many lines.
        """
        _bump(self.notes, reason, n)

    def note_command(self, cmd: Command, sent_at: float) -> None:
        """A command the monitor sent; its signal_ack fills in the round trip.

        Args:
            cmd: the command.
            sent_at: wall time it was sent.
        """
        self.commands[cmd.id] = ControlRow(id=cmd.id, cmd=cmd.cmd, origin=cmd.origin,
                                           sent_at=sent_at, reason=cmd.reason)
        while len(self.commands) > MAX_COMMANDS:
            del self.commands[next(iter(self.commands))]

    def merge(self, other: Ledger) -> None:
        """Add ``other``'s entries, which came after this one's.

        Args:
            other: a ledger over later events.
        """
        self.rejected += other.rejected
        self.unknown_kinds += other.unknown_kinds
        self.runs_started += other.runs_started
        self.runs_ended += other.runs_ended
        for reason, n in other.reasons.items():
            _bump(self.reasons, reason, n)
        for reason, n in other.notes.items():
            _bump(self.notes, reason, n)
        self.recent_rejects.extend(other.recent_rejects)
        self.alerts.extend(other.alerts)
        for cid, row in other.commands.items():
            self.commands[cid] = row
        while len(self.commands) > MAX_COMMANDS:
            del self.commands[next(iter(self.commands))]
        for key, state in other.agents.items():
            if key in self.agents or len(self.agents) < MAX_AGENTS:
                self.agents[key] = state

    def __getstate__(self) -> dict[str, Any]:
        # The clock stays behind (it may be a lambda); deques travel as lists.
        state = dict(self.__dict__)
        del state["clock"]
        state["recent_rejects"] = list(self.recent_rejects)
        state["alerts"] = list(self.alerts)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import time

        self.__dict__.update(state)
        self.clock = time.time
        self.recent_rejects = deque(state["recent_rejects"], maxlen=MAX_RECENT_REJECTS)
        self.alerts = deque(state["alerts"], maxlen=MAX_ALERTS)


def _bump(counter: dict[str, int], reason: str, n: int) -> None:
    """Add ``n`` under ``reason``; a new reason past MAX_REASONS goes to "(other)"."""
    if reason not in counter and len(counter) >= MAX_REASONS:
        reason = OTHER
    counter[reason] = counter.get(reason, 0) + n
