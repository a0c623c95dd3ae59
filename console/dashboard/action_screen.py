"""One action, start to end: values -> preview -> typed confirmation -> apply -> live progress
-> recap. The plan comes from ``actions`` (the cluster's plan functions); the confirmation is
the action's name typed out; a plan that makes migration tasks stays open showing their
progress from each new sample until they end; a switchover stays open showing the events
since its request until the group's master is the new one."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, ProgressBar, Static

from stack.cluster.model import ACTIVE_TASK_STATES, Topology
from stack.cluster.plans import Plan, PlanError
from stack.cluster.store import StoreError
from stack.failover.switchover import requested

from ..config import ClusterSettings
from . import actions
from .sample import ClusterSample
from .slot_grid import task_line
from .style import BAD, DIM, OK
from .task_host import RESUME_HINT, TaskHost


class ActionScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "close", "close")]

    def __init__(
        self,
        spec: actions.ActionSpec,
        settings: ClusterSettings,
        topology: Callable[[], Topology | None],
        values: dict[str, str] | None = None,
        host: TaskHost | None = None,
        read_basis: actions.BasisReader | None = None,
    ) -> None:
        super().__init__()
        self.read_basis = read_basis  # a fresh read of a group (the source's), for ``fresh``
        self.host = host  # runs the tasks this action makes (None: a demo or a replay)
        self.spec = spec
        self.settings = settings
        self.topology = topology
        self.values = dict(values or {})
        self.plan: Plan | None = None
        self.stage = "form"
        self.seen_states: actions.States = {}
        self.tasks: tuple[str, ...] = ()
        self.switchover: tuple[int, str, int] | None = None  # group, new master, revision
        self.seen: set[str] = set()  # events already shown in the progress

    def compose(self) -> ComposeResult:
        with Vertical(id="action-box"):
            yield Label(Text(self.spec.title, "bold"), id="action-title")
            yield Static(Text(self.spec.help, DIM), id="action-help")
            for f in self.spec.fields:
                yield Input(
                    value=self.values.get(f.name, ""),
                    placeholder=f"{f.prompt} (e.g. {f.placeholder})",
                    id=f"field-{f.name}",
                    classes="action-field",
                )
            yield Static(id="action-preview")
            yield Input(id="action-confirm", classes="hidden")
            yield Vertical(id="action-progress")
            yield Static(id="action-status")

    def on_mount(self) -> None:
        if self.spec.fields:
            self.query_one(f"#field-{self.spec.fields[0].name}", Input).focus()
        else:
            self.make_preview()

    def _next_empty(self, after: str | None) -> Input | None:
        ids = [f"field-{f.name}" for f in self.spec.fields]
        start = ids.index(after) + 1 if after in ids else len(ids)
        for fid in ids[start:]:
            field = self.query_one(f"#{fid}", Input)
            if not field.value.strip():
                return field
        return None

    def on_descendant_focus(self, event: object) -> None:
        """Say which value is asked and what Enter does there."""
        focused = self.focused
        if self.stage != "form" or focused is None or not focused.id:
            return
        names = [f.name for f in self.spec.fields]
        name = focused.id.removeprefix("field-")
        if name in names:
            prompt = self.spec.fields[names.index(name)].prompt
            then = "the next value" if self._next_empty(focused.id) else "the preview"
            self._status(Text(f"{prompt}: Enter goes to {then}    Esc: close", DIM))

    def _status(self, text: Text) -> None:
        self.query_one("#action-status", Static).update(text)

    def _collect(self) -> None:
        for f in self.spec.fields:
            self.values[f.name] = self.query_one(f"#field-{f.name}", Input).value

    @work(exclusive=True, group="action")
    async def make_preview(self) -> None:
        self._collect()
        topo = self.topology()
        try:
            await actions.check(self.spec, self.settings, self.values)
            if self.spec.fresh is not None:  # etcd and the nodes now, not the last poll
                if self.read_basis is None:
                    raise actions.ActionError("nothing to read the cluster from here")
                self._status(Text("reading etcd and the group's nodes now...", DIM))
                topo, self.seen_states = await self._read_fresh(self.read_basis)
            if topo is None:
                raise actions.ActionError("no topology yet")
            plan = actions.preview(self.spec, topo, self.values, self.seen_states)
        except (actions.ActionError, PlanError, StoreError, ValueError) as e:
            self._status(Text(str(e), BAD))
            return
        self.plan = plan
        self.query_one("#action-preview", Static).update(Text(plan.preview()))
        if plan.empty:
            self._status(Text("nothing to change. Esc: close", DIM))
            return
        self.stage = "confirm"
        for field in self.query(".action-field"):
            field.disabled = True
        confirm = self.query_one("#action-confirm", Input)
        confirm.placeholder = f"type {self.spec.name} and Enter to apply"
        confirm.remove_class("hidden")
        confirm.focus()
        self._status(Text(f"type {self.spec.name!r} to apply this plan; Esc: close", DIM))

    async def _read_fresh(self, read: actions.BasisReader) -> tuple[Topology, actions.States]:
        assert self.spec.fresh is not None
        try:
            return await self.spec.fresh(self.values, read)
        except (actions.ActionError, PlanError):
            raise
        except Exception as e:  # etcd down, a model error: said, never the end of the app
            raise actions.ActionError(f"could not read the cluster now: {e}") from None

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.stage == "form":
            empty = self._next_empty(event.input.id)
            if empty is not None:  # Enter goes to the next value not given yet
                empty.focus()
            else:
                self.make_preview()
        elif self.stage == "confirm" and event.input.id == "action-confirm":
            if event.value.strip() != self.spec.name:
                self._status(Text(f"type {self.spec.name!r} exactly to apply", BAD))
                return
            event.input.disabled = True
            self.stage = "apply"
            self.apply()

    @work(exclusive=True, group="action")
    async def apply(self) -> None:
        assert self.plan is not None
        self._status(Text("applying...", DIM))
        try:
            outcome = await actions.execute(
                self.spec, self.settings, self.values, self.plan, self.seen_states
            )
        except (actions.ActionError, PlanError, StoreError) as e:
            self.stage = "failed"
            self._status(Text(f"not applied: {e}", BAD))
            return
        for done_with in (*self.query(".action-field"), self.query_one("#action-confirm")):
            done_with.add_class("hidden")  # room for the progress and the recap
        notes = "".join(f"\n{n}" for n in outcome.notes)
        self.tasks = tuple(t.id for t in outcome.plan.tasks)
        if self.spec.name == "resume":
            self.tasks = (self.values.get("task", "").strip(),)
        if self.spec.follows_failover and outcome.revision:
            wf = requested(outcome.plan)
            self.switchover = (wf.group, wf.new, outcome.revision)
            self.stage = "progress"
            self._status(Text(f"{outcome.recap}{notes}\nfollowing the events (Esc closes)", OK))
        elif self.tasks:
            self.stage = "progress"
            if self.host is not None:
                self.host.start(self.tasks)
                where = (
                    "running in this dashboard (Esc closes this; it goes on)\n"
                    f"quitting the dashboard pauses it;\n{RESUME_HINT} goes on with it"
                )
            else:
                where = "watching the migration (Esc closes; it goes on)"
            self._status(Text(f"{outcome.recap}{notes}\n{where}", OK))
        else:
            self.stage = "done"
            self._status(Text(f"{outcome.recap}{notes}\nEsc: close", OK))
        self.app.notify(outcome.recap, title=self.spec.title)

    def update_sample(self, sample: ClusterSample) -> None:
        """Live progress of the tasks this action made, then the recap when they end."""
        if self.stage != "progress" or sample.topology is None:
            return
        if self.switchover is not None:
            self._follow_switchover(sample)
            return
        box = self.query_one("#action-progress", Vertical)
        box.remove_children()
        finished = []
        for tid in self.tasks:
            t = sample.topology.migrations.get(tid)
            if t is None:
                continue
            box.mount(Static(task_line(t)))
            box.mount(ProgressBar(total=t.slots_total, show_eta=False))
            bar = box.query(ProgressBar).last()
            bar.update(progress=t.slots_done)
            if t.state not in ACTIVE_TASK_STATES:
                how = self.host.result(tid) if self.host is not None else None
                finished.append(
                    f"{tid} {t.state}: {t.slots_done}/{t.slots_total} slots, {t.keys_moved} keys"
                    + (f" ({how})" if how else "")
                )
        if finished and len(finished) == len(self.tasks):
            self.stage = "done"
            self._status(Text("recap: " + "; ".join(finished) + "\nEsc: close", OK))

    def _follow_switchover(self, sample: ClusterSample) -> None:
        """The sentences since the request, then the recap once the new master is recorded
        (the controller removes the workflow right after)."""
        assert self.switchover is not None and sample.topology is not None
        group, target, revision = self.switchover
        box = self.query_one("#action-progress", Vertical)
        for e in sorted(sample.events, key=lambda e: e.revision):
            if e.revision >= revision and e.id not in self.seen:
                self.seen.add(e.id)
                box.mount(Static(Text(f"{e.source}/{e.kind} {e.text}", DIM)))
        now = sample.topology.groups.get(group)
        if now is not None and now.master == target:
            self.stage = "done"
            self._status(Text(f"recap: group {group}: {target} is the master\nEsc: close", OK))

    def action_close(self) -> None:
        self.dismiss(self.stage)
