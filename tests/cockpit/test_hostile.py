"""Strings from logs are text, never markup or terminal control; a broken panel stays in its box."""

from __future__ import annotations

from dataclasses import replace

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot
from flightdeck.cockpit.widgets.base import Panel
from flightdeck.core.snapshot import AlertRow, Group, SourceStatus

from .conftest import fixed_clock, screen_text

MARKUP = "[red]x[/red]"
CSI = "\x1b[31mevil"
OSC = "\x1b]0;pwned\x07"


def hostile_snapshot():
    snap = sample_snapshot(models=(MARKUP, CSI, OSC))
    recent = list(snap.recent)
    recent[-1] = replace(recent[-1], model=MARKUP, name="[b]step[/b]", error=None)
    recent[-2] = replace(recent[-2], model=OSC, error="boom \x1b[2J [link=http://x]y[/link]")
    recent[-3] = replace(recent[-3], model=CSI)
    names = snap.breakdowns["name"] + (Group("name", "[blink]slow[/blink]", snap.breakdowns["name"][0].figures),)
    alerts = (*snap.alerts, AlertRow(ts=snap.now - 1, rule="[red]rule[/red]\x1b[5m", metric=None, value=None,
                                            threshold=None, action="alert", source="agent", message=OSC))
    return replace(
        snap,
        recent=tuple(recent),
        alerts=alerts,
        breakdowns={**snap.breakdowns, "name": names},
        stage_windows={},  # the stages panel falls back to the run's steps, hostile name included
        source=SourceStatus(description="[bold]run[/bold].jsonl\x1b[0m", last_event_wall=snap.now,
                            notices=("refused uid 1001 \x1b[31m",)),
        recent_rejects=(*snap.recent_rejects, (snap.now, "not json", "\x1b]0;pwned\x07 [i]x[/i]")),
    )


async def test_hostile_strings_render_literally() -> None:
    app = FlightdeckApp(FakeFeed(hostile_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text
        assert MARKUP in text  # shown as typed, not turned red
        assert "\\x1b[31mevil" in text
        assert "\\x1b]0;pwned\\x07" in text
        assert "[b]step[/b]" in text
        assert "[blink]slow[/blin…" in text  # cut to the name column, still literal
        assert "[bold]run[/bold].jsonl\\x1b[0m" in text
        assert "✗ boom \\x1b[2J [link…" in text  # cut to the error column, still literal
        assert "[red]rule[/red]\\x1b[5m" in text
        assert app.title == "flightdeck"
        for panel in app.query(Panel):
            assert panel.failures == 0, panel.id
            shown = panel._shown
            assert shown is not None and "\x1b" not in shown.plain
            # No span came from the log's "markup": every style is one the panel chose.
            assert not any("link" in str(span.style) or "blink" in str(span.style) for span in shown.spans)


async def test_a_failing_panel_shows_its_error_and_the_rest_goes_on() -> None:
    snap = sample_snapshot()
    broken = replace(snap, breakdowns={**snap.breakdowns, "name": (object(),)}, stage_windows={})  # not a Group
    feed = FakeFeed([snap, broken])
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        feed.advance()
        feed.push(replace(broken, events=broken.events + 5))
        await pilot.pause(0.2)
        stages = app.query_one("#stages", Panel)
        assert stages.failures > 0
        text = screen_text(app)
        assert "this panel failed: AttributeError" in text
        assert "1.85k calls" in text  # the header kept updating
        assert app.query_one("#spend", Panel).failures == 0


async def test_a_feed_that_raises_keeps_the_last_screen() -> None:
    class Flaky(FakeFeed):
        broken = False

        def snapshot(self):
            if self.broken:
                raise RuntimeError("engine thread died")
            return super().snapshot()

    feed = Flaky(sample_snapshot())
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        feed.broken = True
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "feed: RuntimeError: engine thread died" in text
        assert "1.84k calls" in text


async def test_a_feed_that_cannot_start_is_reported() -> None:
    class NoStart(FakeFeed):
        def start(self) -> None:
            raise OSError("address already in use")

    app = FlightdeckApp(NoStart(sample_snapshot()), clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.15)
        assert "feed: start failed: OSError: address already in use" in screen_text(app)
