"""A Snapshot as ``flightdeck report`` prints it: a readable table, or JSON.

Money is printed from its Decimal, digit for digit (never through a float).
Strings from logs (model names, reasons) are shown as text through the
package's one sanitiser, so a hostile log cannot drive the terminal.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flightdeck.core.events import parse_ts
from flightdeck.core.sanitize import clean
from flightdeck.core.snapshot import PERIOD_DIMS, REPORT_DIMS, Figures, Group, Snapshot, usd_text

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEY_WIDTH = 40


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ISO 8601, epoch seconds, or "2h"/"30m"/"7d" meaning that long ago.

    ValueError with the text when it is none of those.
    """
    rel = _RELATIVE.match(text)
    if rel:
        ago = float(rel.group(1)) * _UNIT_SECONDS[rel.group(2).lower()]
        return (time.time() if now is None else now) - ago
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value) and value >= 0:
            return value
        raise ValueError(f"time {text!r} is not a time")
    try:
        return parse_ts(text)
    except (ValueError, OverflowError):
        raise ValueError(
            f"time {text!r} is not ISO 8601 (2026-11-27T10:00Z), epoch seconds, or an age like 2h, 30m, 7d"
        ) from None


# ``--by block``: Claude's 5-hour blocks, as ccusage's ``blocks`` view lists them
# (from Snapshot.blocks, not an aggregator breakdown).
BLOCK_DIM = "block"
_BY_DIMS = (*REPORT_DIMS, BLOCK_DIM)


def parse_dims(text: str) -> tuple[str, ...]:
    """``"model,provider"`` -> ("model", "provider"); ValueError naming a bad one."""
    dims = tuple(d.strip() for d in text.split(",") if d.strip())
    for dim in dims:
        if dim not in _BY_DIMS:
            raise ValueError(f"--by {dim!r}: choose from {', '.join(_BY_DIMS)}")
    if not dims:
        raise ValueError(f"--by is empty: choose from {', '.join(_BY_DIMS)}")
    return tuple(dict.fromkeys(dims))


def safe_text(text: str) -> str:
    """Log text made harmless for a terminal (``core.sanitize.clean``).

    Args:
        text: a string from a log.
    """
    return clean(text)


def report_json(snap: Snapshot, by: Sequence[str]) -> dict[str, Any]:
    """``Snapshot.to_json()`` plus ``by``: the rows of each dimension asked for."""
    out = snap.to_json()
    out["by"] = {
        dim: [dict(b) for b in snap.blocks] if dim == BLOCK_DIM else
        [g.to_json() for g in snap.breakdowns.get(dim, ())]
        for dim in by
    }
    return out


# -- the table ---------------------------------------------------------------------


def _int(n: int) -> str:
    return f"{n:,}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _share(part: Decimal, whole: Decimal) -> str:
    if whole <= 0:
        return "-"
    return f"{(part * 100 / whole):.1f} %"


