"""Panel content for states the fixed snapshot does not show: backfill, stalls, acks, budgets."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.cockpit.app import FlightdeckApp, run_cockpit
from flightdeck.cockpit.format import Palette
from flightdeck.cockpit.testing import FIXED_NOW, FakeFeed, sample_snapshot
from flightdeck.cockpit.widgets.base import CommandStatus
from flightdeck.cockpit.widgets.header import agent_state, command_state, downgrade_state, ingest_state
from flightdeck.core.snapshot import (
    AGENT_DISCONNECTED,
    AGENT_FINISHED,
    AGENT_PAUSED,
    AGENT_RUNNING,
    AGENT_STALLED,
    AgentRow,
    AgentState,
    Budget,
    Snapshot,
    SourceStatus,
)

from .conftest import fixed_clock, screen_text

P = Palette()


def test_ingest_state_rate_and_backfill() -> None:
    live = Snapshot(now=FIXED_NOW, events=5, source=SourceStatus(last_event_wall=FIXED_NOW - 2, events_per_second=1234))
    assert ingest_state(live, FIXED_NOW, P).plain == "1.23k ev/s"
    filling = replace(live, source=SourceStatus(backfilling=True, backfill_done_bytes=420, backfill_total_bytes=1000))
    text = ingest_state(filling, FIXED_NOW, P).plain
    assert text.startswith("◐ backfill ████▎ ") and " 42%" in text  # 4.2 of 10 cells, in eighths


def _one(status: str, **kw: object) -> Snapshot:
    return Snapshot(now=FIXED_NOW, events=3, agent_rows=(AgentRow("r", "a", status=status, **kw),))  # type: ignore[arg-type]


def test_agent_state_says_only_what_is_true() -> None:
    assert agent_state(Snapshot(now=FIXED_NOW, waiting_for=("run.jsonl",)), FIXED_NOW, P).plain == \
        "○ waiting for run.jsonl"
    assert agent_state(Snapshot(now=FIXED_NOW), FIXED_NOW, P).plain == "○ waiting for events"
    assert agent_state(_one(AGENT_RUNNING), FIXED_NOW, P).plain == "● running"
    paused = _one(AGENT_PAUSED, since=FIXED_NOW - 5, paused_by="rule:loop")
    assert agent_state(paused, FIXED_NOW, P).plain == "⏸ PAUSED by rule:loop — p resumes"
    stalled = agent_state(_one(AGENT_STALLED, since=FIXED_NOW - 125), FIXED_NOW, P).plain
    assert stalled == "▲ stalled since 03:57:55 (2m)"
    assert agent_state(_one(AGENT_FINISHED, since=FIXED_NOW - 10), FIXED_NOW, P).plain.startswith(
        "■ finished since 03:59:50")
    assert agent_state(_one(AGENT_DISCONNECTED, since=FIXED_NOW - 10), FIXED_NOW, P).plain.startswith(
        "✗ disconnected since")
    assert agent_state(_one(AGENT_RUNNING, watch_only=True), FIXED_NOW, P).plain == "● running (watch-only)"


def test_agent_state_of_a_fleet_puts_the_paused_first() -> None:
    rows = (AgentRow("r", "a", status=AGENT_PAUSED, paused_by="key"), AgentRow("r", "b"),
            AgentRow("r", "c"), AgentRow("r", "d", status=AGENT_FINISHED))
    text = agent_state(Snapshot(now=FIXED_NOW, agent_rows=rows), FIXED_NOW, P).plain
    assert text == "⏸ PAUSED 1/4 by key — p resumes · ● 2 running · ■ 1 finished"


def test_downgrade_state_names_the_swaps() -> None:
    agents = (AgentState("r", "a", paused=True), AgentState("r", "b", models={"big": "small", "x": "x"}))
    assert downgrade_state(agents, P).plain == "▲ downgraded big→small"
    assert downgrade_state((), P).plain == ""


def test_command_state_sent_acked_refused_failed() -> None:
    assert command_state(CommandStatus("pause", "c", 1.0), P).plain == "… pause sent"
    assert command_state(CommandStatus("pause", "c", 1.0, ack_ms=41.6), P).plain == "✓ pause acked in 42 ms"
    refused = CommandStatus("downgrade", "c", 1.0, ack_message="no ladder for \x1b[31mx")
    assert command_state(refused, P).plain == "▲ downgrade refused: no ladder for \\x1b[31mx"
    assert "failed: OSError" in command_state(CommandStatus("pause", "c", 1.0, error="OSError: x"), P).plain


@pytest.mark.parametrize(("spent", "symbol", "colour"),
                         [("0.50", "✓", P.ok), ("1.60", "▲", P.warn), ("2.40", "✗", P.bad)])
async def test_budget_gauge_takes_the_threshold_colour(spent: str, symbol: str, colour: str) -> None:
    snap = replace(sample_snapshot(), budget=Budget(Decimal("2.00"), 600, Decimal(spent)))
    app = FlightdeckApp(FakeFeed(snap), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        shown = app.query_one("#spend")._shown
        line = next(ln for ln in shown.split("\n") if "$2.00" in ln.plain)
        assert line.plain.startswith(symbol)
        expected = {"✓": app.palette().ok, "▲": app.palette().warn, "✗": app.palette().bad}[symbol]
        assert any(expected in str(span.style) for span in line.spans)


async def test_compact_layout_folds_alerts_into_events() -> None:
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.compact
        assert not app.query_one("#alerts").display and not app.query_one("#models").display
        text = screen_text(app)
        assert "Cache · TTFT" in text
        # Where the money goes, on one line, and the newest alerts held in place.
        assert "cost by model claude-3-5-sonnet 98% · gpt-4o-mini 2% · llama3.1:8b unpriced" in text
        assert "spend: spend $2.31 in 10m > $2.00 (agent)" in text
        assert "downgrade by key acked in 42 ms" in text
        assert "newest alerts and commands held above (+3 earlier)" in text  # said, not dropped silently
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(100, 44)) as pilot:  # narrow but tall: TTFT and models return
        await pilot.pause()
        assert app.query_one("#ttft").display and app.query_one("#models").display


async def test_a_broken_theme_file_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("primary = [\n")
    (tmp_path / "fine.toml").write_text('name = "fine"\nprimary = "#336699"\n')
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock, theme="fine", theme_dirs=[tmp_path])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.theme == "fine"
        assert any("broken.toml" in n.message for n in app._notifications)


async def test_unknown_theme_falls_back_with_a_notice() -> None:
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock, theme="nope")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.theme == "flightdeck-dark"
        assert any("unknown theme 'nope'" in n.message for n in app._notifications)


def test_run_cockpit_refuses_an_unknown_theme(capsys: pytest.CaptureFixture[str]) -> None:
    feed = FakeFeed(sample_snapshot())
    assert run_cockpit(feed, theme="no-such-theme") == 2
    err = capsys.readouterr().err
    assert "unknown theme 'no-such-theme'" in err and "high-contrast" in err
    assert feed.started == 0


async def test_spend_panel_shows_plan_windows_reported_and_computed() -> None:
    from flightdeck.core.plan_windows import ClaudeBlocks, block_json, window_from_codex

    primary = window_from_codex({"used_percent": 20.0, "window_minutes": 300, "resets_at": FIXED_NOW + 7740},
                                "primary", FIXED_NOW - 3600, "plus")
    later = window_from_codex({"used_percent": 85.0, "window_minutes": 300, "resets_at": FIXED_NOW + 7740},
                              "primary", FIXED_NOW, "plus")
    assert primary is not None and later is not None
    reported = later.merged(primary).to_json()  # 65 points an hour: 15 points left fill in 13.8 minutes
    blocks = ClaudeBlocks()
    blocks.add(FIXED_NOW - 1800, 1000, "1.374")
    (block,) = [block_json(b, FIXED_NOW) for b in blocks.blocks()]
    snap = replace(sample_snapshot(), plan_windows=(reported, block))
    app = FlightdeckApp(FakeFeed(snap), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        shown = app.query_one("#spend")._shown.split("\n")
        codex = next(ln for ln in shown if ln.plain.startswith("codex"))
        assert codex.plain == "codex primary 85% ↻2h09m full in 13m"
        assert any(app.palette().warn in str(span.style) for span in codex.spans)  # past 80 %
        claude = next(ln for ln in shown if ln.plain.startswith("claude-code"))
        assert claude.plain.startswith("claude-code 5h block $1.37 ↻") and claude.plain.endswith("(computed)")
