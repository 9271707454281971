"""SVG snapshots of the main screen (fixed clock, fixed data) at two sizes and in each theme.

Update after an intended change with ``pytest tests/cockpit/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

import pytest

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.testing import FakeFeed, sample_snapshot

from .conftest import fixed_clock


def make_app(theme: str | None = None) -> FlightdeckApp:
    return FlightdeckApp(FakeFeed(sample_snapshot()), theme=theme, clock=fixed_clock)


def test_main_screen_80x24(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24))


def test_main_screen_160x48(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(160, 48))


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast"])
def test_each_theme(snap_compare, theme: str) -> None:
    assert snap_compare(make_app(theme), terminal_size=(120, 36))


def test_help_screen(snap_compare) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), press=["question_mark"])
