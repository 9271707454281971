"""``flightdeck prices MODEL``: what a model costs, and where the rate came from."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flightdeck.core.events import parse_ts
from flightdeck.core.pricing import CORRECTION_PREFIX, OverrideError, Pricer, Rates, set_default_pricer
from flightdeck.core.sanitize import clean, clean_lines

# (label, Rates attribute) in display order.
BUCKETS = (
    ("input", "input"),
    ("output", "output"),
    ("cache read", "cache_read"),
    ("cache write (5m)", "cache_write"),
    ("cache write (1h)", "cache_write_1h"),
    ("reasoning", "reasoning"),
)


def run(args: argparse.Namespace) -> int:
    try:
        when = _parse_time(args.at)
    except ValueError as exc:
        print(f"flightdeck prices: {exc}", file=sys.stderr)
        return 2
    try:
        pricer = Pricer(args.prices) if args.prices else Pricer()
    except OverrideError as exc:
        print(f"flightdeck prices: {exc}", file=sys.stderr)
        return 2
    set_default_pricer(pricer)
    provider = args.provider or ""
    tier = getattr(args, "service_tier", None)
    speed = getattr(args, "speed", None)
    rates = pricer.rates(provider, args.model, when, route=args.route, service_tier=tier, speed=speed)
    if rates is None:
        reason = pricer.unknown_reason(provider, args.model, args.route, when=when,
                                       service_tier=tier, speed=speed)
        if args.json:
            print(json.dumps({"model": args.model, "provider": args.provider, "status": "unknown",
                              "source": reason, "service_tier": tier, "speed": speed}))
        if tier or speed:  # the model is known; that tier's rate is not, and the reason says how to add it
            print(f"flightdeck prices: {reason}", file=sys.stderr)
            return 1
        hint = "; add your own rate in a --prices file (see `flightdeck prices --help`)"
        print(clean(f"flightdeck prices: unknown model {args.model!r}: {reason}{hint}"), file=sys.stderr)
        return 1
    if args.json:
        out = to_json(args.model, args.provider, when, rates)
        out.update(service_tier=tier, speed=speed, correction=is_correction(rates))
        print(json.dumps(out, indent=2))
    else:
        sys.stdout.write(clean_lines(render(args.model, args.provider, when, rates, service_tier=tier, speed=speed)))
    return 0


def is_correction(rates: Rates) -> bool:
    """Whether the rate comes from flightdeck's shipped corrections (genai-prices was wrong)."""
    return rates.source.startswith(CORRECTION_PREFIX)


def _parse_time(text: str | None) -> float:
    """--at: ISO 8601 (a bare date is midnight UTC) or epoch seconds; default now."""
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return parse_ts(text)
    except ValueError:
        raise ValueError(f"--at {text!r} is not a time (try 2025-06-01 or 2025-06-01T12:00Z)") from None


def usd(amount: Decimal) -> str:
    """A rate as plain digits, never scientific notation."""
    return format(amount.normalize(), "f") if amount else "0"


def _bucket_values(rates: Rates) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for _, attr in BUCKETS:
        value = getattr(rates, attr)
        values[attr] = usd(value) if value is not None else None
    return values


def to_json(model: str, provider: str | None, when: float, rates: Rates) -> dict[str, Any]:
    return {
        "model": model,
        "provider": provider,
        "at": datetime.fromtimestamp(when, UTC).isoformat(),
        "status": rates.status,
        "source": rates.source,
        "unit": "USD per million tokens",
        "rates": _bucket_values(rates),
        "per_request_usd": usd(rates.per_request),
        "tiers": [{"above_prompt_tokens": t, "rates": _bucket_values(r)} for t, r in rates.tiers],
        "date_matters": rates.date_matters,
        "schedule": list(rates.schedule),
        "notes": list(rates.notes),
        "untracked": list(rates.untracked),
    }


def render(model: str, provider: str | None, when: float, rates: Rates, *,
           service_tier: str | None = None, speed: str | None = None) -> str:
    """The human table of ``rates``; ``service_tier``/``speed`` as asked on the command line."""
    at = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = ", ".join(f"{name} {value}" for name, value in (("service tier", service_tier), ("speed", speed))
                     if value)
    lines = [f"{model}" + (f" ({provider})" if provider else "") + (f" at {mode}" if mode else "")
             + f", rates in force at {at}"]
    lines.append(f"source: {rates.source}")
    if is_correction(rates):
        lines.append("a flightdeck correction applied: genai-prices lacks or misstates this rate")
    if rates.status == "local":
        lines.append("a local model: every call costs 0")
        return "\n".join(lines) + "\n"
    header = ["USD / MTok"] + [f"> {t:,} prompt tokens" for t, _ in rates.tiers]
    columns = [rates] + [r for _, r in rates.tiers]
    rows = [[label] + [_cell(r, attr) for r in columns] for label, attr in BUCKETS]
    widths = [max(len(row[i]) for row in [["", *header], *rows]) for i in range(len(columns) + 1)]
    lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                           for i, cell in enumerate(["", *header])).rstrip())
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
    if rates.per_request:
        lines.append(f"plus {usd(rates.per_request)} USD per request")
    if rates.tiers:
        lines.append("tiers: a prompt (input + cache read + cache write) above the threshold "
                     "pays that column's rates on every token")
    if rates.date_matters:
        lines.append("the date matters: the rate depends on when the call was made")
        lines.extend(f"  {entry}" for entry in rates.schedule)
    else:
        lines.append("the date does not matter: one rate for all dates")
    if rates.untracked:
        lines.append("also priced, not tracked by flightdeck: " + ", ".join(rates.untracked))
    return "\n".join(lines) + "\n"


def _cell(rates: Rates, attr: str) -> str:
    value = getattr(rates, attr)
    if value is None:
        return "= output"
    return usd(value)
