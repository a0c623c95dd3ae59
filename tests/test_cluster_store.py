"""The etcd store against a real etcd: snapshots, transactions that race, watches that resume,
leases that expire, the bounded events stream, and etcd down."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.cluster import plans
from stack.cluster.async_store import AsyncStore
from stack.cluster.etcd_server import EtcdServer, EtcdSpec, free_port
from stack.cluster.model import Group, Topology
from stack.cluster.store import (
    Conflict,
    EtcdUnavailable,
    Store,
    TopologyView,
    WatchBatch,
)
from stack.cluster.txn import Write

from .servers import wait_until

DEADLINE = 30.0


@pytest.fixture
def store(etcd: EtcdServer, cluster_name: str) -> Iterator[Store]:
    s = Store([etcd.endpoint], cluster_name)
    yield s
    s.delete_cluster()
    s.close()


def init(store: Store, groups: int = 0) -> Topology:
    plans.apply(store, plans.plan_init(store.load()))
    for g in range(groups):
        plans.apply(store, plans.plan_add_group(store.load(), f"127.0.0.1:{7000 + g}"))
    return store.load()


def test_snapshot_and_epoch(store: Store) -> None:
    t = init(store, groups=2)
    assert t.initialised and t.epoch == 3 and sorted(t.groups) == [1, 2]
    assert t.groups[2].epoch == 3  # each document carries the epoch of its change
    plans.apply(store, plans.plan_assign_even(t))
    t2 = store.load()
    assert t2.epoch == 4 and t2.slots.epoch == 4 and t2.slots.counts() == {1: 8192, 2: 8192}
    # every change left one event, in order
    kinds = [e.kind for e in store.events()]
    assert kinds == ["init", "add-group", "add-group", "assign"]


def test_stale_writer_gets_a_conflict(store: Store) -> None:
    t = init(store, groups=1)
    plans.apply(store, plans.plan_add_group(t, "127.0.0.1:7100"))
    with pytest.raises(Conflict, match="changed since it was read"):
        plans.apply(store, plans.plan_add_node(t, 1, "127.0.0.1:7101"))
    assert store.load().groups[1].replicas == ()


def test_two_writers_racing_never_both_win(store: Store) -> None:
    """Many threads each try to add a different group from the same snapshot: exactly one
    wins per round, the others get Conflict; the epoch counts the winners exactly."""
    init(store)
    wins = 0
    for round_ in range(5):
        base = store.load()
        results: list[str] = []
        barrier = threading.Barrier(6)

        def writer(
            i: int,
            base: Topology = base,
            round_: int = round_,
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            plan = plans.plan_add_group(
                base, f"127.0.0.1:{9000 + round_ * 10 + i}", group_id=round_ + 1
            )
            barrier.wait()
            try:
                plans.apply(store, plan)
                results.append("won")
            except Conflict:
                results.append("conflict")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert results.count("won") == 1 and results.count("conflict") == 5
        wins += 1
    t = store.load()
    assert t.epoch == 1 + wins and len(t.groups) == wins


def test_apply_fresh_replans_after_a_conflict(store: Store) -> None:
    t = init(store, groups=1)
    plans.apply(store, plans.plan_add_group(t, "127.0.0.1:7200"))  # t is now stale
    applied = plans.apply_fresh(store, lambda snap: plans.plan_add_node(snap, 1, "127.0.0.1:7201"))
    assert store.load().groups[1].replicas == ("127.0.0.1:7201",)
    assert applied.plan.new_epoch == store.load().epoch
    # a confirmed plan that no longer matches is not applied
    stale = plans.plan_add_group(t, "127.0.0.1:7300")
    with pytest.raises(Conflict, match="the plan is now"):
        plans.apply_fresh(
            store, lambda snap: plans.plan_add_group(snap, "127.0.0.1:7300"), expect=stale
        )


def test_task_creation_races_are_guarded(store: Store) -> None:
    t = init(store, groups=2)
    plans.apply(store, plans.plan_assign_even(t))
    base = store.load()
    first = plans.plan_migrate(base, [(0, 9)], 2)
    second = plans.plan_migrate(base, [(5, 20)], 2)  # overlaps, from the same snapshot
    plans.apply(store, first)
    with pytest.raises(Conflict):
        plans.apply(store, second)
    t2 = store.load()
    assert [task.slots for task in t2.migrations.values()] == [((0, 9),)]


def test_corrupt_document_is_named(store: Store) -> None:
    init(store)
    store.put(store.paths.group(4), b'{"id": 4, "master": "nowhere", "epoch": 1}')
    with pytest.raises(ValueError, match=r"/groups/4: field 'master': expected 'host:port'"):
        store.load()


def test_events_are_bounded(etcd: EtcdServer, cluster_name: str) -> None:
    with Store([etcd.endpoint], cluster_name, max_events=20) as s:
        for i in range(60):
            s.append_event("test", "note", f"event {i}")
        kept = s.events(limit=100)
        assert 20 <= len(kept) <= 22
        assert kept[-1].text == "event 59"
        texts = [e.text for e in kept]
        assert texts == [f"event {i}" for i in range(60 - len(kept), 60)]  # the newest, in order
        assert [e.text for e in s.events(limit=3)] == ["event 57", "event 58", "event 59"]
        s.delete_cluster()


def test_watch_delivers_changes_in_order(store: Store) -> None:
    t = init(store)
    view = TopologyView(store.paths, store.load_raw())
    batches: list[WatchBatch] = []
    lock = threading.Lock()

    def on_change(b: WatchBatch) -> None:
        with lock:
            batches.append(b)
            view.apply(b)

    with store.watching(t.revision + 1, on_change):
        plans.apply(store, plans.plan_add_group(store.load(), "127.0.0.1:7400"))
        plans.apply(store, plans.plan_add_node(store.load(), 1, "127.0.0.1:7401"))
        wait_until(
            lambda: view.topology.groups.get(1, Group(1, "x:1")).replicas == ("127.0.0.1:7401",),
            "the watch",
        )
    changes = [(c.revision, c.path) for b in batches for c in b.changes]
    assert [r for r, _ in changes] == sorted(r for r, _ in changes)  # in order
    assert len(set(changes)) == len(changes)  # none twice
    assert view.topology.epoch == store.load().epoch


def test_view_keeps_the_last_good_topology(store: Store) -> None:
    init(store, groups=1)
    view = TopologyView(store.paths, store.load_raw())
    got: list[bool] = []
    with store.watching(view.revision + 1, lambda b: got.append(view.apply(b))):
        store.put(store.paths.group(1), b"garbage")
        wait_until(lambda: view.error is not None, "the bad document")
    assert "/groups/1: not valid JSON" in (view.error or "")
    assert view.topology.groups[1].master == "127.0.0.1:7000"


def test_watch_resumes_after_etcd_restart(tmp_path: Path) -> None:
    spec = EtcdSpec(tmp_path / "etcd", free_port(), free_port(), no_fsync=True)
    server = EtcdServer(spec).start()
    s = Store([server.endpoint], "restart")
    try:
        init(s)
        seen: list[str] = []
        view = TopologyView(s.paths, s.load_raw())

        def on_change(b: WatchBatch) -> None:
            seen.extend(c.path for c in b.changes if "/groups/" in c.path)
            view.apply(b)

        w = s.watch(view.revision + 1, on_change)
        try:
            assert w.connected.wait(DEADLINE)
            plans.apply(s, plans.plan_add_group(s.load(), "127.0.0.1:7001"))
            wait_until(lambda: len(seen) == 1, "the first change")
            server.stop()
            wait_until(lambda: not w.connected.is_set(), "the watch to notice")
            server = EtcdServer(spec).start()
            # written at once by another client, likely before the watch is back
            with Store([server.endpoint], "restart", retry_for=DEADLINE) as other:
                plans.apply(other, plans.plan_add_group(other.load(), "127.0.0.1:7002"))
                plans.apply(other, plans.plan_add_group(other.load(), "127.0.0.1:7003"))
            wait_until(lambda: len(seen) == 3, "the changes after the restart")
            assert seen == [s.paths.group(1), s.paths.group(2), s.paths.group(3)]  # none twice
            assert w.reconnects >= 1
            assert view.topology.epoch == s.load().epoch == 4
        finally:
            w.stop()
    finally:
        s.close()
        server.stop()


def test_watch_reloads_after_compaction(store: Store) -> None:
    t = init(store, groups=1)
    for port in range(7501, 7504):
        plans.apply(store, plans.plan_add_node(store.load(), 1, f"127.0.0.1:{port}"))
    store.compact(store.ping())
    resets: list[int] = []
    view = TopologyView(store.paths, store.load_raw())
    # resume from a revision that etcd no longer has
    w = store.watch(
        t.revision + 1,
        view.apply,
        on_reset=lambda raw: (resets.append(raw.revision), view.reset(raw)),  # type: ignore[func-returns-value]
    )
    try:
        wait_until(lambda: bool(resets), "the reload")
        assert w.connected.wait(DEADLINE)
        plans.apply(store, plans.plan_add_group(store.load(), "127.0.0.1:7600"))
        wait_until(lambda: 2 in view.topology.groups, "a change after the reload")
        assert len(view.topology.groups[1].replicas) == 3
    finally:
        w.stop()


def test_lease_keeps_a_key_and_it_goes_when_the_lease_does(store: Store) -> None:
    path = store.paths.proxy("p1")
    reg = store.register(path, lambda: b'{"id":"p1","addr":"127.0.0.1:1"}', ttl=2)
    try:
        deadline = time.monotonic() + 5  # more than twice the TTL
        while time.monotonic() < deadline:
            assert store.get_raw(path)[0] is not None
            time.sleep(0.2)
    finally:
        reg.stop(revoke=False)  # as if the process died: the key stays until the TTL ends
    wait_until(lambda: store.get_raw(path)[0] is None, "the lease to expire")


def test_lost_lease_is_replaced_and_key_restored(store: Store) -> None:
    path = store.paths.proxy("p2")
    reg = store.register(path, lambda: b'{"id":"p2","addr":"127.0.0.1:1"}', ttl=2)
    try:
        old = reg.lease.id
        # etcd forgets the lease (as after a long partition)
        store.client.revoke_lease(old)
        wait_until(
            lambda: reg.lease.id != old and store.get_raw(path)[0] is not None, "a new lease"
        )
        assert reg.lease.lost_count == 1
    finally:
        reg.stop()
    assert store.get_raw(path)[0] is None  # revoked: gone at once


def test_etcd_down_is_a_clear_error_quickly() -> None:
    port = free_port()
    s = Store([f"127.0.0.1:{port}"], "down", timeout=2)
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable, match=rf"etcd at 127.0.0.1:{port} is unreachable"):
        s.load()
    assert time.monotonic() - started < 20  # bounded by the timeout, not a hang
    s.close()


def test_retry_with_backoff_waits_for_etcd(tmp_path: Path) -> None:
    spec = EtcdSpec(tmp_path / "etcd", free_port(), free_port(), no_fsync=True)
    s = Store([spec.endpoint], "late", timeout=2, retry_for=DEADLINE * 2)
    result: list[object] = []
    th = threading.Thread(target=lambda: result.append(s.load()))
    th.start()
    server = EtcdServer(spec).start()  # etcd comes up while the store retries
    try:
        th.join(DEADLINE * 2)
        assert result and isinstance(result[0], Topology)
    finally:
        s.close()
        server.stop()


def test_async_follow(store: Store) -> None:
    init(store)

    async def main() -> list[int]:
        a = AsyncStore(store)
        epochs: list[int] = []
        feed = a.follow()
        first = await feed.__anext__()
        epochs.append(first.epoch)
        await a.run(
            lambda: plans.apply(store, plans.plan_add_group(store.load(), "127.0.0.1:7700"))
        )
        while True:
            t = await asyncio.wait_for(feed.__anext__(), DEADLINE)
            epochs.append(t.epoch)
            if 1 in t.groups:
                break
        await feed.aclose()  # type: ignore[attr-defined]
        await a.commit(
            await a.load(),
            [Write(store.paths.group(9), Group(9, "127.0.0.1:9").to_json())],
            bump_epoch=True,
        )
        assert (await a.load()).groups[9].master == "127.0.0.1:9"
        return epochs

    epochs = asyncio.run(main())
    assert epochs[0] == 1 and epochs[-1] == 2
