"""TTFT: p50 / p90 / p99 over the window, its chart, and how many calls they stand on."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import ms, plural, sparkline, ttft_level
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.cockpit.widgets.charts import chart_points

WINDOW = "15m"


class TtftPanel(Panel):
    TITLE = "Time to first token"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        window = snap.windows.get(WINDOW)
        q = window.ttft if window is not None else snap.total.ttft
        level = ttft_level(q.p90)
        text = Text(end="")
        for label, value in (("p50 ", q.p50), ("  p90 ", q.p90), ("  p99 ", q.p99)):
            text.append(label, style=p.dim)
            style = f"bold {p.level(level)}" if label.strip() == "p90" and level else "bold"
            text.append(ms(value), style=style)
        if level:
            text.append(" " + level.symbol, style=p.level(level))
        text.append("\n")
        points, per = chart_points(snap)
        series = [pt.ttft_p90 for pt in points]
        label = f" p90{per}"
        text.append(sparkline(series, max(width - len(label), 4)), style=p.bar)
        text.append(label, style=p.dim)
        text.append("\n")
        text.append(f"on {plural(q.count, 'streamed call')} ({WINDOW})", style=p.dim)
        if self.text_height >= 4:
            label = f" p50{per}"
            text.append("\n")
            text.append(sparkline([pt.ttft_p50 for pt in points], max(width - len(label), 4)), style=p.dim)
            text.append(label, style=p.dim)
        return text
