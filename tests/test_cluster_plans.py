"""Plans as pure functions of a snapshot: one case at a time, no etcd."""

from __future__ import annotations

import json
import random

import pytest

from stack.cluster import plans
from stack.cluster.model import (
    CANCELLED,
    CANCELLING,
    PAUSED,
    PENDING,
    Group,
    Meta,
    MigrationTask,
    SlotMap,
    Topology,
)
from stack.cluster.paths import ClusterPaths
from stack.cluster.plans import PlanError
from stack.core.slots import SLOT_COUNT

P = ClusterPaths("c")


def topo(
    groups: dict[int, tuple[str, ...]] | None = None,
    owners: list[int | None] | None = None,
    tasks: tuple[MigrationTask, ...] = (),
    epoch: int = 4,
    targets: dict[int, int] | None = None,
) -> Topology:
    gs = {gid: Group(gid, addrs[0], addrs[1:], epoch) for gid, addrs in (groups or {}).items()}
    slots = SlotMap.from_slots(owners or [None] * SLOT_COUNT, epoch, targets)
    return Topology(
        cluster="c",
        revision=100,
        meta=Meta("c", 1.0),
        epoch=epoch,
        groups=gs,
        slots=slots,
        migrations={t.id: t for t in tasks},
        versions={P.meta: 2, P.epoch: 90, P.slots: 90, **{P.group(g): 50 for g in gs}},
    )


def written(plan: plans.Plan, path: str) -> dict[str, object] | None:
    for w in plan.writes:
        if w.path == path:
            return None if w.value is None else json.loads(w.value)
    raise AssertionError(f"{path} not written")


def half(a: int = 1, b: int = 2) -> list[int | None]:
    return [a] * 8192 + [b] * 8192


TWO = {1: ("h:1", "h:11"), 2: ("h:2",)}


def test_init() -> None:
    empty = Topology("c", 1, None, 0, {}, SlotMap.empty())
    plan = plans.plan_init(empty, now=5.0)
    assert plan.new_epoch == 1 and plan.bump_epoch
    assert written(plan, P.meta) == {"v": 1, "name": "c", "created": 5.0}
    slots = written(plan, P.slots)
    assert slots is not None and slots["epoch"] == 1
    with pytest.raises(PlanError, match="already exists"):
        plans.plan_init(topo())


def test_init_refuses_foreign_keys() -> None:
    odd = Topology("c", 1, None, 0, {}, SlotMap.empty(), versions={P.slots: 3})
    with pytest.raises(PlanError, match="not a cluster this tool made"):
        plans.plan_init(odd)


def test_every_plan_needs_an_initialised_cluster() -> None:
    empty = Topology("c", 1, None, 0, {}, SlotMap.empty())
    with pytest.raises(PlanError, match="cluster init"):
        plans.plan_add_group(empty, "h:1")


def test_add_group() -> None:
    plan = plans.plan_add_group(topo(TWO), "h:3")
    assert written(plan, P.group(3)) == {
        "v": 1,
        "id": 3,
        "master": "h:3",
        "replicas": [],
        "epoch": 5,
    }
    assert "add group 3 with master h:3" in plan.preview() and "epoch 4 -> 5" in plan.preview()
    assert plans.plan_add_group(topo(TWO), "h:3", group_id=9).writes[0].path == P.group(9)
    with pytest.raises(PlanError, match="h:11 is already the replica of group 1"):
        plans.plan_add_group(topo(TWO), "h:11")
    with pytest.raises(PlanError, match="group 2 already exists"):
        plans.plan_add_group(topo(TWO), "h:3", group_id=2)


def test_add_node() -> None:
    plan = plans.plan_add_node(topo(TWO), 2, "h:22")
    assert written(plan, P.group(2)) == {
        "v": 1,
        "id": 2,
        "master": "h:2",
        "replicas": ["h:22"],
        "epoch": 5,
    }
    with pytest.raises(PlanError, match="no group 7"):
        plans.plan_add_node(topo(TWO), 7, "h:22")
    with pytest.raises(PlanError, match="already the master of group 1"):
        plans.plan_add_node(topo(TWO), 2, "h:1")


