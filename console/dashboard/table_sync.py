"""Update widgets from a new sample writing only what changed: a DataTable (the events tab;
the node tables are ``RowTable``s, row_table.py) from rows keyed by name (only changed cells
are written; the rows are rebuilt, cursor kept, only when the set or order of keys changed),
a Static only when its text differs (an update costs a re-render and a layout even when
equal)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable, Static

from .row_table import Cell, Row


def sync_rows(table: DataTable[Cell], rows: Sequence[Row]) -> None:
    keys = [k for k, _ in rows]
    current = [rk.value for rk in table.rows]
    if current != keys:
        cursor = table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if rows:
            table.move_cursor(row=max(0, min(cursor, len(rows) - 1)), animate=False)
        return
    columns = list(table.columns)
    for key, cells in rows:
        for col, value in zip(columns, cells, strict=False):
            if table.get_cell(key, col) != value:
                table.update_cell(key, col, value)


def _fits(content: Text | str | None, width: int) -> tuple[int, bool]:
    """(lines, whether each fits in ``width`` unwrapped)."""
    if content is None:
        return -1, False
    lines = (content.plain if isinstance(content, Text) else content).split("\n")
    return len(lines), max(map(len, lines)) <= width


def sync_static(widget: Static, content: Text | str, *, fixed_height: bool = False) -> None:
    """Update ``widget`` when ``content`` differs, with no layout when its height cannot have
    changed (``fixed_height``, or as many lines as before, none of them wrapped): a layout
    repaints the whole screen, 10 ms with 100 nodes on screen."""
    old = getattr(widget, "_synced", None)
    if old != content:
        widget._synced = content  # type: ignore[attr-defined]
        width = widget.content_size.width
        before, after = _fits(old, width), _fits(content, width)
        same = fixed_height or (before[0] == after[0] and before[1] and after[1])
        widget.update(content, layout=not same)
