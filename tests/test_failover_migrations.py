"""The leading controller hosts migration tasks from etcd (stack/failover/migrations.py): a
task created with no console running is carried out, and a new leader takes over the task
its predecessor left half done."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.cluster import plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import DONE
from stack.core.slots import key_slot
from stack.failover.migrations import runnable

from .failover_kit import FailoverCluster
from .servers import wait_until


@pytest.fixture
def fc(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[FailoverCluster]:
    cluster = FailoverCluster(tmp_path, etcd, cluster_name, groups=2, replicas=0)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_leader_runs_a_task_and_a_new_leader_finishes_it(fc: FailoverCluster) -> None:
    topo = fc.store.load()
    g1, g2 = topo.groups[1].master, topo.groups[2].master
    keys = [k for k in (f"k{i}" for i in range(20_000)) if key_slot(k.encode()) < 512][:600]
    c = fc.client(g1)
    for k in keys:
        c.set(k, k)
    first = fc.controller(ident="c1")
    fc.wait_leader()
    applied = plans.apply_fresh(fc.store, lambda t: plans.plan_migrate(t, ((0, 511),), 2))
    (task,) = applied.plan.tasks

    def state() -> tuple[str, int, str | None]:
        m = fc.store.load().migrations[task.id]
        return (m.state, m.slots_done, m.owner)

    wait_until(lambda: state()[1] > 0, "the leader to start the task", 60)
    first.stop(signal.SIGKILL)  # mid-task, most likely (512 slots, one epoch each)
    fc.controller(ident="c2")
    wait_until(lambda: state()[0] == DONE, "the task done", 120)
    assert state()[2] == "ledis-failover:c2"
    assert fc.client(g1).dbsize() == 0
    assert fc.client(g2).dbsize() == len(keys)
    assert all(fc.client(g2).get(k) == k.encode() for k in keys[:50])
    texts = fc.texts()
    assert any(f"migration {task.id}: starting" in t and "controller ledis-failover:c1" in t
               for t in texts), texts  # fmt: skip
    assert any(f"migration {task.id}: taking over" in t for t in texts) or state()[1] == 512


def test_which_task_runs() -> None:
    from stack.cluster.model import MigrationTask, SlotMap, Topology

    def t(*tasks: MigrationTask) -> Topology:
        return Topology("c", 1, None, 1, {}, SlotMap.empty(), migrations={m.id: m for m in tasks})

    now = time.time()
    a = MigrationTask("a", ((0, 9),), 1, 2, "running", "console-host:1", created=1, updated=now)
    b = MigrationTask("b", ((10, 19),), 1, 2, "pending", created=2)
    assert runnable(t(a, b), "ledis-failover:c1", now) is None  # a live console runs a
    assert runnable(t(a, b), "ledis-failover:c1", now + 60) == a  # its runner died
    mine = MigrationTask("a", ((0, 9),), 1, 2, "running", "ledis-failover:c0", created=1,
                         updated=now)  # fmt: skip
    assert runnable(t(mine, b), "ledis-failover:c1", now) == mine  # an old leader's
    paused = MigrationTask("a", ((0, 9),), 1, 2, "paused", created=1)
    assert runnable(t(paused, b), "ledis-failover:c1", now) == b
