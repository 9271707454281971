"""Enter on a call: everything about it, and an audit of its price.

Tokens in the five canonical buckets (and the 1-hour part of the cache
writes), each stage with a bar to scale, the price with where it came from
(``cost_status``, ``price_source``, the service tier, the route), the same
tokens priced again from the rates this monitor has, so a reported cost can
be checked against the rates and a priced one against today's; the prompt
hash and how often the monitor saw it; the error, the recorder's note, tags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from flightdeck.cockpit.format import Level, Palette, clean, hbar, literal, ms, pct, usd
from flightdeck.core.snapshot import CallRow

STATUS_WORDS = {
    "priced": "computed from the tokens and the pricing data's rates",
    "override": "computed from your own rates (--prices)",
    "reported": "reported by the provider or proxy (what it says it charged)",
    "local": "a model on your own hardware: no charge",
    "unknown": "unknown: no rate for this model (the tokens still count)",
}
LABEL_WIDTH = 18


def _line(text: Text, label: str, value: str | Text, p: Palette, style: str = "") -> None:
    text.append(f"{label:<{LABEL_WIDTH}}", style=p.dim)
    if isinstance(value, Text):
        text.append_text(value)
    else:
        text.append(value, style=style)
    text.append("\n")


def _head(text: Text, title: str, p: Palette) -> None:
    text.append(f"\n{title}\n", style=f"bold {p.accent}")


Audit = tuple[Decimal | None, str, str]  # (usd, cost_status, price source) of the tokens priced again


def repriced(row: CallRow) -> Audit | None:
    """The call's tokens priced again with this monitor's rates: (usd, status, source), None on failure."""
    from flightdeck.core.events import Usage
    from flightdeck.core.pricing import price

    try:
        usage = Usage(input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                      cache_read_tokens=row.cache_read_tokens, cache_write_tokens=row.cache_write_tokens,
                      reasoning_tokens=row.reasoning_tokens, cache_write_1h_tokens=row.cache_write_1h_tokens)
        found = price(row.provider, row.model, usage, row.ts or None, route=row.route,
                      service_tier=row.service_tier, speed=row.speed)
    except Exception:  # an audit line that cannot be computed is left out, never fatal
        return None
    return found.usd, found.status, found.source


def detail_text(row: CallRow, p: Palette, audit: Audit | None = None) -> Text:
    """The whole detail page as one ``Text`` (log strings shown literally)."""
    text = Text(end="")
    text.append("Call ", style="bold")
    text.append_text(literal(row.id or "(no id)", "bold"))
    text.append("\n")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.ts)) + f".{int(row.ts * 1000) % 1000:03d} UTC"
    _line(text, "time", when, p)
    _line(text, "run · agent", literal(f"{row.run} · {row.agent or '(none)'}"), p)
    step = f"{row.name or '(unnamed)'}" + (f" (iteration {row.step})" if row.step is not None else "")
    _line(text, "step", literal(step), p)
    _line(text, "provider · model", literal(f"{row.provider} · {row.model}"), p)
    extra = [f"route {row.route or '?'}", "streamed" if row.stream else "not streamed" if row.stream is False else ""]
    if row.service_tier:
        extra.append(f"tier {row.service_tier}")
    if row.speed:
        extra.append(f"speed {row.speed}")
    _line(text, "served", literal(" · ".join(e for e in extra if e)), p)

    _head(text, "Tokens", p)
    prompt = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
    _line(text, "input (plain)", f"{row.input_tokens:,}", p)
    _line(text, "cache read", f"{row.cache_read_tokens:,}", p)
    write = f"{row.cache_write_tokens:,}"
    if row.cache_write_1h_tokens:
        five = row.cache_write_tokens - row.cache_write_1h_tokens
        write += f"  (of which 1h: {row.cache_write_1h_tokens:,}; 5m: {five:,})"
    _line(text, "cache write", write, p)
    out = f"{row.output_tokens:,}"
    if row.reasoning_tokens:
        out += f"  (of which reasoning: {row.reasoning_tokens:,})"
    _line(text, "output", out, p)
    _line(text, "whole prompt", f"{prompt:,}  cache hit {pct(row.cache_read_tokens / prompt if prompt else None)}", p)

    _head(text, "Stages", p)
    stages = (("pre", row.pre_ms), ("ttft", row.ttft_ms), ("gen", row.gen_ms), ("post", row.post_ms))
    longest = max([v for _, v in stages if v is not None] + [row.total_ms or 0.0, 1.0])
    for name, value in stages:
        bar = hbar((value or 0.0) / longest, 30)
        _line(text, name, Text(f"{ms(value):>8}  ", end="") + Text(bar, style=p.bar, end=""), p)
    _line(text, "total", ms(row.total_ms), p, "bold")

    _head(text, "Price", p)
    unknown = row.cost_usd is None
    _line(text, "cost", usd(row.cost_usd, unknown="unknown"), p, f"bold {p.warn}" if unknown else "bold")
    status = row.cost_status or "(not given)"
    _line(text, "how", literal(f"{status}: {STATUS_WORDS.get(status, 'as the log says')}"), p)
    _line(text, "rate source", literal(row.price_source or "(not recorded in the log)"), p)
    if audit is not None:
        again, again_status, again_source = audit
        verdict = Text(usd(again, unknown="no rate"), style="bold", end="")
        if again is not None and row.cost_usd is not None:
            diff = row.cost_usd - again
            if diff == 0:
                verdict.append("  matches", style=p.ok)
            else:
                sign = "+" if diff > 0 else "−"
                verdict.append(f"  logged cost is {sign}{usd(abs(diff))} from this", style=p.warn)
        verdict.append_text(literal(f"  ({again_status}: {again_source})", p.dim))
        _line(text, "priced here now", verdict, p)
    if row.message:
        _line(text, "recorder's note", literal(row.message, p.warn), p)

    _head(text, "Prompt", p)
    if row.prompt_hash:
        seen = row.prompt_hash_seen
        hint = Text(f"  seen {seen}× by this monitor", style=p.warn if seen > 1 else p.dim, end="")
        if seen > 2:
            hint.append(" — the same prompt again and again: a loop?", style=p.warn)
        _line(text, "hash", literal(row.prompt_hash) + hint, p)
    else:
        _line(text, "hash", "(not recorded)", p, p.dim)
    if row.error:
        _head(text, f"{Level.BAD.symbol} Error", p)
        text.append_text(literal(row.error, f"bold {p.bad}"))
        text.append("\n")
    if row.tags:
        _head(text, "Tags", p)
        for tag, label in row.tags:
            _line(text, clean(tag)[:LABEL_WIDTH - 1], literal(label), p)
    return text


class CallDetailScreen(Screen[None]):
    """One call, scrollable; escape goes back to the table."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("q", "close", "Back", show=False),
    ]

    def __init__(self, row: CallRow, audit: Callable[[CallRow], Audit | None] = repriced) -> None:
        super().__init__()
        self.row = row
        self._audit = audit

    def compose(self) -> ComposeResult:
        palette = getattr(self.app, "palette", None)
        p = palette() if callable(palette) else Palette()
        with VerticalScroll(id="call-detail"):
            yield Static(detail_text(self.row, p, self._audit(self.row)), markup=False, id="call-detail-text")
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
