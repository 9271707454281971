"""The header: what is watched, live / stalled / backfilling, control state, the clock."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, ago, clean, clock_time, count, hbar, plural, shorten
from flightdeck.cockpit.widgets.base import CommandStatus, Panel, View
from flightdeck.core.snapshot import (
    AGENT_DISCONNECTED,
    AGENT_FINISHED,
    AGENT_PAUSED,
    AGENT_RUNNING,
    AGENT_STALLED,
    AGENT_WAITING,
    AgentRow,
    AgentState,
    Snapshot,
)


def ingest_state(snap: Snapshot, now: float, p: Palette) -> Text:
    """How ingest is going: backfilling with its progress, else the arrival rate of new events."""
    src = snap.source
    text = Text(end="")
    if src.backfilling:
        total = src.backfill_total_bytes
        fraction = src.backfill_done_bytes / total if total else 0.0
        text.append("◐ backfill ", style=f"bold {p.warn}")
        text.append(hbar(fraction, 10), style=p.bar)
        text.append(f" {fraction * 100:3.0f}%")
        return text
    text.append(f"{count(src.events_per_second)} ev/s", style=p.dim)
    return text


def _who(rows: list[AgentRow]) -> str:
    names = sorted({r.paused_by for r in rows if r.paused_by})
    return ", ".join(clean(n) for n in names) if names else "an unknown sender"


def _since(ts: float | None, now: float) -> str:
    return f" since {clock_time(ts)} ({ago(now - ts)})" if ts is not None else ""


def agent_state(snap: Snapshot, now: float, p: Palette) -> Text:
    """What the agents are doing: waiting, running, PAUSED by whom, stalled, finished, disconnected.

    With several agents the paused ones come first (they wait for you), then
    a count per state. ``snap.agent_rows`` is the engine's; a feed without it
    falls back to the paused flags the agents acknowledged.
    """
    text = Text(end="")
    rows = list(snap.agent_rows)
    if not rows:
        if snap.waiting_for:
            text.append(f"○ waiting for {clean(snap.waiting_for[0])}", style=p.dim)
            if len(snap.waiting_for) > 1:
                text.append(f" +{len(snap.waiting_for) - 1}", style=p.dim)
            return text
        if not snap.agents and snap.events == 0:
            text.append("○ waiting for events", style=p.dim)
            return text
        rows = [AgentRow(run=a.run, agent=a.agent, status=AGENT_PAUSED if a.paused else AGENT_RUNNING)
                for a in snap.agents] or [AgentRow(run="", agent=None)]
    by_status: dict[str, list[AgentRow]] = {}
    for row in rows:
        by_status.setdefault(row.status, []).append(row)
    paused = by_status.pop(AGENT_PAUSED, [])
    if paused:
        label = "PAUSED" if len(paused) == len(rows) else f"PAUSED {len(paused)}/{len(rows)}"
        text.append(f"⏸ {label} by {_who(paused)}", style=f"bold reverse {p.warn}")
        text.append(" — p resumes", style=f"bold {p.warn}")
        if len(rows) == 1:
            return text
    if len(rows) == 1:
        row = rows[0]
        symbol, style = STATUS_LOOK[row.status]
        text.append(f"{symbol} {row.status}", style=f"bold {p.level(style)}" if style else p.dim)
        if row.status != AGENT_RUNNING:
            text.append(_since(row.since, now), style=p.dim)
        if row.watch_only:
            text.append(" (watch-only)", style=p.dim)
        return text
    parts = []
    for status in STATUS_ORDER:
        group = by_status.get(status)
        if group:
            symbol, level = STATUS_LOOK[status]
            parts.append((f"{symbol} {len(group)} {status}", p.level(level) if level else p.dim))
    for i, (part, part_style) in enumerate(parts):
        if i or paused:
            text.append(" · ", style=p.dim)
        text.append(part, style=part_style)
    watch = sum(1 for r in rows if r.watch_only)
    if watch:
        text.append(f" ({watch} watch-only)", style=p.dim)
    return text


# Symbol (never colour alone) and level of each state; None: dim.
STATUS_LOOK: dict[str, tuple[str, Level | None]] = {
    AGENT_RUNNING: ("●", Level.OK),
    AGENT_PAUSED: ("⏸", Level.WARN),
    AGENT_STALLED: ("▲", Level.WARN),
    AGENT_DISCONNECTED: ("✗", Level.BAD),
    AGENT_FINISHED: ("■", None),
    AGENT_WAITING: ("○", None),
}
STATUS_ORDER = (AGENT_RUNNING, AGENT_STALLED, AGENT_DISCONNECTED, AGENT_FINISHED, AGENT_WAITING)


def downgrade_state(agents: tuple[AgentState, ...], p: Palette) -> Text:
    """The models now used in place of those asked for, as the agents last acknowledged."""
    text = Text(end="")
    swaps = sorted({(k, v) for a in agents for k, v in a.models.items() if k != v})
    if swaps:
        text.append(f"{Level.WARN.symbol} downgraded ", style=p.warn)
        asked, used = swaps[0]
        text.append(clean(f"{asked}→{used}"), style=p.warn)
        if len(swaps) > 1:
            text.append(f" +{len(swaps) - 1}", style=p.warn)
    return text


def command_state(status: CommandStatus, p: Palette) -> Text:
    """``pause sent`` until the agent acknowledges, then ``acked in N ms``."""
    text = Text(end="")
    if status.error is not None:
        text.append(f"{Level.BAD.symbol} {status.cmd} failed: ", style=f"bold {p.bad}")
        text.append(clean(status.error), style=p.bad)
    elif status.ack_message:
        text.append(f"{Level.WARN.symbol} {status.cmd} refused: ", style=p.warn)
        text.append(clean(status.ack_message), style=p.warn)
    elif status.ack_ms is not None:
        text.append(f"{Level.OK.symbol} {status.cmd} acked in {status.ack_ms:.0f} ms", style=p.ok)
    else:
        text.append(f"… {status.cmd} sent", style=f"bold {p.accent}")
    return text


MIN_CUT = 16  # a segment is cut to fit only if this many cells of it can show


def _fit_line(segments: list[Text], width: int, sep: str, sep_style: str) -> Text:
    """Segments joined by ``sep`` on one line, in priority order: those that do not fit are
    left out and counted (``+2``), the first is cut with an ellipsis rather than wrapped."""
    out = Text(end="", no_wrap=True)
    used = 0
    for i, segment in enumerate(segments):
        rest = len(segments) - i - 1
        more = len(f" +{rest}") if rest else 0
        need = segment.cell_len + (len(sep) if used else 0)
        if used and used + need + more > width:
            room = width - used - len(sep) - len(f" +{rest}" if rest else "")
            if room < MIN_CUT:
                out.append(f" +{len(segments) - i}", style=sep_style)
                return out
            segment = segment.copy()  # worth showing in part: cut it, then count the rest
            segment.truncate(room, overflow="ellipsis")
        if used:
            out.append(sep, style=sep_style)
        if not used and segment.cell_len > width:
            segment = segment.copy()
            segment.truncate(width, overflow="ellipsis")
        out.append_text(segment)
        used = out.cell_len
    return out


class Header(Panel):
    """Two lines, never wrapped: what is watched and the clock; then the agents' state and the rest."""

    def build(self, view: View) -> Text:
        p, snap, live = view.palette, view.snap, view.live
        width = self.text_width
        runs = (len({a.run for a in snap.agent_rows}) or len(snap.breakdowns.get("run", ()))
                or len({a.run for a in snap.agents}))
        agents = len(snap.agent_rows) or len(snap.breakdowns.get("agent", ())) or len(snap.agents)
        clock = clock_time(view.now)
        first = [Text("◆ flightdeck", style=f"bold {p.accent}", end="")]
        scope = f"{plural(runs, 'run')} · {plural(agents, 'agent')} · {plural(snap.events, 'call')}"
        first.append(Text(scope, style=p.dim, end=""))
        if snap.source.description:
            first.append(Text(clean(snap.source.description), end=""))
        line1 = _fit_line(first, max(width - len(clock) - 1, 10), "  ", p.dim)
        line1.append(" " * max(width - line1.cell_len - len(clock), 1))
        line1.append(clock, style="bold")

        second: list[Text] = [agent_state(live, view.now, p)]
        if view.command is not None:
            second.append(command_state(view.command, p))
        if view.frozen:
            extra = max(live.events - snap.events, 0)
            second.append(Text(f" FROZEN +{count(extra)} ", style=f"bold reverse {p.accent}", end=""))
        if view.filter_text:
            seg = Text("filter ", style=p.dim, end="")
            seg.append(shorten(clean(view.filter_text), 24), style="bold")
            second.append(seg)
        if view.feed_error:
            second.append(Text(f"{Level.BAD.symbol} feed: {clean(view.feed_error)}", style=p.bad, end=""))
        if live.dropped:
            second.append(Text(f"{Level.WARN.symbol} {count(live.dropped)} dropped", style=p.warn, end=""))
        downgraded = downgrade_state(live.agents, p)
        if downgraded.cell_len:
            second.append(downgraded)
        second.append(ingest_state(live, view.now, p))
        line1.append("\n")
        line1.append_text(_fit_line(second, width, " │ ", p.dim))
        return line1


__all__ = ["Header", "agent_state", "command_state", "downgrade_state", "ingest_state"]
