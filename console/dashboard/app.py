"""The dashboard app: five tabs over one stream of samples, a node's detail, and the actions.

A worker takes a sample from the source (live, recording or fake), shows it, and waits the
interval before the next one: the next poll starts only once the last one ended, and ``p``
pauses. Every screen renders from the last sample only, so nothing on screen waits on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from stack.cluster.model import Topology

from ..config import ClusterSettings
from . import actions
from .action_screen import ActionScreen
from .events_pane import EventsPane
from .history import History
from .node_detail import NodeDetailScreen
from .nodes_pane import NodesPane
from .overview import OverviewPane
from .poller import SampleSource
from .recording import Recorder, ReplaySource
from .replication import ReplicationPane
from .row_table import RowTable
from .sample import ClusterSample
from .slot_grid import HEAT, SlotsPane
from .table_sync import sync_static
from .task_host import TaskHost

log = logging.getLogger(__name__)

TABS = ("overview", "slots", "replication", "nodes", "events")
DEFAULT_THEME = "textual-dark"


class PickerScreen(ModalScreen[str | None]):
    """The list of actions (the command palette lists them too)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "close")]

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = list(names)

    def compose(self) -> ComposeResult:
        yield OptionList(
            *(Option(f"{actions.ACTIONS[n].title}  ({n})", id=n) for n in self.names), id="picker"
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class Dashboard(App[int]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "ledis-console"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("1", "tab('overview')", "overview"),
        Binding("2", "tab('slots')", "slots"),
        Binding("3", "tab('replication')", "replication"),
        Binding("4", "tab('nodes')", "nodes"),
        Binding("5", "tab('events')", "events"),
        Binding("p", "pause", "pause"),
        Binding("r", "refresh_now", "refresh"),
        Binding("a", "actions", "actions"),
        Binding("h", "heat", "ops/keys"),
        Binding("enter", "detail", "detail", show=False),
        Binding("comma", "seek(-1)", "back", show=False),
        Binding("full_stop", "seek(1)", "forward", show=False),
        Binding("less_than_sign", "seek(-30)", "-30", show=False),
        Binding("greater_than_sign", "seek(30)", "+30", show=False),
        Binding("/", "filter", "filter events", show=False),
        Binding("escape", "leave_input", "leave", show=False),
    ]

    def __init__(
        self,
        source: SampleSource,
        settings: ClusterSettings,
        *,
        interval: float = 2.0,
        read_only: bool = False,
        record: Path | None = None,
        record_max_bytes: int | None = None,
        theme: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        self.interval = interval
        self.read_only = read_only or isinstance(source, ReplaySource)
        self.sample: ClusterSample | None = None
        self.history = History()
        self.paused = False
        self.heat = HEAT[0]  # the slot grid's shade
        self._wake = asyncio.Event()
        self.recorder: Recorder | None = None
        if record is not None:
            self.recorder = (
                Recorder(record, record_max_bytes) if record_max_bytes else Recorder(record)
            )
        self._theme_name = theme or DEFAULT_THEME
        self.samples_shown = 0
        # migrations started here run here (until a controller hosts them); not in a demo
        self.task_host = TaskHost(settings) if source.live and not self.read_only else None
        self.stopped_tasks: tuple[str, ...] = ()  # left running when the dashboard quit

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with TabbedContent(id="tabs", initial="tab-overview"):
            with TabPane("1 Overview", id="tab-overview"):
                yield OverviewPane()
            with TabPane("2 Slots", id="tab-slots"):
                yield SlotsPane()
            with TabPane("3 Replication", id="tab-replication"):
                yield ReplicationPane()
            with TabPane("4 Nodes", id="tab-nodes"):
                yield NodesPane()
            with TabPane("5 Events", id="tab-events"):
                yield EventsPane()
        yield Footer()

    def on_mount(self) -> None:
        self.theme = self._theme_name
        self.title = f"ledis-console: {self.settings.name}"
        self._status()
        self.poll_loop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides a binding from the footer; None would show it greyed out
        if action == "actions" and self.read_only:
            return False
        if action == "seek" and not isinstance(self.source, ReplaySource):
            return False
        if action == "heat":  # on the slots tab only (False hides it; None shows it disabled)
            return self.active_tab == "slots"
        return True

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active.removeprefix("tab-")

    @property
    def mode(self) -> str:
        if isinstance(self.source, ReplaySource):
            return f"replay {self.source.position}"
        if not self.source.live:
            return "demo"
        return "live" + (", read-only" if self.read_only else "")

    def _status(self) -> None:
        s = self.sample
        poll = f"  poll {s.poll_ms:.0f} ms" if s and s.poll_ms else ""
        state = "paused" if self.paused else f"every {self.interval:g}s"
        rec = f"  recording to {self.recorder.path}" if self.recorder else ""
        running = self.task_host.running if self.task_host else ()
        here = f"  migrating here: {', '.join(running)}" if running else ""
        sync_static(
            self.query_one("#status-bar", Static),
            f"{s.cluster if s else self.settings.name}  {self.mode}  {state}{poll}{here}{rec}",
            fixed_height=True,  # one line (dashboard.tcss)
        )

    # -- samples -------------------------------------------------------------------------------

    @work(exclusive=True, group="poll")
    async def poll_loop(self) -> None:
        """One sample, shown; then wait the interval (or a wake-up) before the next."""
        while True:
            if not self.paused:
                try:
                    sample = await self.source.sample(self.sample)
                except Exception as e:  # never let the screen die of a poll
                    log.exception("sample failed")
                    self.notify(f"refresh failed: {e}", severity="error")
                else:
                    self.show(sample)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    def show(self, sample: ClusterSample) -> None:
        self.sample = sample
        self.history.add(sample)
        if self.recorder is not None:
            self.recorder.write(sample)
        self.render_tab()
        screen = self.screen
        if isinstance(screen, ActionScreen | NodeDetailScreen):
            screen.update_sample(sample)
        self._status()
        self.samples_shown += 1

    def render_tab(self) -> None:
        """Draw the sample on the visible tab only (a hidden tab is drawn when shown)."""
        sample = self.sample
        if sample is None:
            return
        active = self.active_tab
        if active == "overview":
            self.query_one(OverviewPane).show(
                sample, self.history, self.interval, self.paused, self.mode
            )
        elif active == "slots":
            self.query_one(SlotsPane).show(sample, self.heat)
        elif active == "replication":
            self.query_one(ReplicationPane).show(sample, self.history)
        elif active == "nodes":
            self.query_one(NodesPane).show(sample, self.history)
        elif active == "events":
            self.query_one(EventsPane).show(sample)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.tabbed_content.id == "tabs":
            self.render_tab()
            self.refresh_bindings()  # h shows on the slots tab only

    def current_topology(self) -> Topology | None:
        return self.sample.topology if self.sample else None

    # -- actions -------------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"
        self.render_tab()
        self.refresh_bindings()
        # keys go to the new tab's table (never to a widget of a hidden tab)
        main = {"overview": "#groups", "replication": "#replicas", "nodes": "#nodes",
                "events": "#events"}.get(tab)  # fmt: skip
        if main:
            self.query_one(main).focus()
        else:
            self.set_focus(None)

    def action_heat(self) -> None:
        """The slot grid's shade: ops/s per slot (the proxies' counters) or keys per slot of
        the owning group."""
        self.heat = HEAT[(HEAT.index(self.heat) + 1) % len(HEAT)]
        self.render_tab()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._status()
        self.render_tab()

    def action_refresh_now(self) -> None:
        if self.paused:  # one sample, still paused
            self._refresh_once()
        else:
            self._wake.set()

    @work(exclusive=True, group="once")
    async def _refresh_once(self) -> None:
        self.show(await self.source.sample(self.sample))

    def action_seek(self, delta: int) -> None:
        if isinstance(self.source, ReplaySource):
            self.paused = True
            self.history.clear()
            sample = self.source.seek(delta)
            # sparklines from the samples before the new position
            start = max(0, self.source.index - self.history.depth)
            for s in self.source.samples[start : self.source.index]:
                self.history.add(s)
            self.show(sample)

    def action_leave_input(self) -> None:
        """Out of the events filter (its text stays), back to the keys."""
        self.query_one("#events", DataTable).focus()

    def action_filter(self) -> None:
        self.action_tab("events")
        self.query_one("#event-filter").focus()

    def action_actions(self) -> None:
        if self.read_only:
            return

        def chosen(name: str | None) -> None:
            if name:
                self.open_action(name)

        self.push_screen(PickerScreen(actions.ACTIONS), chosen)

    def open_action(self, name: str, values: dict[str, str] | None = None) -> None:
        if self.read_only:
            self.notify("read-only: actions are hidden", severity="warning")
            return
        spec = actions.ACTIONS[name]
        if values is None and spec.needs_task:
            topo = self.current_topology()
            active = topo.active_migrations() if topo else []
            if active:
                values = {"task": sorted(active, key=lambda t: t.created)[0].id}
        self.push_screen(
            ActionScreen(
                spec,
                self.settings,
                self.current_topology,
                values,
                self.task_host,
                None if isinstance(self.source, ReplaySource) else self.source.switchover_basis,
            )
        )

    def action_detail(self) -> None:
        focused = self.focused
        if isinstance(focused, RowTable) and focused.selected_key is not None:
            self.open_row(focused.id, focused.selected_key)

    def open_row(self, table: str | None, key: str) -> None:
        """A node table's row: that node's detail (a group's row: its master's)."""
        addr = key
        if table == "groups" and self.sample and self.sample.topology:
            addr = self.sample.topology.groups[int(key)].master
        self.open_detail(addr)

    def open_detail(self, addr: str) -> None:
        call = None if isinstance(self.source, ReplaySource) else self.source.call
        self.push_screen(NodeDetailScreen(addr, self.sample, call, self.read_only))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.open_row(event.table.id, event.key)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for tab in TABS:
            yield SystemCommand(
                f"Show {tab}", f"switch to the {tab} tab", lambda t=tab: self.action_tab(t)
            )
        yield SystemCommand("Pause / resume refresh", "stop or restart polling", self.action_pause)
        yield SystemCommand(
            "Slot shade: ops per slot / keys per group",
            "what the slot grid's shade shows (h on the slots tab)",
            self.action_heat,
        )
        if not self.read_only:
            for name, spec in actions.ACTIONS.items():
                yield SystemCommand(spec.title, spec.help, lambda n=name: self.open_action(n))

    async def on_unmount(self) -> None:
        if self.task_host is not None:
            self.stopped_tasks = await asyncio.to_thread(self.task_host.stop)
        if self.recorder is not None:
            self.recorder.close()
        await self.source.close()
