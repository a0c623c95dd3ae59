"""The slots tab: the 16384 slots as a grid, one cell per run of slots, coloured by the group
that owns them, shaded by how loaded that group's slots are (keys per slot, relative to the
busiest group); migrating slots drawn as ``»`` in the target's colour. Below it, one panel per
active migration: progress bar, keys and bytes moved, rate, ETA."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import ProgressBar, Static

from stack.cluster.model import MigrationTask, Topology, compress_slots, format_ranges
from stack.core.slots import SLOT_COUNT

from .sample import ClusterSample
from .style import DIM, group_colour
from .table_sync import sync_static
from .units import human_bytes, human_count, human_duration

SHADES = "░▒▓█"
MOVING = "»"
UNASSIGNED = "·"


def group_load(sample: ClusterSample) -> dict[int, float]:
    """Each group's keys per slot, scaled to 0..1 by the densest group."""
    topo = sample.topology
    if topo is None:
        return {}
    counts = topo.slots.counts()
    density: dict[int, float] = {}
    for gid, g in topo.groups.items():
        n = sample.nodes.get(g.master)
        if n is not None and counts.get(gid):
            density[gid] = n.keys / counts[gid]
    top = max(density.values(), default=0.0)
    return {g: (d / top if top else 0.0) for g, d in density.items()}


def grid_cells(
    owners: Sequence[int | None],
    targets: Mapping[int, int],
    load: Mapping[int, float],
    cells: int,
) -> tuple[int, list[tuple[str, str]]]:
    """(slots per cell, [(char, style)]) for at most ``cells`` cells. A cell takes its first
    slot's owner; one migrating slot makes the whole cell show the move."""
    per = max(1, math.ceil(SLOT_COUNT / max(1, cells)))
    out: list[tuple[str, str]] = []
    moving = sorted(targets)
    mi = 0
    for start in range(0, SLOT_COUNT, per):
        end = min(SLOT_COUNT, start + per)
        while mi < len(moving) and moving[mi] < start:
            mi += 1
        if mi < len(moving) and moving[mi] < end:
            target = targets[moving[mi]]
            out.append((MOVING, f"bold {group_colour(target)}"))
            continue
        owner = owners[start]
        if owner is None:
            out.append((UNASSIGNED, DIM))
            continue
        level = load.get(owner, 0.0)
        shade = SHADES[min(len(SHADES) - 1, int(level * len(SHADES)))]
        out.append((shade, group_colour(owner)))
    return per, out


class SlotGrid(Widget):
    """The heatmap; it fills the space it is given. Drawn line by line from strips that are
    made again only when what they show changed (the slot map, a group's shade, the width):
    a refresh with the same slots costs nothing here."""

    DEFAULT_CSS = "SlotGrid { height: auto; }"

    def __init__(self, *, id: str | None = None, max_rows: int = 16) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self.topology: Topology | None = None
        self.load: dict[int, float] = {}
        self._shown: tuple[object, ...] | None = None  # what the strips were made from
        self._strips: list[Strip] = []
        self._styles: dict[str, Style] = {}

    def _levels(self, load: Mapping[int, float]) -> tuple[tuple[int, int], ...]:
        """The shade of each group (what the grid shows of the load)."""
        n = len(SHADES)
        return tuple(sorted((g, min(n - 1, int(v * n))) for g, v in load.items()))

    def set(self, topology: Topology | None, load: dict[int, float]) -> None:
        self.topology = topology
        self.load = load
        slots = topology.slots if topology is not None else None
        if (slots, self._levels(load)) != (self._shown or (None, None, 0))[:2]:
            self.refresh()

    def rows_for(self, width: int) -> int:
        """Grid lines at this width: as few as hold every slot in at most ``max_rows``."""
        per = max(1, math.ceil(SLOT_COUNT / (max(1, width) * self.max_rows)))
        return math.ceil(math.ceil(SLOT_COUNT / per) / max(1, width))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.rows_for(width) + 1  # the last line says the scale

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = Style.parse(name)
        return style

    def _make(self, width: int) -> list[Strip]:
        topo = self.topology
        if topo is None:
            return [Strip([Segment("no topology yet", self._style(DIM))])]
        rows = self.rows_for(width)
        per, cells = grid_cells(topo.slots.owners(), topo.slots.targets(), self.load, width * rows)
        strips = []
        for i in range(0, len(cells), width):
            segments: list[Segment] = []
            run, run_style = "", ""
            for char, style in cells[i : i + width]:  # a run of one look is one segment
                if style != run_style and run:
                    segments.append(Segment(run, self._style(run_style)))
                    run = ""
                run, run_style = run + char, style
            if run:
                segments.append(Segment(run, self._style(run_style)))
            strips.append(Strip(segments))
        scale = (
            f"one cell = {per} slot{'s' if per > 1 else ''}; shade = keys per slot; "
            f"{MOVING} = migrating (target's colour), {UNASSIGNED} = unassigned"
        )
        strips.append(Strip([Segment(scale, self._style(DIM))]))
        return strips

    def render_line(self, y: int) -> Strip:
        width = max(1, self.content_size.width)
        slots = self.topology.slots if self.topology is not None else None
        key = (slots, self._levels(self.load), width)
        if key != self._shown:
            self._strips = self._make(width)
            self._shown = key
        if y >= len(self._strips):
            return Strip.blank(width)
        return self._strips[y].crop(0, width)


