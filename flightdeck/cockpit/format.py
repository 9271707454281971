"""Number, money and text formatting for the panels, plus tiny text charts.

Everything here is plain Python over Rich ``Text``: no Textual, so it is
cheap to test. Money stays ``Decimal``: amounts are quantized for display,
never converted to float except to scale a chart's bar heights.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum

from rich.text import Text

# The package's one sanitiser (a log string must never move the cursor,
# retitle the terminal or hide itself); re-exported for the panels.
from flightdeck.core.sanitize import clean


def literal(value: object, style: str = "") -> Text:
    """A ``Text`` of a log string, shown literally: never parsed as markup."""
    return Text(clean(value), style=style, end="")


def shorten(text: str, width: int) -> str:
    """Fit ``text`` into ``width`` cells, with an ellipsis when cut."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


# ---------------------------------------------------------------- numbers

_CENT = Decimal("0.01")
_FOUR_PLACES = Decimal("0.0001")
_DOLLAR = Decimal(1)


def usd(amount: Decimal | None, *, unknown: str = "—") -> str:
    """Dollars, by one rule everywhere: 4 places under $1, 2 places to $10k, whole dollars above.

    A non-zero amount too small for 4 places reads ``<$0.0001``, never ``$0.0000``.
    """
    if amount is None:
        return unknown
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    size = abs(amount)
    if size < _FOUR_PLACES:
        return f"<{sign}$0.0001"
    if size < _DOLLAR:
        return f"{sign}${size.quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)}"
    if size < 10_000:
        return f"{sign}${size.quantize(_CENT, rounding=ROUND_HALF_UP):,}"
    return f"{sign}${size.quantize(_DOLLAR, rounding=ROUND_HALF_UP):,}"


def count(n: int | float) -> str:
    """Compact counts: 950, 12.3k, 4.56M."""
    value = float(n)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.3g}{suffix}" if scaled < 100 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 call``, ``2 calls``, ``12.3k calls``: the count, compact, with the word agreeing."""
    return f"{count(n)} {word if n == 1 else (words or word + 's')}"


def ms(value: float | None) -> str:
    """A latency: 850ms, 1.25s, 2m05s; a dash when not measured."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f}ms"
    if value < 60_000:
        return f"{value / 1000:.2f}s" if value < 10_000 else f"{value / 1000:.1f}s"
    minutes, seconds = divmod(int(value / 1000), 60)
    return f"{minutes}m{seconds:02d}s"


def pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


def ago(seconds: float) -> str:
    """How long ago, coarsely: 12s, 4m, 3h."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def clock_time(ts: float) -> str:
    """HH:MM:SS in local time."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


# ---------------------------------------------------------------- levels


class Level(Enum):
    """The green / amber / red meaning shared by every panel.

    Each level has a symbol too, so the meaning never rests on colour alone.
    """

    OK = "ok"
    WARN = "warn"
    BAD = "bad"

    @property
    def symbol(self) -> str:
        return {"ok": "✓", "warn": "▲", "bad": "✗"}[self.value]


@dataclass(frozen=True, slots=True)
class Palette:
    """The colours panels draw with, taken from the active theme."""

    ok: str = "#4ebf71"
    warn: str = "#ffa62b"
    bad: str = "#ba3c5b"
    accent: str = "#0178d4"
    dim: str = "#808080"
    text: str = "#e0e0e0"
    bar: str = "#0178d4"

    def level(self, level: Level) -> str:
        return {Level.OK: self.ok, Level.WARN: self.warn, Level.BAD: self.bad}[level]


def budget_level(fraction: float) -> Level:
    """Budget used: green under 70 %, amber to 90 %, red beyond."""
    if fraction < 0.7:
        return Level.OK
    return Level.WARN if fraction < 0.9 else Level.BAD


def cache_level(rate: float | None) -> Level | None:
    """Cache hit rate: green from 50 %, amber from 20 %, red below."""
    if rate is None:
        return None
    if rate >= 0.5:
        return Level.OK
    return Level.WARN if rate >= 0.2 else Level.BAD


def ttft_level(p90_ms: float | None) -> Level | None:
    """Time to first token at p90: green under 2 s, amber under 5 s, red beyond."""
    if p90_ms is None:
        return None
    if p90_ms < 2000:
        return Level.OK
    return Level.WARN if p90_ms < 5000 else Level.BAD


# ---------------------------------------------------------------- charts


def bin_label(seconds: int) -> str:
    """``/5s``, ``/min``: what one bar of a chart stands for."""
    return "/min" if seconds == 60 else f"/{seconds}s"

_SPARK = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def sparkline(values: Sequence[float | None], width: int) -> str:
    """The last ``width`` values as block characters; a gap (None) is a space."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    present = [v for v in tail if v is not None]
    top = max(present, default=0.0)
    out = []
    for value in tail:
        if value is None:
            out.append(" ")
        elif top <= 0:
            out.append(_SPARK[0])
        else:
            index = round(value / top * (len(_SPARK) - 1))
            out.append(_SPARK[min(max(index, 0), len(_SPARK) - 1)])
    return "".join(out).rjust(width)


def hbar(fraction: float, width: int) -> str:
    """A horizontal bar of ``width`` cells filled to ``fraction``, in eighths."""
    if width <= 0:
        return ""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part and full < width else "")
    return bar.ljust(width)


def gauge(fraction: float, width: int, palette: Palette) -> Text:
    """A budget gauge: the bar coloured by how close to the limit, with its symbol."""
    level = budget_level(fraction)
    text = Text(end="")
    text.append(level.symbol + " ", style=palette.level(level))
    text.append(hbar(fraction, max(width - 7, 1)), style=palette.level(level))
    text.append(f" {min(fraction, 9.99) * 100:3.0f}%", style="bold")
    return text
