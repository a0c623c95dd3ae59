"""A table of keyed rows drawn line by line from strips: the overview, replication and nodes
tabs' tables.

Textual's DataTable renders every changed cell through Rich's console each refresh; with 100
nodes every row changes each refresh (ops/s, sparklines) and that rendering was 50-90 ms of a
refresh (cProfile: ``DataTable._render_cell``). Here a row becomes one ``Strip`` made from its
cells' plain text and styles (only a cell with several styles goes through Rich), made again
only when one of its cells or a column's width changed, and only when it is on screen; zebra
stripes and the cursor are a style laid under the cached strip. A header line stays on top
while the rows scroll.

Keys: up/down, page up/down, home/end move the cursor; Enter (or a click on the cursor's
row) posts ``RowTable.RowSelected`` with the row's key. The cursor stays on its row's key when
rows come and go (or at its index when that key is gone).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
Row = tuple[str, Sequence[Cell]]

PAD = 1  # blank cells either side of a column's text


class RowTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor", "row-table--even-row"}
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .row-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .row-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .row-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .row-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .row-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .row-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "up", show=False),
        Binding("down", "cursor(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home", "cursor(-1000000)", "first", show=False),
        Binding("end", "cursor(1000000)", "last", show=False),
        Binding("enter", "select", "select", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False, init=False)

    class RowSelected(Message):
        """Enter (or a click) on a row."""

        def __init__(self, table: RowTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, *columns: str, id: str | None = None, zebra_stripes: bool = True) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.zebra_stripes = zebra_stripes
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._index: dict[str, int] = {}
        self._widths = tuple(cell_len(c) for c in columns)
        # a row's runs of text (no background), and its last screen line
        self._row_runs: dict[str, tuple[list[tuple[str, Style | None]], int]] = {}
        self._lines: dict[str, tuple[tuple[str, tuple[int, int]], Strip]] = {}
        self._header: Strip | None = None
        self._header_view: tuple[int, int] = (0, 0)
        self._looks: dict[str, Style] | None = None
        self._styles: dict[str, Style] = {}
        self._update_size()

    # -- data ----------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def get_row(self, key: str) -> list[Cell]:
        return list(self._cells[key])

    @property
    def selected_key(self) -> str | None:
        if not self._keys:
            return None
        return self._keys[min(self.cursor_row, len(self._keys) - 1)]

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Show ``rows`` (in this order): a row whose cells are the same keeps its line."""
        keys = [k for k, _ in rows]
        cursor_key = self.selected_key
        changed: list[int] = []
        cells: dict[str, tuple[Cell, ...]] = {}
        for i, (key, row) in enumerate(rows):
            new = tuple(row)
            cells[key] = new
            if self._cells.get(key) != new:
                self._row_runs.pop(key, None)
                self._lines.pop(key, None)
                changed.append(i)
        widths = self._measure(cells.values())
        if widths != self._widths:
            self._widths = widths
            self._row_runs.clear()
            self._lines.clear()
            self._header = None
        for gone in set(self._cells) - set(cells):
            self._row_runs.pop(gone, None)
            self._lines.pop(gone, None)
        self._cells = cells
        if keys != self._keys:
            self._keys = keys
            self._index = {k: i for i, k in enumerate(keys)}
            if keys:
                where = self._index.get(cursor_key or "", min(self.cursor_row, len(keys) - 1))
                self.cursor_row = where
                self._scroll_to_cursor()
            self._lines.clear()  # rows moved: their stripes did too
            self._update_size()
            self.refresh()
        elif self._header is None:
            self._update_size()
            self.refresh()
        elif changed:  # only the lines of changed rows, as one region
            self.refresh_lines(changed[0] + 1, changed[-1] - changed[0] + 1)

    def _measure(self, rows: Iterable[tuple[Cell, ...]]) -> tuple[int, ...]:
        widths = [cell_len(c) for c in self.columns]
        n = len(widths)
        for row in rows:
            for i, cell in enumerate(row[:n]):
                if isinstance(cell, Text):
                    w = cell.cell_len
                else:
                    w = len(cell) if cell.isascii() else cell_len(cell)
                if w > widths[i]:
                    widths[i] = w
        return tuple(widths)

    def _update_size(self) -> None:
        width = sum(w + 2 * PAD for w in self._widths)
        self.virtual_size = Size(width, len(self._keys) + 1)

    # -- drawing -------------------------------------------------------------------------------

    def _style(self, name: str | Style) -> Style:
        if isinstance(name, Style):
            return name
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(name) if name else Style()
        return style

    def _row_styles(self) -> dict[str, Style]:
        """The base, header, cursor and stripe styles (the theme's; made again when the
        styles or the focus change)."""
        if self._looks is None:
            base = self.rich_style
            self._looks = {
                "base": base,
                "header": base + self.get_component_rich_style("row-table--header"),
                "cursor": base + self.get_component_rich_style("row-table--cursor"),
                "even": base + self.get_component_rich_style("row-table--even-row"),
            }
        return self._looks

    def _runs(self, cells: Sequence[Cell]) -> tuple[list[tuple[str, Style | None]], int]:
        """A row as runs of (text, style or None for plain), padded to the columns' widths,
        plain ASCII runs merged; and its length in cells."""
        runs: list[tuple[str, Style | None]] = []
        plain: list[str] = []
        pad = " " * PAD
        for i, width in enumerate(self._widths):
            cell = cells[i] if i < len(cells) else ""
            if isinstance(cell, str):
                if cell.isascii():
                    plain.append(pad + cell + " " * (width - len(cell)) + pad)
                    continue
                # a run of its own: measuring text that is not ASCII costs per character,
                # and Textual measures every run again when it cuts the line
                runs.append(("".join(plain) + pad, None))
                runs.append((cell, None))
                plain = [" " * (width - cell_len(cell)) + pad]
                continue
            fill = " " * (width - cell.cell_len) + pad
            if not cell.spans and not cell.style:
                plain.append(pad + cell.plain + fill)
                continue
            plain.append(pad)
            runs.append(("".join(plain), None))
            plain = [fill]
            runs.extend(self._text_runs(cell))
        runs.append(("".join(plain), None))
        return runs, sum(w + 2 * PAD for w in self._widths)

    def _text_runs(self, text: Text) -> list[tuple[str, Style | None]]:
        """A Text's runs: its spans over its own style when they do not overlap (what the
        tabs make: ``Text.assemble``, ``Text.join``), else as Rich renders it."""
        base = self._style(text.style)
        plain = text.plain
        spans = sorted(text.spans, key=lambda s: s.start)
        if any(a.end > b.start for a, b in itertools.pairwise(spans)):
            return [(s.text, s.style) for s in text.render(self.app.console) if s.text != "\n"]
        out: list[tuple[str, Style | None]] = []
        at = 0
        for span in spans:
            if span.start > at:
                out.append((plain[at : span.start], base))
            if span.end > span.start:
                out.append((plain[span.start : span.end], base + self._style(span.style)))
            at = max(at, span.end)
        if at < len(plain):
            out.append((plain[at:], base))
        return out

    def _line(self, runs: list[tuple[str, Style | None]], length: int, style: Style) -> Strip:
        """One screen line: the runs over ``style``, cropped or filled to the view."""
        segments = [Segment(t, style if s is None else style + s) for t, s in runs if t]
        width = self.scrollable_content_region.width
        x = int(self.scroll_offset.x)
        if x == 0 and length <= width:
            if length < width:
                segments.append(Segment(" " * (width - length), style))
            return Strip(segments, width)
        return Strip(segments, length).crop_extend(x, x + width, style)

    def render_line(self, y: int) -> Strip:
        looks = self._row_styles()
        view = (int(self.scroll_offset.x), self.scrollable_content_region.width)
        if y == 0:
            if self._header is None or self._header_view != view:
                runs, length = self._runs(self.columns)
                self._header = self._line(runs, length, looks["header"])
                self._header_view = view
            return self._header
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._keys):
            return Strip.blank(view[1], looks["base"])
        if index == self.cursor_row:
            kind = "cursor"
        elif self.zebra_stripes and index % 2 == 0:  # as DataTable stripes them
            kind = "even"
        else:
            kind = "base"
        key = self._keys[index]
        cached = self._lines.get(key)
        if cached is not None and cached[0] == (kind, view):
            return cached[1]
        made = self._row_runs.get(key)
        if made is None:
            made = self._row_runs[key] = self._runs(self._cells[key])
        line = self._line(made[0], made[1], looks[kind])
        self._lines[key] = ((kind, view), line)
        return line

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_looks()

    def _forget_looks(self) -> None:
        self._looks = None
        self._header = None
        self._lines.clear()

    def on_focus(self) -> None:
        self._forget_looks()
        self.refresh()

    def on_blur(self) -> None:
        self._forget_looks()
        self.refresh()

    # -- cursor --------------------------------------------------------------------------------

    def watch_cursor_row(self, old: int, new: int) -> None:
        for row in (old, new):
            self.refresh_line(row + 1)

    def move_cursor(self, row: int) -> None:
        if self._keys:
            self.cursor_row = max(0, min(row, len(self._keys) - 1))
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_select(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if row >= len(self._keys):
            return
        if row == self.cursor_row:
            self.action_select()
        else:
            self.move_cursor(row)
