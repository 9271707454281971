"""Events: the latest calls scrolling, newest at the bottom.

In the compact layout the alerts panel is hidden, so this panel starts with
where the money goes (the top models' share of cost), then holds the newest
alert and command rows in place, and fills the rest with calls.
"""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, clean, clock_time, count, ms, shorten, usd
from flightdeck.cockpit.phrases import MergedAlert, alert_text, merge_alerts
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.core.snapshot import CallRow, ControlRow, Snapshot


def _fit(text: Text, value: str, width: int, style: str = "", right: bool = False) -> None:
    value = shorten(value, width)
    text.append(value.rjust(width) if right else value.ljust(width), style=style)


def call_row(row: CallRow, width: int, p: Palette) -> Text:
    """time step model tokens cost latency; an error replaces tokens and cost, in red."""
    text = Text(end="", no_wrap=True)
    text.append(clock_time(row.ts) + " ", style=p.dim)
    rest = width - 9
    if rest >= 90:  # room for whose call it was (a fleet shares one log)
        _fit(text, clean(row.agent or "·"), 12, p.dim)
        text.append(" ")
        rest -= 13
    step_w = min(12, max(rest // 6, 5))
    _fit(text, clean(row.name or "·"), step_w, "bold")
    text.append(" ")
    rest -= step_w + 1
    numbers_w = 29 if rest >= 48 else 16  # " 12.3k/1.2k  $0.0113  1.26s" or "  $0.0113  1.26s"
    model_w = max(rest - numbers_w - 1, 4)
    _fit(text, clean(row.model), model_w)
    text.append(" ")
    if row.error:
        err_w = numbers_w - 8  # the tokens and cost columns
        _fit(text, f"{Level.BAD.symbol} {clean(row.error)}", err_w, f"bold {p.bad}")
    else:
        if numbers_w == 29:
            tokens = f"{count(row.input_tokens + row.cache_read_tokens)}/{count(row.output_tokens)}"
            _fit(text, tokens, 12, p.dim, right=True)
        unpriced = row.cost_usd is None
        cost = usd(row.cost_usd, unknown="?")
        _fit(text, cost, 9, p.warn if unpriced else "", right=True)
    _fit(text, ms(row.total_ms), 7, right=True)
    return text


def alert_row(alert: MergedAlert, width: int, p: Palette) -> Text:
    text = Text(end="", no_wrap=True)
    text.append(clock_time(alert.ts) + " ", style=p.dim)
    level = Level.BAD if alert.row.action in ("pause", "downgrade") else Level.WARN
    text.append(f"{level.symbol} ", style=p.level(level))
    text.append(shorten(alert_text(alert), max(width - 11, 1)), style=p.level(level))
    return text


def command_row(row: ControlRow, width: int, p: Palette) -> Text:
    text = Text(end="", no_wrap=True)
    text.append(clock_time(row.sent_at) + " ", style=p.dim)
    text.append("⇢ ", style=p.accent)
    body = f"{clean(row.cmd)} by {clean(row.origin)}"
    if row.ack_message:
        style, tail = p.warn, f" refused: {clean(row.ack_message)}"
    elif row.ack_ms is not None:
        style, tail = p.ok, f" acked in {row.ack_ms:.0f} ms"
    else:
        style, tail = p.accent, " sent, no ack yet"
    text.append(shorten(body + tail, max(width - 11, 1)), style=style)
    return text


def reject_row(row: tuple[float, str, str], width: int, p: Palette) -> Text:
    ts, reason, detail = row
    text = Text(end="", no_wrap=True)
    text.append(clock_time(ts) + " ", style=p.dim)
    text.append(f"{Level.BAD.symbol} rejected ", style=p.bad)
    body = clean(reason) + (f": {clean(detail)}" if detail else "")
    text.append(shorten(body, max(width - 20, 1)), style=p.dim)
    return text


def other_rows(snap: Snapshot, width: int, p: Palette, *, rejects: bool = True) -> list[tuple[float, Text]]:
    """Alerts, commands and (unless ``rejects`` is False) rejects as (time, row), for merging by time."""
    rows = [(a.ts, alert_row(a, width, p)) for a in merge_alerts(snap.alerts)]
    rows += [(c.sent_at, command_row(c, width, p)) for c in snap.commands]
    if rejects:
        rows += [(r[0], reject_row(r, width, p)) for r in snap.recent_rejects]
    return rows


def stack(rows: list[Text], height: int) -> Text:
    """The last ``height`` rows, newest at the bottom."""
    out = Text(end="", no_wrap=True)
    for i, row in enumerate(rows[-height:] if height > 0 else []):
        if i:
            out.append("\n")
        out.append_text(row)
    return out


PINNED = 2  # alert / command rows kept in view in the compact layout, however fast calls arrive


class EventsPanel(Panel):
    TITLE = "Latest calls"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width, height = self.text_width, self.text_height
        if not view.compact:
            self.border_title = f"{self.TITLE} (newest {min(len(snap.recent), height)} of {count(snap.events)})"
            if not snap.recent:
                return Text("no calls yet", style=p.dim, end="")
            return stack([call_row(r, width, p) for r in snap.recent[-height:]], height)
        # Compact (a tmux split): where the money goes first, then the newest alerts and
        # commands held in place (calls scrolling past must not push them away), then calls.
        from flightdeck.cockpit.widgets.models import money_line

        steering = sorted(other_rows(snap, width, p, rejects=False), key=lambda item: item[0])
        rejects = [(r[0], reject_row(r, width, p)) for r in snap.recent_rejects]
        keep = PINNED if height >= 4 else 0
        # Alerts and commands first: a rejected line is also counted in the header's summary.
        chosen = steering[-keep:] if keep else []
        chosen += rejects[-(keep - len(chosen)):] if keep > len(chosen) else []
        pinned = [row for _, row in sorted(chosen, key=lambda item: item[0])]
        others = steering + rejects
        hidden = len(others) - len(pinned)
        title = self.TITLE
        if pinned:
            title += " · newest alerts and commands held above"
            if hidden:
                title += f" (+{hidden} earlier)"
        self.border_title = title
        lines = [money_line(snap, width, p), *pinned]
        room = max(height - len(lines), 0)
        if room and snap.recent:
            lines += [call_row(r, width, p) for r in snap.recent[-room:]]
        return stack(lines, height)