def legend(sample: ClusterSample) -> Text:
    topo = sample.topology
    if topo is None:
        return Text("")
    counts = topo.slots.counts()
    out = Text()
    for gid in sorted(topo.groups):
        ranges = [(r.start, r.end) for r in topo.slots.ranges if r.group == gid]
        text = format_ranges(ranges)
        if len(text) > 30:
            text = text[:27] + "..."
        out.append("██ ", group_colour(gid))
        out.append(f"group {gid}: {counts.get(gid, 0)} slots ({text or '-'})   ")
    if topo.slots.unassigned():
        out.append(f"{UNASSIGNED} unassigned: {topo.slots.unassigned()}", DIM)
    return out


def task_line(t: MigrationTask) -> Text:
    flying = t.in_flight()
    slot = (
        f", {format_ranges(compress_slots(flying))} in flight"
        if len(flying) > 1
        else (f", slot {t.current} in flight" if t.current is not None else "")
    )
    out = Text.assemble(
        (t.id, "bold"),
        f"  group {t.source} ",
        ("→", group_colour(t.target)),
        f" {t.target}  {t.state}  {t.percent:.0f}% ({t.slots_done}/{t.slots_total} slots{slot})",
    )
    out.append(
        f"\n  keys {human_count(t.keys_moved)}  bytes {human_bytes(t.bytes_moved)}  "
        f"rate {human_count(t.rate_keys)} keys/s  ETA {human_duration(t.eta_s)}"
    )
    if t.error:
        out.append(f"\n  error: {t.error}", "bold red")
    return out


class MigrationPanel(Vertical):
    """One task: its line and a progress bar (no ETA from the bar: the task's own is shown)."""

    DEFAULT_CSS = "MigrationPanel { height: auto; }"

    def __init__(self, task: MigrationTask) -> None:
        super().__init__(id=f"task-{task.id}", classes="migration")
        self.task_doc = task

    def compose(self) -> ComposeResult:
        yield Static(task_line(self.task_doc), classes="task-line")
        yield ProgressBar(total=self.task_doc.slots_total, show_eta=False)

    def on_mount(self) -> None:
        self.update_task(self.task_doc)

    def update_task(self, task: MigrationTask) -> None:
        self.task_doc = task
        sync_static(self.query_one(".task-line", Static), task_line(task))
        bar = self.query_one(ProgressBar)
        if (bar.total, bar.progress) != (task.slots_total, task.slots_done):
            bar.update(total=task.slots_total, progress=task.slots_done)


class SlotsPane(Vertical):
    def compose(self) -> ComposeResult:
        yield SlotGrid(id="slot-grid")
        yield Static(id="slot-legend")
        yield VerticalScroll(id="migrations")

    def show(self, sample: ClusterSample) -> None:
        self.query_one(SlotGrid).set(sample.topology, group_load(sample))
        sync_static(self.query_one("#slot-legend", Static), legend(sample))
        box = self.query_one("#migrations", VerticalScroll)
        tasks = (
            sorted(sample.topology.active_migrations(), key=lambda t: (t.created, t.id))
            if sample.topology
            else []
        )
        have = {p.task_doc.id: p for p in box.query(MigrationPanel)}
        want = {t.id for t in tasks}
        for tid, panel in have.items():
            if tid not in want:
                panel.remove()
        for t in tasks:
            if t.id in have:
                have[t.id].update_task(t)
            else:
                box.mount(MigrationPanel(t))
        if box.display != bool(tasks):
            box.display = bool(tasks)
