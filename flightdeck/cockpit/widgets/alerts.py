"""Alerts: guardrail firings, commands and acks with their delay, rejected lines, notices."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, clean, count, shorten
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.cockpit.widgets.events import other_rows, stack


class AlertsPanel(Panel):
    TITLE = "Alerts · commands · rejects"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width, height = self.text_width, self.text_height
        summary = Text(end="", no_wrap=True)
        # Lines counted whose usage had keys flightdeck does not read (report names the keys):
        # said right after the rejects, so a narrow panel keeps it.
        notes = f" · {count(sum(snap.notes.values()))} lines not read whole" if snap.notes else ""
        if snap.rejected:
            reasons = sorted(snap.rejected_reasons.items(), key=lambda kv: -kv[1])
            parts = ", ".join(f"{clean(r)} ×{n}" for r, n in reasons[:3])
            summary.append(f"{Level.BAD.symbol} {count(snap.rejected)} rejected", style=p.bad)
            summary.append(notes, style=p.warn)
            summary.append(shorten(f" ({parts})" if parts else "", max(width - summary.cell_len, 0)),
                           style=p.dim)
        else:
            summary.append(f"{Level.OK.symbol} no rejected lines", style=p.ok)
            summary.append(notes, style=p.warn)
        extras = []
        if snap.duplicates:
            extras.append(f"{count(snap.duplicates)} duplicate ids")
        if snap.unknown_kinds:
            extras.append(f"{count(snap.unknown_kinds)} unknown kinds")
        if extras and summary.cell_len + 3 + len(" · ".join(extras)) <= width:
            summary.append(" · " + " · ".join(extras), style=p.dim)
        rows = [Text(f"! {shorten(clean(n), width - 2)}", style=p.warn, end="") for n in snap.source.notices]
        timed = sorted(other_rows(snap, width, p), key=lambda item: item[0])
        rows += [row for _, row in timed]
        out = summary
        if not rows:
            out.append("\nno alerts or commands yet", style=p.dim)
            return out
        out.append("\n")
        room = max(height - 1, 0)
        hidden = max(len(rows) - room, 0)
        self.border_title = self.TITLE + (f" (+{hidden} earlier)" if hidden else "")
        out.append_text(stack(rows, room))
        return out
