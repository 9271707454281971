"""Spend: window totals, burn rate, spend per minute, the budget gauge, the projection, plan windows."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, gauge, plural, sparkline, usd
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.cockpit.widgets.charts import chart_points
from flightdeck.core.plan_windows import window_summary

WINDOWS = ("1m", "5m", "15m", "60m")
MAX_PLAN_LINES = 3  # subscription windows shown (a Codex primary/secondary and a Claude one fit)
BURN_WINDOW = "5m"  # burn rate over five minutes: steady enough, still current


def _budget_window(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class SpendPanel(Panel):
    TITLE = "Spend"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        cells = []
        for name in WINDOWS:
            window = snap.windows.get(name)
            label = "1h" if name == "60m" else name
            cells.append((label, usd(window.cost_usd if window else None)))
        cells.append(("run", usd(snap.total.cost_usd)))
        room = self.text_height - 2 - (snap.budget is not None) - bool(snap.total.unpriced)  # burn + chart
        # Short of room: one line of totals, the 15m and then the 1m window left out first.
        for drop in ((), ("15m",), ("15m", "1m")):
            kept = [c for c in cells if c[0] not in drop]
            if self._grid_lines(kept, width) <= max(room, 1):
                cells = kept
                break
        text = Text(end="")
        self._grid(text, cells, width, p.dim)

        burn = snap.windows.get(BURN_WINDOW)
        text.append(f"{snap.projection.basis or 'burn'} ", style=p.dim)  # "5m burn": the rate → projects
        text.append(f"{usd(burn.burn_usd_per_hour if burn else None)}/h", style="bold")
        proj = snap.projection
        line = f"  → hour {usd(proj.hour_end_usd)}"
        if len("burn $0.00/h") + len(line) + len(f" day {usd(proj.day_end_usd)}") + 4 <= width:
            line += f" day {usd(proj.day_end_usd)}"
        text.append(line, style=p.dim)
        text.append("\n")

        tail_lines: list[Text] = []
        budget = snap.budget
        if budget is not None:
            line_text = Text(end="")
            tail = f" {usd(budget.spent_usd)}/{usd(budget.limit_usd)} {_budget_window(budget.seconds)}"
            gauge_width = max(width - len(tail), 12)
            line_text.append_text(gauge(budget.fraction, gauge_width, p))
            if width - gauge_width >= len(tail):
                line_text.append(tail, style=p.dim)
            tail_lines.append(line_text)
        unpriced = snap.total.unpriced
        if unpriced:
            tail_lines.append(Text(f"{Level.WARN.symbol} {plural(unpriced, 'unpriced call')} not in totals",
                                   style=p.warn, end=""))
        # Subscription windows (core.plan_windows): how close each 5-hour /
        # weekly limit is, the provider's own percent where a log recorded it.
        now = snap.now  # the wall clock when live: the countdowns run with it
        for plan in snap.plan_windows[:MAX_PLAN_LINES]:
            used = plan.get("used_percent")
            style = p.dim
            if isinstance(used, (int, float)) and not isinstance(used, bool):
                style = p.warn if used >= 80 else p.dim
            tail_lines.append(Text(window_summary(plan, now)[:width], style=style, end=""))
        # The chart gives way first when the panel is short (80x24): a budget,
        # an unpriced warning or a plan window must never be cut off silently.
        used = text.plain.count("\n")
        if used + 1 + len(tail_lines) <= self.text_height:
            points, per = chart_points(snap)
            series = [float(point.cost_usd) for point in points]  # float only to scale bar heights
            peak = max(points, key=lambda pt: pt.cost_usd).cost_usd if points else None
            label = f" peak {usd(peak)}{per}" if peak else f" ${per}"
            chart_width = max(width - len(label), 4)
            text.append(sparkline(series, chart_width), style=p.bar)
            text.append(label[: max(width - chart_width, 0)], style=p.dim)
            text.append("\n")
        for line_text in tail_lines:
            text.append_text(line_text)
            text.append("\n")
        text.rstrip()
        return text

    @staticmethod
    def _grid_lines(cells: list[tuple[str, str]], width: int) -> int:
        """How many lines ``_grid`` takes for ``cells``."""
        lines, used = 1, 0
        for label, value in cells:
            cell_len = len(label) + 1 + len(value)
            if used and used + 2 + cell_len > width:
                lines, used = lines + 1, cell_len
            else:
                used += (2 if used else 0) + cell_len
        return lines

    @staticmethod
    def _grid(text: Text, cells: list[tuple[str, str]], width: int, dim: str) -> None:
        """Window totals, as many per line as fit, never splitting one."""
        used = 0
        for label, value in cells:
            cell_len = len(label) + 1 + len(value)
            gap = 2 if used else 0
            if used and used + gap + cell_len > width:
                text.append("\n")
                used, gap = 0, 0
            text.append(" " * gap)
            text.append(label + " ", style=dim)
            text.append(value, style="bold")
            used += gap + cell_len
        text.append("\n")