def _header(snap: Snapshot) -> list[str]:
    t: Figures = snap.total
    tok = t.tokens
    ttft = t.ttft
    lines = [
        f"flightdeck report: {_int(snap.events)} calls, {_when(snap.first_ts)} .. {_when(snap.last_ts)}",
        "",
        f"  cost          {usd_text(t.cost_usd)} USD"
        + (f"  ({_int(t.unpriced)} calls unpriced)" if t.unpriced else ""),
        f"  tokens        input {_int(tok.input_tokens)}  output {_int(tok.output_tokens)}"
        f"  cache read {_int(tok.cache_read_tokens)}  cache write {_int(tok.cache_write_tokens)}"
        f"  reasoning {_int(tok.reasoning_tokens)}",
        f"  cache         hit rate {_pct(t.cache_hit_rate)}, saved {usd_text(t.cache_saved_usd)} USD",
        f"  ttft          p50 {_ms(ttft.p50)}  p90 {_ms(ttft.p90)}  p99 {_ms(ttft.p99)}"
        f"  ({_int(ttft.count)} streamed calls)",
        f"  errors        {_int(t.errors)}",
    ]
    rejected = f"  rejected      {_int(snap.rejected)} lines"
    if snap.rejected_reasons:
        reasons = sorted(snap.rejected_reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{safe_text(r)} {_int(n)}" for r, n in reasons[:5])
        more = f", +{len(reasons) - 5} more reasons" if len(reasons) > 5 else ""
        rejected += f": {shown}{more}"
    lines.append(rejected)
    if snap.notes:  # accepted lines that said more than was read: named, never silent
        notes = sorted(snap.notes.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{safe_text(r)} {_int(n)}" for r, n in notes[:5])
        more = f", +{len(notes) - 5} more reasons" if len(notes) > 5 else ""
        lines.append(f"  notes         {_int(sum(snap.notes.values()))} lines counted, not read whole: {shown}{more}")
    lines.append(f"  duplicates    {_int(snap.duplicates)}")
    extras = []
    if snap.runs_started or snap.runs_ended:
        runs = "run" if snap.runs_started == 1 else "runs"
        extras.append(f"{_int(snap.runs_started)} {runs} started, {_int(snap.runs_ended)} ended")
    if snap.alerts:
        extras.append(f"{_int(len(snap.alerts))} alerts (latest shown in tail)")
    if snap.unknown_kinds:
        extras.append(f"{_int(snap.unknown_kinds)} events of unknown kinds")
    if snap.dropped:
        extras.append(f"{_int(snap.dropped)} events dropped by recorders")
    if extras:
        lines.append("  also          " + "; ".join(extras))
    return lines


_COLUMNS = ("calls", "input", "output", "cache read", "cache write", "cost USD", "share", "p50 total", "p90 total")


def _row(g: Group, whole: Decimal) -> list[str]:
    f = g.figures
    total = f.stages.get("total")
    key = safe_text(g.key)
    if len(key) > _KEY_WIDTH:
        key = key[: _KEY_WIDTH - 1] + "…"
    cost = usd_text(f.cost_usd) + (" *" if f.unpriced else "")
    return [
        key,
        _int(f.calls),
        _int(f.tokens.input_tokens),
        _int(f.tokens.output_tokens),
        _int(f.tokens.cache_read_tokens),
        _int(f.tokens.cache_write_tokens),
        cost,
        _share(f.cost_usd, whole),
        _ms(total.p50 if total else None),
        _ms(total.p90 if total else None),
    ]


def _table(dim: str, rows: Sequence[Group], whole: Decimal) -> list[str]:
    head = [dim, *_COLUMNS]
    body = [_row(g, whole) for g in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))
        return f"  {first}  {rest}".rstrip()

    out = [fmt(head), "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))]
    out.extend(fmt(r) for r in body)
    if any(g.figures.unpriced for g in rows):
        out.append("  * some calls have no known price: their tokens count, their cost does not")
    return out


_PERIOD_HEADS = {"day": "date", "week": "week (Monday)", "month": "month", "session": "session"}
_PERIOD_COLUMNS = ("models", "input", "output", "cache create", "cache read", "total tokens", "cost USD")


def _period_cells(key: str, f: Figures, models: Sequence[str]) -> list[str]:
    tok = f.tokens
    total = tok.input_tokens + tok.output_tokens + tok.cache_write_tokens + tok.cache_read_tokens
    shown = ", ".join(safe_text(m) for m in models) or "-"
    if len(shown) > _KEY_WIDTH:
        shown = shown[: _KEY_WIDTH - 1] + "…"
    return [safe_text(key), shown, _int(tok.input_tokens), _int(tok.output_tokens), _int(tok.cache_write_tokens),
            _int(tok.cache_read_tokens), _int(total), usd_text(f.cost_usd) + (" *" if f.unpriced else "")]


def period_table(dim: str, rows: Sequence[Group], total: Figures) -> list[str]:
    """A ccusage-style table (``--by day|week|month|session``): one row per period, models, tokens, cost.

    Args:
        dim: ``day``, ``week``, ``month`` or ``session``.
        rows: its groups, as the aggregator orders them (periods oldest first).
        total: the run's figures, for the total row.
    """
    session = dim == "session"
    head = [_PERIOD_HEADS[dim], *_PERIOD_COLUMNS, *(("last activity",) if session else ())]
    body = [_period_cells(g.key, g.figures, g.models) + ([g.last_activity or "-"] if session else [])
            for g in rows]
    foot = _period_cells("total", total, ()) + (["" ] if session else [])
    foot[1] = ""
    widths = [max(len(r[i]) for r in [head, *body, foot]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2])]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
        return ("  " + "  ".join(left + right)).rstrip()

    rule = "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [fmt(head), rule, *(fmt(r) for r in body), rule, fmt(foot)]
    if any(g.figures.unpriced for g in rows):
        out.append("  * some calls have no known price: their tokens count, their cost does not")
    return out


def _minutes(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def plan_lines(snap: Snapshot, now: float | None = None) -> list[str]:
    """The plan windows for the table: each says whether the provider reported it or flightdeck computed it.

    Args:
        snap: the report's snapshot (``plan_windows``).
        now: wall time, for "resets in" (default the clock).
    """
    if not snap.plan_windows:
        return []
    now = time.time() if now is None else now
    out = ["", "plan windows:"]
    for w in snap.plan_windows:
        agent = safe_text(str(w.get("agent")))
        name = safe_text(str(w.get("window")))
        resets = w.get("resets_at")
        if w.get("source") == "reported":
            line = f"  {agent} {name}: {w.get('used_percent')} % used"
            if isinstance(resets, (int, float)):
                line += f", resets {_when(resets)}" + (f" (in {_minutes(resets - now)})" if resets > now else "")
            full = w.get("full_at")
            line += f", full at {_when(full)} at the current burn" if isinstance(full, (int, float)) else ""
            line += f" [reported by the provider, seen {_when(w.get('observed_at'))}]"
        else:
            line = (f"  {agent} {name} {_when(w.get('started_at'))} .. {_when(resets)}: "
                    f"{_int(w.get('calls') or 0)} calls, {_int(w.get('tokens') or 0)} tokens, "
                    f"{w.get('cost_usd')} USD")
            if w.get("active"):
                line += f", burn {w.get('burn_usd_per_hour')} USD/h, projected {w.get('projected_usd')} USD"
            else:
                line += " (ended)"
            line += " [computed as ccusage does; the plan's limit is not known, so no percentage]"
        out.append(line)
    return out


def block_table(blocks: Sequence[dict[str, Any]]) -> list[str]:
    """``--by block``: one row per Claude 5-hour block, as ccusage's ``blocks`` view lists them.

    Args:
        blocks: ``Snapshot.blocks``, oldest first.
    """
    head = ["block start (UTC)", "end", "calls", "tokens", "cost USD", ""]
    body = [[_when(b["started_at"]).removesuffix(" UTC"), _when(b["resets_at"]).removesuffix(" UTC"),
             _int(b["calls"]), _int(b["tokens"]), b["cost_usd"] + (" *" if b["unpriced"] else ""),
             "active" if b["active"] else ""] for b in blocks]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2])]
        right = [c.rjust(w) for c, w in zip(cells[2:5], widths[2:5])]
        return ("  " + "  ".join([*left, *right, cells[5]])).rstrip()

    out = [fmt(head), "  " + "-" * (sum(widths[:5]) + 2 * 4), *(fmt(r) for r in body)]
    if any(b["unpriced"] for b in blocks):
        out.append("  * some calls have no known price: their tokens count, their cost does not")
    return out