def test_remove_replica() -> None:
    plan = plans.plan_remove_node(topo(TWO), "h:11")
    assert written(plan, P.group(1)) == {
        "v": 1,
        "id": 1,
        "master": "h:1",
        "replicas": [],
        "epoch": 5,
    }


def test_remove_master() -> None:
    t = topo(TWO, half())
    with pytest.raises(PlanError, match="owns 8192 slots"):
        plans.plan_remove_node(t, "h:2")
    t = topo({**TWO, 3: ("h:3",)}, half())
    plan = plans.plan_remove_node(t, "h:3")
    assert written(plan, P.group(3)) is None
    with pytest.raises(PlanError, match="has replicas"):
        plans.plan_remove_node(topo(TWO), "h:1")
    with pytest.raises(PlanError, match="not a member"):
        plans.plan_remove_node(t, "h:99")


def test_remove_master_of_a_migration_target() -> None:
    t = topo({**TWO, 3: ("h:3",)}, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 3),))
    with pytest.raises(PlanError, match="part of migration m1"):
        plans.plan_remove_node(t, "h:3")


def test_assign_unassigned_then_owned() -> None:
    t = topo(TWO)
    plan = plans.plan_assign(t, [(0, 99)], 1)
    slots = SlotMap.from_json("k", plan.writes[0].value or b"")
    assert slots.owner(99) == 1 and slots.owner(100) is None and slots.epoch == 5
    t2 = topo(TWO, half())
    with pytest.raises(PlanError, match=r"8192 slots \(0-8191\) owned by group 1.*--force"):
        plans.plan_assign(t2, [(0, 8191)], 2)
    forced = plans.plan_assign(t2, [(0, 10)], 2, force=True)
    assert "taken from group 1: 11 slots (0-10)" in forced.preview()
    same = plans.plan_assign(t2, [(0, 10)], 1)
    assert same.empty and "nothing to change" in same.recap()


def test_assign_refuses_migrating_slots() -> None:
    t = topo(TWO, half(), tasks=(MigrationTask("m7", ((0, 9),), 1, 2),))
    with pytest.raises(PlanError, match="slot 5 is part of a migration \\(m7\\)"):
        plans.plan_assign(t, [(5, 5)], 2, force=True)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_assign_even(n: int) -> None:
    groups = {g: (f"h:{g}",) for g in range(1, n + 1)}
    plan = plans.plan_assign_even(topo(groups))
    slots = SlotMap.from_json("k", plan.writes[0].value or b"")
    counts = slots.counts()
    assert sum(counts.values()) == SLOT_COUNT and max(counts.values()) - min(counts.values()) <= 1
    assert len(slots.ranges) == n
    again = topo(groups, slots.owners())
    assert plans.plan_assign_even(again).empty


def test_assign_even_needs_force_to_take_slots() -> None:
    t = topo({1: ("h:1",), 2: ("h:2",), 3: ("h:3",)}, half())
    with pytest.raises(PlanError, match="--force"):
        plans.plan_assign_even(t)
    assert plans.plan_assign_even(t, force=True).writes


def test_migrate_one_task_per_source() -> None:
    t = topo({**TWO, 3: ("h:3",)}, [1] * 8000 + [2] * 8384)
    plan = plans.plan_migrate(t, [(7990, 8009)], 3, now=1.0)
    assert [(x.source, x.target, x.slots) for x in plan.tasks] == [
        (1, 3, ((7990, 7999),)),
        (2, 3, ((8000, 8009),)),
    ]
    assert not plan.bump_epoch
    assert all(x.state == PENDING and x.id.startswith("m100-") for x in plan.tasks)
    assert any(g.prefix and g.path == P.migrations for g in plan.guards)
    skip = plans.plan_migrate(t, [(7998, 8001)], 2)
    assert [x.slots for x in skip.tasks] == [
        ((7998, 7999),)
    ] and "2 slots are in group 2" in skip.preview()
    with pytest.raises(PlanError, match="unassigned"):
        plans.plan_migrate(topo(TWO), [(0, 1)], 2)


