"""ledis-failover with real etcd, servers, proxies and controllers (docs/failover.md).

- kill -9, then SIGSTOP, of a master under write load through the proxy with semi-sync on:
  no acknowledged write lost, never two writable masters (every node's role, fence and good
  replicas polled all along), the old master rejoins as a replica with an equal digest, and
  the events stream tells the story in order;
- a controller cut from the nodes (its probes dial a closed port) does not fail over a healthy
  master the proxy still sees, and fails it over once the proxy agrees;
- a leader killed mid-failover: the next leader completes a promoted workflow from etcd and
  rolls back a chosen one whose master answers again;
- a planned switchover from ledis-console loses nothing; one back from the dashboard's
  failover action lands too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.config import ClusterSettings
from console.dashboard import actions
from console.main import run as console_run
from stack.cluster import nodes
from stack.cluster.etcd_server import EtcdServer
from stack.failover.workflow import Workflow

from .failover_kit import FailoverCluster
from .servers import wait_until

SEMI_SYNC = ("--min-replicas-to-write", "1", "--min-replicas-timeout", "2000")


@pytest.fixture
def fc(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[FailoverCluster]:
    cluster = FailoverCluster(tmp_path, etcd, cluster_name, replicas=2, server_args=SEMI_SYNC)
    try:
        yield cluster
    finally:
        cluster.stop()


class Writers:
    """Threads writing unique keys through the proxy; every acknowledged key is kept."""

    def __init__(self, port: int, threads: int = 2, batch: int = 1) -> None:
        """``threads`` writers of one SET at a time; ``batch`` > 1: two more threads, one
        sending pipelines of ``batch`` SETs, one MULTI/EXEC of ``batch`` SETs of one slot."""
        self.port = port
        self.acked: set[str] = set()
        self.errors: list[str] = []
        self._stop = threading.Event()
        modes = ["one"] * threads + (["pipeline", "multi"] if batch > 1 else [])
        self.batch = batch
        self._threads = [
            threading.Thread(target=self._run, args=(t, mode)) for t, mode in enumerate(modes)
        ]
        self._lock = threading.Lock()
        self.last_ok = 0.0

    def _run(self, t: int, mode: str) -> None:
        client = redis.Redis(port=self.port, socket_timeout=30)
        i = 0
        while not self._stop.is_set():
            if mode == "one":
                keys = [f"w{t}:{i}"]
            else:  # a hash tag keeps a transaction's keys in one slot
                keys = [f"w{t}:{{{i}}}:{j}" for j in range(self.batch)]
            i += 1
            try:
                if mode == "one":
                    client.set(keys[0], keys[0])
                else:
                    pipe = client.pipeline(transaction=mode == "multi")
                    for key in keys:
                        pipe.set(key, key)
                    pipe.execute()
            except redis.RedisError as e:
                with self._lock:
                    self.errors.append(f"{mode}: {e}")
                time.sleep(0.02)
                continue
            with self._lock:
                self.acked.update(keys)
                self.last_ok = time.monotonic()

    def __enter__(self) -> Writers:
        for th in self._threads:
            th.start()
        return self

    def wait_writes(self, n: int = 50) -> None:
        start = len(self.acked)
        wait_until(lambda: len(self.acked) >= start + n, f"{n} more acknowledged writes", 60)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(30)


class Masters:
    """Polls every node, each from a thread of its own: whether it could take a write (a
    master, not fenced, with its min-replicas-to-write good replicas), and over which time
    window that answer was taken. Two nodes writable in overlapping windows is the bug."""

    def __init__(self, fc: FailoverCluster) -> None:
        self.fc = fc
        self.windows: dict[str, list[tuple[float, float]]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def writable(self, client: redis.Redis) -> bool:
        try:
            info = client.info("replication")
        except (redis.RedisError, OSError):
            return False
        if info.get("role") != "master" or info.get("ledis_fenced"):
            return False
        need = int(info.get("min_replicas_to_write", 0))
        return need == 0 or int(info.get("min_slaves_good_slaves", 0)) >= need

    def _run(self, addr: str) -> None:
        host, _, port = addr.rpartition(":")
        client = redis.Redis(
            host=host, port=int(port), socket_timeout=0.5, socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        while not self._stop.is_set():
            start = time.monotonic()
            ok = self.writable(client)
            with self._lock:
                self.samples += 1
                if ok:
                    self.windows.setdefault(addr, []).append((start, time.monotonic()))
            time.sleep(0.02)
        client.close()

    def watch(self) -> None:
        """Start a poller for every node not polled yet (call again after a restart)."""
        for addr in self.fc.servers:
            if addr not in self._threads:
                th = threading.Thread(target=self._run, args=(addr,))
                self._threads[addr] = th
                th.start()

    def overlaps(self) -> list[tuple[str, str, float]]:
        out = []
        addrs = sorted(self.windows)
        for i, a in enumerate(addrs):
            for b in addrs[i + 1 :]:
                for a0, a1 in self.windows[a]:
                    for b0, b1 in self.windows[b]:
                        if a0 <= b1 and b0 <= a1:
                            out.append((a, b, a0))
        return out

    def __enter__(self) -> Masters:
        self.watch()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for th in self._threads.values():
            th.join(30)


def _replica_of(fc: FailoverCluster, addr: str, master: str) -> bool:
    try:
        role = fc.client(addr).execute_command("ROLE")
    except (redis.RedisError, OSError):
        return False
    return (
        role[0] == b"slave"
        and f"{role[1].decode()}:{role[2]}" == master
        and role[3] == b"connected"
    )


def _caught_up(fc: FailoverCluster, master: str, replicas: list[str]) -> bool:
    want = fc.client(master).execute_command("ROLE")[1]
    return all(
        _replica_of(fc, r, master) and fc.client(r).execute_command("ROLE")[4] == want
        for r in replicas
    )


def _in_order(texts: list[str], *needles: str) -> None:
    """Each needle is in some sentence: the previous needle's or a later one."""
    pos = 0
    for needle in needles:
        for i in range(pos, len(texts)):
            if needle in texts[i]:
                pos = i
                break
        else:
            raise AssertionError(f"no {needle!r} after sentence {pos} in:\n" + "\n".join(texts))


