"""The calls table and the call detail screen, driven with Textual's pilot."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from textual.widgets import DataTable

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.format import Palette
from flightdeck.cockpit.screens.call_detail import CallDetailScreen, detail_text
from flightdeck.cockpit.screens.calls import CallsScreen
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot

from .conftest import fixed_clock, screen_text

SIZE = (160, 48)


def make_app(snap=None) -> FlightdeckApp:  # type: ignore[no-untyped-def]
    return FlightdeckApp(FakeFeed(snap or sample_snapshot()), clock=fixed_clock, refresh_interval=0.05)


async def test_c_opens_the_table_sorted_newest_first_and_s_sorts_by_cost_then_latency() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        assert app.screen.query_one(DataTable).row_count == 30
        assert [r.ts for r in screen.rows] == sorted((r.ts for r in screen.rows), reverse=True)
        assert "30 of 30 recent calls · sorted by time ↓" in screen_text(app)
        await pilot.press("c")  # c inside the table does not stack another one
        assert len(app.screen_stack) == 2
        await pilot.press("s")
        costs = [r.cost_usd for r in screen.rows]
        priced = [c for c in costs if c is not None]
        assert priced == sorted(priced, reverse=True) and costs[-1] is None  # unknown sorts last
        assert "sorted by cost ↓" in screen_text(app)
        await pilot.press("s")
        assert screen.rows[0].total_ms == max(r.total_ms or 0 for r in screen.rows)
        await pilot.press("r")
        assert screen.rows[0].total_ms == min(r.total_ms or 0 for r in screen.rows)
        await pilot.press("escape")
        assert not isinstance(app.screen, CallsScreen)


async def test_slash_in_the_table_filters_its_rows() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c", "slash")
        await pilot.press(*"critic", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        assert screen.rows and all(r.agent == "critic" for r in screen.rows)
        assert len(screen.rows) == 10 and "filter critic" in screen_text(app)
        assert app.feed.filters == []  # the table's own filter: the figures are untouched


async def test_enter_opens_everything_about_a_call() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        index = next(i for i, r in enumerate(screen.rows) if r.error)
        screen.query_one(DataTable).move_cursor(row=index)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CallDetailScreen)
        text = screen_text(app)
        for needle in ("cache write", "(of which reasoning: 40)", "cache read", "input (plain)", "output",
                       "pre", "ttft", "gen", "post", "rate source", "genai-prices openai/gpt-4o-mini",
                       "tier flex", "route proxy", "not streamed", "hash", "RateLimitError: 429 Too Many Requests",
                       "priced: computed from the tokens"):
            assert needle in text, needle
        await pilot.press("escape")
        assert isinstance(app.screen, CallsScreen)


def test_detail_splits_the_cache_writes_by_lifetime() -> None:
    text = detail_text(sample_snapshot().recent[0], Palette()).plain
    assert "cache write       400  (of which 1h: 100; 5m: 300)" in text


def test_detail_audits_a_reported_cost_against_the_rates() -> None:
    row = replace(sample_snapshot().recent[0], cost_usd=Decimal("0.5"), cost_status="reported")
    text = detail_text(row, Palette(), (Decimal("0.25"), "priced", "genai-prices x")).plain
    assert "reported: reported by the provider or proxy" in text
    assert "priced here now   $0.2500  logged cost is +$0.2500 from this  (priced: genai-prices x)" in text
    same = detail_text(row, Palette(), (Decimal("0.5"), "priced", "s")).plain
    assert "$0.5000  matches" in same


def test_detail_says_how_often_the_prompt_was_seen_and_shows_log_text_literally() -> None:
    row = replace(sample_snapshot().recent[3], prompt_hash="[red]h[/red]\x1b[2J", prompt_hash_seen=4,
                  tags=(("[b]k", "\x1b]0;x\x07"),))
    text = detail_text(row, Palette()).plain
    assert "[red]h[/red]\\x1b[2J  seen 4× by this monitor — the same prompt again and again: a loop?" in text
    assert "\\x1b]0;x\\x07" in text and "\x1b" not in text


async def test_a_hostile_model_name_is_literal_in_the_table() -> None:
    snap = sample_snapshot()
    recent = (*snap.recent[:-1], replace(snap.recent[-1], model="[blink]evil[/blink]\x1b[31m"))
    app = make_app(replace(snap, recent=recent))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        assert "[blink]evil[/blink]\\x1b[31m" in screen_text(app)


async def test_the_table_follows_new_calls_and_keeps_the_cursor_on_its_call() -> None:
    snap = sample_snapshot()
    feed = FakeFeed(snap)
    app = FlightdeckApp(feed, clock=fixed_clock, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        table = screen.query_one(DataTable)
        table.move_cursor(row=5)
        chosen = screen.selected()
        assert chosen is not None
        newer = replace(snap.recent[-1], id="0a1b2c3d4e5f-ff", ts=snap.now + 1)
        feed.push(replace(snap, recent=(*snap.recent, newer)))
        await pilot.pause(0.3)
        assert table.row_count == 31 and screen.rows[0].id == "0a1b2c3d4e5f-ff"  # newest first
        assert screen.selected() == chosen  # the cursor moved with its call
