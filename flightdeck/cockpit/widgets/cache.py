"""Cache: hit rate now against the run's, its chart, reads against writes, dollars saved."""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Palette, cache_level, count, hbar, ms, pct, sparkline, ttft_level, usd
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.cockpit.widgets.charts import chart_points

NOW_WINDOW = "5m"


def _rate(text: Text, label: str, rate: float | None, p: Palette) -> None:
    level = cache_level(rate)
    text.append(label, style=p.dim)
    style = f"bold {p.level(level)}" if level else "bold"
    text.append(pct(rate), style=style)
    if level:
        text.append(" " + level.symbol, style=p.level(level))


class CachePanel(Panel):
    TITLE = "Cache"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        window = snap.windows.get(NOW_WINDOW)
        text = Text(end="")
        _rate(text, f"hit {NOW_WINDOW} ", window.cache_hit_rate if window else None, p)
        text.append("  ")
        _rate(text, "run ", snap.total.cache_hit_rate, p)
        text.append("\n")

        points, per = chart_points(snap)
        series = [pt.cache_hit_rate for pt in points]
        label = f" hit{per}"
        text.append(sparkline(series, max(width - len(label), 4)), style=p.bar)
        text.append(label, style=p.dim)
        text.append("\n")

        tokens = snap.total.tokens
        text.append("reads ", style=p.dim)
        text.append(count(tokens.cache_read_tokens), style="bold")
        text.append("  writes ", style=p.dim)
        text.append(count(tokens.cache_write_tokens), style="bold")
        if tokens.cache_write_tokens and width >= 36:
            ratio = tokens.cache_read_tokens / tokens.cache_write_tokens
            text.append(f"  {ratio:.1f}×", style=p.dim)
        text.append("\n")
        text.append("saved ", style=p.dim)
        text.append(usd(snap.total.cache_saved_usd), style=f"bold {p.ok}")
        if window is not None and width >= 30:
            text.append(f"  ({usd(window.cache_saved_usd)} in {NOW_WINDOW})", style=p.dim)
        self.border_title = "Cache · TTFT" if view.compact else self.TITLE
        if view.compact:
            # The TTFT panel is collapsed: keep its headline here.
            self._ttft_line(text, view)
        elif self.text_height >= 5 and (tokens.cache_read_tokens or tokens.cache_write_tokens):
            share = tokens.cache_read_tokens / (tokens.cache_read_tokens + tokens.cache_write_tokens)
            text.append("\nr/w ", style=p.dim)
            text.append(hbar(share, max(width - 4, 1)), style=p.bar)
        return text

    @staticmethod
    def _ttft_line(text: Text, view: View) -> None:
        p = view.palette
        window = view.snap.windows.get("15m")
        q = window.ttft if window is not None else view.snap.total.ttft
        level = ttft_level(q.p90)
        text.append("\nttft ", style=p.dim)
        text.append(f"p50 {ms(q.p50)} p90 ", style="bold")
        text.append(ms(q.p90), style=f"bold {p.level(level)}" if level else "bold")
        if level:
            text.append(" " + level.symbol, style=p.level(level))
