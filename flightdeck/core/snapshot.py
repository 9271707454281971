"""What the aggregates look like from outside: immutable snapshots.

The aggregator (``core.aggregate``) produces a ``Snapshot``; the cockpit renders
it, ``tail --json`` and ``report --json`` print ``Snapshot.to_json()``, and the
recorder's ``stats()`` returns a ``WindowFigures``. Nothing here knows how the
figures were computed, and nothing here imports Textual.

Money is ``Decimal`` throughout; JSON gets decimal strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flightdeck.core.events import Event


def usd_text(amount: Decimal) -> str:
    """A USD amount as a plain decimal string, never in exponent form (``str`` writes 1E-12)."""
    return format(amount, "f")


WINDOW_SECONDS: tuple[int, ...] = (60, 300, 900, 3600)
WINDOW_NAMES: dict[int, str] = {60: "1m", 300: "5m", 900: "15m", 3600: "60m"}
BREAKDOWN_DIMS: tuple[str, ...] = ("model", "provider", "route", "agent", "run", "name")
# Report only: UTC calendar periods of the event's own ts (weeks start on Monday,
# named by that day), and the session (the run), as ccusage's tables show them.
PERIOD_DIMS: tuple[str, ...] = ("day", "week", "month")
REPORT_DIMS: tuple[str, ...] = (*BREAKDOWN_DIMS, *PERIOD_DIMS, "session")


@dataclass(frozen=True, slots=True)
class Quantiles:
    """Quantiles of one latency distribution, in ms. None when no samples."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "mean": self.mean, "count": self.count}


