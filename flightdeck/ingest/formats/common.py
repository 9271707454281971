"""What every reader shares: the parse contract and the pricing glue.

A reader's ``parse(line)`` never raises: it returns the events the line
makes (often none) or a ``Rejected`` naming what was wrong.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from flightdeck.core.events import Event, Rejected, Usage, format_usd

ParseResult = list[Event] | Rejected


class LineFormat(Protocol):
    """One file format: ``parse`` turns a line into zero or more events."""

    name: str

    def parse(self, line: bytes) -> ParseResult: ...


# --- pricing glue ------------------------------------------------------------


def priced(
    provider: str,
    model: str,
    usage: Usage,
    ts: float,
    *,
    route: str | None = None,
    reported: Decimal | None = None,
    speed: str | None = None,
) -> tuple[str | None, str]:
    """(cost_usd string or None, cost_status), as the recorder would write them."""
    from flightdeck.core.pricing import price  # imported late: the module is large

    result = price(provider, model, usage, ts, route=route, reported_usd=reported, speed=speed)
    cost = format_usd(result.usd) if result.usd is not None else None
    return cost, result.status



def num(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def span_ms(a: float | None, b: float | None) -> float | None:
    """Milliseconds from ``a`` to ``b`` (epoch seconds); None when either is unknown or b < a."""
    if a is None or b is None or b < a:
        return None
    return (b - a) * 1000.0
