"""``/``: filter the figures by agent, run, model or step."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

HINT = "agent:NAME  run:ID  model:NAME  name:STEP  or any text · enter applies · escape clears"


class FilterScreen(ModalScreen[str | None]):
    """Returns the filter text (Enter), or "" to clear it (Escape)."""

    BINDINGS = [Binding("escape", "clear", "Clear filter", show=False)]

    def __init__(self, current: str | None, *, title: str = "Filter", hint: str = HINT) -> None:
        super().__init__()
        self._current = current or ""
        self._title = title
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static(self._title, classes="modal-title", markup=False)
            yield Input(value=self._current, placeholder="e.g. model:claude-3-5-sonnet", id="filter-input")
            yield Static(self._hint, classes="modal-hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_clear(self) -> None:
        self.dismiss("")
