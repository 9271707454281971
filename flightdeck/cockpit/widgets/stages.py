"""Stages: pre / TTFT / generation / post per step name, as stacked bars.

The question is "which step is slow, and is it the network, the model or my
own code". Bars stack the *mean* of each stage (means add up to the mean
total; medians do not), scaled to the slowest step, and each row names its
dominant stage in words. The step that costs the most wall time in the
chosen window (mean total × calls) is marked as the bottleneck. The window
is 5 minutes by default (``w`` cycles 5m, 15m, 1m and the whole run), so a
vector store that turned slow a few minutes ago shows even when the run's
mean hides it.
"""

from __future__ import annotations

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, clean, count, ms, shorten
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.core.snapshot import Group, Snapshot

STAGES = ("pre", "ttft", "gen", "post")
GLYPHS = {"pre": "░", "ttft": "▒", "gen": "█", "post": "▓"}  # shapes, not only colours
BLAME = {"pre": "your code/pre", "ttft": "network", "gen": "the model", "post": "your code/post"}
SHORT_BLAME = {"pre": "pre", "ttft": "ttft", "gen": "model", "post": "post"}
UNNAMED = "(unnamed)"


def _means(group: Group) -> dict[str, float]:
    out = {}
    for stage in STAGES:
        q = group.figures.stages.get(stage)
        out[stage] = (q.mean or 0.0) if q is not None else 0.0
    return out


def _total(group: Group, means: dict[str, float]) -> float:
    q = group.figures.stages.get("total")
    if q is not None and q.mean is not None:
        return q.mean
    return sum(means.values())


def window_name(seconds: int) -> str:
    """``5m`` for 300; ``run`` for 0 (the whole run)."""
    if not seconds:
        return "run"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def stage_groups(snap: Snapshot, seconds: int) -> tuple[list[Group], str]:
    """The per-step groups over the chosen window, and what they cover (``last 5m`` or ``run``).

    A feed without windowed stages (an old snapshot) falls back to the run, and says so.
    """
    window = snap.stage_windows.get(seconds) if seconds else None
    if window is not None:
        return [g for g in window.groups if g.figures.calls], f"last {window_name(seconds)}"
    return [g for g in snap.breakdowns.get("name", ()) if g.figures.calls], "run"


def _stage_style(stage: str, p: Palette) -> str:
    return {"pre": p.dim, "ttft": p.accent, "gen": p.bar, "post": p.text}[stage]


class StagesPanel(Panel):
    TITLE = "Stages per step"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        groups, scope = stage_groups(snap, view.stage_window)
        self.border_title = f"{self.TITLE} · {scope} (w)"
        text = Text(end="")
        if not groups:
            if scope != "run":
                text.append(f"no calls in the {scope}; w changes the window", style=p.dim)
            else:
                text.append("no steps yet: calls carry a step name in `name`", style=p.dim)
            return text
        for stage in STAGES:
            text.append(GLYPHS[stage] + " ", style=_stage_style(stage, p))
            text.append(stage + "  ", style=p.dim)
        if width >= 60:
            text.append("(mean ms, bar to scale)", style=p.dim)

        rows = [(g, m, _total(g, m)) for g, m in ((g, _means(g)) for g in groups)]
        slowest_total = max(t for _, _, t in rows) or 1.0
        # The bottleneck is the step that costs the most wall time in this window.
        bottleneck = max(rows, key=lambda r: r[2] * r[0].figures.calls)[0].key
        name_width = min(max(len(clean(g.key or UNNAMED)) for g, _, _ in rows), max(width // 5, 8), 18)
        wide = width >= 70
        # " 2.41s" + " ×1.2k " + " ✗your code/post" when wide; " 2.41s" + " ✗model" when not
        tail_width = 7 + 7 + 3 + max(len(b) for b in BLAME.values()) if wide else 7 + 3 + 5
        bar_width = max(width - name_width - 1 - tail_width, 6)
        room = max(self.text_height - 1, 1)
        shown = rows if len(rows) <= room else rows[: room - 1]
        if bottleneck not in {g.key for g, _, _ in shown}:  # never hide the step being blamed
            shown = [*shown[:-1], next(r for r in rows if r[0].key == bottleneck)]
        for group, means, total in shown:
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
        if len(shown) < len(rows):
            text.append(f"\n+{len(rows) - len(shown)} more steps (slower ones first)", style=p.dim)
        return text
