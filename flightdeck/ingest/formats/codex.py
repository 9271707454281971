"""Codex CLI rollouts: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`` and ``archived_sessions/``.

Sources (field names as Codex writes them):

- openai/codex ``codex-rs/protocol/src/protocol.rs``: a rollout line is
  ``{"timestamp", "type", "payload"}`` with ``type`` one of ``session_meta``,
  ``turn_context``, ``event_msg``, ``response_item``, ``compacted``.
  ``TokenUsage`` is ``{input_tokens, cached_input_tokens, output_tokens,
  reasoning_output_tokens, total_tokens}`` (input includes the cached part,
  output the reasoning); ``TokenUsageInfo`` is ``{total_token_usage,
  last_token_usage, model_context_window}``; ``RateLimitSnapshot`` is
  ``{limit_id, limit_name, primary, secondary, credits, plan_type}`` and a
  ``RateLimitWindow`` ``{used_percent, window_minutes, resets_at}``
  (``resets_at`` in epoch seconds; older versions wrote
  ``resets_in_seconds``).
- ccusage ``apps/ccusage/src/adapter/codex/parser.ts``: the model comes from
  ``turn_context.payload.model`` (or ``info.model``); a call's usage is
  ``last_token_usage``, else the difference of two totals.

Rules:

- Codex writes a ``token_count`` event again on every rate-limit update,
  with the same totals: a call is counted only when
  ``total_token_usage.total_tokens`` advanced. Its id is the session and
  that cumulative total, so a copy of the same rollout counts once.
- A forked rollout (``session_meta.payload.forked_from_id``) or a
  sub-agent's (``payload.source.subagent``) opens with its parent's history
  copied in, every line re-stamped to the fork instant; counting it again
  multiplied usage ~1.85x on real data. The ``token_count`` lines stamped
  within ``REPLAY_SECONDS`` of the rollout's own ``session_meta`` are that
  copy and are skipped (counted under ``codex skipped: fork replay``); the
  first later one ends the replay for good.
- Tokens go through ``normalize_usage("openai", ..., api="responses")``, the
  same rule as the OpenAI Responses API (cached input is a part of input).
- ``rate_limits`` windows are kept (``plan_windows``) for the plan-window
  figures; they are the provider's own numbers.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from flightdeck.core.events import KIND_LLM_CALL, Event, Rejected, parse_ts
from flightdeck.core.plan_windows import PlanWindow, merge_windows, window_from_codex
from flightdeck.ingest.formats.common import ParseResult, priced

CODEX_AGENT: Final = "codex"
CODEX_TYPES: Final = frozenset({"session_meta", "turn_context", "event_msg", "response_item", "compacted"})
SKIPPED: Final = "codex skipped: "
REPLAY_SECONDS: Final = 2.0


class _Line(msgspec.Struct):
    timestamp: str | None = None
    type: str | None = None
    payload: dict[str, Any] | None = None


_decoder = msgspec.json.Decoder(_Line)


def _count(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _as_responses_usage(u: dict[str, Any]) -> dict[str, Any]:
    """A Codex ``TokenUsage`` in the OpenAI Responses API's own shape (same meaning)."""
    return {
        "input_tokens": _count(u, "input_tokens"),
        "input_tokens_details": {"cached_tokens": _count(u, "cached_input_tokens")},
        "output_tokens": _count(u, "output_tokens"),
        "output_tokens_details": {"reasoning_tokens": _count(u, "reasoning_output_tokens")},
    }


def _total(u: Any) -> int:
    """``total_tokens``, or its parts when an old version left it out."""
    total = _count(u, "total_tokens")
    return total or _count(u, "input_tokens") + _count(u, "output_tokens")


