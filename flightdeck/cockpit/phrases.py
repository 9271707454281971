"""Alerts in words: each rule's condition phrased as the rule reads, in the panels' units.

A firing carries the raw metric (``cache_hit_rate 0.252986``, threshold
``0.3``); a person wants ``cache hit 25% < 30%``. The direction comes from
the rule type (the cache hit rate fires when it falls, the others when they
rise), so a row never states the condition backwards. The same firing seen
from the agent's own rules and from the monitor's is one row with both origins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from flightdeck.cockpit.format import clean, count, ms, pct, usd
from flightdeck.core.snapshot import AlertRow

# An agent's and the monitor's firing of one rule on one agent this close together are one alert.
# They measure over slightly different calls (the monitor sees the whole fleet), so they do not
# fire at the same instant; a rule's cooldown (a minute by default) keeps one origin from firing twice.
MERGE_SECONDS = 60.0
_WINDOW_RE = re.compile(r"\bin (\d+(?:\.\d+)?(?:ms|s|m|h|d))\b")
_STAGE_RE = re.compile(r"\bp90 (pre|ttft|gen|post|total)\b")
ACTION_WORDS = {"pause": "paused", "downgrade": "downgraded"}


def _money(value: float) -> str:
    return usd(Decimal(repr(value)))


def condition(row: AlertRow) -> str:
    """The rule's condition with its figures, e.g. ``same prompt 4× in 2m (limit 4)``."""
    metric, value, limit = row.metric, row.value, row.threshold
    message = row.message or ""
    window = _WINDOW_RE.search(message)
    within = f" in {window.group(1)}" if window else ""
    if value is None or limit is None:
        return clean(message or metric or row.rule)
    if metric == "spend":
        return f"spend {_money(value)}{within} > {_money(limit)}"
    if metric == "latency_p90":
        stage = _STAGE_RE.search(message)
        return f"p90 {stage.group(1) if stage else 'step'} {ms(value)} > {ms(limit)}"
    if metric == "token_spike":
        return f"prompt {count(value)} tokens > {count(limit)}"
    if metric == "loop":
        return f"same prompt {value:.0f}×{within} (limit {limit:.0f})"
    if metric == "cache_hit_rate":
        return f"cache hit {pct(value)} < {pct(limit)}"
    # A rule type this monitor does not know: the figures, without claiming a direction.
    return f"{clean(metric or row.rule)} {value:g} (limit {limit:g})"


@dataclass(frozen=True, slots=True)
class MergedAlert:
    """One alert row: the firing, and who saw it fire (``agent``, ``monitor`` or both)."""

    row: AlertRow
    origins: tuple[str, ...]

    @property
    def ts(self) -> float:
        return self.row.ts


def merge_alerts(alerts: tuple[AlertRow, ...] | list[AlertRow]) -> list[MergedAlert]:
    """Fold the agent's and the monitor's firings of the same rule on the same agent into one row."""
    out: list[MergedAlert] = []
    last: dict[tuple[str, str | None, str | None, str | None], int] = {}
    for row in sorted(alerts, key=lambda a: a.ts):
        key = (row.rule, row.run, row.agent, row.action)
        i = last.get(key)
        if i is not None:
            prev = out[i]
            if row.source not in prev.origins and row.ts - prev.ts <= MERGE_SECONDS:
                out[i] = MergedAlert(prev.row, tuple(sorted((*prev.origins, row.source))))
                continue
        last[key] = len(out)
        out.append(MergedAlert(row, (row.source,)))
    return out


def alert_text(alert: MergedAlert) -> str:
    """``loop: same prompt 4× in 2m (limit 4) → paused (agent+monitor)``."""
    row = alert.row
    body = f"{clean(row.rule)}: {condition(row)}"
    if row.action in ACTION_WORDS:
        body += f" → {ACTION_WORDS[row.action]}"
    return body + f" ({'+'.join(alert.origins)})"
