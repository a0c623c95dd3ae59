"""The controller's decisions: a pure function from one snapshot to a list of actions.

Nothing here talks to etcd or to a node, so every rule is unit-tested with made-up snapshots
(tests/test_failover_decide.py). Each action carries the one sentence that says why
(docs/failover.md, "What an operator sees"); ``Say`` is a sentence with no action (a master
down with no replica to take over, safe mode), said once until it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from stack.cluster.model import Group, Topology
from stack.cluster.views import CONTROLLER, View

from .probe import NodeLook
from .workflow import Workflow


@dataclass(frozen=True)
class Settings:
    down_after: float = 3.0
    quorum: int = 2
    view_max_age: float = 5.0
    safe_mode_fraction: float = 0.5


@dataclass(frozen=True)
class Snapshot:
    now: float  # wall clock, as the views' timestamps
    topology: Topology
    nodes: Mapping[str, NodeLook]  # this controller's look at every member
    views: Mapping[str, View]  # every observer's report (this controller's included)
    workflows: Mapping[int, Workflow] = field(default_factory=dict)
    last_log_ids: Mapping[str, int] = field(default_factory=dict)  # last LogID seen per node


@dataclass(frozen=True)
class Say:
    key: str  # said again only when the text under this key changes
    text: str


@dataclass(frozen=True)
class StartFailover:
    workflow: Workflow
    text: str


@dataclass(frozen=True)
class Resume:
    workflow: Workflow


@dataclass(frozen=True)
class Rejoin:
    """Fence ``node`` at ``epoch`` (when it is a writable master) and make it a replica of
    ``master``."""

    group: int
    node: str
    master: str
    epoch: int
    fence: bool
    text: str


@dataclass(frozen=True)
class MarkEpoch:
    """Tell the group's master the epoch it serves under (NODEEPOCH SET <epoch> MASTER)."""

    group: int
    node: str
    epoch: int
    text: str


Action = Say | StartFailover | Resume | Rejoin | MarkEpoch


@dataclass(frozen=True)
class Verdict:
    """How the views see one node."""

    down: bool
    agree: int  # views that see it down for at least down_after
    total: int  # fresh views that report it
    down_for: float  # the longest time a view has seen it down


def judge(s: Snapshot, addr: str, cfg: Settings) -> Verdict:
    agree = total = 0
    longest = 0.0
    for view in s.views.values():
        seen = view.nodes.get(addr)
        if seen is None or s.now - view.ts > cfg.view_max_age:
            continue
        total += 1
        down_for = seen.down_for(s.now)
        longest = max(longest, down_for)
        if not seen.up and down_for >= cfg.down_after:
            agree += 1
    down = agree >= cfg.quorum and agree * 2 > total
    return Verdict(down, agree, total, longest)


def best_replica(s: Snapshot, g: Group, exclude: str = "") -> NodeLook | None:
    """The reachable replica of ``g`` with the highest applied LogID (ties: the first listed).
    Only a replica following this group's master counts: its LogIDs are the group's. A node
    listed as a replica that answers as a master (an old master back with writes nobody
    acknowledged) is never promoted."""
    best: NodeLook | None = None
    for addr in g.replicas:
        look = s.nodes.get(addr)
        if addr == exclude or look is None or not look.up or look.log_id is None:
            continue
        if look.role != "replica" or look.master != g.master:
            continue
        if best is None or look.log_id > (best.log_id or 0):
            best = look
    return best


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def decide(s: Snapshot, cfg: Settings, owner: str = "") -> list[Action]:
    t = s.topology
    out: list[Action] = []
    members = [addr for _, addr, _ in t.nodes()]
    down = [a for a in members if (look := s.nodes.get(a)) is None or not look.up]
    safe = len(down) > 1 and len(down) > cfg.safe_mode_fraction * len(members)
    if safe:
        out.append(
            Say(
                "safe-mode",
                f"safe mode: {len(down)} of {len(members)} nodes unreachable at once (more "
                f"than {_pct(cfg.safe_mode_fraction)}); reporting only, no failover",
            )
        )
    else:
        out.append(Say("safe-mode", ""))
    for gid in sorted(t.groups):
        g = t.groups[gid]
        wf = s.workflows.get(gid)
        if wf is not None:
            out.append(Resume(wf))
            continue
        out.extend(_group(s, g, cfg, safe, owner))
    return out


