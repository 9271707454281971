"""``t``: pick a theme from those loaded (flightdeck's first)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from flightdeck.cockpit.themes import THEME_PREFIX


class ThemePicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, names: list[str], current: str) -> None:
        super().__init__()
        self._names = names
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="theme-box"):
            yield Static("Theme", classes="modal-title")
            # Ours by the name `--theme` takes (dark, not flightdeck-dark).
            yield OptionList(*[Option(Text(name.removeprefix(THEME_PREFIX)), id=name) for name in self._names],
                             id="theme-list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self._current in self._names:
            options.highlighted = self._names.index(self._current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
