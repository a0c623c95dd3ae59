"""The dashboard's migration host against a real cluster (etcd, two masters): a task started
from the dashboard runs in the host's thread, a leading controller that does not take it
within the grace period leaves it to the dashboard, and stopping the host (quitting the
dashboard) leaves the task resumable by ``ledis-console cluster migrate --resume``; the
failover dialog's plan is the scripted command's, from a fresh read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import ClusterSettings
from console.dashboard import actions
from console.dashboard.poller import LiveSource
from console.dashboard.task_host import TaskHost
from stack.cluster import plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import DONE, RUNNING, MigrationTask
from stack.cluster.plans import PlanError

from .cluster_kit import TestCluster, addr, console, ok
from .servers import wait_until
from .test_migration import keys_for, load_keys


@pytest.fixture
def cluster(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[TestCluster]:
    c = TestCluster(tmp_path, etcd, cluster_name, groups=2, replicas=0).create()
    yield c
    c.stop()


def _task(cluster: TestCluster, tid: str) -> MigrationTask:
    return cluster.topology().migrations[tid]


def test_the_dashboard_runs_its_task_and_quitting_leaves_it_resumable(
    cluster: TestCluster,
) -> None:
    keys = keys_for(range(0, 4), 100)
    load_keys(cluster, keys)
    with cluster.store() as s:
        s.put(s.paths.leader, b"controller-that-hosts-no-tasks")  # a controller leads
        applied = plans.apply_fresh(s, lambda t: plans.plan_migrate(t, ((0, 3),), 2))
    (tid,) = (t.id for t in applied.plan.tasks)
    settings = ClusterSettings(name=cluster.name, etcd=(cluster.etcd.endpoint,))
    host = TaskHost(settings, rate=50.0, grace=0.5)  # 400 keys at 50/s: seconds to stop it
    host.start([tid])
    # nobody took it within the grace period: the dashboard runs it
    wait_until(lambda: _task(cluster, tid).keys_moved > 0, "the task under way", 60)
    task = _task(cluster, tid)
    assert task.state == RUNNING and (task.owner or "").endswith(":dashboard")
    assert host.running == (tid,)
    assert host.stop(timeout=60) == (tid,)  # the dashboard quits (generous: a loaded machine)
    assert not host.busy and host.result(tid) == f"ran here: {RUNNING}"
    assert _task(cluster, tid).state == RUNNING  # as it was, resumable
    with cluster.store() as s:
        s.delete(s.paths.leader)  # no controller now: `cluster migrate` runs the task itself
    ok(console("--config", str(cluster.config), "cluster", "migrate", "--resume", tid))
    task = _task(cluster, tid)
    # (keys moved in the batch the stop cut short may go uncounted; where they are is the test)
    assert task.state == DONE and 0 < task.keys_moved <= len(keys)
    t = cluster.topology()
    assert all(t.slots.owner(s) == 2 for s in range(4))
    g2 = cluster.client(cluster.masters[2])
    assert all(g2.get(k) == k.encode() for k in keys)


def test_a_task_the_controller_took_is_left_to_it(cluster: TestCluster) -> None:
    with cluster.store() as s:
        s.put(s.paths.leader, b"controller-1")
        applied = plans.apply_fresh(s, lambda t: plans.plan_migrate(t, ((0, 0),), 2))
        (tid,) = (t.id for t in applied.plan.tasks)
        # the controller takes it (what its runner's first step writes: owner, running)
        plans.apply_fresh(s, lambda t: plans.plan_start_slot(t, tid, "controller-1"))
    host = TaskHost(ClusterSettings(name=cluster.name, etcd=(cluster.etcd.endpoint,)), grace=30)
    host.start([tid])
    wait_until(lambda: host.result(tid) is not None, "the host to decide", 60)
    assert host.result(tid) == "left to the controller, which took it"
    assert _task(cluster, tid).owner == "controller-1"
    host.stop()


def test_the_failover_dialog_plans_from_a_fresh_read_as_the_scripted_command(
    tmp_path: Path, etcd: EtcdServer, cluster_name: str
) -> None:
    """The dashboard's switchover plan is ``ledis-console failover``'s, read at the moment
    the preview is made: a replica that stops after the last poll is refused at once."""
    c = TestCluster(tmp_path, etcd, cluster_name, groups=1, replicas=1).create()
    source = LiveSource(ClusterSettings(c.name, (etcd.endpoint,)), node_timeout=5.0)
    try:

        async def run() -> None:
            last_poll = await source.sample(None)
            replica = addr(c.replicas[1][0])
            assert not last_poll.nodes[replica].stale
            basis = await source.switchover_basis(1)
            ours = basis.plan(1, None, source="the dashboard")
            scripted = ok(console("--config", str(c.config), "failover", "1", "--dry-run"))
            # the same plan, line for line (the console wraps lines at its width)
            assert ours.what().split() == scripted.split() and replica in ours.summary
            # the replica stops; the last poll still shows it up, the dialog's read does not
            c.replicas[1][0].stop()
            spec = actions.ACTIONS["failover"]
            with pytest.raises(PlanError, match=f"{replica} cannot take over: .* does not answer"):
                await spec.fresh({"group": "1", "to": replica}, source.switchover_basis)  # type: ignore[misc]
            assert not last_poll.nodes[replica].stale

        asyncio.run(run())
    finally:
        asyncio.run(source.close())
        c.stop()
