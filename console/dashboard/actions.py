"""The dashboard's actions: the seam between the screens and the cluster's plans.

Each action asks for a few values, makes a ``Plan`` from the current topology with the same
plan functions the scripted ``ledis-console cluster ...`` commands use (``stack.cluster.plans``),
and applies it with ``plans.apply_fresh(..., expect=plan)``, so what a person confirmed is what
is applied (a changed cluster is refused with the new plan). Node steps that the scripted
commands take around a plan (PING/ROLE checks, REPLICAOF and the wait for the link, REPLICAOF
NO ONE) are taken here through ``stack.cluster.nodes`` in the same order.

Nothing here imports Textual: the screens (``action_screen.py``) drive it, tests call it
directly. New actions are one ``ActionSpec`` more in ``ACTIONS`` (``register``). An action
that needs what the nodes say (``failover``: who follows the master, at which LogID) plans
from a fresh read when the preview is made (``ActionSpec.fresh``: etcd and the group's nodes
now, through the source's ``switchover_basis``, the same read and plan as ``ledis-console
failover``), never from the last poll, which may be seconds old.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from stack.cluster import nodes, plans
from stack.cluster.model import Topology, check_addr, parse_slot_ranges
from stack.cluster.store import Store
from stack.failover.switchover import SwitchoverBasis, plan_switchover

from ..config import ClusterSettings

Values = Mapping[str, str]
States = Mapping[str, nodes.NodeState]
BasisReader = Callable[[int], Awaitable[SwitchoverBasis]]  # the source's fresh read of a group


class ActionError(Exception):
    """The action cannot go on; the message is for the person."""


@dataclass(frozen=True)
class Field:
    name: str
    prompt: str
    placeholder: str = ""


@dataclass(frozen=True)
class ActionSpec:
    name: str  # what the person types to confirm
    title: str
    help: str
    fields: tuple[Field, ...]
    make: Callable[[Values, States], plans.PlanMaker]  # values, nodes -> (topology -> plan)
    check: Callable[[ClusterSettings, Values], Awaitable[None]] | None = None  # before the plan
    before_apply: Callable[[ClusterSettings, Values, plans.Plan], Awaitable[str]] | None = None
    after_apply: Callable[[ClusterSettings, Values, plans.Plan], Awaitable[str]] | None = None
    needs_task: bool = False  # acts on a migration task (offered from the slots screen)
    # plans from a fresh read (etcd and nodes now) instead of the last poll's topology
    fresh: Callable[[Values, BasisReader], Awaitable[tuple[Topology, States]]] | None = None
    follows_failover: bool = False  # records a switchover; its progress is the events stream


def _int(values: Values, name: str) -> int:
    try:
        return int(values.get(name, "").strip())
    except ValueError:
        raise ActionError(f"{name}: expected a number, got {values.get(name, '')!r}") from None


def _addr(values: Values, name: str = "addr") -> str:
    try:
        return check_addr(values.get(name, "").strip())
    except ValueError as e:
        raise ActionError(f"{name}: {e}") from None


def _ranges(values: Values) -> tuple[tuple[int, int], ...]:
    try:
        return parse_slot_ranges(values.get("slots", "").strip())
    except ValueError as e:
        raise ActionError(f"slots: {e}") from None


async def _probe(s: ClusterSettings, addr: str) -> nodes.NodeState:
    state = await nodes.probe(addr, s.password, s.timeout)
    if not state.reachable:
        raise ActionError(f"{addr} does not answer: {state.error}")
    return state


# -- the actions ------------------------------------------------------------------------------


async def _check_add_group(s: ClusterSettings, v: Values) -> None:
    addr = _addr(v)
    state = await _probe(s, addr)
    if state.role != "master":
        raise ActionError(f"{addr} is not a master ({state.describe()}); REPLICAOF NO ONE first")
    if state.keys:
        raise ActionError(f"{addr} holds {state.keys} keys; a new group should start empty")


async def _check_add_node(s: ClusterSettings, v: Values) -> None:
    addr = _addr(v)
    state = await _probe(s, addr)
    if state.keys and state.role != "replica":
        raise ActionError(f"{addr} holds {state.keys} keys, which replication would replace")


async def _replicate(s: ClusterSettings, v: Values, plan: plans.Plan) -> str:
    addr = _addr(v)
    master = plan.base.groups[_int(v, "group")].master
    try:
        done = await nodes.replicate(addr, master, s.password, s.timeout)
    except nodes.NodeError as e:
        raise ActionError(str(e)) from None
    return f"{addr} replicates {master} (link {done.link})"


async def _detach(s: ClusterSettings, v: Values, plan: plans.Plan) -> str:
    addr = _addr(v)
    found = plan.base.find_node(addr)
    if not found or found[1] != "replica":
        return ""
    try:
        await nodes.detach(addr, s.password, s.timeout)
    except nodes.NodeError as e:
        return f"warning: {e}; it may still replicate"
    return f"{addr}: REPLICAOF NO ONE (it keeps its data)"


def _task_action(action: str) -> ActionSpec:
    return ActionSpec(
        action,
        f"{action.capitalize()} a migration",
        f"{action} a migration task (docs/cluster.md: task states)",
        (Field("task", "migration id", "m12-1"),),
        lambda v, n: lambda t: plans.plan_task(t, v.get("task", "").strip(), action),
        needs_task=True,
    )


async def _fresh_switchover(v: Values, read: BasisReader) -> tuple[Topology, States]:
    """The topology and the group's nodes read now, checked as ``ledis-console failover``
    checks them (``SwitchoverBasis.plan``: a workflow already under way refuses too)."""
    group = _int(v, "group")
    to = _addr(v, "to") if v.get("to", "").strip() else None
    basis = await read(group)
    basis.plan(group, to, source="the dashboard")
    return basis.topology, basis.states


def _switchover(v: Values, states: States) -> plans.PlanMaker:
    group = _int(v, "group")
    to = _addr(v, "to") if v.get("to", "").strip() else None

    def make(t: Topology) -> plans.Plan:
        if t.leader is None:
            raise plans.PlanError(
                f"no controller leads cluster {t.cluster!r}: start ledis-failover "
                "(ledis-console up starts one)"
            )
        return plan_switchover(t, states, group, to, source="the dashboard")

    return make


ACTIONS: dict[str, ActionSpec] = {}


def register(spec: ActionSpec) -> None:
    ACTIONS[spec.name] = spec


for _spec in (
    ActionSpec(
        "migrate",
        "Migrate slots",
        "move slots to another group (a task the migration runner executes)",
        (Field("slots", "slots", "0-99,200"), Field("target", "to group", "2")),
        lambda v, n: lambda t: plans.plan_migrate(t, _ranges(v), _int(v, "target")),
    ),
    ActionSpec(
        "rebalance",
        "Rebalance slots",
        "even out the slot count of every group (tasks for the migration runner)",
        (),
        lambda v, n: plans.plan_rebalance_slots,
    ),
    _task_action("pause"),
    _task_action("resume"),
    _task_action("cancel"),
    ActionSpec(
        "assign",
        "Assign unassigned slots evenly",
        "record ownership of unassigned slots, spread evenly (no keys move)",
        (),
        lambda v, n: plans.plan_assign_even,
    ),
    ActionSpec(
        "add-group",
        "Add a group",
        "register an empty master as a new group",
        (Field("addr", "master", "127.0.0.1:7010"),),
        lambda v, n: lambda t: plans.plan_add_group(t, _addr(v)),
        check=_check_add_group,
    ),
    ActionSpec(
        "add-node",
        "Add a replica",
        "attach a node to a group: REPLICAOF its master, wait for the link, record it",
        (Field("group", "group", "1"), Field("addr", "node", "127.0.0.1:7011")),
        lambda v, n: lambda t: plans.plan_add_node(t, _int(v, "group"), _addr(v)),
        check=_check_add_node,
        before_apply=_replicate,
    ),
    ActionSpec(
        "remove-node",
        "Remove a node",
        "remove a replica (REPLICAOF NO ONE after), or an empty master with its group",
        (Field("addr", "node", "127.0.0.1:7003"),),
        lambda v, n: lambda t: plans.plan_remove_node(t, _addr(v)),
        after_apply=_detach,
    ),
    ActionSpec(
        "failover",
        "Switch over a group's master",
        "planned switchover to a replica (the leading controller carries it out; nothing "
        "acknowledged is lost)",
        (
            Field("group", "group", "1"),
            Field("to", "to node, or empty for the most caught up", "127.0.0.1:7003"),
        ),
        _switchover,
        follows_failover=True,
        fresh=_fresh_switchover,
    ),
):
    register(_spec)


# -- running one ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    plan: plans.Plan
    recap: str
    notes: tuple[str, ...] = ()
    revision: int = 0  # etcd revision of the change (0: nothing applied)


def preview(
    spec: ActionSpec, topo: Topology, values: Values, states: States | None = None
) -> plans.Plan:
    """The plan this action would apply to ``topo`` (PlanError / ActionError say why not)."""
    return spec.make(values, states or {})(topo)


async def check(spec: ActionSpec, settings: ClusterSettings, values: Values) -> None:
    if spec.check is not None:
        await spec.check(settings, values)


def _store(settings: ClusterSettings) -> Store:
    return Store(settings.etcd, settings.name, timeout=settings.timeout)


def _apply(settings: ClusterSettings, plan: plans.Plan, make: plans.PlanMaker) -> plans.Applied:
    with _store(settings) as store:
        return plans.apply_fresh(store, make, expect=plan, source="dashboard")


async def execute(
    spec: ActionSpec,
    settings: ClusterSettings,
    values: Values,
    plan: plans.Plan,
    states: States | None = None,
) -> Outcome:
    """Apply the plan the person confirmed: node steps before, the etcd transaction (in a
    thread: etcd3 is synchronous), node steps after."""
    notes: list[str] = []
    if plan.empty:
        return Outcome(plan, plan.recap())
    if spec.before_apply is not None:
        notes.append(await spec.before_apply(settings, values, plan))
    applied = await asyncio.to_thread(_apply, settings, plan, spec.make(values, states or {}))
    if spec.after_apply is not None:
        note = await spec.after_apply(settings, values, plan)
        if note:
            notes.append(note)
    return Outcome(
        applied.plan, applied.plan.recap(), tuple(n for n in notes if n), applied.revision
    )
