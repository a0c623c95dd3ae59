"""Topology changes as plans: pure functions from a snapshot to a ``Plan``.

A plan says what it will do (``summary`` and ``steps``, the preview a person confirms),
carries the etcd writes that do it, the guards it needs, the epoch it bumps and the event
sentence it records, and is applied by ``apply`` in one transaction. The scripted commands
(`ledis-console cluster ...`) and the dashboard use the same functions: preview -> confirm
-> apply -> recap. A change that cannot be made raises ``PlanError`` with the reason.

Nothing here talks to etcd or to a node: checking a node (PING, ROLE, empty) is the caller's
job before it asks for the plan.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from stack.core.slots import SLOT_COUNT

from .model import (
    CANCELLED,
    CANCELLING,
    DONE,
    FAILED,
    MIGRATING,
    PAUSED,
    PENDING,
    RUNNING,
    Group,
    Meta,
    MigrationTask,
    SlotMap,
    Topology,
    compress_slots,
    format_ranges,
)
from .paths import ClusterPaths
from .txn import EventDraft, Guard, Write

if TYPE_CHECKING:
    from .store import Store


class PlanError(ValueError):
    """The change cannot be made; the message says why and, where it can, what to do."""


@dataclass(frozen=True)
class Plan:
    kind: str
    summary: str
    steps: tuple[str, ...]
    writes: tuple[Write, ...]
    base: Topology = field(repr=False, compare=False)
    bump_epoch: bool = True
    guards: tuple[Guard, ...] = ()
    event_kind: str = ""
    tasks: tuple[MigrationTask, ...] = ()
    event_text: str = ""  # the sentence in the events stream, when not the summary

    @property
    def empty(self) -> bool:
        return not self.writes

    @property
    def new_epoch(self) -> int:
        return self.base.epoch + (1 if self.bump_epoch and self.writes else 0)

    def what(self) -> str:
        """The summary and steps: what a person confirms (the epoch it lands at aside)."""
        return "\n".join([self.summary, *(f"  - {s}" for s in self.steps)])

    def preview(self) -> str:
        lines = [self.summary]
        lines += [f"  - {s}" for s in self.steps]
        if self.writes and self.bump_epoch:
            lines.append(f"  (cluster epoch {self.base.epoch} -> {self.new_epoch})")
        return "\n".join(lines)

    def recap(self) -> str:
        if self.empty:
            return f"{self.summary} (nothing to change)"
        if self.bump_epoch:
            return f"{self.summary}: done, cluster epoch {self.new_epoch}"
        return f"{self.summary}: done"


PlanMaker = Callable[[Topology], Plan]


@dataclass(frozen=True)
class Applied:
    plan: Plan
    revision: int


def apply(store: Store, plan: Plan, source: str = "console") -> Applied:
    """Commit ``plan`` against the snapshot it was computed from (Conflict if that changed)."""
    if plan.empty:
        return Applied(plan, plan.base.revision)
    event = EventDraft(source, plan.event_kind or plan.kind, plan.event_text or plan.summary)
    revision = store.commit(
        plan.base, plan.writes, bump_epoch=plan.bump_epoch, guards=plan.guards, event=event
    )
    return Applied(plan, revision)


def apply_fresh(
    store: Store,
    make: PlanMaker,
    *,
    expect: Plan | None = None,
    source: str = "console",
    attempts: int = 3,
) -> Applied:
    """Load, plan, commit; on a conflict load and plan again (``attempts`` times in all).
    With ``expect`` (the plan a person confirmed), a new plan whose preview differs is not
    applied: the Conflict says the cluster changed under the confirmation."""
    from .store import Conflict

    last: Conflict | None = None
    for _ in range(attempts):
        plan = make(store.load()) if last is not None or expect is None else expect
        if expect is not None and plan.what() != expect.what():
            raise Conflict(
                "the cluster changed after the plan was shown; the plan is now:\n" + plan.preview()
            )
        try:
            return apply(store, plan, source)
        except Conflict as e:
            last = e
    assert last is not None
    raise last


# -- helpers -----------------------------------------------------------------------------------


def _paths(t: Topology) -> ClusterPaths:
    return ClusterPaths(t.cluster)


def _need_init(t: Topology) -> None:
    if not t.initialised:
        raise PlanError(
            f"cluster {t.cluster!r} does not exist yet (ledis-console cluster init creates it)"
        )


def _group(t: Topology, group_id: int) -> Group:
    g = t.groups.get(group_id)
    if g is None:
        have = ", ".join(str(i) for i in sorted(t.groups)) or "none"
        raise PlanError(f"there is no group {group_id} (groups: {have})")
    return g


def _not_member(t: Topology, addr: str) -> None:
    found = t.find_node(addr)
    if found is not None:
        g, role = found
        raise PlanError(f"{addr} is already the {role} of group {g.id}")


def _slots_write(t: Topology, slots: SlotMap) -> Write:
    return Write(_paths(t).slots, slots.to_json())


def _group_write(t: Topology, g: Group) -> Write:
    return Write(_paths(t).group(g.id), g.to_json())


def _slot_words(ranges: Iterable[tuple[int, int]]) -> str:
    ranges = list(ranges)
    n = sum(b - a + 1 for a, b in ranges)
    return f"{n} slot{'s' if n != 1 else ''} ({format_ranges(ranges)})"


def _busy_slots(t: Topology) -> dict[int, str]:
    """Slots in a migration that is not finished -> the task id."""
    return {s: task.id for task in t.active_migrations() for s in task.slot_list()}


# -- cluster and groups --------------------------------------------------------------------------


def plan_init(t: Topology, now: float | None = None) -> Plan:
    if t.initialised:
        raise PlanError(f"cluster {t.cluster!r} already exists (epoch {t.epoch})")
    if t.versions:
        raise PlanError(
            f"cluster {t.cluster!r} has keys in etcd but no meta document; "
            "it is not a cluster this tool made"
        )
    p = _paths(t)
    epoch = t.epoch + 1
    meta = Meta(t.cluster, time.time() if now is None else now)
    return Plan(
        kind="init",
        summary=f"create cluster {t.cluster!r}",
        steps=(f"{SLOT_COUNT} slots, none assigned yet; add groups, then assign slots",),
        writes=(Write(p.meta, meta.to_json()), Write(p.slots, SlotMap.empty(epoch).to_json())),
        base=t,
    )


def plan_add_group(t: Topology, master: str, group_id: int | None = None) -> Plan:
    _need_init(t)
    _not_member(t, master)
    gid = group_id if group_id is not None else max(t.groups, default=0) + 1
    if gid < 1:
        raise PlanError(f"group ids start at 1 (got {gid})")
    if gid in t.groups:
        raise PlanError(f"group {gid} already exists (master {t.groups[gid].master})")
    g = Group(gid, master, (), t.epoch + 1)
    return Plan(
        kind="add-group",
        summary=f"add group {gid} with master {master}",
        steps=(f"group {gid} owns no slots until slots are assigned or migrated to it",),
        writes=(_group_write(t, g),),
        base=t,
    )


def plan_add_node(t: Topology, group_id: int, addr: str) -> Plan:
    _need_init(t)
    g = _group(t, group_id)
    _not_member(t, addr)
    new = replace(g, replicas=(*g.replicas, addr), epoch=t.epoch + 1)
    return Plan(
        kind="add-node",
        summary=f"add {addr} to group {g.id} as a replica of {g.master}",
        steps=(
            f"{addr} replicates {g.master}: its own data is replaced by a copy of the master's",
        ),
        writes=(_group_write(t, new),),
        base=t,
    )


def plan_remove_node(t: Topology, addr: str) -> Plan:
    _need_init(t)
    found = t.find_node(addr)
    if found is None:
        raise PlanError(f"{addr} is not a member of any group")
    g, role = found
    if role == "replica":
        new = replace(g, replicas=tuple(r for r in g.replicas if r != addr), epoch=t.epoch + 1)
        return Plan(
            kind="remove-node",
            summary=f"remove replica {addr} from group {g.id}",
            steps=(f"{addr} stops replicating {g.master} and keeps the data it has",),
            writes=(_group_write(t, new),),
            base=t,
        )
    owned = t.slots.counts().get(g.id, 0)
    if owned:
        raise PlanError(
            f"{addr} is the master of group {g.id}, which owns {owned} slots; "
            "migrate them to another group first"
        )
    if any(r.target == g.id for r in t.slots.ranges):
        raise PlanError(
            f"slots are migrating to group {g.id}; wait for that migration or cancel it"
        )
    tasks = [task.id for task in t.active_migrations() if g.id in (task.source, task.target)]
    if tasks:
        raise PlanError(f"group {g.id} is part of migration {', '.join(tasks)}; wait or cancel it")
    if g.replicas:
        raise PlanError(
            f"{addr} is the master of group {g.id}, which has replicas "
            f"({', '.join(g.replicas)}); remove them first"
        )
    return Plan(
        kind="remove-node",
        summary=f"remove group {g.id} (master {addr}, no slots, no replicas)",
        steps=(f"group {g.id} is deleted; {addr} keeps its data",),
        writes=(Write(_paths(t).group(g.id), None),),
        base=t,
    )


# -- slot ownership ------------------------------------------------------------------------------


def plan_assign(
    t: Topology, ranges: Sequence[tuple[int, int]], group_id: int, force: bool = False
) -> Plan:
    """Record that ``group_id`` owns these slots. No key moves: for unassigned slots, or with
    ``force`` for slots another group owns (whose keys there are then unreachable)."""
    _need_init(t)
    _group(t, group_id)
    slots = [s for a, b in ranges for s in range(a, b + 1)]
    busy = _busy_slots(t)
    taken: dict[int, list[int]] = {}
    changed = []
    for s in slots:
        r = t.slots.range_of(s)
        if r.state == MIGRATING or s in busy:
            raise PlanError(
                f"slot {s} is part of a migration ({busy.get(s, 'in flight')}); wait or cancel it"
            )
        if r.group == group_id:
            continue
        if r.group is not None:
            taken.setdefault(r.group, []).append(s)
        changed.append(s)
    if taken and not force:
        words = "; ".join(
            f"{_slot_words(compress_slots(v))} owned by group {g}" for g, v in sorted(taken.items())
        )
        raise PlanError(
            f"{words}: assigning moves no keys (use migrate), or add --force to reassign anyway"
        )
    summary = f"assign {_slot_words(compress_slots(slots))} to group {group_id}"
    if not changed:
        return Plan("assign", summary, (), (), t)
    steps = [f"{_slot_words(compress_slots(changed))} now owned by group {group_id}; no keys move"]
    for g, v in sorted(taken.items()):
        steps.append(
            f"taken from group {g}: {_slot_words(compress_slots(v))} (keys there become unreachable)"
        )
    new = t.slots.with_owner(changed, group_id, t.epoch + 1)
    return Plan("assign", summary, tuple(steps), (_slots_write(t, new),), t)


def even_shares(group_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Contiguous, even blocks of slots for these groups, in the order given."""
    n = len(group_ids)
    out = {}
    start = 0
    for i, gid in enumerate(group_ids):
        size = SLOT_COUNT // n + (1 if i < SLOT_COUNT % n else 0)
        out[gid] = (start, start + size - 1)
        start += size
    return out