def test_migrate_refuses_slots_in_a_task() -> None:
    t = topo(TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2, state=PAUSED),))
    with pytest.raises(PlanError, match="already part of migration m1"):
        plans.plan_migrate(t, [(9, 20)], 2)
    done = topo(TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2, state="done"),))
    assert plans.plan_migrate(done, [(9, 20)], 2).tasks


def _apply_tasks(t: Topology, plan: plans.Plan) -> list[int | None]:
    owners = t.slots.owners()
    for task in plan.tasks:
        for s in task.slot_list():
            assert owners[s] == task.source
            owners[s] = task.target
    return owners


@pytest.mark.parametrize("shape", [(16384, 0), (10000, 6384), (8192, 8192), (1, 16383)])
def test_rebalance_by_slot_count_two_groups(shape: tuple[int, int]) -> None:
    a, b = shape
    t = topo(TWO, [1] * a + [2] * b)
    plan = plans.plan_rebalance_slots(t, now=1.0)
    after = _apply_tasks(t, plan)
    assert sorted(after.count(g) for g in (1, 2)) == [8192, 8192]
    moved = sum(x.slots_total for x in plan.tasks)
    assert moved == abs(a - 8192)  # no slot moves that need not


def test_rebalance_by_slot_count_new_group() -> None:
    t = topo({**TWO, 3: ("h:3",)}, half())
    plan = plans.plan_rebalance_slots(t)
    after = _apply_tasks(t, plan)
    assert sorted(after.count(g) for g in (1, 2, 3)) == [5461, 5461, 5462]
    assert {(x.source, x.target) for x in plan.tasks} == {(1, 3), (2, 3)}
    assert "group 3 0 -> 546" in plan.summary


def test_rebalance_refusals() -> None:
    with pytest.raises(PlanError, match="unassigned"):
        plans.plan_rebalance_slots(topo(TWO, [1] * 100 + [None] * (SLOT_COUNT - 100)))
    busy = topo(TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2),))
    with pytest.raises(PlanError, match="m1 is not finished"):
        plans.plan_rebalance_keys(busy, {})


def test_rebalance_by_keys() -> None:
    rng = random.Random(3)
    keys = {s: rng.randrange(0, 100) for s in range(SLOT_COUNT)}
    for s in range(0, 50):
        keys[s] = 20_000  # a hot spot in group 1
    t = topo({**TWO, 3: ("h:3",)}, half())
    plan = plans.plan_rebalance_keys(t, keys, tolerance=0.05)
    after = _apply_tasks(t, plan)
    load = {g: sum(keys[s] for s in range(SLOT_COUNT) if after[s] == g) for g in (1, 2, 3)}
    mean = sum(load.values()) / 3
    assert max(abs(v - mean) for v in load.values()) <= 0.05 * mean + 20_000
    assert max(load.values()) - min(load.values()) < 0.5 * mean
    balanced = topo(TWO, half())
    even = {s: 1 for s in range(SLOT_COUNT)}
    assert plans.plan_rebalance_keys(balanced, even).empty


def test_task_state_changes() -> None:
    task = MigrationTask("m1", ((0, 9),), 1, 2, state="running", current=3, slots_done=3)
    t = topo(TWO, half(), tasks=(task,))
    pause = plans.plan_task(t, "m1", "pause", now=9.0)
    doc = written(pause, P.migration("m1"))
    assert doc is not None and doc["state"] == PAUSED and doc["updated"] == 9.0
    assert not pause.bump_epoch
    paused = topo(
        TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2, state=PAUSED, current=3),)
    )
    assert written(plans.plan_task(paused, "m1", "resume"), P.migration("m1"))["state"] == PENDING  # type: ignore[index]
    # a slot in flight is finished before the task stops
    assert (
        written(plans.plan_task(paused, "m1", "cancel"), P.migration("m1"))["state"] == CANCELLING
    )  # type: ignore[index]
    idle = topo(TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2, state=PAUSED),))
    assert written(plans.plan_task(idle, "m1", "cancel"), P.migration("m1"))["state"] == CANCELLED  # type: ignore[index]
    done = topo(TWO, half(), tasks=(MigrationTask("m1", ((0, 9),), 1, 2, state="done"),))
    with pytest.raises(PlanError, match="m1 is done; it cannot be paused"):
        plans.plan_task(done, "m1", "pause")
    with pytest.raises(PlanError, match="no migration 'm9'"):
        plans.plan_task(done, "m9", "pause")


