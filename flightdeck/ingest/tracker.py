"""What the cockpit needs beyond the figures: agent states, command round trips, call details.

The engine's aggregator is rebuilt whenever the ``/`` filter changes and the
history is read again. Anything measured against the wall clock (how long an
agent took to acknowledge, how many events arrive per second, since when an
agent is paused) would then be measured again, wrongly: an ack re-read a
minute later looks like an ack that took a minute. So that bookkeeping lives
here, fed once with every event as it first arrives and never re-read.

The per-call detail rows, the per-step stage means over a window and the
short-bin chart series do follow the filter: the engine clears them with
``reset_view`` and feeds them again from the re-read history.

No Textual here, and nothing raises for odd events: a field that is missing
or of the wrong type is left out of what is shown.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from flightdeck.core.events import (
    KIND_ALERT,
    KIND_LLM_CALL,
    KIND_RUN_END,
    KIND_RUN_START,
    KIND_SIGNAL_ACK,
    Command,
    Event,
)
from flightdeck.core.sketch import nearest_rank_value
from flightdeck.core.snapshot import (
    AGENT_DISCONNECTED,
    AGENT_FINISHED,
    AGENT_PAUSED,
    AGENT_RUNNING,
    AGENT_STALLED,
    AgentRow,
    CallRow,
    ControlRow,
    Figures,
    Group,
    MinutePoint,
    Quantiles,
    Snapshot,
    StageWindow,
    call_row,
    finite_ms,
)
from flightdeck.ingest.rate import EventRate

STALL_SECONDS = 30.0  # no event for this long (and no run_end): stalled
RATE_SECONDS = 5.0  # events_per_second is averaged over this long
MAX_COMMANDS = 200
MAX_AGENTS = 1000
MAX_HASHES = 100_000  # prompt hashes counted; the oldest are forgotten beyond this
RECENT_CALLS = 1000  # rows the calls table can scroll through
STAGE_WINDOWS = (60, 300, 900)
FINE_KEEP_SECONDS = 1800  # per-second chart bins kept: a run older than this charts by the minute
FINE_STEPS = (1, 2, 5, 10, 15, 30)  # chart bin widths, the smallest giving at most FINE_POINTS bins
FINE_POINTS = 120
TTFT_SAMPLES_PER_SECOND = 64  # ttft samples kept per second bin, for its p50/p90
STAGES = ("pre", "ttft", "gen", "post", "total")


@dataclass(slots=True)
class _Agent:
    run: str
    agent: str | None
    source: str
    watch_only: bool
    socket: bool
    last_ts: float
    ended_ts: float | None = None
    paused: bool = False
    paused_by: str | None = None
    paused_since: float | None = None
    last_pause_alert: str | None = None  # the rule of this agent's last alert that paused it


@dataclass(slots=True)
class _SecondBin:
    calls: int = 0
    cost: Decimal = Decimal(0)
    cache_read: int = 0
    prompt: int = 0
    ttft: list[float] = field(default_factory=list)


def _decimal(text: object) -> Decimal | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


class LiveTracker:
    """Filter-independent live bookkeeping for one engine. Not thread-safe: the engine's lock guards it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._commands: OrderedDict[str, ControlRow] = OrderedDict()
        self._origins: dict[str, str] = {}  # command id -> origin, for acks of commands we sent
        self._agents: dict[tuple[str, str | None], _Agent] = {}
        self._hashes: dict[str, int] = {}
        # Live arrivals in 0.1 s buckets: a bounded deque of batches undercounted at 20k ev/s.
        self._rate = EventRate(RATE_SECONDS)
        # Who sent a command this monitor did not send (`flightdeck pause`, another monitor):
        # given the agent's source file and the command id, its origin, or None.
        self.origin_lookup: Callable[[str, str], str | None] | None = None
        self.predicate: Callable[[Event], bool] | None = None
        self.reset_view(None)

    # -- what follows the filter ------------------------------------------------

    def reset_view(self, predicate: Callable[[Event], bool] | None) -> None:
        """A new filter: forget the filtered rows; the engine feeds the history again."""
        self.predicate = predicate
        self._recent: deque[Event] = deque(maxlen=RECENT_CALLS)
        self._stage_bins: dict[int, dict[str, list[float]]] = {}
        self._fine: dict[int, _SecondBin] = {}

    def view(self, events: Iterable[Event]) -> None:
        """Feed the rows that follow the filter: the calls table, stage windows, fine charts."""
        predicate = self.predicate
        # Only the last quarter hour feeds the windows and charts: a long history
        # read at start only passes through the calls table's bounded deque.
        horizon = self.clock() - max(max(STAGE_WINDOWS), FINE_KEEP_SECONDS)
        recent = self._recent
        for ev in events:
            if ev.kind == KIND_LLM_CALL and (predicate is None or predicate(ev)):
                recent.append(ev)
                ts = ev.ts
                if isinstance(ts, float) and ts > horizon:
                    self._view_call(ev, ts)

    def _view_call(self, ev: Event, ts: float) -> None:
        second = int(ts)
        lat = ev.latency_ms
        if lat is not None:
            bins = self._stage_bins.setdefault(second, {})
            sums = bins.setdefault(ev.name or "", [0.0] * (2 * len(STAGES) + 1))
            sums[0] += 1
            for i, stage in enumerate(STAGES):
                value = finite_ms(getattr(lat, stage))
                if value is not None:
                    sums[1 + 2 * i] += value
                    sums[2 + 2 * i] += 1
        fine = self._fine.get(second)
        if fine is None:
            fine = self._fine[second] = _SecondBin()
        fine.calls += 1
        cost = _decimal(ev.cost_usd)
        if cost is not None:
            fine.cost += cost
        u = ev.usage
        if u is not None:
            fine.cache_read += u.cache_read_tokens
            fine.prompt += u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
        ttft = finite_ms(lat.ttft) if lat is not None else None
        if ttft is not None and len(fine.ttft) < TTFT_SAMPLES_PER_SECOND:
            fine.ttft.append(ttft)

    # -- what does not -----------------------------------------------------------

    def sent(self, command: Command) -> None:
        """A command this monitor sent (before it goes out, so a fast ack finds it)."""
        self._commands[command.id] = ControlRow(id=command.id, cmd=command.cmd, origin=command.origin,
                                                sent_at=command.ts, reason=command.reason)
        self._origins[command.id] = command.origin
        while len(self._commands) > MAX_COMMANDS:
            old, _ = self._commands.popitem(last=False)
            self._origins.pop(old, None)

    def observe(self, events: Iterable[Event], *,
                sources: dict[tuple[str, str | None], tuple[str, bool]] | None = None,
                socket: bool = False, live: bool = True) -> None:
        """Every event the first time it is read (the caller passes each once). ``live`` is False for history.

        Acks read from history are not round trips this monitor can time, and
        history does not count towards the arrival rate. ``sources`` maps an
        agent to the file it was read from and whether it is watch-only.
        """
        n = 0
        wall = self.clock()
        agents = self._agents
        hashes = self._hashes
        last_key: tuple[str, str | None] | None = None
        agent: _Agent | None = None
        # The hot path (a call from the same agent as the line before) is a few
        # attribute reads: a monitor backfills millions of these.
        for ev in events:
            n += 1
            key = (ev.run, ev.agent)
            if key != last_key:
                last_key = key
                agent = agents.get(key)
                if agent is None:
                    agent = self._new_agent(ev, sources, socket, wall)
                elif socket:
                    agent.socket = True
            if agent is None:
                continue  # past MAX_AGENTS
            ts = ev.ts if type(ev.ts) is float else wall
            if ts > agent.last_ts:
                agent.last_ts = ts
            if ev.kind == KIND_LLM_CALL:
                digest = ev.prompt_hash
                if digest:
                    hashes[digest] = hashes.get(digest, 0) + 1
            else:
                self._other_event(agent, ev, ts, live)
        if len(hashes) > MAX_HASHES:
            # Forget the tenth first seen longest ago (a dict keeps insertion order).
            for old in list(itertools.islice(hashes, MAX_HASHES // 10)):
                del hashes[old]
        if live and n:
            self._rate.add(n)

    def _new_agent(self, ev: Event, sources: dict[tuple[str, str | None], tuple[str, bool]] | None,
                   socket: bool, wall: float) -> _Agent | None:
        if len(self._agents) >= MAX_AGENTS:
            return None
        where = sources.get((ev.run, ev.agent)) if sources else None
        source, watch_only = where if where else ("socket" if socket else "", False)
        ts = ev.ts if type(ev.ts) is float else wall
        agent = self._agents[(ev.run, ev.agent)] = _Agent(run=ev.run, agent=ev.agent, source=source,
                                                          watch_only=watch_only, socket=socket, last_ts=ts)
        return agent

    def _other_event(self, agent: _Agent, ev: Event, ts: float, live: bool) -> None:
        kind = ev.kind
        if kind == KIND_RUN_END:
            agent.ended_ts = ts
        elif kind == KIND_RUN_START and agent.ended_ts is not None and ts > agent.ended_ts:
            agent.ended_ts = None  # the same run started again
        elif kind == KIND_ALERT and ev.action == "pause":
            agent.last_pause_alert = ev.rule
        elif kind == KIND_SIGNAL_ACK:
            self._ack(agent, ev, ts, live)

    def _ack(self, agent: _Agent, ev: Event, ts: float, live: bool) -> None:
        ref = ev.ref or ""
        row = self._commands.get(ref)
        if row is not None and row.acked_at is None and live:
            acked_at = self.clock()
            self._commands[ref] = replace(row, acked_at=acked_at, ack_ms=max(acked_at - row.sent_at, 0.0) * 1000,
                                          ack_message=ev.message)
        state = ev.state if isinstance(ev.state, dict) else {}
        paused = state.get("paused")
        if not isinstance(paused, bool):
            return
        if paused and not agent.paused:
            agent.paused_since = ts
            agent.paused_by = self._pauser(agent, ref)
        agent.paused = paused
        if not paused:
            agent.paused_by = agent.paused_since = None

    def _pauser(self, agent: _Agent, ref: str) -> str:
        """Who paused: our command's origin, the agent's own rule, or someone else's command."""
        if ref in self._origins:
            return self._origins[ref]
        if ref.startswith("l-"):  # the recorder's own commands: its guardrails, or rec.pause()
            return f"rule:{agent.last_pause_alert}" if agent.last_pause_alert else "agent"
        lookup = self.origin_lookup
        if lookup is not None and agent.source:
            try:
                found = lookup(agent.source, ref)
            except Exception:  # a sidecar we cannot read only costs the name
                found = None
            if found:
                return found
        return "another monitor or the shell"

    # -- output -------------------------------------------------------------------

    def events_per_second(self) -> float:
        return self._rate.per_second()

    def agent_rows(self, *, connections: int | None) -> tuple[AgentRow, ...]:
        """Each agent's state now. ``connections``: open socket connections (None: no socket)."""
        now = self.clock()
        rows = []
        for a in self._agents.values():
            since: float | None
            if a.ended_ts is not None:
                status, since = AGENT_FINISHED, a.ended_ts
            elif a.socket and connections == 0:
                status, since = AGENT_DISCONNECTED, a.last_ts
            elif a.paused:
                status, since = AGENT_PAUSED, a.paused_since
            elif now - a.last_ts > STALL_SECONDS:
                status, since = AGENT_STALLED, a.last_ts
            else:
                status, since = AGENT_RUNNING, None
            rows.append(AgentRow(run=a.run, agent=a.agent, status=status, since=since, last_ts=a.last_ts,
                                 paused_by=a.paused_by if a.paused else None, watch_only=a.watch_only,
                                 source=a.source))
        return tuple(rows)

    def commands(self) -> tuple[ControlRow, ...]:
        return tuple(self._commands.values())

    def recent(self) -> tuple[CallRow, ...]:
        hashes = self._hashes
        return tuple(call_row(ev, _decimal(ev.cost_usd), hashes.get(ev.prompt_hash, 0) if ev.prompt_hash else 0)
                     for ev in self._recent)

    def stage_windows(self, now: float) -> dict[int, StageWindow]:
        """Mean stages per step name over each of STAGE_WINDOWS seconds up to ``now``."""
        horizon = int(now) - max(STAGE_WINDOWS)
        for second in [s for s in self._stage_bins if s <= horizon]:
            del self._stage_bins[second]
        out: dict[int, StageWindow] = {}
        for seconds in STAGE_WINDOWS:
            start = now - seconds
            sums: dict[str, list[float]] = {}
            for second, names in self._stage_bins.items():
                if second + 1 <= start or second > now:
                    continue
                for name, part in names.items():
                    acc = sums.setdefault(name, [0.0] * len(part))
                    for i, value in enumerate(part):
                        acc[i] += value
            groups = []
            for name, acc in sums.items():
                calls = int(acc[0])
                stages = {stage: Quantiles(count=int(acc[2 + 2 * i]), mean=acc[1 + 2 * i] / acc[2 + 2 * i])
                          for i, stage in enumerate(STAGES) if acc[2 + 2 * i]}
                groups.append(Group("name", name, Figures(calls=calls, stages=stages)))
            groups.sort(key=lambda g: -((g.figures.stages.get("total") or Quantiles(mean=0.0)).mean or 0.0)
                        * g.figures.calls)
            out[seconds] = StageWindow(seconds=seconds, groups=tuple(groups))
        return out

    def fine_series(self, now: float, first_ts: float | None) -> tuple[tuple[MinutePoint, ...], int]:
        """Chart bins for a run younger than FINE_KEEP_SECONDS: (points oldest first, seconds per bin)."""
        horizon = int(now) - FINE_KEEP_SECONDS
        for second in [s for s in self._fine if s <= horizon]:
            del self._fine[second]
        if first_ts is None or now - first_ts > FINE_KEEP_SECONDS or not self._fine:
            return (), 0
        age = max(now - first_ts, 1.0)
        step = next((s for s in FINE_STEPS if age / s <= FINE_POINTS), FINE_STEPS[-1])
        end = int(now) // step * step
        count = min(int(age // step) + 1, FINE_POINTS)
        points = []
        for i in range(count - 1, -1, -1):
            start = end - i * step
            calls, cost, read, prompt, ttft = 0, Decimal(0), 0, 0, []
            for second in range(start, start + step):
                b = self._fine.get(second)
                if b is not None:
                    calls += b.calls
                    cost += b.cost
                    read += b.cache_read
                    prompt += b.prompt
                    ttft.extend(b.ttft)
            ttft.sort()
            points.append(MinutePoint(start=float(start), calls=calls, cost_usd=cost,
                                      cache_hit_rate=read / prompt if prompt else None,
                                      ttft_p50=nearest_rank_value(ttft, 0.5), ttft_p90=nearest_rank_value(ttft, 0.9),
                                      cache_read_tokens=read))
        return tuple(points), step

    def decorate(self, snap: Snapshot, *, connections: int | None, waiting_for: tuple[str, ...]) -> Snapshot:
        """The aggregator's snapshot with this bookkeeping in place of its filter-dependent parts."""
        fine, step = self.fine_series(snap.now, snap.first_ts)
        source = replace(snap.source, events_per_second=self.events_per_second())
        return replace(snap, commands=self.commands(), agent_rows=self.agent_rows(connections=connections),
                       recent=self.recent(), waiting_for=waiting_for, stage_windows=self.stage_windows(snap.now),
                       fine_series=fine, fine_step=step, source=source)