def render_table(snap: Snapshot, by: Sequence[str]) -> str:
    """The readable report: totals, then one table per dimension in ``by``.

    Args:
        snap: the report's snapshot.
        by: the dimensions to print, in order.
    """
    lines = _header(snap) + plan_lines(snap)
    for dim in by:
        lines.append("")
        lines.append(f"by {dim}:")
        if dim == BLOCK_DIM:
            lines.extend(block_table(snap.blocks) if snap.blocks else ["  (no Claude Code calls)"])
            continue
        rows = snap.breakdowns.get(dim, ())
        if not rows:
            lines.append("  (no calls)")
            continue
        if dim in PERIOD_DIMS or dim == "session":
            lines.extend(period_table(dim, rows, snap.total))
        else:
            lines.extend(_table(dim, rows, snap.total.cost_usd))
    return "\n".join(lines) + "\n"


def aggregate_dims(by: Sequence[str]) -> tuple[str, ...]:
    """The breakdowns to count for a report ``--by`` these: periods and sessions also need the
    model (their rows list it) and a session the day (its last activity).

    Args:
        by: the dimensions asked for.
    """
    dims = [d for d in by if d != BLOCK_DIM]  # blocks come with every report
    if any(d in PERIOD_DIMS or d == "session" for d in dims) and "model" not in dims:
        dims.append("model")
    if "session" in dims and "day" not in dims:
        dims.append("day")
    return tuple(dims)
