"""Spend: window totals, burn rate, spend per minute, the budget gauge, the projection."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, gauge, sparkline, usd
from flightdeck.cockpit.widgets.base import Panel, View

WINDOWS = ("1m", "5m", "15m", "60m")
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

        series = [float(point.cost_usd) for point in snap.series]  # float only to scale bar heights
        peak = max(snap.series, key=lambda pt: pt.cost_usd).cost_usd if snap.series else None
        label = f" peak {usd(peak)}/min" if peak else " $/min"
        chart_width = max(width - len(label), 4)
        text.append(sparkline(series, chart_width), style=p.bar)
        text.append(label[: max(width - chart_width, 0)], style=p.dim)

        budget = snap.budget
        if budget is not None:
            text.append("\n")
            tail = f" {usd(budget.spent_usd)}/{usd(budget.limit_usd)} {_budget_window(budget.seconds)}"
            gauge_width = max(width - len(tail), 12)
            text.append_text(gauge(budget.fraction, gauge_width, p))
            if width - gauge_width >= len(tail):
                text.append(tail, style=p.dim)
        unpriced = snap.total.unpriced
        if unpriced:
            text.append("\n")
            text.append(f"{Level.WARN.symbol} {unpriced} unpriced call{'s' * (unpriced != 1)} not in totals",
                        style=p.warn)
        return text

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