def _missing(fc: FailoverCluster, master: str, keys: set[str]) -> list[str]:
    """The acknowledged keys ``master`` does not hold, read in pipelines of 1,000 (one
    pipeline of a long soak's hundreds of thousands of GETs stalls: the client sends them all
    before it reads a reply)."""
    client = fc.client(master)
    ordered = sorted(keys)
    missing: list[str] = []
    for i in range(0, len(ordered), 1000):
        part = ordered[i : i + 1000]
        pipe = client.pipeline(transaction=False)
        for k in part:
            pipe.get(k)
        missing += [k for k, v in zip(part, pipe.execute(), strict=True) if v != k.encode()]
    return missing


def test_kill9_then_sigstop_of_the_master_under_load(fc: FailoverCluster) -> None:
    proxy = fc.proxy()
    fc.controller()
    fc.wait_leader()
    fc.wait_views(2)
    m1 = fc.master_of()
    with Masters(fc) as masters, Writers(proxy.port) as writers:
        writers.wait_writes()
        wait_until(lambda: m1 in masters.windows, "a look at the master", 30)
        # 1. kill -9: the replica with the highest LogID takes over, writes resume
        fc.servers[m1].kill9()
        wait_until(lambda: fc.master_of() != m1, "a failover after kill -9", 60)
        m2 = fc.master_of()
        writers.wait_writes()
        fc.restart(m1)
        wait_until(lambda: _replica_of(fc, m1, m2), f"{m1} rejoining as a replica of {m2}", 60)
        writers.wait_writes()
        # 2. SIGSTOP of the new master: frozen, not dead
        stopped = fc.servers[m2]
        assert stopped.proc is not None
        stopped.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: fc.master_of() != m2, "a failover after SIGSTOP", 60)
            m3 = fc.master_of()
            writers.wait_writes()
        finally:
            stopped.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: _replica_of(fc, m2, m3), f"{m2} rejoining as a replica of {m3}", 60)
        writers.wait_writes()
    assert set(masters.windows) == {m1, m2, m3}, (m1, m2, m3, list(masters.windows))
    assert masters.samples > 100 and not masters.overlaps(), masters.overlaps()[:3]
    assert writers.acked and not _missing(fc, m3, writers.acked)
    others = [a for a in fc.servers if a != m3]
    wait_until(lambda: _caught_up(fc, m3, others), "every replica caught up", 60)
    digests = {a: fc.client(a).execute_command("DEBUG", "DIGEST") for a in fc.servers}
    assert len(set(digests.values())) == 1, digests
    info = fc.client(m2).info("replication")
    assert info["role"] == "slave" and info["ledis_fenced"] == 1
    _in_order(
        fc.texts(),
        f"group 1: master {m1} unreachable from 2 of 2 views",
        f"promoting {m2}",
        f"group 1: {m2} is the master at epoch",
        f"group 1: failover done: {m2} is master",
        f"{m1} answers as a master of epoch",  # the epoch it was last told (node-epoch)
        f"group 1: master {m2} unreachable from 2 of 2 views",
        f"promoting {m3}",
        f"group 1: {m3} is the master at epoch",
        f"group 1: failover done: {m3} is master",
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_controller_cut_from_the_nodes_does_not_fail_over_a_healthy_master(
    fc: FailoverCluster,
) -> None:
    m = fc.master_of()
    fc.proxy()
    fc.controller("--probe-map", f"{m}=127.0.0.1:{_closed_port()}")
    fc.wait_leader()
    fc.wait_views(2)
    views = fc.store.paths.views

    def sees_down_for(seconds: float) -> bool:
        for _, value, _ in fc.store.read_prefix(views)[1]:
            doc = __import__("json").loads(value)
            seen = doc["nodes"].get(m)
            if doc["kind"] == "controller" and seen and not seen["up"]:
                return time.time() - seen["since"] >= seconds
        return False

    # the controller has seen the master down for three times down-after (1.5 s) ...
    wait_until(lambda: sees_down_for(4.5), "the cut controller to see the master down", 60)
    # ... and left it alone: the proxy's view says it is up
    assert fc.master_of() == m
    assert not any("promoting" in t for t in fc.texts())
    assert fc.client(m).set("still", "master")
    # once the proxy agrees (the master really dies), it does fail over
    fc.servers[m].kill9()
    wait_until(lambda: fc.master_of() != m, "a failover once two views agree", 60)
    _in_order(fc.texts(), f"group 1: master {m} unreachable from 2 of 2 views", "promoting")


def test_a_leader_cut_from_the_nodes_but_not_from_etcd_hands_over(fc: FailoverCluster) -> None:
    """c1 leads but its probes dial closed ports (every node unreachable to it, etcd fine);
    c2 and the proxy see every node: after a lease time c1 gives up its lease, c2 leads, and
    nobody fails anything over."""
    m = fc.master_of()
    closed = ",".join(f"{a}=127.0.0.1:{_closed_port()}" for a in fc.servers)
    proxy = fc.proxy()
    fc.controller("--probe-map", closed, ident="c1")
    wait_until(lambda: fc.leader() == "c1", "c1 to lead", 60)
    fc.controller(ident="c2")
    fc.wait_views(3)
    with Writers(proxy.port) as writers:
        wait_until(lambda: fc.leader() == "c2", "c2 to lead once c1 gave up", 90)
        writers.wait_writes()
    assert not writers.errors, writers.errors[:3]
    assert fc.master_of() == m
    texts = fc.texts()
    assert not [t for t in texts if "promoting" in t or "rolled back" in t], texts
    _in_order(
        texts,
        "controller c1 leads",
        "safe mode: 3 of 3 nodes unreachable",
        "controller:c1 has not reached 3 of 3 nodes for 4 s",
        "giving up the lead so a controller that reaches them (controller:c2) leads",
        "controller c1 stopped leading",
        "controller c2 leads",
    )
    assert fc.leader() == "c2"
    assert fc.controllers[0].alive


def test_next_leader_completes_or_rolls_back_a_half_done_failover(fc: FailoverCluster) -> None:
    topo = fc.store.load()
    g = topo.groups[1]
    m, r1, r2 = g.master, g.replicas[0], g.replicas[1]
    path = fc.store.paths.failover(1)
    # a leader died right after choosing r1 while the master was briefly unreachable; the
    # master answers again and r1 was never promoted: the next leader rolls it back
    chosen = Workflow(1, m, r1, "chosen", topo.epoch + 1, reason="test", owner="c0")
    fc.store.put(path, chosen.to_json())
    fc.proxy()
    first = fc.controller(ident="c1")
    fc.wait_leader()
    wait_until(lambda: fc.store.get_raw(path)[0] is None, "the workflow rolled back", 60)
    assert fc.master_of() == m
    assert fc.client(m).set("a", "1")
    _in_order(fc.texts(), f"group 1: failover to {r1} rolled back: master {m} answers again")
    # the leader dies right after promoting the new master and recording that step (a real
    # process exit, no cleanup): the standby leads once the lease expires and completes it
    first.stop()
    fc.controller("--exit-after", "promoted", ident="c2")
    wait_until(lambda: fc.leader() == "c2", "c2 to lead", 60)
    fc.controller(ident="c3")
    fc.servers[m].kill9()
    c2 = fc.controllers[-2]
    assert c2.proc is not None
    assert c2.proc.wait(60) == 3
    new = Workflow.from_json(path, fc.store.get_raw(path)[0] or b"{}")
    assert new.step == "promoted" and new.old == m and new.owner == "c2"
    wait_until(lambda: fc.leader() == "c3", "c3 to lead once c2's lease expired", 60)
    wait_until(lambda: fc.store.get_raw(path)[0] is None, "the workflow completed", 60)
    assert fc.master_of() == new.new
    other = r1 if new.new == r2 else r2
    wait_until(lambda: _replica_of(fc, other, new.new), "the other replica repointed", 60)
    assert fc.client(new.new).set("after", "failover")
    _in_order(
        fc.texts(),
        f"group 1: master {m} unreachable from",
        f"promoting {new.new}",
        "controller c3 leads",
        f"group 1: {new.new} is the master at epoch",
        f"group 1: failover done: {new.new} is master",
    )


def test_planned_switchover_loses_nothing(
    fc: FailoverCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = fc.proxy()
    fc.controller()
    fc.wait_leader()
    config = fc.root / "ledis-console.toml"
    config.write_text(f'[cluster]\nname = "{fc.name}"\netcd = ["{fc.etcd.endpoint}"]\n')
    g = fc.store.load().groups[1]
    target = g.replicas[1]
    assert console_run(["--config", str(config), "failover", "1", "--to", target, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"switch over group 1 from {g.master} to {target}" in out
    assert fc.master_of() == g.master
    with Writers(proxy.port) as writers:
        writers.wait_writes()
        assert console_run(["--config", str(config), "failover", "1", "--to", target, "--yes"]) == 0
        writers.wait_writes()
    assert fc.master_of() == target
    assert not _missing(fc, target, writers.acked)
    # writes paused on the old master that met its fence were sent again to the new master
    assert not writers.errors, writers.errors[:3]
    wait_until(lambda: _replica_of(fc, g.master, target), "the old master following", 60)
    out = capsys.readouterr().out
    assert f"group 1: {target} is the master" in out
    _in_order(
        fc.texts(),
        f"switchover from {g.master} to {target} asked for",
        f"writes paused on {g.master}; {target} caught up",
        f"group 1: {target} is the master at epoch",
        f"group 1: failover done: {target} is master",
    )
    # and back, through the dashboard's failover action (the same plan, applied from there)
    settings = ClusterSettings(name=fc.name, etcd=(fc.etcd.endpoint,))
    spec = actions.ACTIONS["failover"]
    values = {"group": "1", "to": g.master}
    states = asyncio.run(nodes.probe_all(fc.store.load().groups[1].members))
    plan = actions.preview(spec, fc.store.load(), values, states)
    assert plan.summary.startswith(f"switch over group 1 from {target} to {g.master}")
    outcome = asyncio.run(actions.execute(spec, settings, values, plan, states))
    assert outcome.revision
    wait_until(lambda: fc.master_of() == g.master, "the dashboard's switchover", 60)
    _in_order(fc.texts(), f"group 1: switchover from {target} to {g.master} asked for")


def test_switchovers_show_writers_through_the_proxy_no_error(
    fc: FailoverCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writes paused on the old master meet its fence when the pause ends; the proxy sends
    them again to the new master (READONLY from the slot's master: wait for the new map),
    and the controller moves the proxies only once the new master has its semi-sync
    replica: plain SETs, pipelines and MULTI/EXEC see no error across two switchovers."""
    proxy = fc.proxy()
    fc.controller()
    fc.wait_leader()
    config = fc.root / "ledis-console.toml"
    config.write_text(f'[cluster]\nname = "{fc.name}"\netcd = ["{fc.etcd.endpoint}"]\n')
    with Writers(proxy.port, threads=3, batch=5) as writers:
        for _ in range(2):
            before = fc.master_of()
            writers.wait_writes(200)
            assert console_run(["--config", str(config), "failover", "1", "--yes"]) == 0
            assert fc.master_of() != before, "\n".join(fc.texts())
            writers.wait_writes(200)
    capsys.readouterr()
    assert not writers.errors, writers.errors[:5]
    last = fc.master_of()
    assert len(writers.acked) > 400
    assert not _missing(fc, last, writers.acked)
    others = [a for a in fc.servers if a != last]
    wait_until(lambda: _caught_up(fc, last, others), "every replica caught up", 60)
    digests = {a: fc.client(a).execute_command("DEBUG", "DIGEST") for a in fc.servers}
    assert len(set(digests.values())) == 1, digests


def test_a_fenced_old_master_restarted_after_kill9_refuses_its_first_write(
    tmp_path: Path, etcd: EtcdServer, cluster_name: str
) -> None:
    """Without semi-sync nothing but the fence stops a direct write to an old master: the
    fence is read from its data dir before it listens, so the first command after its
    ready-file is refused, and the controller re-attaches it as it is."""
    fc = FailoverCluster(tmp_path, etcd, cluster_name, replicas=1)
    try:
        fc.controller()
        fc.wait_leader()
        g = fc.store.load().groups[1]
        old, new = g.master, g.replicas[0]
        for i in range(100):
            fc.client(old).set(f"k{i}", i)
        config = fc.root / "ledis-console.toml"
        config.write_text(f'[cluster]\nname = "{fc.name}"\netcd = ["{fc.etcd.endpoint}"]\n')
        assert console_run(["--config", str(config), "failover", "1", "--yes"]) == 0
        assert fc.master_of() == new
        epoch = fc.store.load().groups[1].epoch
        wait_until(lambda: _replica_of(fc, old, new), f"{old} following {new}", 60)
        assert fc.client(old).execute_command("NODEEPOCH", "GET") == [epoch, b"fenced"]
        fc.servers[old].kill9()
        server = fc.restart(old)  # its own config: no replicaof, so ROLE says master
        direct = server.client()
        with pytest.raises(redis.exceptions.ReadOnlyError):
            direct.set("k0", "lost?")
        assert direct.execute_command("NODEEPOCH", "GET") == [epoch, b"fenced"]
        wait_until(lambda: _replica_of(fc, old, new), f"{old} re-attached to {new}", 60)
        fc.client(new).set("after", "restart")
        wait_until(lambda: _caught_up(fc, new, [old]), f"{old} caught up", 60)
        digests = {a: fc.client(a).execute_command("DEBUG", "DIGEST") for a in (old, new)}
        assert len(set(digests.values())) == 1, digests
        assert fc.client(old).get("k0") == b"0"
        _in_order(fc.texts(), f"group 1: failover done: {new} is master",
                  f"{old} answers as a master of epoch {epoch}")  # fmt: skip
    finally:
        fc.stop()


SOAK = float(os.environ.get("LEDIS_FAILOVER_SOAK", "0"))  # the long form, opt-in
SHORT_SOAK = 20.0  # seconds of load in the default suite (~35 s with the cluster's start)


@pytest.mark.timeout(int(SOAK or SHORT_SOAK) + 300)
def test_soak_a_healthy_cluster_under_load_never_fails_over(fc: FailoverCluster) -> None:
    """Accelerated: ticks every 0.1 s, leases of 2 s, a master down after 0.5 s, so each
    second holds the decisions of six seconds at the defaults. The default suite runs it for
    20 s (two minutes of decisions); LEDIS_FAILOVER_SOAK=600 runs an hour's worth."""
    seconds = SOAK or SHORT_SOAK
    proxy = fc.proxy()
    fast = ("--tick", "0.1", "--lease-ttl", "2", "--down-after", "0.5", "--probe-timeout", "0.3")
    fc.controller(*fast)
    fc.controller(*fast)
    fc.wait_leader()
    fc.wait_views(3)
    m = fc.master_of()
    with Writers(proxy.port, threads=3, batch=5) as writers:
        writers.wait_writes()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert fc.master_of() == m
            time.sleep(0.5)
        acked = len(writers.acked)
        writers.wait_writes()
    assert not writers.errors, writers.errors[:3]
    texts = fc.texts()
    assert not [t for t in texts if "promoting" in t or "safe mode" in t or "giving up" in t]
    assert fc.master_of() == m and acked > 100
    assert not _missing(fc, m, writers.acked)
