"""The events tab: the controller's and the console's sentences, newest first, filterable
(every word typed must appear in the source, kind or text)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input

from stack.cluster.model import Event

from .sample import ClusterSample
from .style import BAD, DIM
from .table_sync import Row, sync_rows
from .units import human_duration


def matches(e: Event, words: Sequence[str]) -> bool:
    hay = f"{e.source} {e.kind} {e.text}".lower()
    return all(w in hay for w in words)


def event_rows(events: Sequence[Event], now: float, query: str) -> list[Row]:
    words = query.lower().split()
    rows: list[Row] = []
    for e in sorted(events, key=lambda e: (e.revision, e.ts), reverse=True):
        if not matches(e, words):
            continue
        style = BAD if e.kind in ("failover", "fence", "error") else ""
        rows.append(
            (
                e.id or f"{e.revision}",
                [
                    Text(f"{human_duration(now - e.ts)} ago", DIM),
                    Text(f"{e.source}/{e.kind}", style or "bold"),
                    Text(e.text, style),
                ],
            )
        )
    return rows


class EventsPane(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sample: ClusterSample | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter events: words in source, kind or text", id="event-filter")
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#events", DataTable).add_columns("when", "who/what", "event")

    def show(self, sample: ClusterSample) -> None:
        self.sample = sample
        self._refill()

    def _refill(self) -> None:
        if self.sample is None:
            return
        query = self.query_one("#event-filter", Input).value
        sync_rows(
            self.query_one("#events", DataTable),
            event_rows(self.sample.events, self.sample.ts, query),
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "event-filter":
            self._refill()