@dataclass(frozen=True, slots=True)
class Tokens:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one slice of calls: the run, a window, or one group.

    ``stages`` has a Quantiles for each of pre, ttft, gen, post, total.
    ``cache_hit_rate`` is token weighted and None when no prompt tokens.
    ``cache_saved_usd`` is what the cache reads would have cost at the plain
    input rate, less what they did cost.
    """

    calls: int = 0
    errors: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    tokens: Tokens = field(default_factory=Tokens)
    cache_hit_rate: float | None = None
    cache_saved_usd: Decimal = Decimal(0)
    stages: dict[str, Quantiles] = field(default_factory=dict)
    mean_prompt_tokens: float | None = None

    @property
    def ttft(self) -> Quantiles:
        return self.stages.get("ttft", Quantiles())

    def to_json(self) -> dict[str, Any]:
        stages = {
            name: {"p50": q.p50, "p90": q.p90, "p99": q.p99, "mean": q.mean, "count": q.count}
            for name, q in self.stages.items()
        }
        ttft = self.ttft
        return {
            "events": self.calls,
            "errors": self.errors,
            "cost_usd": usd_text(self.cost_usd),
            "unpriced": self.unpriced,
            "tokens": self.tokens.to_json(),
            "cache_write_1h_tokens": self.tokens.cache_write_1h_tokens,
            "cache_hit_rate": self.cache_hit_rate,
            "cache_saved_usd": usd_text(self.cache_saved_usd),
            "mean_prompt_tokens": self.mean_prompt_tokens,
            "ttft_ms": {"p50": ttft.p50, "p90": ttft.p90, "p99": ttft.p99, "count": ttft.count},
            "stages_ms": stages,
        }


@dataclass(frozen=True, slots=True)
class WindowFigures(Figures):
    """Figures over the last ``seconds`` of event time, with the burn rate."""

    seconds: int = 0
    burn_usd_per_hour: Decimal = Decimal(0)

    def to_json(self) -> dict[str, Any]:
        out = Figures.to_json(self)
        out["seconds"] = self.seconds
        out["burn_usd_per_hour"] = usd_text(self.burn_usd_per_hour)
        return out


@dataclass(frozen=True, slots=True)
class Group:
    """One row of a breakdown: the figures of the calls with ``dim == key``.

    ``unpriced`` > 0 marks a model with no known rate.
    """

    dim: str
    key: str
    figures: Figures
    models: tuple[str, ...] = ()  # period and session rows: the models used, sorted
    last_activity: str | None = None  # session rows: the UTC day of the last call (YYYY-MM-DD)

    def to_json(self) -> dict[str, Any]:
        """The row as ``report --json`` prints it: ``key``, the figures, and models where known."""
        out: dict[str, Any] = {"key": self.key, **self.figures.to_json()}
        if self.dim in PERIOD_DIMS or self.dim == "session":
            out["models"] = list(self.models)
        if self.dim == "session":
            out["last_activity"] = self.last_activity
        return out


@dataclass(frozen=True, slots=True)
class MinutePoint:
    """One minute of event time, for the charts. ``start`` is epoch seconds."""

    start: float
    calls: int = 0
    cost_usd: Decimal = Decimal(0)
    cache_hit_rate: float | None = None
    ttft_p50: float | None = None
    ttft_p90: float | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class CallRow:
    """One recent llm_call, for the events panel. Strings are raw log text."""

    ts: float
    run: str
    agent: str | None
    name: str | None
    model: str
    provider: str
    route: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: Decimal | None
    cost_status: str | None
    total_ms: float | None
    error: str | None
    # The rest is for the call detail screen (the cockpit's engine fills it;
    # a row built from the run totals alone leaves the defaults).
    id: str | None = None
    step: int | None = None
    stream: bool | None = None
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    pre_ms: float | None = None
    ttft_ms: float | None = None
    gen_ms: float | None = None
    post_ms: float | None = None
    prompt_hash: str | None = None
    prompt_hash_seen: int = 0  # calls with this prompt_hash the monitor has counted (this one included)
    tags: tuple[tuple[str, str], ...] = ()
    service_tier: str | None = None
    price_source: str | None = None
    speed: str | None = None
    message: str | None = None  # why the cost is unknown, or what else the recorder noted


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A guardrail firing: from an agent's ``alert`` event or the monitor's own rules."""

    ts: float
    rule: str
    metric: str | None
    value: float | None
    threshold: float | None
    action: str | None
    source: str  # "agent" or "monitor"
    run: str | None = None
    agent: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ControlRow:
    """A command sent by the monitor and, once it arrives, the agent's ack."""

    id: str
    cmd: str
    origin: str
    sent_at: float
    reason: str | None = None
    acked_at: float | None = None  # wall time the ack was ingested
    ack_ms: float | None = None  # acked_at - sent_at, in ms
    ack_message: str | None = None  # why the agent could not apply it, if so


@dataclass(frozen=True, slots=True)
class AgentState:
    """The control state an agent last reported in a signal_ack."""

    run: str
    agent: str | None
    paused: bool = False
    models: dict[str, str] = field(default_factory=dict)  # asked-for -> now-used


