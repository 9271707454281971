"""Textual's pilot on every key of the cockpit, against a fake feed."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.screens.filter import FilterScreen
from flightdeck.cockpit.screens.help import HelpScreen
from flightdeck.cockpit.screens.theme_picker import ThemePicker
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot
from flightdeck.core.control import sidecar_path
from flightdeck.core.events import decode_command

from .conftest import fixed_clock, screen_text

SIZE = (160, 48)


def sidecar_commands(telemetry: Path) -> list[str]:
    path = sidecar_path(telemetry)
    if not path.exists():
        return []
    return [decode_command(line).cmd for line in path.read_bytes().splitlines()]


async def test_p_writes_a_pause_line_0600_then_shows_the_ack(feed: FakeFeed, telemetry: Path) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p")
        path = sidecar_path(telemetry)
        assert sidecar_commands(telemetry) == ["pause"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        line = decode_command(path.read_bytes().splitlines()[0])
        assert line.origin == "key" and line.id == feed.sent[0].id
        assert "pause sent" in screen_text(app)
        feed.acks[feed.sent[0].id] = 37.4
        await pilot.pause(0.15)
        assert "pause acked in 37 ms" in screen_text(app)
    assert feed.started == 1 and feed.stopped == 1


async def test_p_resumes_when_the_agent_is_paused(telemetry: Path) -> None:
    feed = FakeFeed(sample_snapshot(paused=True), telemetry=telemetry)
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "PAUSED" in screen_text(app)
        await pilot.press("p")
        await pilot.press("p")  # not acked yet: the second press undoes our own resume
    assert sidecar_commands(telemetry) == ["resume", "pause"]


async def test_d_and_u_downgrade_and_restore(feed: FakeFeed, telemetry: Path) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("d")
        await pilot.press("u")
        assert "restore sent" in screen_text(app)
    assert sidecar_commands(telemetry) == ["downgrade", "restore"]


async def test_a_failed_send_is_shown_not_fatal(tmp_path: Path) -> None:
    feed = FakeFeed(sample_snapshot(), telemetry=tmp_path / "missing-dir" / "run.jsonl")
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p")
        assert "pause failed: FileNotFoundError" in screen_text(app)


async def test_space_freezes_while_counts_grow_underneath(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("space")
        assert "FROZEN +0" in screen_text(app)
        grown = sample_snapshot(events=2042)
        grown = replace(grown, total=replace(grown.total, calls=2042),
                        source=replace(grown.source, description="grown.jsonl"))
        feed.push(grown)
        pulls = feed.pulls
        await pilot.pause(0.2)
        assert feed.pulls > pulls  # ingest (and pulling) goes on while frozen
        text = screen_text(app)
        assert "FROZEN +200" in text
        assert "1.84k calls" in text and "grown.jsonl" not in text  # the screen holds still
        await pilot.press("space")
        text = screen_text(app)
        assert "FROZEN" not in text and "2.04k calls" in text and "grown.jsonl" in text


async def test_slash_filters_and_escape_clears(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        assert isinstance(app.screen, FilterScreen)
        await pilot.press(*"model:gpt")
        await pilot.press("enter")
        assert feed.filters == ["model:gpt"]
        assert not isinstance(app.screen, FilterScreen)
        assert "filter model:gpt" in screen_text(app)
        await pilot.press("slash")
        await pilot.press("escape")
        assert feed.filters == ["model:gpt", None]
        assert "filter model:gpt" not in screen_text(app)


async def test_t_picks_a_theme(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "flightdeck-dark"
        await pilot.press("t")
        assert isinstance(app.screen, ThemePicker)
        await pilot.press("down", "enter")  # the list starts on the current theme
        assert app.theme == "flightdeck-high-contrast"
        assert app.palette().ok == "#56b4e9"


async def test_question_mark_lists_every_key(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for label in ("Pause", "Downgrade", "Restore", "Calls", "Window", "Freeze", "Filter", "Theme", "Keys",
                      "Quit"):
            assert label in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits_and_stops_the_feed(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert feed.stopped == 1


async def test_keys_are_in_the_footer_and_the_palette(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        # The footer fits 80 columns whole: the rarer keys are in ? and the palette.
        assert footer.rstrip().endswith("q Quit")
        for label in ("Pause", "Downgrade", "Restore", "Calls", "Filter", "Keys", "Quit"):
            assert label in footer
        assert "Undo" not in footer  # the key says what the header says: restore
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Pause (p)", "Downgrade (d)", "Restore (u)", "Freeze (space)", "Filter (slash)",
                      "Calls (c)", "Window (w)", "Theme (t)"):
            assert title in titles
        assert "Theme: high-contrast" in titles and "Theme: dark" in titles


async def test_timer_renders_from_snapshots_not_events(feed: FakeFeed) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        # Pulls follow the clock (a few per interval), not the event count.
        assert 2 <= feed.pulls <= 20
        assert 2 <= app.ticks <= 20


async def test_keys_work_while_the_feed_is_stuck(telemetry: Path) -> None:
    """A snapshot that blocks (engine lock held by a long batch) must not block the keys."""
    import threading

    class Stuck(FakeFeed):
        gate = threading.Event()

        def snapshot(self):
            if self.pulls >= 1:
                self.gate.wait(5)
            return super().snapshot()

    feed = Stuck(sample_snapshot(), telemetry=telemetry)
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)  # the puller thread is now stuck inside snapshot()
            await pilot.press("p")
            assert sidecar_commands(telemetry) == ["pause"]
            assert "pause sent" in screen_text(app)
            feed.gate.set()
    finally:
        feed.gate.set()


async def test_command_palette_sends_commands(feed: FakeFeed, telemetry: Path) -> None:
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.press(*"downgr")
        await pilot.pause(0.3)  # the palette searches asynchronously
        await pilot.press("enter")
        await pilot.pause()
    assert sidecar_commands(telemetry) == ["downgrade"]
