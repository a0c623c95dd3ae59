"""Slot migration end to end: real etcd, real ledis-servers in groups with replicas, the
migration engine run by ``ledis-console cluster migrate`` (a subprocess), pause / resume /
cancel, kill -9 of the source, the target and the migrating process mid-slot, and Redis
Cluster's resharding test under load through ledis-proxy."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import MigrationTask
from stack.cluster.nodemap import node_map
from stack.core.slots import key_slot

from .cluster_kit import TestCluster, console, console_bg, ok
from .servers import wait_until

LOAD_RATE = 2500  # RPUSH a second through the proxy during the resharding test
WRITERS = 8
# The big hash's size: the 1M with LEDIS_BIG_HASH_MEMBERS=1000000 (about a minute more;
# what is asserted is the same at any size: parts counted, the hash whole at the target).
BIG_HASH_MEMBERS = int(os.environ.get("LEDIS_BIG_HASH_MEMBERS", "200000"))


def keys_for(slots: range, per_slot: int, prefix: str = "key") -> list[str]:
    """``per_slot`` keys in each slot of ``slots`` (names found by trying)."""
    want = {s: per_slot for s in slots}
    out: list[str] = []
    i = 0
    while want:
        k = f"{prefix}:{i}"
        s = key_slot(k.encode())
        if s in want:
            out.append(k)
            want[s] -= 1
            if not want[s]:
                del want[s]
        i += 1
    return out


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def replicas_agree(cluster: TestCluster) -> None:
    for g, master in cluster.masters.items():
        m = cluster.client(master)
        for r in cluster.replicas[g]:
            rc = cluster.client(r)
            wait_until(lambda m=m, rc=rc: digest(rc) == digest(m), f"group {g}'s replica", 120)


def task_of(cluster: TestCluster) -> MigrationTask:
    tasks = list(cluster.topology().migrations.values())
    assert len(tasks) == 1, tasks
    return tasks[0]


@pytest.fixture
def cluster(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[TestCluster]:
    c = TestCluster(tmp_path, etcd, cluster_name, groups=2, replicas=1).create()
    yield c
    c.stop()


def test_node_map_round_trip_and_next_slot_plan() -> None:
    """Without processes: the map the cluster pushes parses on the server into the same
    owners and targets, and plan_next_slot is finish + start in one epoch."""
    from dataclasses import replace

    from stack.cluster import plans
    from stack.cluster.model import Group, Meta, SlotMap, Topology
    from stack.server.slotmap import NodeMap

    groups = {g: Group(g, f"127.0.0.1:{7000 + g}") for g in (1, 2, 3)}
    owners = [1] * 5000 + [2] * 6000 + [3] * 5384
    t = Topology("c", 9, Meta("c", 0.0), 4, groups, SlotMap.from_slots(owners, 4, {7: 3, 9000: 1}))
    for g in groups:
        m = NodeMap.parse(t.epoch, node_map(t, g))
        assert m.group == g and list(m.owners) == owners
        assert {s: m.targets[s] for s in range(16384) if m.targets[s]} == {7: 3, 9000: 1}
        assert m.addrs == {1: "127.0.0.1:7001", 2: "127.0.0.1:7002", 3: "127.0.0.1:7003"}
    t = replace(t, slots=SlotMap.from_slots(owners, 4))
    task = plans.plan_migrate(t, [(10, 12)], 2, now=0.0).tasks[0]
    t = replace(t, migrations={task.id: task})
    start = plans.plan_start_slot(t, task.id, "me", now=0.0)
    assert start.new_epoch == 5
    seen = []
    for _ in range(3):
        t = _applied(t, start)
        seen.append((t.epoch, t.migrations[task.id].current, t.slots.migrating()))
        start = plans.plan_next_slot(t, task.id, "me", keys=2, nbytes=20, now=0.0)
    t = _applied(t, start)
    assert [(e, c) for e, c, _m in seen] == [(5, 10), (6, 11), (7, 12)]
    assert all(len(m) == 1 and m[0].start == m[0].end == c for _e, c, m in seen)
    done = t.migrations[task.id]
    assert (t.epoch, done.state, done.slots_done, done.keys_moved, done.bytes_moved) == (
        8,
        "done",
        3,
        6,
        60,
    )
    assert all(t.slots.owner(s) == 2 for s in (10, 11, 12)) and not t.slots.migrating()


def test_a_window_of_slots_moves_in_one_epoch() -> None:
    """Without processes: plan_start_slot takes up to ``window`` slots (ending before a slot
    that is not the source's), plan_next_slot finishes them all and starts the next window in
    one epoch, and the runner's window grows on sparse slots and shrinks on full ones."""
    from dataclasses import replace

    from stack.cluster import plans
    from stack.cluster.migration import RunnerSettings, next_step
    from stack.cluster.model import Group, Meta, SlotMap, Topology

    groups = {g: Group(g, f"127.0.0.1:{7000 + g}") for g in (1, 2)}
    owners = [1] * 8192 + [2] * 8192
    t = Topology("c", 1, Meta("c", 0.0), 1, groups, SlotMap.from_slots(owners, 1))
    task = plans.plan_migrate(t, [(0, 9)], 2, now=0.0).tasks[0]
    t = replace(t, migrations={task.id: task})
    t = _applied(t, plans.plan_start_slot(t, task.id, "me", window=4, now=0.0))
    mt = t.migrations[task.id]  # type: ignore[attr-defined]
    assert (mt.current, mt.window, mt.in_flight()) == (0, 4, [0, 1, 2, 3])
    assert [(r.start, r.end, r.target) for r in t.slots.migrating()] == [(0, 3, 2)]  # type: ignore[attr-defined]
    t = _applied(t, plans.plan_next_slot(t, task.id, "me", keys=7, window=8, now=0.0))
    mt = t.migrations[task.id]  # type: ignore[attr-defined]
    assert t.epoch == 3 and mt.slots_done == 4 and mt.in_flight() == [4, 5, 6, 7, 8, 9]  # type: ignore[attr-defined]
    assert all(t.slots.owner(s) == 2 for s in range(4))  # type: ignore[attr-defined]
    t = _applied(t, plans.plan_next_slot(t, task.id, "me", keys=1, window=8, now=0.0))
    mt = t.migrations[task.id]  # type: ignore[attr-defined]
    assert (mt.state, mt.slots_done, mt.keys_moved, mt.current, mt.window) == (
        "done",
        10,
        8,
        None,
        0,
    )
    assert all(t.slots.owner(s) == 2 for s in range(10)) and not t.slots.migrating()  # type: ignore[attr-defined]
    # a slot that is not the source's ends the window before it
    t2 = Topology("c", 1, Meta("c", 0.0), 1, groups, SlotMap.from_slots([1] * 3 + [2] * 16381, 1))
    task2 = replace(plans.plan_migrate(t2, [(0, 2)], 2, now=0.0).tasks[0], slots=((0, 5),))
    t2 = replace(t2, migrations={task2.id: task2})
    t2 = _applied(t2, plans.plan_start_slot(t2, task2.id, "me", window=16, now=0.0))
    assert t2.migrations[task2.id].in_flight() == [0, 1, 2]  # type: ignore[attr-defined]
    s = RunnerSettings(owner="me", batch_keys=500, max_window=64)
    assert [next_step(w, k, s) for w, k in [(1, 0), (32, 10), (64, 0), (8, 500), (1, 9000)]] == [
        2,
        64,
        64,
        4,
        1,
    ]
    assert next_step(4, 0, replace(s, max_window=1)) == 1


def _applied(t: object, plan: object) -> object:
    """A topology with a plan's writes applied (what a commit and a reload give)."""
    from dataclasses import replace

    from stack.cluster.model import MigrationTask, SlotMap

    migrations, slots = dict(t.migrations), t.slots  # type: ignore[attr-defined]
    for w in plan.writes:  # type: ignore[attr-defined]
        if w.path.endswith("/slots"):
            slots = SlotMap.from_json(w.path, w.value)
        else:
            task = MigrationTask.from_json(w.path, w.value)
            migrations[task.id] = task
    return replace(t, slots=slots, migrations=migrations, epoch=plan.new_epoch)  # type: ignore[type-var,attr-defined]


def load_keys(cluster: TestCluster, keys: list[str]) -> None:
    owners = cluster.topology().slots.owners()
    pipes = {g: cluster.client(m).pipeline(transaction=False) for g, m in cluster.masters.items()}
    for k in keys:
        pipes[owners[key_slot(k.encode())]].set(k, k)  # type: ignore[index]
    for p in pipes.values():
        p.execute()


def test_the_node_map_is_what_the_server_reads(cluster: TestCluster) -> None:
    """The document the cluster pushes (nodemap.py) is the one the server parses (slotmap.py)."""
    t = cluster.topology()
    for g, master in cluster.masters.items():
        got = cluster.client(master).execute_command("SLOTSMAP", "GET")
        assert json.loads(got) == json.loads(node_map(t, g))
        assert cluster.client(master).info("slots")["ledis_slot_map_epoch"] == t.epoch
    for g, reps in cluster.replicas.items():
        for r in reps:
            m = cluster.client(cluster.masters[g])
            wait_until(lambda r=r, m=m: cluster.client(r).execute_command("SLOTSMAP", "GET")
                       == m.execute_command("SLOTSMAP", "GET"), "the replica's map")  # fmt: skip


def test_migrate_moves_the_slots_and_their_keys(cluster: TestCluster) -> None:
    keys = keys_for(range(0, 64), 5)
    load_keys(cluster, keys)
    big = keys_for(range(3, 4), 1, "big")[0]
    cluster.client(cluster.masters[1]).hset(big, mapping={f"f{i}": i for i in range(3000)})
    epoch = cluster.topology().epoch
    out = ok(console("--config", str(cluster.config), "cluster", "migrate", "--slots", "0-63",
                     "--to", "2", "--yes"))  # fmt: skip
    assert "migrate 64 slots (0-63) to group 2" in out
    task = task_of(cluster)
    assert task.state == "done" and task.slots_done == 64
    # 5 keys a slot: the window grows (1, 2, 4 ... slots a step), so far fewer epochs than slots
    assert cluster.topology().epoch - epoch < 20
    assert task.keys_moved == len(keys) + 1 and task.bytes_moved > 0
    assert f"migration {task.id}: done, 64/64 slots" in out
    t = cluster.topology()
    assert all(t.slots.owner(s) == 2 for s in range(64)) and not t.slots.migrating()
    assert cluster.misplaced() == []
    g2 = cluster.client(cluster.masters[2])
    assert g2.hlen(big) == 3000 and all(g2.get(k) == k.encode() for k in keys)
    for g, master in cluster.masters.items():  # every master has the final map
        assert cluster.client(master).info("slots")["ledis_slot_map_epoch"] == t.epoch, g
    replicas_agree(cluster)
    listing = ok(console("--config", str(cluster.config), "cluster", "migrations", "--all"))
    assert task.id in listing and "done" in listing
    doc = json.loads(ok(console("--config", str(cluster.config), "cluster", "status", "--json")))
    assert doc["migrations"][0]["state"] == "done" and doc["migrations"][0]["percent"] == 100.0


def test_the_rate_holds_across_slots(cluster: TestCluster) -> None:
    """--rate is keys a second over the whole task: slots that each empty in one call (100
    keys, batches of 500) still wait their turn (before, each slot waited at most 0.3 s, so
    400 keys at 50/s took about 2 s instead of 8)."""
    load_keys(cluster, keys_for(range(100, 104), 100))
    started = time.monotonic()
    ok(console("--config", str(cluster.config), "cluster", "migrate", "--slots", "100-103",
               "--to", "2", "--rate", "50", "--yes"))  # fmt: skip
    assert time.monotonic() - started >= 400 / 50 * 0.95
    assert task_of(cluster).state == "done" and task_of(cluster).keys_moved == 400


def _running(cluster: TestCluster, pred: object = None) -> MigrationTask:
    box: dict[str, MigrationTask] = {}

    def check() -> bool:
        tasks = list(cluster.topology().migrations.values())
        if (
            tasks
            and tasks[0].state == "running"
            and tasks[0].current is not None
            and (
                pred is None or pred(tasks[0])  # type: ignore[operator]
            )
        ):
            box["t"] = tasks[0]
            return True
        return False

    wait_until(check, "the migration running", 120)
    return box["t"]


def test_pause_resume_and_cancel(cluster: TestCluster, tmp_path: Path) -> None:
    keys = keys_for(range(0, 16), 40)
    load_keys(cluster, keys)
    cfg = str(cluster.config)
    # a slow migration (a throttle of 50 keys a second), paused after its first slot
    runner = console_bg("--config", cfg, "cluster", "migrate", "--slots", "0-15", "--to", "2",
                        "--yes", "--rate", "50", "--batch-keys", "10", log=tmp_path / "m1.log")  # fmt: skip
    task = _running(cluster, lambda t: t.slots_done >= 1)
    ok(console("--config", cfg, "cluster", "pause", task.id, "--yes"))
    assert runner.wait(120) == 0
    paused = task_of(cluster)
    assert paused.state == "paused"
    if paused.current is not None:  # paused within a step: its slots stay where it stopped
        assert cluster.topology().slots.range_of(paused.current).state == "migrating"
    else:  # paused between two steps (a loaded machine): nothing is left migrating
        assert all(r.state == "online" for r in cluster.topology().slots.ranges)
    # every key still answers, wherever it is, through the proxy
    front = cluster.proxy().client()
    assert front.mget(keys) == [k.encode() for k in keys]
    # resume runs it here to the end
    out = ok(console("--config", cfg, "cluster", "resume", paused.id, "--yes"))
    assert "done, 16/16 slots" in out
    assert cluster.misplaced() == []
    # cancel: the slot in flight is finished, the ones not started stay where they were
    keys2 = keys_for(range(16, 32), 40, "c")
    load_keys(cluster, keys2)
    runner = console_bg("--config", cfg, "cluster", "migrate", "--slots", "16-31", "--to", "2",
                        "--yes", "--rate", "50", "--batch-keys", "10", log=tmp_path / "m2.log")  # fmt: skip
    wait_until(lambda: any(t.state == "running" and t.slots_done >= 1 and t.id != paused.id
                           for t in cluster.topology().migrations.values()), "the second one")  # fmt: skip
    second = next(t for t in cluster.topology().migrations.values() if t.id != paused.id)
    ok(console("--config", cfg, "cluster", "cancel", second.id, "--yes"))
    assert runner.wait(120) == 0
    final = cluster.topology().migrations[second.id]
    assert final.state == "cancelled" and final.current is None
    t = cluster.topology()
    moved = [s for s in range(16, 32) if t.slots.owner(s) == 2]
    assert moved == list(range(16, 16 + final.slots_done))
    assert all(t.slots.owner(s) == 1 for s in range(16 + final.slots_done, 32))
    assert not t.slots.migrating() and cluster.misplaced() == []
    replicas_agree(cluster)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim", ["runner", "source", "target", "runner-then-cancel"])
def test_kill9_mid_slot_then_resume(cluster: TestCluster, tmp_path: Path, victim: str) -> None:
    """kill -9 of the migrating process, the source or the target while a slot is in flight:
    every slot owned by exactly one group, nothing lost, and the task goes on to the end; or,
    cancelled after the runner's kill, whoever resumes it finishes the slot in flight only."""
    keys = keys_for(range(100, 104), 300)
    load_keys(cluster, keys)
    big = keys_for(range(101, 102), 1, "big")[0]
    cluster.client(cluster.masters[1]).rpush(big, *range(20_000))
    cfg = str(cluster.config)
    runner = console_bg("--config", cfg, "cluster", "migrate", "--slots", "100-103", "--to", "2",
                        "--yes", "--rate", "400", "--batch-keys", "20", "--node-wait", "120",
                        log=tmp_path / "runner.log")  # fmt: skip
    _running(cluster, lambda t: t.keys_moved >= 100)
    if victim == "runner-then-cancel":
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
        stuck = task_of(cluster)
        assert stuck.state == "running" and stuck.current is not None
        ok(console("--config", cfg, "cluster", "cancel", stuck.id, "--yes"))
        assert task_of(cluster).state == "cancelling"
        ok(console("--config", cfg, "cluster", "migrate", "--resume"))
        task = task_of(cluster)
        assert task.state == "cancelled" and task.current is None, task
        t = cluster.topology()
        assert not t.slots.migrating()
        owners = {s: t.slots.owner(s) for s in range(100, 104)}
        # the slots before the one in flight moved, it was finished, the rest stayed
        assert all(owners[s] == (2 if s <= stuck.current else 1) for s in owners), owners
        assert cluster.misplaced() == []
        for k in keys:
            assert (
                cluster.client(cluster.masters[owners[key_slot(k.encode())]]).get(k) == k.encode()
            )
        g = cluster.client(cluster.masters[owners[key_slot(big.encode())]])
        assert g.lrange(big, 0, -1) == [str(i).encode() for i in range(20_000)]
        replicas_agree(cluster)
        return
    if victim == "runner":
        runner.send_signal(signal.SIGKILL)
        runner.wait(30)
        stuck = task_of(cluster)
        assert stuck.state == "running" and stuck.current is not None
        out = ok(console("--config", cfg, "cluster", "migrate", "--resume"))
        assert "done, 4/4 slots" in out
    else:
        node = cluster.masters[1 if victim == "source" else 2]
        port = node.port
        node.kill9()
        node.extra += ["--port", str(port)]  # back on its port, with its data
        node.start()
        assert runner.wait(300) == 0, (tmp_path / "runner.log").read_text()
    task = task_of(cluster)
    assert task.state == "done", task
    t = cluster.topology()
    assert all(t.slots.owner(s) == 2 for s in range(100, 104)) and not t.slots.migrating()
    assert cluster.misplaced() == []
    g2 = cluster.client(cluster.masters[2])
    assert all(g2.get(k) == k.encode() for k in keys)
    assert g2.lrange(big, 0, -1) == [str(i).encode() for i in range(20_000)]
    replicas_agree(cluster)


@pytest.mark.timeout(1200)
def test_a_million_member_hash_moves_in_bounded_parts(cluster: TestCluster, tmp_path: Path) -> None:
    """A big hash (1M members with LEDIS_BIG_HASH_MEMBERS=1000000, 200k by default to keep
    the suite short) in a migrating slot moves in parts of at most 1000 fields, each one
    short step on either node, so another client's GETs on the source keep being answered
    (their p99 is printed; what is asserted is counted, not timed: the number and size of
    the parts, and that the hash arrived whole)."""
    key = keys_for(range(5, 6), 1, "huge")[0]
    other = keys_for(range(6, 7), 1, "other")[0]
    src = cluster.client(cluster.masters[1])
    members = BIG_HASH_MEMBERS
    pipe = src.pipeline(transaction=False)
    for start in range(0, members, 2000):
        pipe.hset(key, mapping={f"f{i}": i for i in range(start, start + 2000)})
        if len(pipe) >= 25:
            pipe.execute()
    pipe.execute()
    src.set(other, "v")
    assert src.hlen(key) == members
    sample = {f"f{i}": str(i).encode() for i in range(0, members, members // 11 + 1)}
    latencies: list[float] = []
    wrong: list[object] = []
    stop = threading.Event()

    def reader() -> None:
        c = cluster.client(cluster.masters[1])
        while not stop.is_set():
            t0 = time.perf_counter()
            got = c.get(other)
            latencies.append(time.perf_counter() - t0)
            if got != b"v":
                wrong.append(got)

    th = threading.Thread(target=reader)
    th.start()
    try:
        out = ok(console("--config", str(cluster.config), "cluster", "migrate", "--slots", "5",
                         "--to", "2", "--yes", timeout=1100))  # fmt: skip
    finally:
        stop.set()
        th.join(60)
    assert "done, 1/1 slots" in out and wrong == []
    dst = cluster.client(cluster.masters[2])
    assert dst.hlen(key) == members
    assert src.execute_command("SLOTSINFO", 5, 1) == []  # (a GET there would be MOVED now)
    assert dict(zip(sample, dst.hmget(key, list(sample)), strict=True)) == sample
    target_info, source_info = dst.info("slots"), src.info("slots")
    assert target_info["ledis_stage_part_entries_max"] <= 1000
    assert target_info["ledis_stage_parts_received"] >= members // 1000
    assert source_info["ledis_migrate_parts_sent"] >= members // 1000
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"{members}-member hash: {len(latencies)} GETs meanwhile, p50 "
          f"{latencies[len(latencies) // 2] * 1000:.2f} ms, p99 {p99:.2f} ms, "
          f"max {latencies[-1] * 1000:.1f} ms")  # fmt: skip
    replicas_agree(cluster)


@pytest.mark.timeout(3600)
def test_resharding_under_load(cluster: TestCluster, tmp_path: Path) -> None:
    """Redis Cluster's resharding test: 50k keys, and RPUSH of numbered elements into 200
    lists by several clients while 1024 slots move from group 1 to group 2. Afterwards every
    list holds every acknowledged element exactly once and in order, no client saw an error,
    every key is in the group that owns its slot and nowhere else, and the replicas of both
    groups have what their masters have."""
    keys = [f"key:{i}" for i in range(50_000)]
    load_keys(cluster, keys)
    lists = [f"list:{i}" for i in range(200)]
    acked: dict[str, list[int]] = {name: [] for name in lists}
    errors: list[str] = []
    stop = threading.Event()
    ops = [0]
    proxy = cluster.proxy()

    def writer(mine: list[str]) -> None:
        # each list has one writer, so its elements are acknowledged in order; paced to
        # LOAD_RATE in all, so the load is what the test says whatever the machine does
        c = proxy.client()
        every = WRITERS / LOAD_RATE
        due = time.monotonic()
        n = 0
        while not stop.is_set():
            due += every
            ahead = due - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            name = mine[n % len(mine)]
            value = len(acked[name])
            try:
                c.rpush(name, value)
            except Exception as e:  # any error a client would see
                errors.append(f"{name} {value}: {e!r}")
                return
            acked[name].append(value)
            ops[0] += 1
            n += 1

    threads = [threading.Thread(target=writer, args=(lists[i::WRITERS],)) for i in range(WRITERS)]
    for th in threads:
        th.start()
    try:
        started = time.monotonic()
        out = ok(console("--config", str(cluster.config), "cluster", "migrate", "--slots",
                         "0-1023", "--to", "2", "--yes", timeout=3300))  # fmt: skip
        elapsed = time.monotonic() - started
        rate = ops[0] / elapsed
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    stats = proxy.client().info("proxy")
    print(f"resharding: 1024 slots in {elapsed:.1f}s, {rate:.0f} RPUSH/s meanwhile, proxy: "
          f"{stats.get('migrated_keys', '?')} keys moved on access, "
          f"{stats.get('redirects', '?')} redirections")  # fmt: skip
    assert errors == []
    assert "done, 1024/1024 slots" in out
    assert os.environ.get("LEDIS_LOAD_CHECK") != "1" or rate >= 2000, rate
    t = cluster.topology()
    owners = t.slots.owners()
    for name, values in acked.items():
        master = cluster.masters[owners[key_slot(name.encode())]]  # type: ignore[index]
        got = cluster.client(master).lrange(name, 0, -1)
        assert got == [str(v).encode() for v in values], name
    assert cluster.misplaced() == []
    where = cluster.where_keys_are()
    assert sum(len(v) for v in where.values()) == len(keys) + len(lists)
    for k in keys[::997]:
        master = cluster.masters[owners[key_slot(k.encode())]]  # type: ignore[index]
        assert cluster.client(master).get(k) == k.encode()
    replicas_agree(cluster)
