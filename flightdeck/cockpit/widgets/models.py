"""Models: calls, tokens, cost and share per model, the split by route, unpriced marked."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text

from flightdeck.cockpit.format import Level, Palette, clean, count, shorten, usd
from flightdeck.cockpit.widgets.base import Panel, View
from flightdeck.core.snapshot import Group, Snapshot


def _share(group: Group, total_cost: Decimal, total_calls: int) -> float:
    if total_cost > 0:
        return float(group.figures.cost_usd / total_cost)
    return group.figures.calls / total_calls if total_calls else 0.0


def _fit_parts(parts: list[str], width: int) -> str:
    """Join whole parts while they fit; say how many were left out rather than cut one."""
    out = ""
    for i, part in enumerate(parts):
        candidate = part if not out else f"{out} · {part}"
        rest = len(parts) - i - 1
        if len(candidate) + (len(f" +{rest}") if rest else 0) > width:
            return f"{out} +{len(parts) - i}" if out else shorten(part, width)
        out = candidate
    return out


class ModelsPanel(Panel):
    TITLE = "Models"

    def build(self, view: View) -> Text:
        p, snap = view.palette, view.snap
        width = self.text_width
        groups = snap.breakdowns.get("model", ())
        text = Text(end="")
        if not groups:
            text.append("no calls yet", style=p.dim)
            return text
        total_cost = snap.total.cost_usd
        total_calls = snap.total.calls
        # Columns by priority: cost and calls always; share, then tokens, when they fit.
        show_share = width >= 12 + 16 + 6
        show_tokens = width >= 12 + 16 + 6 + 8
        numbers = 6 + 10 + (6 if show_share else 0) + (8 if show_tokens else 0)
        name_width = max(width - numbers, 6)
        text.append("model".ljust(name_width), style=p.dim)
        header = f"{'calls':>6}" + (f"{'tokens':>8}" if show_tokens else "") + f"{'cost':>10}"
        text.append(header + (f"{'share':>6}" if show_share else ""), style=p.dim)
        routes = snap.breakdowns.get("route", ())
        room = max(self.text_height - 1 - (1 if routes else 0), 1)
        shown = groups if len(groups) <= room else groups[: max(room - 1, 1)]
        for group in shown:
            f = group.figures
            text.append("\n")
            unpriced = f.unpriced > 0
            name = shorten(clean(group.key), name_width - (3 if unpriced else 1))
            text.append(name, style="bold")
            if unpriced:
                text.append(" " + Level.WARN.symbol, style=p.warn)
                name += "  "
            text.append(" " * (name_width - len(name)))
            text.append(f"{count(f.calls):>6}")
            if show_tokens:
                text.append(f"{count(f.tokens.prompt_tokens + f.tokens.output_tokens):>8}")
            cost = usd(f.cost_usd) if not (unpriced and f.cost_usd == 0) else "unpriced"
            text.append(f"{cost:>10}", style=p.warn if unpriced else "")
            if show_share:
                text.append(f"{_share(group, total_cost, total_calls) * 100:5.0f}%")
        if len(shown) < len(groups):
            rest = groups[len(shown):]
            folded = sum((g.figures.cost_usd for g in rest), Decimal(0))
            text.append(f"\n+{len(rest)} more models ({usd(folded)})", style=p.dim)
        if routes:
            text.append("\n")
            label = route_label(total_cost)
            text.append(label, style=p.dim)
            parts = [f"{clean(g.key)} {_share(g, total_cost, total_calls) * 100:.0f}%" for g in routes]
            text.append(_fit_parts(parts, max(width - len(label), 1)))
        return text


def route_label(total_cost: Decimal) -> str:
    """What the route shares are shares of: the cost, or the calls when nothing was spent."""
    return "cost by route " if total_cost > 0 else "calls by route "


def money_line(snap: Snapshot, width: int, p: Palette) -> Text:
    """Where the money goes, on one line: the top models and their share of the cost."""
    text = Text(end="", no_wrap=True)
    groups = snap.breakdowns.get("model", ())
    label = "cost by model " if snap.total.cost_usd > 0 else "calls by model "
    text.append(label, style=p.dim)
    if not groups:
        text.append("no calls yet", style=p.dim)
        return text
    parts = []
    for g in groups:
        if g.figures.unpriced and g.figures.cost_usd == 0:
            parts.append(f"{clean(g.key)} unpriced")
        else:
            parts.append(f"{clean(g.key)} {_share(g, snap.total.cost_usd, snap.total.calls) * 100:.0f}%")
    text.append(_fit_parts(parts, max(width - len(label), 1)), style="bold")
    return text
