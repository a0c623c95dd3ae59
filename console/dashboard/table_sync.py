"""Update widgets from a new sample writing only what changed: a DataTable from rows keyed by
name (only changed cells are written; the rows are rebuilt, cursor kept, only when the set or
order of keys changed), a Static only when its text differs (an update costs a re-render and
a layout even when equal)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable, Static

Cell = str | Text
Row = tuple[str, Sequence[Cell]]


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


def selected_key(table: DataTable[Cell]) -> str | None:
    if not table.row_count:
        return None
    try:
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    except Exception:
        return None
    return row_key.value


def sync_static(widget: Static, content: Text | str) -> None:
    if getattr(widget, "_synced", None) != content:
        widget._synced = content  # type: ignore[attr-defined]
        widget.update(content)