def plan_assign_even(t: Topology, force: bool = False) -> Plan:
    """Every slot to the groups in even contiguous blocks (group ids in order): the first
    assignment of a new cluster. Reassigning owned slots needs ``force``."""
    _need_init(t)
    if not t.groups:
        raise PlanError("there are no groups yet (ledis-console cluster add-group ADDR)")
    if _busy_slots(t) or t.slots.migrating():
        raise PlanError("a migration is in progress; wait for it or cancel it")
    shares = even_shares(sorted(t.groups))
    owners = t.slots.owners()
    moved: dict[int, list[int]] = {}
    changed = []
    for gid, (a, b) in shares.items():
        for s in range(a, b + 1):
            if owners[s] != gid:
                if owners[s] is not None:
                    moved.setdefault(owners[s], []).append(s)  # type: ignore[arg-type]
                changed.append(s)
                owners[s] = gid
    summary = "assign every slot evenly: " + ", ".join(
        f"group {g} {a}-{b}" for g, (a, b) in shares.items()
    )
    if not changed:
        return Plan("assign", summary, (), (), t)
    if moved and not force:
        n = sum(len(v) for v in moved.values())
        raise PlanError(
            f"{n} of these slots already belong to other groups: assigning moves no keys "
            "(use rebalance), or add --force to reassign anyway"
        )
    steps = [f"{len(changed)} slots change owner; no keys move"]
    new = SlotMap.from_slots(owners, t.epoch + 1)
    return Plan("assign", summary, tuple(steps), (_slots_write(t, new),), t)