def test_a_confirmed_task_action_survives_the_runners_progress() -> None:
    """`cluster cancel ID --yes` while the migration runs: the runner's progress writes
    (slots done, keys) must not make the confirmed plan stale (it did: 'the cluster changed
    after the plan was shown')."""
    from dataclasses import replace

    task = MigrationTask("m1", ((0, 99),), 1, 2, state="running", current=2, slots_done=2)
    shown = plans.plan_task(topo(TWO, half(), tasks=(task,)), "m1", "cancel", now=1.0)
    later = replace(task, current=3, slots_done=3, keys_moved=120)
    again = plans.plan_task(topo(TWO, half(), tasks=(later,)), "m1", "cancel", now=2.0)
    assert again.what() == shown.what()


def test_runner_steps_move_one_slot_at_a_time() -> None:
    task = MigrationTask("m1", ((10, 11),), 1, 2)
    t = topo(TWO, half(), tasks=(task,))
    start = plans.plan_start_slot(t, "m1", "runner-a", now=1.0)
    assert start.bump_epoch
    slots = SlotMap.from_json("k", json.dumps(written(start, P.slots)))
    assert slots.range_of(10).target == 2 and slots.owner(10) == 1 and slots.epoch == 5
    doc = written(start, P.migration("m1"))
    assert doc is not None and (doc["state"], doc["current"], doc["owner"]) == (
        "running",
        10,
        "runner-a",
    )
    # the slot is in flight: the next step finishes it
    t2 = topo(
        TWO,
        half(),
        tasks=(MigrationTask.from_json("k", json.dumps(doc)),),
        targets={10: 2},
        epoch=5,
    )
    again = plans.plan_start_slot(t2, "m1", "runner-b")  # a new runner takes over the same slot
    assert not again.bump_epoch and written(again, P.migration("m1"))["current"] == 10  # type: ignore[index]
    finish = plans.plan_finish_slot(t2, "m1", keys=7, nbytes=70)
    fdoc = written(finish, P.migration("m1"))
    assert fdoc is not None and (fdoc["slots_done"], fdoc["current"], fdoc["keys_moved"]) == (
        1,
        None,
        7,
    )
    fslots = SlotMap.from_json("k", json.dumps(written(finish, P.slots)))
    assert fslots.owner(10) == 2 and fslots.range_of(10).state == "online" and fslots.epoch == 6
    # a cancelled task stops after the slot in flight; the last slot makes it done
    cancelling = MigrationTask("m1", ((10, 11),), 1, 2, state=CANCELLING, current=10)
    t3 = topo(TWO, half(), tasks=(cancelling,), targets={10: 2})
    assert written(plans.plan_finish_slot(t3, "m1"), P.migration("m1"))["state"] == CANCELLED  # type: ignore[index]
    last = MigrationTask("m1", ((10, 11),), 1, 2, state="running", current=11, slots_done=1)
    t4 = topo(TWO, half(), tasks=(last,), targets={11: 2})
    assert written(plans.plan_finish_slot(t4, "m1"), P.migration("m1"))["state"] == "done"  # type: ignore[index]
    with pytest.raises(PlanError, match="does not run"):
        plans.plan_start_slot(topo(TWO, half(), tasks=(replace_state(task, PAUSED),)), "m1", "r")


def replace_state(task: MigrationTask, state: str) -> MigrationTask:
    from dataclasses import replace

    return replace(task, state=state)
