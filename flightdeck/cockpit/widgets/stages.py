"""Stages: pre / TTFT / generation / post per step name, as stacked bars.

The question is "which step is slow, and is it the network, the model or my
own code". Bars stack the *mean* of each stage (means add up to the mean
total; medians do not), scaled to the slowest step, and each row names its
dominant stage in words. The step that costs the most wall time overall
(mean total × calls) is marked as the bottleneck.
"""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, clean, count, ms, shorten
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.core.snapshot import Group

STAGES = ("pre", "ttft", "gen", "post")
GLYPHS = {"pre": "░", "ttft": "▒", "gen": "█", "post": "▓"}  # shapes, not only colours
BLAME = {"pre": "your code/pre", "ttft": "network", "gen": "the model", "post": "your code/post"}
SHORT_BLAME = {"pre": "pre", "ttft": "ttft", "gen": "model", "post": "post"}
UNNAMED = "(unnamed)"


def _means(group: Group) -> dict[str, float]:
    return {s: (group.figures.stages.get(s).mean or 0.0) if s in group.figures.stages else 0.0
            for s in STAGES}


def _total(group: Group, means: dict[str, float]) -> float:
    q = group.figures.stages.get("total")
    if q is not None and q.mean is not None:
        return q.mean
    return sum(means.values())


def _stage_style(stage: str, p: Palette) -> str:
    return {"pre": p.dim, "ttft": p.accent, "gen": p.bar, "post": p.text}[stage]


class StagesPanel(Panel):
    TITLE = "Stages per step"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        groups = [g for g in snap.breakdowns.get("name", ()) if g.figures.calls]
        text = Text(end="")
        if not groups:
            text.append("no steps yet: calls carry a step name in `name`", style=p.dim)
            return text
        for stage in STAGES:
            text.append(GLYPHS[stage] + " ", style=_stage_style(stage, p))
            text.append(stage + "  ", style=p.dim)
        if width >= 60:
            text.append("(mean ms, bar to scale)", style=p.dim)

        rows = [(g, _means(g)) for g in groups]
        rows = [(g, m, _total(g, m)) for g, m in rows]
        slowest_total = max(t for _, _, t in rows) or 1.0
        bottleneck = max(rows, key=lambda r: r[2] * r[0].figures.calls)[0].key
        name_width = min(max(len(clean(g.key or UNNAMED)) for g, _, _ in rows), max(width // 5, 8), 18)
        wide = width >= 70
        # " 2.41s" + " ×1.2k " + " ✗your code/post" when wide; " 2.41s" + " ✗model" when not
        tail_width = 7 + 7 + 3 + max(len(b) for b in BLAME.values()) if wide else 7 + 3 + 5
        bar_width = max(width - name_width - 1 - tail_width, 6)
        for group, means, total in rows[: max(self.text_height - 1, 1)]:
            text.append("\n")
            is_bottleneck = group.key == bottleneck
            name = shorten(clean(group.key or UNNAMED), name_width).ljust(name_width)
            text.append(name + " ", style=f"bold {p.bad}" if is_bottleneck else "bold")
            scale = bar_width / slowest_total
            drawn = 0
            for stage in STAGES:
                cells = round(means[stage] * scale)
                cells = min(cells, bar_width - drawn)
                text.append(GLYPHS[stage] * cells, style=_stage_style(stage, p))
                drawn += cells
            text.append(" " * (bar_width - drawn))
            text.append(f" {ms(total):>6}", style="bold")
            dominant = max(STAGES, key=lambda s: means[s])
            if wide:
                text.append(f" ×{count(group.figures.calls):<5}", style=p.dim)
            if is_bottleneck:
                blame = BLAME[dominant] if wide else SHORT_BLAME[dominant]
                text.append(f" {Level.BAD.symbol} {blame}", style=f"bold {p.bad}")
            elif wide:
                text.append(f"   {BLAME[dominant]}", style=p.dim)
        return text
