"""Plan windows: how close a subscription is to its 5-hour / weekly limit.

Two kinds, never mixed up:

- ``reported``: the provider's own figures, as an agent CLI recorded them
  (Codex writes OpenAI's ``rate_limits`` on its ``token_count`` events:
  ``used_percent``, ``window_minutes``, ``resets_at``, ``plan_type``; see
  openai/codex ``codex-rs/protocol/src/protocol.rs`` ``RateLimitWindow``).
  The projected time to 100 % extrapolates the used percent observed in the
  same window cycle (same reset time) at its current rate.
  Claude Code's status line receives Anthropic's own subscription windows
  (``rate_limits.five_hour`` / ``seven_day``: ``used_percentage``, ``resets_at``
  in epoch seconds; Claude Code 2.1.80 changelog: "Added rate_limits field to
  statusline scripts ... 5-hour and 7-day windows with used_percentage and
  resets_at"); ``flightdeck statusline`` records them (``ingest.claude_status``)
  and ``window_from_claude`` reads them.
- ``computed``: where no provider figure is on disk (Claude Code), Claude's
  5-hour blocks computed as ccusage does (``apps/ccusage/src/_session-blocks.ts``):
  a block starts at its first call's time floored to the UTC hour and lasts
  five hours; a call after the block's end, or more than five hours after
  the previous call, starts a new block. The plan's limit is not known, so
  ``used_percent`` is null and ``limit`` says so: a block shows tokens, cost
  and burn, never a guessed percentage.

Plain data, no Textual, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from flightdeck.core.events import KIND_LLM_CALL, Event, Usage, parse_ts
from flightdeck.core.money import Money, cost_units, units_to_usd
from flightdeck.core.sanitize import clean
from flightdeck.core.snapshot import usd_text

BLOCK_SECONDS: Final = 5 * 3600
_SAME_CYCLE_SECONDS: Final = 120.0  # resets_at jitters by a few seconds between reports of one window


@dataclass(frozen=True, slots=True)
class PlanWindow:
    """One rate-limit window as the provider reported it, at ``observed_at``.

    ``first_percent``/``first_at``: the earliest observation of the same
    cycle (same reset time), from which the burn is measured.
    """

    agent: str
    limit: str
    which: str  # "primary" / "secondary" as Codex names them
    used_percent: float
    window_minutes: int | None
    resets_at: float | None
    plan_type: str | None
    observed_at: float
    first_percent: float
    first_at: float

    def same_cycle(self, other: PlanWindow) -> bool:
        """Whether both observations belong to one window cycle (the same reset)."""
        if self.resets_at is None or other.resets_at is None:
            return self.resets_at is other.resets_at
        return abs(self.resets_at - other.resets_at) <= _SAME_CYCLE_SECONDS

    def merged(self, other: PlanWindow) -> PlanWindow:
        """The later observation, keeping the earliest start of its cycle."""
        late, early = (self, other) if self.observed_at >= other.observed_at else (other, self)
        if late.same_cycle(early) and early.first_at < late.first_at:
            return replace(late, first_percent=early.first_percent, first_at=early.first_at)
        return late

    def full_at(self) -> float | None:
        """When the window reaches 100 % at the burn seen in this cycle; None without a rise."""
        if self.used_percent >= 100:
            return self.observed_at  # already full (Claude reports past 100 % when over)
        span = self.observed_at - self.first_at
        rise = self.used_percent - self.first_percent
        if span <= 0 or rise <= 0:
            return None
        return self.observed_at + (100.0 - self.used_percent) * span / rise

    def to_json(self) -> dict[str, Any]:
        """The window for ``--json``: the provider's figures, and the projection."""
        full = self.full_at()
        if full is not None and self.resets_at is not None and full > self.resets_at:
            full = None  # it resets before it fills
        return {
            "source": "reported",
            "agent": self.agent,
            "limit": self.limit,
            "window": self.which,
            "window_minutes": self.window_minutes,
            "plan_type": self.plan_type,
            "used_percent": self.used_percent,
            "resets_at": self.resets_at,
            "observed_at": self.observed_at,
            "full_at": full,
        }


