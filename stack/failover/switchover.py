"""A planned switchover, read, checked and planned in one place for both faces of the console
(``ledis-console failover`` and the dashboard's ``failover`` action).

Both plan from a fresh read: ``read_group`` (the topology and the group's recorded workflow,
from etcd now) and ``probe_group`` (what the group's nodes say now). ``plan_switchover`` checks the group and its nodes (what ``nodes.probe_all`` said of them) and
returns a ``plans.Plan`` whose one write records a ``requested`` workflow at
``failovers/<group>`` (guarded: only if none is there); the leading controller carries it out
(docs/failover.md, "Planned switchover"). Applying it is ``plans.apply`` like any other plan.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from stack.cluster.model import Topology
from stack.cluster.nodes import NodeState, probe_all
from stack.cluster.paths import ClusterPaths
from stack.cluster.plans import Plan, PlanError
from stack.cluster.store import Store
from stack.cluster.txn import Guard, Write

from .workflow import REQUESTED, Workflow

KIND = "failover"


@dataclass(frozen=True)
class SwitchoverBasis:
    """What a switchover of a group is planned from, read at one moment."""

    topology: Topology
    current: Workflow | None  # the group's failover workflow already recorded, if any
    states: Mapping[str, NodeState]  # what the group's nodes said

    def plan(self, group_id: int, to: str | None = None, source: str = "ledis-console") -> Plan:
        return plan_switchover(self.topology, self.states, group_id, to, self.current, source)


def read_group(store: Store, group_id: int) -> tuple[Topology, Workflow | None]:
    """The topology and the group's recorded failover workflow (None: none), from etcd now."""
    topo = store.load()
    path = store.paths.failover(group_id)
    raw, _ = store.get_raw(path)
    return topo, None if raw is None else Workflow.from_json(path, raw)


async def probe_group(
    topo: Topology,
    group_id: int,
    current: Workflow | None,
    password: str | None,
    timeout: float,
) -> SwitchoverBasis:
    """The basis with what the group's nodes say now (PING, ROLE, INFO keyspace each, in
    parallel); none is asked while a workflow is under way (the plan refuses anyway)."""
    group = topo.groups.get(group_id)
    members = group.members if group is not None and current is None else ()
    return SwitchoverBasis(topo, current, await probe_all(members, password, timeout))


def plan_switchover(
    topo: Topology,
    states: Mapping[str, NodeState],
    group_id: int,
    to: str | None = None,
    current: Workflow | None = None,
    source: str = "ledis-console",
) -> Plan:
    """The switchover of ``group_id`` to ``to`` (or the replica with the highest LogID that
    follows the master); PlanError says why not. ``current`` is the workflow already recorded
    for the group, if any."""
    group = topo.groups.get(group_id)
    if group is None:
        known = ", ".join(str(g) for g in sorted(topo.groups)) or "none"
        raise PlanError(f"there is no group {group_id} (groups: {known})")
    if current is not None:
        raise PlanError(
            f"group {group.id}: a failover to {current.new} is already under way "
            f"(step {current.step})"
        )
    if not group.replicas:
        raise PlanError(f"group {group.id} has no replica to switch over to")
    missing = NodeState(group.master, False, error="not probed")
    master = states.get(group.master, missing)
    if not master.reachable or master.role != "master":
        raise PlanError(f"group {group.id}: {master.describe()}; nothing to switch over")
    followers = {
        a: s
        for a, s in states.items()
        if a in group.replicas and s.reachable and s.role == "replica" and s.master == group.master
    }
    if to:
        if to not in group.replicas:
            raise PlanError(f"{to} is not a replica of group {group.id}")
        if to not in followers:
            state = states.get(to, NodeState(to, False, error="not probed"))
            raise PlanError(f"{to} cannot take over: {state.describe()}")
        target = to
    else:
        if not followers:
            raise PlanError(f"group {group.id}: no replica follows {group.master} now")
        target = max(followers, key=lambda a: followers[a].log_id or 0)
    others = [r for r in group.replicas if r != target]
    have, want = followers[target].log_id, master.log_id
    epoch = topo.epoch + 1
    steps = [
        f"pause writes on {group.master} (clients wait, at most the controller's "
        "switchover timeout)",
        f"wait until {target} has every LogID of {group.master}; if it does not in "
        "time, resume writes and change nothing",
        f"fence {group.master} at epoch {epoch} (it refuses writes with READONLY)",
        f"promote {target}, record it as the group's master (cluster epoch "
        f"{topo.epoch} -> {epoch}); proxies follow",
        f"make {', '.join([*others, group.master])} "
        f"{'replicas' if others else 'a replica'} of {target}",
    ]
    if topo.leader is None:
        steps.append("no controller leads this cluster: start ledis-failover first")
    else:
        steps.append(f"carried out by the leading controller ({topo.leader})")
    path = ClusterPaths(topo.cluster).failover(group.id)
    wf = Workflow(
        group=group.id, old=group.master, new=target, step=REQUESTED, epoch=epoch,
        planned=True, reason=f"switchover asked for from {source}", started=time.time(),
        owner="console",
    )  # fmt: skip
    return Plan(
        KIND,
        f"switch over group {group.id} from {group.master} to {target} (LogID {have} of {want})",
        tuple(steps),
        (Write(path, wf.to_json()),),
        topo,
        bump_epoch=False,
        guards=(Guard(path, 0),),
        event_kind=KIND,
        event_text=f"group {group.id}: switchover from {group.master} to {target} asked for",
    )


def requested(plan: Plan) -> Workflow:
    """The workflow a switchover plan records."""
    write = plan.writes[0]
    assert write.value is not None
    return Workflow.from_json(write.path, write.value)
