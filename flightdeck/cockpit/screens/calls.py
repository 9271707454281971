"""``c``: every recent call in a table you can scroll, sort and filter; Enter opens one.

The rows are the snapshot's recent calls (the engine keeps the last
thousand that pass the ``/`` filter). The table follows new calls as they
arrive, keeping the cursor on the call it was on. Every cell is a ``Text``
built with ``literal``: a model name from a log is never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from flightdeck.cockpit.format import Level, Palette, clean, clock_time, count, literal, ms, plural, shorten, usd
from flightdeck.cockpit.screens.call_detail import CallDetailScreen
from flightdeck.cockpit.screens.filter import FilterScreen
from flightdeck.core.snapshot import CallRow, Snapshot


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    key: Callable[[CallRow], float]


def _cost(row: CallRow) -> float:
    return float(row.cost_usd) if row.cost_usd is not None else -1.0  # unknown sorts below $0 (float only to order)


# Newest, dearest, slowest first.
SORTS: tuple[SortKey, ...] = (
    SortKey("time", lambda r: r.ts),
    SortKey("cost", _cost),
    SortKey("latency", lambda r: r.total_ms if r.total_ms is not None else -1.0),
)
# The sort keys (cost, latency) come early: at 80 columns the rightmost scroll into view.
COLUMNS = ("time", "step", "model", "cost", "latency", "in", "out", "agent", "status")
FILTER_HINT = "text in the agent, run, step, model, provider, error or prompt hash · enter applies · escape clears"


def call_key(row: CallRow) -> str:
    """A row's identity in the table: the event id (unique after dedupe)."""
    return row.id or f"{row.ts}:{row.run}:{row.agent}:{row.model}"


def matches(row: CallRow, text: str) -> bool:
    """Case-insensitive substring match on the fields a person would type."""
    needle = text.lower()
    fields = (row.agent, row.run, row.name, row.model, row.provider, row.error, row.prompt_hash, row.route)
    return any(f is not None and needle in f.lower() for f in fields)


def cells(row: CallRow, p: Palette, width: int = 160) -> tuple[Text, ...]:
    """The table cells of one call, log strings literal, names cut to fit ``width`` columns."""
    name_w = 10 if width < 100 else 18
    model_w = 16 if width < 100 else 28
    status = (literal(f"{Level.BAD.symbol} {row.error}", f"bold {p.bad}") if row.error
              else literal(f"{Level.WARN.symbol} unpriced", p.warn) if row.cost_usd is None
              else literal("ok", p.dim))
    prompt = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
    return (
        Text(clock_time(row.ts), style=p.dim),
        literal(shorten(clean(row.name or "·"), name_w), "bold"),
        literal(shorten(clean(row.model), model_w)),
        Text(usd(row.cost_usd, unknown="?"), justify="right", style=p.warn if row.cost_usd is None else ""),
        Text(ms(row.total_ms), justify="right"),
        Text(count(prompt), justify="right"),
        Text(count(row.output_tokens), justify="right"),
        literal(shorten(clean(row.agent or "·"), name_w)),
        status,
    )


class CallsScreen(Screen[None]):
    """The calls table. ``s`` changes the sort, ``r`` reverses it, ``/`` filters, Enter opens a call."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("q", "close", "Back", show=False),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse"),
        Binding("slash", "filter", "Filter"),
        Binding("enter", "open", "Open", show=False),
    ]

    def __init__(self, pull: Callable[[], Snapshot], refresh_interval: float = 0.25) -> None:
        super().__init__()
        self._pull = pull
        self._refresh_interval = refresh_interval
        self.sort = SORTS[0]
        self.descending = True
        self.filter_text = ""
        self.rows: list[CallRow] = []
        self._shown: Snapshot | None = None
        self._shown_key: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(id="calls-title", markup=False)
        table: DataTable[Text] = DataTable(id="calls-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        self.reload()
        table.focus()
        self.set_interval(self._refresh_interval, self.reload)

    def reload(self, *, force: bool = False) -> None:
        """Rows from the newest snapshot, sorted and filtered, the cursor kept on its call."""
        snap = self._pull()
        key = (snap, self.sort.name, self.descending, self.filter_text)
        if not force and len(key) == len(self._shown_key) and key[0] is self._shown_key[0] \
                and key[1:] == self._shown_key[1:]:
            return
        self._shown_key = key
        rows = [r for r in snap.recent if not self.filter_text or matches(r, self.filter_text)]
        rows.sort(key=self.sort.key, reverse=self.descending)
        self.rows = rows
        table = self.query_one(DataTable)
        current = None
        if table.row_count and table.cursor_row < table.row_count:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        get_palette = getattr(self.app, "palette", None)
        palette = get_palette() if callable(get_palette) else Palette()
        for row in rows:
            table.add_row(*cells(row, palette, self.size.width), key=call_key(row))
        if current is not None:
            try:
                table.move_cursor(row=table.get_row_index(current), animate=False)
            except Exception:  # the call scrolled out of the recent list: stay where the index was
                pass
        self._title(snap)

    def _title(self, snap: Snapshot) -> None:
        arrow = "↓" if self.descending else "↑"
        title = Text(end="", no_wrap=True)
        title.append("Calls ", style="bold")
        title.append(f"{len(self.rows)} of {plural(len(snap.recent), 'recent call')}", style="dim")
        title.append(f" · sorted by {self.sort.name} {arrow}")
        if self.filter_text:
            title.append(" · filter ")
            title.append_text(literal(self.filter_text, "bold"))
        title.append(" · enter opens one", style="dim")
        self.query_one("#calls-title", Static).update(title)

    def selected(self) -> CallRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = True
        self.reload(force=True)

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.reload(force=True)

    def action_filter(self) -> None:
        self.app.push_screen(FilterScreen(self.filter_text, title="Filter calls", hint=FILTER_HINT),
                             self._set_filter)

    def _set_filter(self, text: str | None) -> None:
        self.filter_text = (text or "").strip()
        self.reload(force=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            # The app may bring its own re-pricing (tests pin it); else today's rates.
            audit = getattr(self.app, "reprice", None)
            self.app.push_screen(CallDetailScreen(row, audit) if callable(audit) else CallDetailScreen(row))

    def action_close(self) -> None:
        self.dismiss(None)