# -- migration tasks -----------------------------------------------------------------------------


def _task_id(t: Topology, n: int) -> str:
    return f"m{t.revision}-{n}"


def _tasks_plan(
    t: Topology,
    kind: str,
    summary: str,
    moves: Mapping[tuple[int, int], list[int]],
    now: float,
    extra_steps: Sequence[str] = (),
) -> Plan:
    p = _paths(t)
    tasks = []
    steps = list(extra_steps)
    for n, ((src, dst), slots) in enumerate(sorted(moves.items()), 1):
        ranges = compress_slots(slots)
        task = MigrationTask(
            id=_task_id(t, n), slots=ranges, source=src, target=dst, state=PENDING,
            created=now, updated=now,
        )  # fmt: skip
        tasks.append(task)
        steps.append(f"migration {task.id}: {_slot_words(ranges)} from group {src} to group {dst}")
    writes = tuple(Write(p.migration(task.id), task.to_json()) for task in tasks)
    guards = (
        Guard(p.slots, t.version(p.slots)),
        # no task was created or changed since the snapshot: two planners never both win
        Guard(p.migrations, t.revision, prefix=True),
    )
    return Plan(
        kind,
        summary,
        tuple(steps),
        writes,
        t,
        bump_epoch=False,
        guards=guards,
        event_kind=kind,
        tasks=tuple(tasks),
    )