def window_from_codex(raw: Any, which: str, ts: float, plan_type: str | None, *,
                      limit_id: Any = None) -> PlanWindow | None:
    """A Codex ``RateLimitWindow`` object seen at ``ts``; None when it is not one.

    ``resets_at`` is epoch seconds; versions before it wrote
    ``resets_in_seconds`` (relative to the event), accepted too.
    """
    if not isinstance(raw, dict):
        return None
    used = raw.get("used_percent")
    if isinstance(used, bool) or not isinstance(used, (int, float)) or not math.isfinite(used):
        return None
    if not 0 <= used <= 100:
        return None
    minutes = raw.get("window_minutes")
    resets = raw.get("resets_at")
    if isinstance(resets, bool) or not isinstance(resets, (int, float)):
        relative = raw.get("resets_in_seconds")
        resets = ts + relative if isinstance(relative, (int, float)) and not isinstance(relative, bool) else None
    return PlanWindow(
        agent="codex",
        limit=str(limit_id) if isinstance(limit_id, str) and limit_id else "codex",
        which=which,
        used_percent=float(used),
        window_minutes=minutes if isinstance(minutes, int) and not isinstance(minutes, bool) else None,
        resets_at=float(resets) if resets is not None else None,
        plan_type=plan_type,
        observed_at=ts,
        first_percent=float(used),
        first_at=ts,
    )


# Claude Code's status-line windows, by their key under ``rate_limits``.
CLAUDE_WINDOW_MINUTES: Final = {"five_hour": 5 * 60, "seven_day": 7 * 24 * 60}
CLAUDE_AGENT: Final = "claude-code"
_CLAUDE_MAX_PERCENT: Final = 1000.0  # Claude reports past 100 % when a limit is exceeded; beyond this is junk


def window_from_claude(name: str, raw: Any, ts: float) -> PlanWindow | None:
    """One window of Claude Code's status-line ``rate_limits`` seen at ``ts``; None when it is not one.

    Args:
        name: its key under ``rate_limits`` (``five_hour``, ``seven_day``, or a newer one).
        raw: its value: ``{"used_percentage": 23.5, "resets_at": 1738425600}`` (epoch seconds).
        ts: when it was observed (the status line's wall time).
    """
    if not isinstance(raw, dict):
        return None
    used = raw.get("used_percentage")
    if isinstance(used, bool) or not isinstance(used, (int, float)) or not math.isfinite(used):
        return None
    if not 0 <= used <= _CLAUDE_MAX_PERCENT:
        return None
    resets = raw.get("resets_at")
    if isinstance(resets, str):  # epoch seconds as documented; an ISO 8601 spelling is read too
        try:
            resets = parse_ts(resets)
        except (ValueError, OverflowError):
            resets = None
    if isinstance(resets, bool) or not isinstance(resets, (int, float)) or not math.isfinite(resets):
        resets = None
    return PlanWindow(
        agent=CLAUDE_AGENT, limit="claude", which=name, used_percent=float(used),
        window_minutes=CLAUDE_WINDOW_MINUTES.get(name), resets_at=float(resets) if resets is not None else None,
        plan_type=None, observed_at=ts, first_percent=float(used), first_at=ts,
    )


