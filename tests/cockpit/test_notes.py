"""Lines counted but not read whole (Snapshot.notes) are said on the alerts panel's summary line."""

from __future__ import annotations

from dataclasses import replace

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot

from .conftest import fixed_clock, screen_text


async def test_the_alerts_line_counts_notes() -> None:
    snap = replace(sample_snapshot(), notes={"claude-code usage key not read: novel": 3, "other": 2})
    app = FlightdeckApp(FakeFeed(snap), clock=fixed_clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert "5 lines not read whole" in screen_text(app)
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        assert "not read whole" not in screen_text(app)