# The states an agent can be in, as the header shows them.
AGENT_WAITING = "waiting"  # a named file that does not exist yet
AGENT_RUNNING = "running"
AGENT_PAUSED = "paused"
AGENT_STALLED = "stalled"  # no event for a while, and no run_end
AGENT_FINISHED = "finished"  # wrote run_end
AGENT_DISCONNECTED = "disconnected"  # streamed over the socket, and its connection is gone


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent's live state, as the monitor sees it (independent of any filter).

    ``since`` is the event time the state began (the pause's ack, the last
    event before a stall, the run_end). ``paused_by`` is the pausing
    command's origin (``key``, ``rule:loop``, ``agent``, ``shell``) when
    known. ``watch_only`` marks an agent that cannot be controlled (an OTLP
    sender, an agent CLI's own log); ``source`` says where it was read.
    """

    run: str
    agent: str | None
    status: str = AGENT_RUNNING
    since: float | None = None
    last_ts: float | None = None
    paused_by: str | None = None
    watch_only: bool = False
    source: str = ""


@dataclass(frozen=True, slots=True)
class StageWindow:
    """Mean stage durations per step name over the last ``seconds`` (event time)."""

    seconds: int
    groups: tuple[Group, ...] = ()  # dim "name", by mean total x calls desc


@dataclass(frozen=True, slots=True)
class Projection:
    """Spend projected to the end of the hour and day (UTC) at one stated rate.

    ``basis`` names that rate (e.g. ``"15m burn"``), so a panel can say it.
    """

    hour_end_usd: Decimal = Decimal(0)
    day_end_usd: Decimal = Decimal(0)
    basis: str = ""


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend limit over a rolling window (``--budget 2.00/10m`` or a spend rule)."""

    limit_usd: Decimal
    seconds: int
    spent_usd: Decimal = Decimal(0)

    @property
    def fraction(self) -> float:
        return float(self.spent_usd / self.limit_usd) if self.limit_usd > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What is being watched and how far ingest has got. Filled by the ingest engine."""

    description: str = ""  # e.g. "run.jsonl" or "socket /run/user/1000/fd.sock"
    files: int = 0
    connections: int = 0
    backfilling: bool = False
    backfill_done_bytes: int = 0
    backfill_total_bytes: int = 0
    last_event_wall: float | None = None  # wall time the last event was ingested
    events_per_second: float = 0.0
    refused_peers: int = 0
    notices: tuple[str, ...] = ()  # e.g. "refused connection from uid 1001"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the monitor shows, at one instant.

    ``now`` is the end of the rolling windows in event time (the wall clock
    when live, the last event's time for a finished log).
    """

    now: float
    events: int = 0  # llm_call events counted (duplicates excluded)
    rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    # Lines accepted but not read whole (e.g. a Claude Code usage key flightdeck does
    # not know), by reason: the line counts, what it said beyond that is named here.
    notes: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    unknown_kinds: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    total: Figures = field(default_factory=Figures)
    windows: dict[str, WindowFigures] = field(default_factory=dict)  # "1m","5m","15m","60m"
    breakdowns: dict[str, tuple[Group, ...]] = field(default_factory=dict)  # dim -> rows, by cost desc
    series: tuple[MinutePoint, ...] = ()  # the last 60 minutes, oldest first, no gaps
    projection: Projection = field(default_factory=Projection)
    recent: tuple[CallRow, ...] = ()  # newest last
    alerts: tuple[AlertRow, ...] = ()  # newest last
    commands: tuple[ControlRow, ...] = ()  # newest last
    agents: tuple[AgentState, ...] = ()
    recent_rejects: tuple[tuple[float, str, str], ...] = ()  # (wall ts, reason, detail), newest last
    budget: Budget | None = None
    dropped: int = 0  # telemetry lost by recorders (socket drops they reported)
    source: SourceStatus = field(default_factory=SourceStatus)
    runs_started: int = 0  # run_start events counted
    runs_ended: int = 0  # run_end events counted
    # Subscription windows (core.plan_windows): the provider's reported ones, and
    # Claude's computed 5-hour block; JSON-ready dicts, each saying which it is.
    plan_windows: tuple[dict[str, Any], ...] = ()
    # Report only: every Claude 5-hour block of the calls read, oldest first
    # (``report --by block``; core.plan_windows.block_json's shape).
    blocks: tuple[dict[str, Any], ...] = ()
    agent_rows: tuple[AgentRow, ...] = ()  # each agent's state (the engine fills it)
    waiting_for: tuple[str, ...] = ()  # named files that do not exist yet
    stage_windows: dict[int, StageWindow] = field(default_factory=dict)  # seconds -> per-step means
    fine_series: tuple[MinutePoint, ...] = ()  # short bins for a young run (start = bin start)
    fine_step: int = 0  # seconds per fine_series bin; 0: none
    future_events: int = 0  # calls dated beyond the clock (+ skew): in the totals, never in a window
    folded_groups: dict[str, int] = field(default_factory=dict)  # dim -> keys folded into "(other)" (live cap)

    def to_json(self) -> dict[str, Any]:
        """The SPEC section 3 object: report's keys, plus windows and breakdowns."""
        total = self.total.to_json()
        out: dict[str, Any] = {
            "events": self.events,
            "rejected": self.rejected,
            "rejected_reasons": dict(self.rejected_reasons),
            "notes": dict(self.notes),
            "duplicates": self.duplicates,
            "unknown_kinds": self.unknown_kinds,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "now": self.now,
        }
        total.pop("events")
        out.update(total)
        out["windows"] = {name: w.to_json() for name, w in self.windows.items()}
        out["breakdowns"] = {
            dim: [g.to_json() for g in rows]
            for dim, rows in self.breakdowns.items()
        }
        out["projection"] = {
            "hour_end_usd": usd_text(self.projection.hour_end_usd),
            "day_end_usd": usd_text(self.projection.day_end_usd),
            "basis": self.projection.basis,
        }
        if self.budget is not None:
            out["budget"] = {
                "limit_usd": usd_text(self.budget.limit_usd),
                "seconds": self.budget.seconds,
                "spent_usd": usd_text(self.budget.spent_usd),
            }
        out["dropped"] = self.dropped
        out["runs_started"] = self.runs_started
        out["runs_ended"] = self.runs_ended
        out["plan_windows"] = [dict(w) for w in self.plan_windows]
        out["future_events"] = self.future_events
        out["folded_groups"] = dict(self.folded_groups)
        out["agents"] = [
            {"run": a.run, "agent": a.agent, "paused": a.paused, "models": a.models} for a in self.agents
        ]
        out["commands"] = [
            {"id": c.id, "cmd": c.cmd, "origin": c.origin, "sent_at": c.sent_at, "ack_ms": c.ack_ms}
            for c in self.commands
        ]
        out["alerts"] = [
            {"ts": a.ts, "rule": a.rule, "metric": a.metric, "value": a.value,
             "threshold": a.threshold, "action": a.action, "source": a.source}
            for a in self.alerts
        ]
        return out


def finite_ms(value: object) -> float | None:
    """A stage time as shown: a finite number, else None (a hostile line cannot put NaN on screen)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def call_row(ev: Event, cost: Decimal | None, hash_seen: int = 0) -> CallRow:
    """Everything the calls table and the call detail screen show about one llm_call."""
    u = ev.usage
    lat = ev.latency_ms
    tags = tuple(sorted((str(k), str(v)) for k, v in ev.tags.items())) if isinstance(ev.tags, dict) else ()
    return CallRow(
        ts=ev.ts if isinstance(ev.ts, float) else 0.0,
        run=ev.run,
        agent=ev.agent,
        name=ev.name,
        model=ev.model or "",
        provider=ev.provider or "",
        route=ev.route,
        input_tokens=u.input_tokens if u else 0,
        output_tokens=u.output_tokens if u else 0,
        cache_read_tokens=u.cache_read_tokens if u else 0,
        cost_usd=cost,
        cost_status=ev.cost_status,
        total_ms=finite_ms(lat.total) if lat else None,
        error=ev.error,
        id=ev.id,
        step=ev.step,
        stream=ev.stream,
        cache_write_tokens=u.cache_write_tokens if u else 0,
        cache_write_1h_tokens=u.cache_write_1h_tokens if u else 0,
        reasoning_tokens=u.reasoning_tokens if u else 0,
        pre_ms=finite_ms(lat.pre) if lat else None,
        ttft_ms=finite_ms(lat.ttft) if lat else None,
        gen_ms=finite_ms(lat.gen) if lat else None,
        post_ms=finite_ms(lat.post) if lat else None,
        prompt_hash=ev.prompt_hash,
        prompt_hash_seen=hash_seen,
        tags=tags,
        service_tier=ev.service_tier,
        price_source=ev.price_source,
        speed=ev.speed,
        message=ev.message,
    )
