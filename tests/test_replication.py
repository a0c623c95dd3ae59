"""A master and replicas as real processes: full sync, tailing, partial resync, promotion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .servers import LedisServer, wait_until


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def caught_up(master: redis.Redis, replica: redis.Redis) -> bool:
    return (replica.info("replication")["slave_repl_offset"]
            == master.info("replication")["master_repl_offset"])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LedisServer, LedisServer, LedisServer]]:
    master = LedisServer(tmp_path / "m").start()
    replicas = [LedisServer(tmp_path / f"r{i}", "--replicaof", "127.0.0.1", str(master.port))
                .start() for i in range(2)]
    yield master, replicas[0], replicas[1]
    for s in (master, *replicas):
        if s.proc is not None and s.proc.poll() is None:
            s.kill9()


def load(c: redis.Redis, n: int, tag: str = "") -> None:
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"s{tag}{i}", i)
        pipe.hset(f"h{tag}{i % 10}", f"f{i}", i)
        pipe.rpush(f"l{tag}{i % 7}", i)
        pipe.sadd(f"set{tag}{i % 5}", i)
        pipe.zadd(f"z{tag}{i % 3}", {f"m{i}": i})
        if i % 50 == 0:
            pipe.delete(f"s{tag}{i - 1}")
            pipe.expire(f"h{tag}{i % 10}", 1000)
    pipe.execute()


def test_replicas_end_identical_and_read_only(cluster) -> None:  # type: ignore[no-untyped-def]
    master, r1, r2 = cluster
    m = master.client()
    load(m, 2000)
    for r in (r1, r2):
        rc = r.client()
        wait_until(lambda rc=rc: caught_up(m, rc))
        assert digest(rc) == digest(m)
        assert rc.hlen("h3") == 200
        with pytest.raises(redis.ReadOnlyError):
            rc.set("x", "1")
    role = m.execute_command("ROLE")
    assert role[0] == b"master" and len(role[2]) == 2
    info = m.info("replication")
    assert info["connected_slaves"] == 2 and info["slave0"]["state"] == "online"
    assert info["slave0"]["lag_logids"] == 0 and info["slave0"]["lag_ms"] == 0
    rrole = r1.client().execute_command("ROLE")
    assert rrole[0] == b"slave" and rrole[3] == b"connected"
    assert r1.client().info("replication")["master_link_status"] == "up"


def test_replica_restart_resumes_from_the_log(cluster) -> None:  # type: ignore[no-untyped-def]
    master, r1, _r2 = cluster
    m = master.client()
    load(m, 500)
    wait_until(lambda: caught_up(m, r1.client()))
    fulls = m.info("replication")["ledis_full_syncs"]
    r1.kill9()
    load(m, 500, tag="b")  # written while the replica is down
    r1.start()
    wait_until(lambda: caught_up(m, r1.client()))
    assert digest(r1.client()) == digest(m)
    info = m.info("replication")
    assert info["ledis_full_syncs"] == fulls  # partial: the log still held the records
    assert info["ledis_partial_syncs"] >= 1


def test_purged_log_means_full_sync(tmp_path: Path) -> None:
    master = LedisServer(tmp_path / "m", "--binlog-max-age", "1", "--hz", "50").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        m = master.client()
        load(m, 300)
        wait_until(lambda: caught_up(m, replica.client()))
        had = replica.client().info("replication")["slave_repl_offset"]
        replica.kill9()
        load(m, 300, tag="c")
        time.sleep(1.2)  # older than binlog-max-age: the records the replica lacks go
        m.set("after-purge", "1")
        wait_until(lambda: m.execute_command("BINLOG", "INFO")[0] > had + 1)
        fulls = m.info("replication")["ledis_full_syncs"]
        replica.start()
        wait_until(lambda: caught_up(m, replica.client()))
        assert m.info("replication")["ledis_full_syncs"] == fulls + 1
        assert digest(replica.client()) == digest(m)
    finally:
        master.kill9()
        replica.kill9()


def test_promote_and_repoint(cluster) -> None:  # type: ignore[no-untyped-def]
    master, r1, r2 = cluster
    m = master.client()
    load(m, 300)
    for r in (r1, r2):
        wait_until(lambda r=r: caught_up(m, r.client()))
    master.kill9()
    c1 = r1.client()
    assert c1.execute_command("REPLICAOF", "NO", "ONE")
    c1.set("after-promotion", "yes")
    c2 = r2.client()
    c2.execute_command("REPLICAOF", "127.0.0.1", r1.port)
    wait_until(lambda: caught_up(c1, c2))
    assert c2.get("after-promotion") == b"yes"
    assert digest(c2) == digest(c1)
    assert c1.info("replication")["ledis_full_syncs"] == 0  # r2's history was a prefix


def test_wait(cluster) -> None:  # type: ignore[no-untyped-def]
    master, _r1, _r2 = cluster
    m = master.client()
    wait_until(lambda: m.info("replication")["connected_slaves"] == 2)
    m.set("k", "v")
    assert m.execute_command("WAIT", 2, 5000) == 2
    assert m.execute_command("WAIT", 3, 100) == 2  # times out with what it has


def test_semi_sync_never_degrades_silently(tmp_path: Path) -> None:
    import signal

    master = LedisServer(tmp_path / "m", "--min-replicas-to-write", "1",
                         "--min-replicas-timeout", "300").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        m = master.client()
        wait_until(lambda: m.info("replication")["connected_slaves"] == 1)
        acknowledged = []
        for i in range(20):
            m.set(f"ok{i}", i)
            acknowledged.append(f"ok{i}")
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(redis.ResponseError, match="UNACKED"):  # done, not replicated
                m.set("stalled", "x")
            assert time.monotonic() - start < 5
            assert m.info("replication")["ledis_semisync_unacked_writes"] >= 1
            assert m.get("stalled") == b"x"
            acknowledged.append("stalled")  # it reaches the replica once it runs again
        finally:
            replica.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: caught_up(m, replica.client()))
        m.set("after", "1")  # acknowledged again once the replica is back
        acknowledged.append("after")
        r = replica.client()
        wait_until(lambda: r.exists("after") == 1)
        assert all(r.exists(k) for k in acknowledged)
    finally:
        master.kill9()
        replica.kill9()


def test_replica_killed_mid_full_sync_converges(tmp_path: Path) -> None:
    master = LedisServer(tmp_path / "m").start()
    m = master.client()
    pipe = m.pipeline(transaction=False)
    for n in range(400):  # ~15 MB: more than the socket buffers hold
        pipe.hset(f"big{n % 4}", mapping={f"f{n}:{i}": "x" * 20 for i in range(1000)})
    pipe.execute()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        import signal

        deadline = time.monotonic() + 30
        while m.info("replication")["connected_slaves"] < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)  # freeze it, almost surely mid-snapshot
        mid_sync = m.info("replication")["slave0"]["state"] == "wait_bgsave"
        replica.kill9()  # ... and kill it there
        replica.start()
        wait_until(lambda: caught_up(m, replica.client()), timeout=60)
        assert digest(replica.client()) == digest(m)
        # Killed while the master was still sending the snapshot: the sync starts over (2 full
        # syncs). Once the master has sent it all, the replica may or may not have loaded it
        # before the kill (the rest sat in socket buffers): a restart resumes from the log (1)
        # or starts over (2).
        full_syncs = m.info("replication")["ledis_full_syncs"]
        assert full_syncs == 2 if mid_sync else full_syncs in (1, 2)
    finally:
        master.kill9()
        replica.kill9()


def test_master_killed_under_load_loses_nothing_acknowledged(cluster) -> None:  # type: ignore[no-untyped-def]
    master, r1, _r2 = cluster
    m = master.client()
    acked = []
    for i in range(300):
        m.set(f"k{i}", i)
        acked.append(f"k{i}")
    master.kill9()
    port = master.port
    master.extra += ["--port", str(port)]  # back on the same address the replicas follow
    master.start()
    m = master.client()
    assert all(m.exists(k) for k in acked)
    m.set("after-restart", "1")
    rc = r1.client()
    wait_until(lambda: rc.exists("after-restart") == 1)
    wait_until(lambda: caught_up(m, rc))
    assert digest(rc) == digest(m)


def test_old_master_rejoins_the_promoted_replica(cluster) -> None:  # type: ignore[no-untyped-def]
    master, r1, _r2 = cluster
    m = master.client()
    load(m, 200)
    wait_until(lambda: caught_up(m, r1.client()))
    master.kill9()
    c1 = r1.client()
    c1.execute_command("REPLICAOF", "NO", "ONE")
    c1.set("new-era", "1")
    master.extra += ["--replicaof", "127.0.0.1", str(r1.port)]
    master.start()
    old = master.client()
    wait_until(lambda: caught_up(c1, old))
    assert old.get("new-era") == b"1"
    assert digest(old) == digest(c1)
    # Its history was a prefix of the new master's: no full sync was needed.
    assert c1.info("replication")["ledis_full_syncs"] == 0


def test_client_list_shows_replica_links(cluster) -> None:  # type: ignore[no-untyped-def]
    master, _r1, _r2 = cluster
    m = master.client()
    wait_until(lambda: m.info("replication")["connected_slaves"] == 2)
    assert len(m.client_list(_type="replica")) == 2
    assert all(c["flags"] == "S" for c in m.client_list(_type="replica"))
    assert m.execute_command("CLIENT", "KILL", "TYPE", "replica") == 2
    wait_until(lambda: m.info("replication")["connected_slaves"] == 2)  # they come back


def test_a_replica_of_itself_never_reports_its_link_up(fresh_server: LedisServer) -> None:
    """REPLICAOF its own address: Redis answers OK, then its own LSYNC (PSYNC there) is refused
    with NOMASTERLINK (a replica whose link is down serves no sync), so the link stays down.
    Before, the node synced from itself and said master_link_status:up."""
    fresh_server.start()
    c = fresh_server.client()
    assert c.execute_command("REPLICAOF", "127.0.0.1", str(fresh_server.port)) == b"OK"
    wait_until(lambda: fresh_server.log().count("NOMASTERLINK") >= 2, "two refused attempts", 60)
    info = c.info("replication")
    assert info["role"] == "slave" and info["master_link_status"] == "down", info
    assert c.execute_command("REPLICAOF", "NO", "ONE") == b"OK"


def test_replica_lrange_sees_each_change(tmp_path: Path) -> None:
    """A replica's LRANGE windows (storage/rangecache.py) go with every replicated batch:
    an LSET, which leaves the list's record as it is, shows on the replica's next LRANGE."""
    master = LedisServer(tmp_path / "m").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        m, r = master.client(), replica.client()
        m.rpush("l", *range(20))
        wait_until(lambda: r.llen("l") == 20)
        for i in range(3):
            want = r.lrange("l", 0, 9)
            assert r.lrange("l", 0, 9) == want  # from the window
            m.lset("l", 3, f"x{i}")
            assert m.execute_command("WAIT", 1, 10_000) == 1
            wait_until(lambda: caught_up(m, r))
            assert r.info("memory")["ledis_lrange_windows"] == 0  # went with the batch
            assert r.lrange("l", 2, 4) == [b"2", f"x{i}".encode(), b"4"]
    finally:
        for s in (master, replica):
            if s.proc is not None and s.proc.poll() is None:
                s.kill9()
