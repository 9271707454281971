"""The header: what is watched, live / stalled / backfilling, control state, the clock."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, ago, clean, clock_time, count, hbar, shorten
from flightdeck.cockpit.widgets.base import CommandStatus, Panel, View
from flightdeck.core.snapshot import AgentState, Snapshot

STALL_SECONDS = 30.0  # no event for this long while live reads as "stalled"


def _segments_to_lines(segments: list[Text], width: int, sep: str, sep_style: str) -> Text:
    """Join segments with ``sep``, starting a new line rather than cutting one."""
    out = Text(end="")
    used = 0
    for segment in segments:
        seg_len = segment.cell_len
        if used and used + len(sep) + seg_len > width:
            out.append("\n")
            used = 0
        elif used:
            out.append(sep, style=sep_style)
            used += len(sep)
        if seg_len > width:
            segment = segment.copy()
            segment.truncate(width, overflow="ellipsis")
            seg_len = width
        out.append_text(segment)
        used += seg_len
    return out


def ingest_state(snap: Snapshot, now: float, p: Palette) -> Text:
    """live / stalled / backfilling with its progress."""
    src = snap.source
    text = Text(end="")
    if src.backfilling:
        total = src.backfill_total_bytes
        fraction = src.backfill_done_bytes / total if total else 0.0
        text.append("◐ backfill ", style=f"bold {p.warn}")
        text.append(hbar(fraction, 10), style=p.bar)
        text.append(f" {fraction * 100:3.0f}%")
    elif src.last_event_wall is not None and now - src.last_event_wall > STALL_SECONDS:
        text.append(f"{Level.WARN.symbol} STALLED {ago(now - src.last_event_wall)}", style=f"bold {p.warn}")
    elif src.last_event_wall is None and snap.events == 0:
        text.append("○ waiting", style=p.dim)
    else:
        text.append("● LIVE", style=f"bold {p.ok}")
    text.append(f" {count(src.events_per_second)} ev/s", style=p.dim)
    return text


def control_state(agents: tuple[AgentState, ...], p: Palette) -> Text:
    """running / PAUSED / downgraded, over every agent that reported a state."""
    text = Text(end="")
    paused = [a for a in agents if a.paused]
    swaps = sorted({(k, v) for a in agents for k, v in a.models.items() if k != v})
    if paused:
        label = "PAUSED" if len(paused) == len(agents) else f"PAUSED {len(paused)}/{len(agents)}"
        text.append(f"{Level.WARN.symbol} {label}", style=f"bold reverse {p.warn}")
    else:
        text.append(f"{Level.OK.symbol} running", style=p.ok)
    if swaps:
        text.append(f" {Level.WARN.symbol} downgraded ", style=p.warn)
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


class Header(Panel):
    """Two lines (more in a narrow terminal): source and scope, then the live state."""

    FIT_HEIGHT = True

    def build(self, view: View) -> Text:
        p, snap, live = view.palette, view.snap, view.live
        width = self.text_width
        runs = len(snap.breakdowns.get("run", ())) or len({a.run for a in snap.agents})
        agents = len(snap.breakdowns.get("agent", ())) or len(snap.agents)
        first = [Text("◆ flightdeck", style=f"bold {p.accent}", end="")]
        if snap.source.description:
            first.append(Text(clean(snap.source.description), end=""))
        scope = f"{runs} run{'s' * (runs != 1)} · {agents} agent{'s' * (agents != 1)} · {count(snap.events)} calls"
        first.append(Text(scope, style=p.dim, end=""))
        clock = clock_time(view.now)
        line1 = _segments_to_lines(first, max(width - len(clock) - 1, 10), "  ", p.dim)
        last_line_len = Text(line1.plain.rsplit("\n", 1)[-1]).cell_len
        line1.append(" " * max(width - last_line_len - len(clock), 1))
        line1.append(clock, style="bold")

        second: list[Text] = [ingest_state(live, view.now, p), control_state(live.agents, p)]
        if view.command is not None:
            second.append(command_state(view.command, p))
        if view.frozen:
            extra = max(live.events - snap.events, 0)
            second.append(Text(f" FROZEN +{count(extra)} ", style=f"bold reverse {p.accent}", end=""))
        if view.filter_text:
            seg = Text("filter ", style=p.dim, end="")
            seg.append(shorten(clean(view.filter_text), 24), style="bold")
            second.append(seg)
        if live.dropped:
            second.append(Text(f"{Level.WARN.symbol} {count(live.dropped)} dropped", style=p.warn, end=""))
        if view.feed_error:
            second.append(Text(f"{Level.BAD.symbol} feed: {clean(view.feed_error)}", style=p.bad, end=""))
        line2 = _segments_to_lines(second, width, " │ ", p.dim)
        line1.append("\n")
        line1.append_text(line2)
        return line1


__all__ = ["Header", "command_state", "control_state", "ingest_state"]
