"""SVG snapshots of the main screen (fixed clock, fixed data) at two sizes and in each theme.

Update after an intended change with ``pytest tests/cockpit/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot
from flightdeck.core.snapshot import CallRow

from .conftest import fixed_clock


def pinned_reprice(row: CallRow) -> tuple[Decimal | None, str, str]:
    """A fixed audit line: the SVG must not change when the pricing data does."""
    return (row.cost_usd, "priced", "pinned rates for the snapshot")


def make_app(theme: str | None = None) -> FlightdeckApp:
    app = FlightdeckApp(FakeFeed(sample_snapshot()), theme=theme, clock=fixed_clock)
    app.reprice = pinned_reprice  # type: ignore[attr-defined]
    return app


def test_main_screen_80x24(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24))


def test_main_screen_160x48(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(160, 48))


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast"])
def test_each_theme(snap_compare, theme: str) -> None:
    assert snap_compare(make_app(theme), terminal_size=(120, 36))


def test_help_screen(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), press=["question_mark"])


def make_paused_app() -> FlightdeckApp:
    return FlightdeckApp(FakeFeed(sample_snapshot(paused=True, paused_by="rule:loop")), clock=fixed_clock)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_paused_by_rule_header(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(make_paused_app(), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_calls_table(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, press=["c", "s"])


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_call_detail(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, press=["c", "enter"])