def plan_migrate(
    t: Topology, ranges: Sequence[tuple[int, int]], target: int, now: float | None = None
) -> Plan:
    """Tasks that move these slots to ``target`` (one task per source group); slots already
    there are left out. The tasks start ``pending``: whoever runs migrations picks them up."""
    _need_init(t)
    _group(t, target)
    now = time.time() if now is None else now
    busy = _busy_slots(t)
    moves: dict[tuple[int, int], list[int]] = {}
    skipped = 0
    for a, b in ranges:
        for s in range(a, b + 1):
            r = t.slots.range_of(s)
            if r.group is None:
                raise PlanError(f"slot {s} is unassigned: assign it (no keys can be there to move)")
            if s in busy or r.state == MIGRATING:
                raise PlanError(
                    f"slot {s} is already part of migration {busy.get(s, '(in flight)')}"
                )
            if r.group == target:
                skipped += 1
                continue
            moves.setdefault((r.group, target), []).append(s)
    summary = f"migrate {_slot_words(ranges)} to group {target}"
    extra = [f"{skipped} slots are in group {target} already"] if skipped else []
    if not moves:
        return Plan("migrate", summary, tuple(extra), (), t, bump_epoch=False)
    return _tasks_plan(t, "migrate", summary, moves, now, extra)


