"""A fake feed and a fixed, hand-built snapshot, for tests, snapshots and demos.

``FakeFeed`` writes its commands to the real control sidecar (0600, through
``core.control``), so a key test checks the same file an agent would read.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.events import Command
from flightdeck.core.snapshot import (
    AGENT_PAUSED,
    AGENT_RUNNING,
    AgentRow,
    AgentState,
    AlertRow,
    Budget,
    CallRow,
    ControlRow,
    Figures,
    Group,
    MinutePoint,
    Projection,
    Quantiles,
    Snapshot,
    SourceStatus,
    StageWindow,
    Tokens,
    WindowFigures,
)

FIXED_NOW = 1764216000.0  # 2025-11-27 04:00:00 UTC


def _stages(pre: float, ttft: float | None, gen: float, post: float, n: int) -> dict[str, Quantiles]:
    def q(mean: float | None) -> Quantiles:
        if mean is None:
            return Quantiles()
        return Quantiles(count=n, p50=mean * 0.9, p90=mean * 1.6, p99=mean * 2.4, mean=mean)

    total = pre + (ttft or 0.0) + gen + post
    return {"pre": q(pre), "ttft": q(ttft), "gen": q(gen), "post": q(post), "total": q(total)}


def _figures(calls: int, cost: str, *, hit: float | None = 0.6, unpriced: int = 0,
             stages: dict[str, Quantiles] | None = None, saved: str = "0") -> Figures:
    return Figures(
        calls=calls,
        errors=calls // 40,
        cost_usd=Decimal(cost),
        unpriced=unpriced,
        tokens=Tokens(input_tokens=calls * 900, output_tokens=calls * 320,
                      cache_read_tokens=calls * 5200, cache_write_tokens=calls * 400),
        cache_hit_rate=hit,
        cache_saved_usd=Decimal(saved),
        stages=stages or _stages(40.0, 420.0, 900.0, 30.0, calls),
    )


def _window(seconds: int, calls: int, cost: str, burn: str, hit: float) -> WindowFigures:
    base = _figures(calls, cost, hit=hit, saved=str(Decimal(cost) / 3))
    fields = {name: getattr(base, name) for name in base.__slots__}
    return WindowFigures(**fields, seconds=seconds, burn_usd_per_hour=Decimal(burn))


def sample_snapshot(now: float = FIXED_NOW, *, models: tuple[str, ...] = (), events: int = 1842,
                    paused: bool = False, paused_by: str = "key") -> Snapshot:
    """A busy, realistic snapshot with fixed numbers. ``models`` adds extra model names."""
    model_names = ("claude-3-5-sonnet", "gpt-4o-mini", "llama3.1:8b", *models)
    by_model = tuple(
        Group("model", name, _figures(calls, cost, unpriced=unpriced))
        for name, calls, cost, unpriced in (
            (model_names[0], 1204, "18.412300", 0),
            (model_names[1], 512, "0.384100", 0),
            (model_names[2], 126, "0", 126),
            *((m, 3, "0", 3) for m in model_names[3:]),
        )
    )
    by_step = (
        Group("name", "plan", _figures(410, "7.1", stages=_stages(35.0, 610.0, 2400.0, 20.0, 410))),
        Group("name", "reflect", _figures(620, "6.2", stages=_stages(22.0, 380.0, 950.0, 15.0, 620))),
        Group("name", "act", _figures(700, "4.9", stages=_stages(12.0, 300.0, 500.0, 1850.0, 700))),
        Group("name", "memory_compaction", _figures(112, "0.6", stages=_stages(480.0, None, 1200.0, 90.0, 112))),
    )
    by_route = (
        Group("route", "direct", _figures(1204, "18.4123")),
        Group("route", "proxy", _figures(512, "0.3841")),
        Group("route", "local", _figures(126, "0")),
    )
    by_agent = (Group("agent", "researcher", _figures(1500, "15")), Group("agent", "critic", _figures(342, "3.79")))
    by_run = (Group("run", "r-42", _figures(1842, "18.7964")),)
    series = tuple(
        MinutePoint(
            start=now - 3600 + 60 * i,
            calls=20 + (i * 7) % 23,
            cost_usd=Decimal(str(round(0.05 + ((i * 37) % 29) / 100, 4))),
            cache_hit_rate=0.3 + ((i * 13) % 11) / 20,
            ttft_p50=300.0 + (i * 53) % 400,
            ttft_p90=700.0 + (i * 97) % 900,
            cache_read_tokens=50_000 + i * 1000,
            cache_write_tokens=4_000,
        )
        for i in range(60)
    )
    steps = ("plan", "reflect", "act", "memory_compaction")
    recent = tuple(
        CallRow(
            ts=now - 60 + 2 * i,
            run="r-42",
            agent="researcher" if i % 3 else "critic",
            name=steps[i % 4],
            model=model_names[i % 3],
            provider=("anthropic", "openai", "ollama")[i % 3],
            route=("direct", "proxy", "local")[i % 3],
            input_tokens=900 + i * 10,
            output_tokens=300 + i,
            cache_read_tokens=5000,
            cost_usd=None if i % 3 == 2 else Decimal("0.011250") + Decimal(i) / 1000,
            cost_status="unknown" if i % 3 == 2 else "priced",
            total_ms=900.0 + i * 45,
            error="RateLimitError: 429 Too Many Requests" if i == 25 else None,
            id=f"0a1b2c3d4e5f-{i:x}",
            step=100 + i,
            stream=i % 3 != 1,
            cache_write_tokens=400,
            cache_write_1h_tokens=100 if i % 3 == 0 else 0,
            reasoning_tokens=40 if i % 3 == 1 else 0,
            pre_ms=30.0 + i,
            ttft_ms=400.0 + i * 10 if i % 3 != 1 else None,
            gen_ms=420.0 + i * 20,
            post_ms=50.0 + i * 5,
            prompt_hash=f"sha256:{(i % 7):02x}c0ffee",
            prompt_hash_seen=1 + (i % 7 == 3) * 3,
            tags=(("team", "search"),) if i % 2 else (),
            service_tier=("default", "flex", None)[i % 3],
            price_source=("genai-prices anthropic/claude-3-5-sonnet", "genai-prices openai/gpt-4o-mini", None)[i % 3],
        )
        for i in range(30)
    )
    total = _figures(1842, "18.796400", hit=0.48, unpriced=126, saved="4.2100")
    # The last five minutes: the vector store behind "plan" turned slow (pre), which the run's means hide.
    last5 = (
        Group("name", "plan", _figures(40, "0.9", stages=_stages(2600.0, 590.0, 2300.0, 20.0, 40))),
        Group("name", "act", _figures(70, "0.5", stages=_stages(12.0, 290.0, 480.0, 1700.0, 70))),
        Group("name", "reflect", _figures(60, "0.4", stages=_stages(20.0, 370.0, 900.0, 15.0, 60))),
    )
    stage_windows = {300: StageWindow(300, last5), 60: StageWindow(60, last5[:2]), 900: StageWindow(900, by_step)}
    return Snapshot(
        now=now,
        events=events,
        rejected=12,
        rejected_reasons={"bad usage.input_tokens": 8, "not json": 4},
        duplicates=3,
        first_ts=now - 5400,
        last_ts=now - 2,
        total=total,
        windows={
            "1m": _window(60, 31, "0.4210", "25.26", 0.66),
            "5m": _window(300, 140, "1.8800", "22.56", 0.62),
            "15m": _window(900, 390, "5.1200", "20.48", 0.55),
            "60m": _window(3600, 1400, "14.9000", "14.90", 0.50),
        },
        breakdowns={"model": by_model, "name": by_step, "route": by_route, "agent": by_agent, "run": by_run},
        series=series,
        projection=Projection(hour_end_usd=Decimal("19.1100"), day_end_usd=Decimal("412.5000")),
        recent=recent,
        alerts=(
            AlertRow(ts=now - 45, rule="cache", metric="cache_hit_rate", value=0.252986, threshold=0.3,
                     action="alert", source="agent", run="r-42", agent="researcher",
                     message="cache hit rate 25% over last 10 calls < 30%"),
            AlertRow(ts=now - 44.5, rule="cache", metric="cache_hit_rate", value=0.252986, threshold=0.3,
                     action="alert", source="monitor", run="r-42", agent="researcher",
                     message="cache hit rate 25% over last 10 calls < 30%"),
            AlertRow(ts=now - 30, rule="spend", metric="spend", value=2.31, threshold=2.0,
                     action="alert", source="agent", run="r-42", agent="researcher",
                     message="spend 2.31 USD in 10m > 2.00"),
        ),
        commands=(ControlRow(id="c-1", cmd="downgrade", origin="key", sent_at=now - 20,
                             acked_at=now - 19.958, ack_ms=42.0),),
        agents=(
            AgentState(run="r-42", agent="researcher", paused=paused,
                       models={"claude-3-5-sonnet": "claude-3-5-haiku"}),
            AgentState(run="r-42", agent="critic", paused=paused, models={}),
        ),
        agent_rows=tuple(
            AgentRow(run="r-42", agent=name, status=AGENT_PAUSED if paused else AGENT_RUNNING,
                     since=now - 12 if paused else None, last_ts=now - 2,
                     paused_by=paused_by if paused else None, source="run.jsonl")
            for name in ("researcher", "critic")
        ),
        recent_rejects=((now - 40, "bad usage.input_tokens", "Expected `int` >= 0, got `-5`"),
                        (now - 10, "not json", "malformed JSON at byte 17")),
        budget=Budget(limit_usd=Decimal("2.00"), seconds=600, spent_usd=Decimal("1.62")),
        stage_windows=stage_windows,
        source=SourceStatus(description="run.jsonl", files=1, last_event_wall=now - 1,
                            events_per_second=31.0),
    )


class FakeFeed:
    """A Feed over a list of snapshots; commands go to ``telemetry``'s real sidecar.

    ``advance()`` moves to the next snapshot (the last one stays), so a test
    can show the data changing underneath the screen. ``acks`` (cmd id ->
    ms) mark commands as acknowledged in later snapshots.
    """

    def __init__(self, snapshots: list[Snapshot] | Snapshot, telemetry: Path | None = None) -> None:
        self._snapshots = [snapshots] if isinstance(snapshots, Snapshot) else list(snapshots)
        self._index = 0
        self.telemetry = telemetry
        self.sent: list[Command] = []
        self.filters: list[str | None] = []
        self.acks: dict[str, float] = {}
        self.started = 0
        self.stopped = 0
        self.pulls = 0
        self._lock = threading.Lock()

    def snapshot(self) -> Snapshot:
        with self._lock:
            self.pulls += 1
            snap = self._snapshots[self._index]
            rows = tuple(
                ControlRow(id=c.id, cmd=c.cmd, origin=c.origin, sent_at=c.ts,
                           ack_ms=self.acks.get(c.id),
                           acked_at=c.ts + self.acks[c.id] / 1000 if c.id in self.acks else None)
                for c in self.sent
            )
            return replace(snap, commands=snap.commands + rows) if rows else snap

    def advance(self) -> None:
        with self._lock:
            self._index = min(self._index + 1, len(self._snapshots) - 1)

    def push(self, snap: Snapshot) -> None:
        with self._lock:
            self._snapshots.append(snap)
            self._index = len(self._snapshots) - 1

    def send(self, cmd: str, *, to: dict[str, str] | None = None, target: dict[str, str] | None = None,
             origin: str = "key", reason: str | None = None) -> Command:
        command = new_command(cmd, origin=origin, reason=reason, to=to, target=target)
        if self.telemetry is not None:
            append_command(sidecar_path(self.telemetry), command)
        self.sent.append(command)
        return command

    def set_filter(self, text: str | None) -> None:
        self.filters.append(text)

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1
