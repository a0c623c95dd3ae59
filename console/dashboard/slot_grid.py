"""The slots tab: the 16384 slots as a grid, one cell per run of slots, coloured by the group
that owns them and shaded by one of two measures (``h`` switches):

- ``ops``: the operations per second the proxies routed to the cell's slots since the last
  poll (PROXY SLOTSTATS from every proxy, summed; sample.slot_rates), relative to the
  busiest cell: ``░`` none, then ``▒ ▓ █`` by thirds of the busiest;
- ``keys``: the owning group's keys per slot (INFO keyspace over its slot count), relative to
  the densest group (the servers do not count keys per slot without walking them).

Migrating slots are drawn as ``»`` in the target's colour. Below it, one panel per active
migration: progress bar, keys and bytes moved, rate, ETA."""

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
HEAT = ("ops", "keys")  # what the shade shows: ops/s per slot, keys per slot of the group
HEAT_LEGEND = {"ops": "ops/s per slot (proxies)", "keys": "keys per slot of the group"}
# the legend's line says which (h switches: the footer says so)


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


def cell_rates(rates: Mapping[int, float], per: int) -> list[float]:
    """ops/s per cell of ``per`` slots (the sum of its slots')."""
    sums = [0.0] * math.ceil(SLOT_COUNT / per)
    for slot, r in rates.items():
        if 0 <= slot < SLOT_COUNT:
            sums[slot // per] += r
    return sums


def rate_levels(sums: Sequence[float]) -> list[int]:
    """A shade per cell: 0 for none, else 1-3 by thirds of the busiest cell."""
    top = max(sums, default=0.0)
    last = len(SHADES) - 1
    return [0 if s <= 0 else 1 + min(last - 1, int(s / top * last)) for s in sums]


def slots_per_cell(cells: int) -> int:
    """Slots in a cell for the grid to fit in ``cells`` cells."""
    return max(1, math.ceil(SLOT_COUNT / max(1, cells)))


def grid_cells(
    owners: Sequence[int | None],
    targets: Mapping[int, int],
    load: Mapping[int, float],
    cells: int,
    levels: Sequence[int] | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """(slots per cell, [(char, style)]) for at most ``cells`` cells. A cell takes its first
    slot's owner; one migrating slot makes the whole cell show the move. The shade is
    ``levels`` (one per cell, rate_levels) when given, else the owner's ``load`` (0..1)."""
    per = slots_per_cell(cells)
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
        if levels is not None:
            shade = SHADES[levels[start // per]]
        else:
            shade = SHADES[min(len(SHADES) - 1, int(load.get(owner, 0.0) * len(SHADES)))]
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
        self.heat = HEAT[0]
        self.rates: Mapping[int, float] | None = None
        self._rates_version = 0  # one more for each new rates mapping
        # (rates version, slots per cell) -> the cells' shades and the busiest cell's rate
        self._ops: tuple[tuple[int, int], tuple[int, ...], float] | None = None
        self._shown: tuple[object, ...] | None = None  # what the strips were made from
        self._strips: list[Strip] = []
        self._styles: dict[str, Style] = {}

    def _levels(self, load: Mapping[int, float]) -> tuple[tuple[int, int], ...]:
        """The shade of each group (what the grid shows of the load)."""
        n = len(SHADES)
        return tuple(sorted((g, min(n - 1, int(v * n))) for g, v in load.items()))

    def _ops_view(self, width: int) -> tuple[tuple[int, ...], float]:
        """Each cell's shade by ops/s at this width, and the busiest cell's rate (made once
        per new rates and width)."""
        per = slots_per_cell(width * self.rows_for(width))
        if self._ops is None or self._ops[0] != (self._rates_version, per):
            sums = cell_rates(self.rates or {}, per)
            self._ops = (
                (self._rates_version, per),
                tuple(rate_levels(sums)),
                max(sums, default=0.0),
            )
        return self._ops[1], self._ops[2]

    def _look(self, width: int) -> tuple[object, ...]:
        """What the strips show besides the width: the slot map and the shades' source."""
        slots = self.topology.slots if self.topology is not None else None
        if self.heat == "ops":
            # the shades and the legend's figure: new rates that look the same redraw nothing
            levels, top = self._ops_view(width)
            return (slots, "ops", self.rates is None, levels, human_count(top))
        return (slots, "keys", self._levels(self.load))

    def set(
        self,
        topology: Topology | None,
        load: dict[int, float],
        rates: Mapping[int, float] | None = None,
        heat: str = HEAT[0],
    ) -> None:
        self.topology = topology
        self.load = load
        self.heat = heat
        if rates is not self.rates:
            self.rates = rates
            self._rates_version += 1
        width = max(1, self.content_size.width)
        if self._shown is None or (*self._look(width), width) != self._shown:
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
        levels: tuple[int, ...] | None = None
        top = 0.0
        if self.heat == "ops":
            levels, top = self._ops_view(width)
        per, cells = grid_cells(
            topo.slots.owners(), topo.slots.targets(), self.load, width * rows, levels
        )
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
        shade = HEAT_LEGEND[self.heat]
        if self.heat == "ops":
            if self.rates is None:
                shade += ": no rate yet (two polls of a proxy)"
            else:
                shade += f", {SHADES[-1]} {human_count(top)}/s a cell" if top else ": none"
        scale = (
            f"1 cell = {per} slot{'s' if per > 1 else ''}; shade = {shade}; "
            f"{MOVING} migrating (target's colour); {UNASSIGNED} unassigned"
        )
        strips.append(Strip([Segment(scale, self._style(DIM))]))
        return strips

    def render_line(self, y: int) -> Strip:
        width = max(1, self.content_size.width)
        key = (*self._look(width), width)
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

    def show(self, sample: ClusterSample, heat: str = HEAT[0]) -> None:
        self.query_one(SlotGrid).set(sample.topology, group_load(sample), sample.slot_ops, heat)
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