def cut_off(s: Snapshot, cfg: Settings, me: str, hold: float) -> str | None:
    """Why the controller whose view is ``me`` should not lead, or None: for ``hold``
    seconds (its lease time) it has seen most nodes (as safe mode counts them) unreachable,
    while the other fresh views that report those nodes mostly see them answering for as long,
    and another controller among them sees most of them: one that can act should lead."""
    own = s.views.get(me)
    if own is None:
        return None
    members = [addr for _, addr, _ in s.topology.nodes()]
    lost = [
        a
        for a in members
        if (seen := own.nodes.get(a)) is not None and seen.down_for(s.now) >= hold
    ]
    if len(lost) <= 1 or len(lost) <= cfg.safe_mode_fraction * len(members):
        return None
    others = [v for o, v in s.views.items() if o != me and s.now - v.ts <= cfg.view_max_age]

    def answering(v: View, a: str) -> bool:
        seen = v.nodes.get(a)
        return seen is not None and seen.up and s.now - seen.since >= hold

    fine = []
    for a in lost:
        reports = [v for v in others if a in v.nodes]
        if reports and 2 * sum(answering(v, a) for v in reports) > len(reports):
            fine.append(a)
    able = [
        v.observer
        for v in others
        if v.kind == CONTROLLER and 2 * sum(answering(v, a) for a in lost) > len(lost)
    ]
    if 2 * len(fine) <= len(lost) or not able:
        return None
    them = "views see" if len(others) > 1 else "view sees"
    return (
        f"{me} has not reached {len(lost)} of {len(members)} nodes for {hold:g} s while "
        f"{len(others)} other {them} {len(fine)} of them answering; giving up the lead so "
        f"a controller that reaches them ({', '.join(sorted(able))}) leads"
    )


def _group(s: Snapshot, g: Group, cfg: Settings, safe: bool, owner: str) -> list[Action]:
    out: list[Action] = []
    key = f"group-{g.id}"
    master = s.nodes.get(g.master)
    if master is None or not master.up:
        v = judge(s, g.master, cfg)
        if not v.down:
            out.append(Say(key, ""))
            return out
        seen = (
            f"group {g.id}: master {g.master} unreachable from {v.agree} of {v.total} views "
            f"for {v.down_for:.1f} s"
        )
        if safe:
            out.append(Say(key, f"{seen}; not failing over in safe mode"))
            return out
        best = best_replica(s, g)
        if best is None or best.log_id is None:
            out.append(Say(key, f"{seen}; no replica can take over (none reachable)"))
            return out
        last = s.last_log_ids.get(g.master)
        behind = f", {max(0, last - best.log_id)} behind" if last is not None else ""
        wf = Workflow(
            group=g.id,
            old=g.master,
            new=best.addr,
            step="chosen",
            epoch=s.topology.epoch + 1,
            reason=seen,
            started=s.now,
            owner=owner,
        )
        text = f"{seen}; promoting {best.addr} (LogID {best.log_id}{behind})"
        out.append(StartFailover(wf, text))
        return out
    out.append(Say(key, ""))
    if master.role != "master":
        out.append(
            Say(key, f"group {g.id}: master {g.master} says it is a {master.role}; leaving it")
        )
        return out
    if master.fenced and master.epoch <= g.epoch:
        out.append(
            MarkEpoch(
                g.id, g.master, g.epoch,
                f"group {g.id}: master {g.master} was fenced at epoch {master.epoch} with no "
                f"failover under way; serving writes again at epoch {g.epoch}",
            )
        )  # fmt: skip
    elif master.epoch < g.epoch:
        out.append(MarkEpoch(g.id, g.master, g.epoch, ""))
    for addr in g.replicas:
        look = s.nodes.get(addr)
        if look is None or not look.up:
            continue
        if look.role == "master":
            fence = not look.fenced or look.epoch < g.epoch
            out.append(
                Rejoin(
                    g.id, addr, g.master, g.epoch, fence,
                    f"group {g.id}: {addr} answers as a master of epoch {look.epoch} "
                    f"(the group is at epoch {g.epoch}, master {g.master}); fencing it and "
                    f"re-attaching it as a replica",
                )
            )  # fmt: skip
        elif look.master != g.master:
            out.append(
                Rejoin(
                    g.id, addr, g.master, g.epoch, False,
                    f"group {g.id}: replica {addr} follows {look.master}; repointing it to "
                    f"{g.master}",
                )
            )  # fmt: skip
    return out
