"""The panel base class and the ``View`` every panel renders from.

A panel is a ``Static`` whose content is rebuilt from a ``View`` on the app's
timer. Two rules keep the screen cheap and robust:

- A panel only calls ``update`` when its text actually changed, so an idle
  feed costs no layout or repaint.
- An exception while building a panel is caught and shown *in that panel*:
  one bad figure must not take the cockpit down, and the other panels keep
  updating.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from flightdeck.cockpit.format import Palette, clean
from flightdeck.core.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class CommandStatus:
    """The last command sent from a key, and what became of it."""

    cmd: str
    id: str
    sent_at: float
    ack_ms: float | None = None
    ack_message: str | None = None
    error: str | None = None  # the send itself failed


@dataclass(frozen=True, slots=True)
class View:
    """Everything a panel may draw: the snapshot shown plus the app's own state."""

    snap: Snapshot  # the snapshot on screen (the frozen one while frozen)
    live: Snapshot  # the newest snapshot, for counts that go on while frozen
    now: float  # wall clock
    palette: Palette
    compact: bool = False  # the small-terminal layout: some panels are hidden
    frozen: bool = False
    filter_text: str | None = None
    command: CommandStatus | None = None
    feed_error: str | None = None
    stage_window: int = 300  # seconds of the stages panel's window; 0: the whole run


class Panel(Static):
    """A bordered panel that renders a ``View`` and survives its own bugs."""

    TITLE = ""
    # Size to the text's line count (the header). Set as a style, because a
    # layout requested from inside a resize can be dropped by Textual's
    # layout pass, leaving an ``height: auto`` widget at a stale height.
    FIT_HEIGHT = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.border_title = self.TITLE
        self._view: View | None = None
        self._shown: Text | None = None
        self.failures = 0

    @property
    def text_width(self) -> int:
        """Usable cells per line; a guess before the first layout."""
        width = self.content_size.width
        return width if width > 0 else 38

    @property
    def text_height(self) -> int:
        height = self.content_size.height
        return height if height > 0 else 5

    def show(self, view: View) -> None:
        """Rebuild from ``view``; update the screen only if the text changed."""
        self._view = view
        if not self.content_size.width and self.display:
            return  # not laid out yet: on_resize builds it at the real width
        try:
            text = self.build(view)
        except Exception as exc:  # any bug here must stay in this panel
            self.failures += 1
            text = Text(end="")
            text.append("✗ this panel failed: ", style=f"bold {view.palette.bad}")
            text.append(clean(f"{type(exc).__name__}: {exc}"), style=view.palette.bad)
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)  # panels have fixed cells; the header sets its height
            if self.FIT_HEIGHT:
                lines = text.plain.count("\n") + 1
                if self.styles.height is None or self.styles.height.value != lines:
                    self.styles.height = lines

    def on_resize(self) -> None:
        # Layouts depend on the width: rebuild at the new size, after this
        # layout pass (a refresh requested inside it would be lost).
        if self._view is not None:
            self.call_after_refresh(self._reshow)

    def _reshow(self) -> None:
        if self._view is not None:
            self.show(self._view)

    def build(self, view: View) -> Text:
        raise NotImplementedError
