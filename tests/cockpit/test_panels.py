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
from flightdeck.cockpit.widgets.header import command_state, control_state, ingest_state
from flightdeck.core.snapshot import AgentState, Budget, Snapshot, SourceStatus

from .conftest import fixed_clock, screen_text

P = Palette()


def test_ingest_state_live_stalled_backfilling() -> None:
    live = Snapshot(now=FIXED_NOW, events=5, source=SourceStatus(last_event_wall=FIXED_NOW - 2, events_per_second=1234))
    assert ingest_state(live, FIXED_NOW, P).plain == "● LIVE 1.23k ev/s"
    stalled = replace(live, source=replace(live.source, last_event_wall=FIXED_NOW - 125))
    assert ingest_state(stalled, FIXED_NOW, P).plain.startswith("▲ STALLED 2m")
    filling = replace(live, source=SourceStatus(backfilling=True, backfill_done_bytes=420, backfill_total_bytes=1000))
    text = ingest_state(filling, FIXED_NOW, P).plain
    assert text.startswith("◐ backfill ████▎ ") and " 42%" in text  # 4.2 of 10 cells, in eighths
    assert ingest_state(Snapshot(now=FIXED_NOW), FIXED_NOW, P).plain.startswith("○ waiting")


def test_control_state_names_pauses_and_downgrades() -> None:
    assert control_state((), P).plain == "✓ running"
    agents = (AgentState("r", "a", paused=True), AgentState("r", "b", models={"big": "small", "x": "x"}))
    text = control_state(agents, P).plain
    assert "PAUSED 1/2" in text and "downgraded big→small" in text
    assert control_state((AgentState("r", "a", paused=True),), P).plain == "▲ PAUSED"


def test_command_state_sent_acked_refused_failed() -> None:
    assert command_state(CommandStatus("pause", "c", 1.0), P).plain == "… pause sent"
    assert command_state(CommandStatus("pause", "c", 1.0, ack_ms=41.6), P).plain == "✓ pause acked in 42 ms"
    refused = CommandStatus("downgrade", "c", 1.0, ack_message="no ladder for \x1b[31mx")
    assert command_state(refused, P).plain == "▲ downgrade refused: no ladder for \\x1b[31mx"
    assert "failed: OSError" in command_state(CommandStatus("pause", "c", 1.0, error="OSError: x"), P).plain


@pytest.mark.parametrize(("spent", "symbol", "colour"), [("0.50", "✓", P.ok), ("1.60", "▲", P.warn), ("2.40", "✗", P.bad)])
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
        assert "rejected not json" in screen_text(app)
        assert "Cache · TTFT" in screen_text(app)
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
