"""``?``: every key of the cockpit, from the app's own bindings."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"space": "space", "slash": "/", "question_mark": "?"}


def key_label(key: str) -> str:
    return KEY_NAMES.get(key, key)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, bindings: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self._rows = bindings  # (key, description, what it does)

    def compose(self) -> ComposeResult:
        text = Text(end="")
        text.append("Keys\n\n", style="bold")
        for key, description, detail in self._rows:
            text.append(f"{key_label(key):>7}  ", style="bold")
            text.append(description)
            if detail:
                text.append(f" — {detail}", style="dim")
            text.append("\n")
        text.append("\nctrl+p opens the command palette; escape closes this.", style="dim")
        with Vertical(id="help-box"):
            yield Static(text, markup=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