class Codex:
    """One rollout file (state per file: the model, the last total, the fork replay)."""

    name = "codex"

    def __init__(self) -> None:
        self.session: str | None = None
        self.project: str | None = None
        self.provider = "openai"
        self.model: str | None = None
        self._meta_ts: float | None = None
        self._fork = False
        self._replaying = False
        self._last_total: dict[str, Any] | None = None
        self.plan_windows: dict[str, PlanWindow] = {}

    def parse(self, line: bytes) -> ParseResult:
        try:
            row = _decoder.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return Rejected("bad codex line", str(exc)[:200])
        payload = row.payload or {}
        kind = row.type
        if kind == "session_meta":
            self._meta(row, payload)
            return []
        if kind == "turn_context":
            model = payload.get("model")
            if isinstance(model, str) and model:
                self.model = model
            cwd = payload.get("cwd")
            if isinstance(cwd, str) and cwd and self.project is None:
                self.project = cwd
            return []
        if kind != "event_msg" or payload.get("type") != "token_count":
            return []
        if row.timestamp is None:
            return Rejected("missing timestamp", "codex token_count without timestamp")
        try:
            ts = parse_ts(row.timestamp)
        except (ValueError, OverflowError):
            return Rejected("bad timestamp", f"timestamp {row.timestamp!r}")
        self._rate_limits(payload.get("rate_limits"), ts)
        info = payload.get("info")
        if not isinstance(info, dict):
            return []  # a rate-limit update only
        total = info.get("total_token_usage")
        last = info.get("last_token_usage")
        if not isinstance(total, dict):
            return Rejected("bad codex usage", "token_count.info without total_token_usage")
        previous = self._last_total
        if previous is not None and _total(total) <= _total(previous):
            return []  # the same count re-written (a rate-limit update): not a new call
        self._last_total = total
        if self._replaying:
            if self._meta_ts is not None and ts - self._meta_ts <= REPLAY_SECONDS:
                return Rejected(SKIPPED + "fork replay", "a forked or sub-agent rollout's copy of its parent")
            self._replaying = False
        if isinstance(last, dict):
            usage_raw = last
        else:  # no per-call figure: the difference of the totals
            usage_raw = {k: _count(total, k) - _count(previous, k) for k in
                         ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")}
        from flightdeck.core.normalize import normalize_usage

        try:
            usage = normalize_usage("openai", _as_responses_usage(usage_raw), api="responses")
        except ValueError as exc:
            return Rejected("bad codex usage", str(exc))
        model = self.model
        info_model = info.get("model")
        if isinstance(info_model, str) and info_model:
            model = info_model
        model = model or "unknown"
        cost, status = priced(self.provider, model, usage, ts, route="direct")
        session = self.session or "codex"
        return [Event(
            v=1,
            ts=ts,
            kind=KIND_LLM_CALL,
            id=f"codex:{session}:{_total(total)}",
            run=session,
            agent=CODEX_AGENT,
            provider=self.provider,
            route="direct",
            model=model,
            usage=usage,
            cost_usd=cost,
            cost_status=status,
            tags={"project": self.project} if self.project else None,
        )]

    def _meta(self, row: _Line, payload: dict[str, Any]) -> None:
        if self.session is not None:
            return  # an ancestor's meta, copied into a fork: the rollout is the first one's
        sid = payload.get("id") or payload.get("session_id")
        self.session = str(sid) if sid else None
        cwd = payload.get("cwd")
        if isinstance(cwd, str) and cwd:
            self.project = cwd
        provider = payload.get("model_provider")
        if isinstance(provider, str) and provider:
            self.provider = provider.lower()
        source = payload.get("source")
        self._fork = bool(payload.get("forked_from_id")) or (isinstance(source, dict) and "subagent" in source)
        self._replaying = self._fork
        stamp = row.timestamp or payload.get("timestamp")
        if isinstance(stamp, str):
            try:
                self._meta_ts = parse_ts(stamp)
            except (ValueError, OverflowError):
                self._meta_ts = None

    def _rate_limits(self, limits: Any, ts: float) -> None:
        if not isinstance(limits, dict):
            return
        plan = limits.get("plan_type")
        for which in ("primary", "secondary"):
            window = window_from_codex(limits.get(which), which, ts, plan if isinstance(plan, str) else None,
                                       limit_id=limits.get("limit_id"))
            if window is not None:
                merge_windows(self.plan_windows, [window])


def windows_in(paths: list[str]) -> dict[str, PlanWindow]:
    """The rate-limit windows the Codex rollouts among ``paths`` reported (for ``report``). Never raises.

    Only the ``token_count`` lines that carry ``rate_limits`` are decoded.
    """
    found: dict[str, PlanWindow] = {}
    for path in paths:
        reader = Codex()
        try:
            with open(path, "rb") as f:
                for line in f:
                    if b'"rate_limits"' in line and b'"token_count"' in line:
                        reader.parse(line.rstrip(b"\n"))
        except OSError:
            continue
        merge_windows(found, reader.plan_windows)
    return found
