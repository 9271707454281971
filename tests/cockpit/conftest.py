"""Shared fixtures: a fixed clock and time zone, isolated theme folders, a fake feed."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App

from flightdeck.cockpit.testing import FIXED_NOW, FakeFeed, sample_snapshot


@pytest.fixture(autouse=True)
def fixed_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Clock times are local: pin the zone so screens are the same everywhere,
    # and keep the user's own themes out of the tests.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def telemetry(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"")
    return path


@pytest.fixture
def feed(telemetry: Path) -> FakeFeed:
    return FakeFeed(sample_snapshot(), telemetry=telemetry)


def fixed_clock() -> float:
    return FIXED_NOW


def screen_text(app: App) -> str:
    """What the terminal shows, as plain text (for asserting on content)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def wait_for(app: App, *needles: str, timeout: float = 5.0) -> str:
    """The screen once every needle is on it (or at the timeout, for the assertion to show)."""
    deadline = time.monotonic() + timeout
    while True:
        text = screen_text(app)
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.05)