def _rebalance_base(t: Topology) -> list[int]:
    _need_init(t)
    if not t.groups:
        raise PlanError("there are no groups to balance")
    if t.slots.unassigned():
        raise PlanError(
            f"{t.slots.unassigned()} slots are unassigned; assign them first "
            "(ledis-console cluster assign --even)"
        )
    active = t.active_migrations()
    if active or t.slots.migrating():
        raise PlanError(
            f"migration {', '.join(x.id for x in active) or '(in flight)'} is not finished; "
            "wait for it or cancel it"
        )
    return sorted(t.groups)


def plan_rebalance_slots(t: Topology, now: float | None = None) -> Plan:
    """Tasks that leave every group with an even share of slot count, moving as few slots as
    possible (each donor gives its highest slots)."""
    groups = _rebalance_base(t)
    now = time.time() if now is None else now
    counts = t.slots.counts()
    n = len(groups)
    # the groups that hold the most keep the odd extra slot, so fewer slots move
    order = sorted(groups, key=lambda g: (-counts.get(g, 0), g))
    quota = {g: SLOT_COUNT // n + (1 if i < SLOT_COUNT % n else 0) for i, g in enumerate(order)}
    give: list[tuple[int, int]] = []  # (slot, source)
    for g in groups:
        extra = counts.get(g, 0) - quota[g]
        if extra > 0:
            give += [(s, g) for s in t.slots.slots_of(g)[-extra:]]
    moves: dict[tuple[int, int], list[int]] = {}
    for g in groups:
        need = quota[g] - counts.get(g, 0)
        for _ in range(max(0, need)):
            slot, src = give.pop(0)
            moves.setdefault((src, g), []).append(slot)
    summary = "rebalance by slot count: " + ", ".join(
        f"group {g} {counts.get(g, 0)} -> {quota[g]}" for g in groups
    )
    if not moves:
        return Plan(
            "rebalance", summary, ("every group has its share already",), (), t, bump_epoch=False
        )
    return _tasks_plan(t, "rebalance", summary, moves, now)


def plan_rebalance_keys(
    t: Topology, keys_per_slot: Mapping[int, int], tolerance: float = 0.05, now: float | None = None
) -> Plan:
    """Tasks that even out the number of keys per group (``keys_per_slot`` from the nodes,
    missing slots count 0): repeatedly the heaviest group gives the lightest the slot that
    best closes half their gap, until they are within ``tolerance`` of the mean."""
    groups = _rebalance_base(t)
    now = time.time() if now is None else now
    load = {g: 0 for g in groups}
    held: dict[int, list[tuple[int, int]]] = {g: [] for g in groups}  # sorted (keys, slot)
    for s, owner in enumerate(t.slots.owners()):
        assert owner is not None
        k = max(0, int(keys_per_slot.get(s, 0)))
        load[owner] += k
        held[owner].append((k, s))
    for v in held.values():
        v.sort()
    before = dict(load)
    total = sum(load.values())
    slack = max(1.0, tolerance * total / len(groups))
    moved: dict[int, tuple[int, int]] = {}  # slot -> (first source, last target)
    for _ in range(SLOT_COUNT):
        heavy = max(groups, key=lambda g: (load[g], -g))
        light = min(groups, key=lambda g: (load[g], g))
        gap = load[heavy] - load[light]
        if gap <= slack:
            break
        # the biggest slot of the heavy group that is at most half the gap (and not empty)
        items = held[heavy]
        i = bisect.bisect_right(items, (gap // 2, SLOT_COUNT)) - 1
        if i < 0 or items[i][0] == 0 or len(items) == 1:
            break
        keys, slot = items.pop(i)
        bisect.insort(held[light], (keys, slot))
        load[heavy] -= keys
        load[light] += keys
        src = moved[slot][0] if slot in moved else heavy
        moved[slot] = (src, light)
    moves: dict[tuple[int, int], list[int]] = {}
    for slot, (src, dst) in moved.items():
        if src != dst:
            moves.setdefault((src, dst), []).append(slot)
    summary = "rebalance by key count: " + ", ".join(
        f"group {g} {before[g]} -> {load[g]} keys" for g in groups
    )
    if not moves:
        return Plan(
            "rebalance",
            summary,
            ("the groups are within tolerance already",),
            (),
            t,
            bump_epoch=False,
        )
    return _tasks_plan(t, "rebalance", summary, moves, now)


_TRANSITIONS: dict[str, dict[str, str]] = {
    # action -> {from state: to state}
    "pause": {PENDING: PAUSED, RUNNING: PAUSED},
    "resume": {PAUSED: PENDING, FAILED: PENDING},
    "cancel": {PENDING: CANCELLED, PAUSED: CANCELLED, RUNNING: CANCELLING, FAILED: CANCELLED},
}


def plan_task(t: Topology, task_id: str, action: str, now: float | None = None) -> Plan:
    """``pause``, ``resume`` or ``cancel`` a migration task. Cancel leaves every slot not yet
    started where it is; slots in flight are finished first (``cancelling``, then
    ``cancelled`` by the runner); a paused or pending task with no slot in flight is
    cancelled at once. Resume sets the task pending for whoever runs migrations."""
    _need_init(t)
    task = t.migrations.get(task_id)
    if task is None:
        raise PlanError(f"there is no migration {task_id!r}")
    moves = _TRANSITIONS.get(action)
    if moves is None:
        raise PlanError(f"unknown action {action!r} (pause, resume, cancel)")
    to = moves.get(task.state)
    if to is None:
        raise PlanError(f"migration {task_id} is {task.state}; it cannot be {action}d")
    if action == "cancel" and to == CANCELLED and task.current is not None:
        to = CANCELLING  # a slot is in flight: the runner finishes it, then stops
    now = time.time() if now is None else now
    new = replace(task, state=to, updated=now)
    if to == PENDING:
        new = replace(new, error=None)
    p = _paths(t)
    return Plan(
        kind=action,
        summary=f"{action} migration {task_id} ({task.state} -> {to})",
        # no progress figures here: the runner moves them on while the person reads the plan,
        # and a confirmed plan is applied only while what() is unchanged
        steps=(f"{_slot_words(task.slots)} from group {task.source} to group {task.target}",),
        writes=(Write(p.migration(task_id), new.to_json()),),
        base=t,
        bump_epoch=False,
        event_kind="migration",
    )


FINISHED_TASK_STATES = (CANCELLED, DONE, FAILED)


# -- the runner's steps (the migration engine applies these, one slot at a time) ----------------


def plan_start_slot(
    t: Topology, task_id: str, owner: str, window: int = 1, now: float | None = None
) -> Plan:
    """The runner ``owner`` takes the task's next slots, up to ``window`` of them: the task is
    ``running`` with those slots in flight, and the slot map says they migrate (epoch + 1), in
    one transaction. Slots already in flight (a runner died) are taken over as they are, those
    of a ``cancelling`` task too (it stays cancelling: the runner finishes them, then stops).
    The window ends before the first slot that is not the source's to move."""
    _need_init(t)
    task = t.migrations.get(task_id)
    if task is None:
        raise PlanError(f"there is no migration {task_id!r}")
    finishing = task.state == CANCELLING and task.current is not None
    if task.state not in (PENDING, RUNNING) and not finishing:
        raise PlanError(f"migration {task_id} is {task.state}; it does not run")
    now = time.time() if now is None else now
    p = _paths(t)
    if task.current is not None:
        slots = task.in_flight()
    elif task.slots_done < task.slots_total:
        slots = task.slot_list()[task.slots_done : task.slots_done + max(1, window)]
    else:
        raise PlanError(f"migration {task_id} has no slot left to move")
    taken: list[int] = []
    for slot in slots:
        r = t.slots.range_of(slot)
        if r.group != task.source or r.target not in (None, task.target):
            if not taken:
                raise PlanError(
                    f"slot {slot} is not group {task.source}'s to move (the map says {r})"
                )
            break
        taken.append(slot)
    writes = [
        Write(
            p.migration(task_id),
            replace(
                task,
                state=CANCELLING if finishing else RUNNING,
                owner=owner,
                current=taken[0],
                window=len(taken),
                updated=now,
            ).to_json(),
        )
    ]
    fresh = [s for s in taken if t.slots.range_of(s).target is None]
    if fresh:
        writes.append(_slots_write(t, t.slots.with_migrating(fresh, task.target, t.epoch + 1)))
    return Plan(
        kind="migrate-slot",
        summary=f"migration {task_id}: {_slot_words(compress_slots(taken))} migrating from group {task.source} to group {task.target}",
        steps=(f"runner {owner}",),
        writes=tuple(writes),
        base=t,
        bump_epoch=bool(fresh),
        event_kind="migration",
    )


def plan_finish_slot(
    t: Topology, task_id: str, keys: int = 0, nbytes: int = 0, now: float | None = None
) -> Plan:
    """The source has nothing left of the task's slots in flight: they are online at the
    target (epoch + 1) and the task counts them; the last slot makes the task ``done``, and a
    ``cancelling`` task stops here as ``cancelled``."""
    _need_init(t)
    task = t.migrations.get(task_id)
    if task is None or task.current is None:
        raise PlanError(f"migration {task_id} has no slot in flight")
    moved = task.in_flight()
    now = time.time() if now is None else now
    done = task.slots_done + len(moved)
    state = task.state
    if done >= task.slots_total:
        state = DONE
    elif state == CANCELLING:
        state = CANCELLED
    new = replace(task, current=None, window=0, slots_done=done,
                  keys_moved=task.keys_moved + keys, bytes_moved=task.bytes_moved + nbytes,
                  state=state, updated=now,
                  eta_s=0.0 if state == DONE else task.eta_s)  # fmt: skip
    p = _paths(t)
    slots = t.slots.with_owner(moved, task.target, t.epoch + 1)
    return Plan(
        kind="migrate-slot",
        summary=f"migration {task_id}: {_slot_words(compress_slots(moved))} now served by group {task.target} ({done}/{task.slots_total}{', ' + state if state != task.state else ''})",
        steps=(),
        writes=(Write(p.migration(task_id), new.to_json()), _slots_write(t, slots)),
        base=t,
        event_kind="migration",
    )


def plan_next_slot(
    t: Topology,
    task_id: str,
    owner: str,
    keys: int = 0,
    nbytes: int = 0,
    window: int = 1,
    now: float | None = None,
) -> Plan:
    """``plan_finish_slot`` and, when the task goes on, ``plan_start_slot`` of its next
    ``window`` slots, as one transaction and one epoch: the slots just emptied are online at
    the target and the next ones migrating in the same map, so each step of a task costs one
    epoch (one push to the masters, one wait for the proxies) instead of two."""
    finish = plan_finish_slot(t, task_id, keys, nbytes, now)
    p = _paths(t)
    written = {w.path: w.value for w in finish.writes}
    task_json, slots_json = written[p.migration(task_id)], written[p.slots]
    assert task_json is not None and slots_json is not None
    task = MigrationTask.from_json(p.migration(task_id), task_json)
    if task.state != RUNNING:
        return finish
    # the state after the finish, at the same epoch: plan_start_slot's epoch + 1 is then the
    # one epoch this plan bumps to
    after = replace(
        t,
        slots=SlotMap.from_json(p.slots, slots_json),
        migrations={**t.migrations, task_id: task},
    )
    start = plan_start_slot(after, task_id, owner, window, now)
    merged = {w.path: w for w in finish.writes} | {w.path: w for w in start.writes}
    return Plan(
        kind="migrate-slot",
        summary=f"{finish.summary}; {start.summary.split(': ', 1)[1]}",
        steps=(),
        writes=tuple(merged.values()),
        base=t,
        event_kind="migration",
    )
