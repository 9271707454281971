"""The cockpit: a Textual app that renders feed snapshots on a timer.

The screen is rebuilt from ``feed.snapshot()`` a few times a second, never per
event, so its cost does not grow with the event rate. Keys that steer the
agent call ``feed.send`` at once, in the key handler, so a command leaves
within a frame of the key press whatever ingest is doing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer

from flightdeck.cockpit.feed import Feed
from flightdeck.cockpit.format import Palette, clean, plural
from flightdeck.cockpit.puller import SnapshotPuller
from flightdeck.cockpit.screens.call_detail import CallDetailScreen
from flightdeck.cockpit.screens.calls import CallsScreen
from flightdeck.cockpit.screens.filter import FilterScreen
from flightdeck.cockpit.screens.help import HelpScreen
from flightdeck.cockpit.screens.theme_picker import ThemePicker
from flightdeck.cockpit.themes import (
    DEFAULT_THEME,
    THEME_PREFIX,
    load_themes,
    palette_for,
    resolve_name,
    unknown_theme,
)
from flightdeck.cockpit.widgets.alerts import AlertsPanel
from flightdeck.cockpit.widgets.base import CommandStatus, Panel, View
from flightdeck.cockpit.widgets.cache import CachePanel
from flightdeck.cockpit.widgets.events import EventsPanel
from flightdeck.cockpit.widgets.header import Header
from flightdeck.cockpit.widgets.models import ModelsPanel
from flightdeck.cockpit.widgets.spend import SpendPanel
from flightdeck.cockpit.widgets.stages import StagesPanel
from flightdeck.cockpit.widgets.ttft import TtftPanel
from flightdeck.core.events import Command
from flightdeck.core.snapshot import AGENT_PAUSED, Snapshot

# Below WIDE columns or SHORT rows the compact layout shows header, spend,
# cache, stages and events; the rest collapses (the events panel then carries
# the alerts). A narrow but TALL terminal gets TTFT and models back.
WIDE = 120
SHORT = 28
TALL = 40

# (key, action, footer label, what it does): one table feeds the bindings, the help and the palette.
KEYS: list[tuple[str, str, str, str]] = [
    ("p", "toggle_pause", "Pause", "pause the agent, or resume it if paused"),
    ("d", "downgrade", "Downgrade", "step models one rung down the agent's ladder"),
    ("u", "restore", "Restore", "undo downgrades: return to the models the agent asked for"),
    ("c", "calls", "Calls", "the calls table: sort, filter, enter opens a call"),
    ("w", "stage_window", "Window", "the stages panel's window: 5m, 15m, 1m, the whole run"),
    ("space", "freeze", "Freeze", "hold the display still while ingest goes on"),
    ("slash", "filter", "Filter", "show only an agent, run, model or step"),
    ("t", "pick_theme", "Theme", "choose a colour theme"),
    ("question_mark", "help", "Keys", "show every key"),
    ("q", "quit", "Quit", "leave the cockpit (the agent keeps running)"),
]
FOOTER_HIDDEN = frozenset({"freeze", "pick_theme", "stage_window"})
STAGE_WINDOWS = (300, 900, 60, 0)  # w cycles these; 0 is the whole run


class FlightdeckApp(App[int]):
    """The live monitor. ``feed`` is started on mount and stopped on exit."""

    TITLE = "flightdeck"
    CSS_PATH = "cockpit.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT, "-mid"), (TALL, "-tall")]
    # The footer must fit 80 columns: the rarer keys are in ? and the palette only.
    BINDINGS = [Binding(key, action, label, show=action not in FOOTER_HIDDEN) for key, action, label, _ in KEYS]
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        feed: Feed,
        *,
        theme: str | None = None,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = 0.25,
        theme_dirs: list[Path] | None = None,
    ) -> None:
        super().__init__()
        self.feed = feed
        self.clock = clock
        self.refresh_interval = refresh_interval
        self.frozen: Snapshot | None = None
        self.live: Snapshot | None = None
        self.filter_text: str | None = None
        self.last_command: Command | None = None
        self.send_error: str | None = None
        self.feed_error: str | None = None
        self.start_error: str | None = None
        self.ticks = 0
        self.stage_window = STAGE_WINDOWS[0]
        self.puller = SnapshotPuller(feed, refresh_interval)
        self._drawn: tuple[object, ...] = ()
        loaded = load_themes(theme_dirs)
        self.theme_errors = list(loaded.errors)
        self.theme_names: list[str] = sorted(loaded.themes)
        for item in loaded.themes.values():
            self.register_theme(item)
        chosen = resolve_name(theme, self.available_themes) if theme else None
        if theme and chosen is None:
            self.theme_errors.append(f"unknown theme {theme!r}; using {DEFAULT_THEME}")
        fallback = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = chosen or fallback
        self._palettes: dict[str, Palette] = {}

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(id="header")
        with Grid(id="body"):
            yield SpendPanel(id="spend")
            yield CachePanel(id="cache")
            yield TtftPanel(id="ttft")
            yield ModelsPanel(id="models")
            yield StagesPanel(id="stages")
            yield EventsPanel(id="events")
            yield AlertsPanel(id="alerts")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        for message in self.theme_errors:
            self.notify(message, title="theme", severity="warning", markup=False, timeout=8)
        try:
            self.feed.start()
        except Exception as exc:  # shown, not fatal: the screen says what broke
            self.start_error = f"start failed: {type(exc).__name__}: {exc}"
        self.puller.pull_now()  # the first frame has data
        self.puller.start()
        self.refresh_panels()
        self.set_interval(self.refresh_interval, self.refresh_panels)

    def on_unmount(self) -> None:
        self.puller.stop()
        try:
            self.feed.stop()
        except Exception:  # nothing useful to do while leaving
            pass

    @property
    def compact(self) -> bool:
        """Whether the alerts panel is collapsed: the same test as the CSS breakpoints.

        Computed from the size, not read back from the CSS, so the very first
        frame already knows (the breakpoint classes land a moment later).
        """
        width, height = self.size
        return width < WIDE or height < SHORT

    # ------------------------------------------------------------ rendering

    def palette(self) -> Palette:
        name = self.theme
        if name not in self._palettes:
            self._palettes[name] = palette_for(self.current_theme)
        return self._palettes[name]

    def _pull(self) -> Snapshot:
        """The newest snapshot the puller thread has (never waits on the engine)."""
        self.feed_error = self.puller.error or self.start_error
        return self.puller.latest or self.live or Snapshot(now=self.clock())

    def command_status(self, live: Snapshot) -> CommandStatus | None:
        cmd = self.last_command
        if cmd is None:
            return None
        if self.send_error is not None:
            return CommandStatus(cmd.cmd, cmd.id, cmd.ts, error=self.send_error)
        for row in reversed(live.commands):
            if row.id == cmd.id:
                return CommandStatus(cmd.cmd, cmd.id, cmd.ts, ack_ms=row.ack_ms, ack_message=row.ack_message)
        return CommandStatus(cmd.cmd, cmd.id, cmd.ts)

    def current_view(self) -> View:
        live = self.live or Snapshot(now=self.clock())
        return View(
            snap=self.frozen or live,
            live=live,
            now=self.clock(),
            palette=self.palette(),
            compact=self.compact,
            frozen=self.frozen is not None,
            filter_text=self.filter_text,
            command=self.command_status(live),
            feed_error=self.feed_error,
            stage_window=self.stage_window,
        )

    def refresh_panels(self) -> None:
        """The timer: the newest snapshot, then every visible panel redrawn if it changed.

        When neither the snapshot nor the app's state moved, only the header
        (its clock, "stalled") is rebuilt: an idle feed costs next to nothing.
        """
        self.ticks += 1
        self.live = self._pull()
        view = self.current_view()
        # Snapshots compared by identity (a new one is a new object); the rest by value.
        drawn = (view.snap, view.live, view.compact, view.frozen, view.filter_text,
                 view.command, view.palette, self.size, view.stage_window)
        header_only = len(self._drawn) == len(drawn) and all(
            (a is b) if i < 2 else (a == b) for i, (a, b) in enumerate(zip(drawn, self._drawn))
        )
        self._drawn = drawn
        for panel in self.query(Panel):
            if panel.display and (not header_only or isinstance(panel, Header)):
                panel.show(view)

    def refresh_header(self) -> None:
        self.query_one(Header).show(self.current_view())

    def watch_theme(self, theme: str) -> None:
        # New colours: rebuild now rather than at the next tick.
        if self.live is not None:
            self.call_after_refresh(self.refresh_panels)

    # ------------------------------------------------------------ keys

    def _agents_paused(self) -> bool:
        """Paused as the agents last said, or as our own unacknowledged command will make them."""
        live = self.live
        cmd, status = self.last_command, self.command_status(live) if live else None
        if (cmd is not None and cmd.cmd in ("pause", "resume") and status is not None
                and status.error is None and status.ack_ms is None and not status.ack_message):
            return cmd.cmd == "pause"
        if live and live.agent_rows:
            return any(a.status == AGENT_PAUSED for a in live.agent_rows)
        return bool(live and any(a.paused for a in live.agents))

    def _send(self, cmd: str) -> None:
        self.send_error = None
        try:
            self.last_command = self.feed.send(cmd, origin="key")
        except Exception as exc:  # a failed send is shown in the header
            self.last_command = Command(id="-", ts=self.clock(), cmd=cmd)
            self.send_error = f"{type(exc).__name__}: {exc}"
            self.notify(clean(f"{cmd} not sent: {self.send_error}"), severity="error", markup=False)
        self.refresh_header()
        self.puller.wake()  # the command row (and soon its ack) shows without waiting a tick

    def _steerable(self, cmd: str) -> bool:
        """False (and says why) when every agent is watch-only: nothing could obey ``cmd``."""
        rows = self.live.agent_rows if self.live else ()
        watch = [r for r in rows if r.watch_only]
        if rows and len(watch) == len(rows):
            where = clean(watch[0].source or "its log")
            self.notify(f"cannot {cmd}: {plural(len(watch), 'agent is', 'agents are')} only watched "
                        f"(read from {where}). An agent CLI's own log or an OTLP sender has no control "
                        "channel; steer an agent that writes through flightdeck's Recorder.",
                        title="watch-only", severity="warning", markup=False, timeout=8)
            return False
        return True

    def action_toggle_pause(self) -> None:
        cmd = "resume" if self._agents_paused() else "pause"
        if self._steerable(cmd):
            self._send(cmd)

    def action_downgrade(self) -> None:
        if self._steerable("downgrade"):
            self._send("downgrade")

    def action_restore(self) -> None:
        if self._steerable("restore"):
            self._send("restore")

    def action_freeze(self) -> None:
        self.frozen = None if self.frozen is not None else self._pull()
        self.refresh_panels()

    def action_stage_window(self) -> None:
        self.stage_window = STAGE_WINDOWS[(STAGE_WINDOWS.index(self.stage_window) + 1) % len(STAGE_WINDOWS)]
        self.refresh_panels()

    def action_calls(self) -> None:
        if isinstance(self.screen, (CallsScreen, CallDetailScreen)):
            return  # already digging: c does not stack another table
        self.push_screen(CallsScreen(lambda: self.frozen or self._pull(), self.refresh_interval))

    def action_filter(self) -> None:
        self.push_screen(FilterScreen(self.filter_text), self._apply_filter)

    def _apply_filter(self, text: str | None) -> None:
        value = text or None
        try:
            self.feed.set_filter(value)
        except Exception as exc:  # a bad filter is reported, the old one stays
            self.notify(clean(f"filter not applied: {exc}"), severity="error", markup=False)
            return
        self.filter_text = value
        self.puller.wake()
        self.refresh_panels()

    def action_pick_theme(self) -> None:
        ours = list(self.theme_names)
        others = sorted(n for n in self.available_themes if n not in ours)
        self.push_screen(ThemePicker(ours + others, self.theme), self._apply_theme)

    def _apply_theme(self, name: str | None) -> None:
        if name:
            self.theme = name

    def action_help(self) -> None:
        self.push_screen(HelpScreen([(key, label, detail) for key, _, label, detail in KEYS]))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for key, action, label, detail in KEYS:
            if action == "quit":
                continue
            yield SystemCommand(f"{label} ({key})", detail, getattr(self, f"action_{action}"))
        for name in self.theme_names:
            short = name.removeprefix(THEME_PREFIX)
            yield SystemCommand(f"Theme: {short}", f"switch to the {short} theme",
                                lambda n=name: self._apply_theme(n))
        yield from super().get_system_commands(screen)


def run_cockpit(feed: Feed, *, theme: str | None = None) -> int:
    """Run the monitor in the terminal until the user quits; the exit status."""
    if theme is not None:
        problem = unknown_theme(theme)
        if problem is not None:
            print(f"flightdeck: {problem}", file=sys.stderr)
            return 2
    app = FlightdeckApp(feed, theme=theme)
    app.run()
    return app.return_code or 0