def claude_windows(reported: list[PlanWindow], block: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Claude's plan windows as shown: the provider's, and the computed block only in their absence.

    Args:
        reported: the fresh windows Claude Code's status line recorded (``ingest.claude_status``).
        block: the computed 5-hour block (``ClaudeBlocks.current``), or None.

    A reported five-hour window replaces the computed block (the provider's
    figure answers the same question exactly); without one, the block is
    shown, labelled ``computed``.
    """
    out = [w.to_json() for w in reported]
    if block is not None and not any(w.which == "five_hour" for w in reported):
        out.append(block)
    return out


def merge_windows(into: dict[str, PlanWindow], windows: dict[str, PlanWindow] | list[PlanWindow]) -> None:
    """Fold observations into ``into`` (keyed by agent, limit and window): the latest wins."""
    for w in windows.values() if isinstance(windows, dict) else windows:
        key = f"{w.agent}:{w.limit}:{w.which}"
        seen = into.get(key)
        into[key] = w if seen is None else seen.merged(w)


# -- Claude's 5-hour blocks, computed ------------------------------------------------


def block_tokens(u: Usage) -> int:
    """The tokens a block counts: ccusage's ``totalTokens`` (input + output + cache writes + cache reads).

    Args:
        u: one call's usage.
    """
    return u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens


class _Hour:
    __slots__ = ("calls", "cost", "first", "last", "tokens", "unpriced")

    def __init__(self, ts: float) -> None:
        self.first = self.last = ts
        self.calls = 0
        self.tokens = 0
        self.cost: Money = 0  # core.money units: exact, and cheap to add per call
        self.unpriced = 0


class ClaudeBlocks:
    """Calls folded by UTC hour; the 5-hour blocks follow from the hours exactly.

    A block starts on an hour boundary and lasts five whole hours, so every
    hour lies wholly inside or outside it; the gap rule needs only each
    hour's first and last call. Memory: one small record per hour with calls
    (``MAX_HOURS`` at most, the oldest dropped first).

    The live engine and ``report`` (through the Aggregator) feed the same
    events through ``add_calls``, so both show the same blocks.
    """

    MAX_HOURS: Final = 24 * 400

    def __init__(self) -> None:
        self._hours: dict[int, _Hour] = {}

    def _hour(self, hour: int, ts: float) -> _Hour:
        h = self._hours.get(hour)
        if h is None:
            if len(self._hours) >= self.MAX_HOURS:
                del self._hours[min(self._hours)]
            h = self._hours[hour] = _Hour(ts)
        return h

    def add(self, ts: float, tokens: int, cost_usd: str | None) -> None:
        """One call: its time, its token total and its cost (a decimal string, None when unknown)."""
        h = self._hours.get(int(ts // 3600)) or self._hour(int(ts // 3600), ts)
        if ts < h.first:
            h.first = ts
        elif ts > h.last:
            h.last = ts
        h.calls += 1
        h.tokens += tokens
        if cost_usd:
            try:
                h.cost += cost_units(cost_usd)
                return
            except ValueError:
                pass  # a cost that is not a decimal is unknown, never 0
        h.unpriced += 1

    def add_calls(self, events: Iterable[Event]) -> None:
        """Fold in the Claude Code calls among ``events`` (counted ones: duplicates already left out).

        Args:
            events: any events; only ``llm_call``s of agent ``claude-code`` with usage and a float ts count.
        """
        add = self.add
        for ev in events:
            if ev.agent == CLAUDE_AGENT and ev.kind == KIND_LLM_CALL:
                u, ts = ev.usage, ev.ts
                if u is not None and type(ts) is float:
                    add(ts, block_tokens(u), ev.cost_usd or None)

    def merge(self, other: ClaudeBlocks) -> None:
        """Add ``other``'s calls (a parallel report's part).

        Args:
            other: blocks over other events.
        """
        for hour, theirs in other._hours.items():
            h = self._hour(hour, theirs.first)
            h.first = min(h.first, theirs.first)
            h.last = max(h.last, theirs.last)
            h.calls += theirs.calls
            h.tokens += theirs.tokens
            h.cost += theirs.cost
            h.unpriced += theirs.unpriced

    @property
    def seen(self) -> bool:
        """Whether any call was folded in (a Claude Code log is being read)."""
        return bool(self._hours)

    def blocks(self) -> list[dict[str, Any]]:
        """Every block, oldest first: start, end, calls, tokens, cost (Decimal), first and last call."""
        out: list[dict[str, Any]] = []
        cur: dict[str, Any] | None = None
        for hour in sorted(self._hours):
            h = self._hours[hour]
            if cur is None or h.first >= cur["end"] or h.first - cur["last_call"] > BLOCK_SECONDS:
                start = hour * 3600.0
                cur = {"start": start, "end": start + BLOCK_SECONDS, "calls": 0, "tokens": 0,
                       "cost": 0, "unpriced": 0, "first_call": h.first, "last_call": h.last}
                out.append(cur)
            cur["calls"] += h.calls
            cur["tokens"] += h.tokens
            cur["cost"] += h.cost
            cur["unpriced"] += h.unpriced
            cur["last_call"] = max(cur["last_call"], h.last)
        for b in out:
            b["cost"] = units_to_usd(b["cost"])
        return out

    def current(self, now: float) -> dict[str, Any] | None:
        """The block ``now`` lies in, as ``--json`` shows it (None when there is none)."""
        latest = self.latest(now)
        return latest if latest is not None and latest["active"] else None

    def latest(self, now: float) -> dict[str, Any] | None:
        """The last block as ``--json`` shows it, in progress at ``now`` or not (``active``); None without calls."""
        found = self.blocks()
        return block_json(found[-1], now) if found else None


def block_json(b: dict[str, Any], now: float) -> dict[str, Any]:
    """One block (of ``ClaudeBlocks.blocks``) as ``--json`` shows it; burn and projection while active.

    Args:
        b: the block.
        now: wall time (the block is active when ``now`` lies in it).
    """
    active = b["start"] <= now < b["end"] and now - b["last_call"] <= BLOCK_SECONDS
    out: dict[str, Any] = {
        "source": "computed",
        "agent": CLAUDE_AGENT,
        "limit": "unknown: the plan's limit is not recorded on disk",
        "window": "5h-block",
        "window_minutes": BLOCK_SECONDS // 60,
        "used_percent": None,
        "resets_at": b["end"],
        "started_at": b["start"],
        "first_call": b["first_call"],
        "last_call": b["last_call"],
        "active": active,
        "calls": b["calls"],
        "tokens": b["tokens"],
        "cost_usd": usd_text(b["cost"]),
        "unpriced": b["unpriced"],
        "burn_usd_per_hour": None,
        "projected_usd": None,
        "full_at": None,
    }
    if active:
        elapsed = max(now - b["first_call"], 60.0)  # ccusage's burn: from the block's first call
        per_hour = b["cost"] * Decimal(3600) / Decimal(repr(elapsed))
        projected = b["cost"] + per_hour * Decimal(repr(max(b["end"] - now, 0.0))) / Decimal(3600)
        out["burn_usd_per_hour"] = str(per_hour.quantize(Decimal("0.000001")))
        out["projected_usd"] = str(projected.quantize(Decimal("0.000001")))
    return out


# Window names as a status line or a panel has room for them.
SHORT_NAMES: Final = {"five_hour": "5h", "seven_day": "7d", "5h-block": "5h block"}


def span_text(seconds: float) -> str:
    """``2h10m`` / ``3d4h`` / ``45m``: a duration as a status line or a panel has room for.

    Args:
        seconds: the duration (negative counts as 0).
    """
    minutes = max(int(seconds // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{mins:02d}m" if hours else f"{mins}m"


def window_summary(w: Mapping[str, Any], now: float) -> str:
    """One plan window (a ``plan_windows`` entry of a Snapshot) in a line of plain text.

    Reported: ``codex primary 42% ↻2h09m full in 1h10m``; computed (Claude's
    5-hour block, whose limit is unknown): ``claude-code 5h block $1.37 ↻2h09m
    (computed)``. Names from a log go through the one sanitiser.

    Args:
        w: the window, as ``PlanWindow.to_json`` or ``block_json`` give it.
        now: wall time (for the reset and full-at countdowns).
    """
    which = str(w.get("window") or "")
    parts = [clean(str(w.get("agent") or "")), SHORT_NAMES.get(which, clean(which))]
    used = w.get("used_percent")
    if isinstance(used, (int, float)) and not isinstance(used, bool) and math.isfinite(used):
        parts.append(f"{used:.0f}%")
    elif w.get("cost_usd") is not None:
        parts.append(f"${Decimal(str(w['cost_usd'])).quantize(Decimal('0.01'))}")
    resets = w.get("resets_at")
    if isinstance(resets, (int, float)) and math.isfinite(resets) and resets > now:
        parts.append(f"↻{span_text(resets - now)}")
    full = w.get("full_at")
    if isinstance(full, (int, float)) and math.isfinite(full) and full > now:
        parts.append(f"full in {span_text(full - now)}")
    if w.get("source") == "computed":
        parts.append("(computed)")
    return " ".join(p for p in parts if p)
