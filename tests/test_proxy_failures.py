"""ledis-proxy when things go wrong: a backend killed (and frozen) then back, etcd restarted
mid-run with a map change while it was away, every bad-input row of the reference table, a
client that never reads, a password, and SIGTERM."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.cluster import plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.store import Store
from stack.core.slots import SLOT_COUNT, key_slot

from .proxy_cluster import Cluster, ProxyProcess, keys_in_groups
from .respclient import RawClient
from .servers import wait_until
from .test_bad_input import CLOSING, CONTINUING
from .test_bad_input import test_bad_input_closes_with_redis_reply as check_closing
from .test_bad_input import test_bad_input_continues as check_continuing

PONG = b"+PONG\r\n"


@pytest.fixture
def cluster(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, etcd, cluster_name, groups=2)
    yield c
    c.stop()


def _down_reply(addr: str) -> bytes:
    return f"-ERR backend {addr} unavailable".encode()


def test_backend_killed_then_back(cluster: Cluster) -> None:
    proxy = cluster.proxy("--backend-timeout", "2")
    a, b = keys_in_groups(cluster, 2, "kill")
    g1, g2 = cluster.owner(a), cluster.owner(b)
    c = RawClient(proxy.port)
    assert c.call("SET", a, "1") == b"+OK\r\n"
    assert c.call("SET", b, "2") == b"+OK\r\n"
    port = g1.port
    g1.kill9()
    addr = f"127.0.0.1:{port}"
    # the dead group's keys get a clear error; the other group's keep working
    wait_until(
        lambda: c.call("GET", a).startswith(_down_reply(addr)), "an error for the dead group"
    )
    assert c.call("GET", b) == b"$1\r\n2\r\n"
    c.send(b"".join(f"*2\r\n$3\r\nGET\r\n${len(k)}\r\n{k}\r\n".encode() for k in (b, a, b)))
    replies = [c.read_reply() for _ in range(3)]
    assert replies[0] == replies[2] == b"$1\r\n2\r\n"
    assert replies[1].startswith(_down_reply(addr))
    info = proxy.client().info("proxy")
    states = {v["addr"]: v["state"] for k, v in info.items() if k.startswith("backend")}
    assert states == {addr: "down", f"127.0.0.1:{g2.port}": "up"}
    # restarted on its port and data: the proxy reconnects by itself
    g1.extra += ["--port", str(port)]
    g1.start()
    wait_until(lambda: c.call("SET", a, "3") == b"+OK\r\n", "the restarted backend")
    assert g1.client().get(a) == b"3"
    # a frozen backend: requests give up after --backend-timeout, then it recovers
    assert g2.proc is not None
    g2.proc.send_signal(signal.SIGSTOP)
    try:
        assert c.call("GET", b).startswith(
            f"-ERR backend 127.0.0.1:{g2.port} unavailable (no reply in 2 s)".encode()
        )
        assert c.call("GET", a) == b"$1\r\n3\r\n"
    finally:
        g2.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: c.call("GET", b) == b"$1\r\n2\r\n", "the thawed backend")
    c.close()
    assert f"backend 127.0.0.1:{port} unavailable" in proxy.log()


def test_etcd_restarted_mid_run(tmp_path: Path) -> None:
    etcd = EtcdServer.on_free_ports(tmp_path / "etcd" / "data", no_fsync=True)
    cluster = Cluster(tmp_path / "c", etcd, "etcd-restart", groups=2)
    try:
        proxy = cluster.proxy()
        r = proxy.client()
        a, b = keys_in_groups(cluster, 2, "e")
        # the proxy's watch is live before etcd goes (on a loaded machine it may start late,
        # then there is no outage for it to notice): it follows one map change first
        spare = next(s for s in range(SLOT_COUNT) if cluster.slots.owner(s) == 2
                     and s not in (key_slot(a.encode()), key_slot(b.encode())))  # fmt: skip
        before = Store([etcd.endpoint], "etcd-restart")
        plans.apply_fresh(before, lambda t: plans.plan_assign(t, [(spare, spare)], 1, force=True))
        live = before.load().epoch
        before.close()
        wait_until(lambda: r.info("proxy")["slot_map_epoch"] == live, "the proxy's watch")
        etcd.stop()
        # etcd away: the proxy keeps routing on the map it has
        for i in range(20):
            assert r.set(a, i) and r.set(b, i)
        assert r.get(b) == b"19"
        assert cluster.owner(b).client().get(b) == b"19"
        etcd.start()
        # a map change after the restart: every slot of group 2 to group 1
        store = Store([etcd.endpoint], "etcd-restart")
        topo = store.load()
        ranges = [(x.start, x.end) for x in topo.slots.ranges if x.group == 2]
        plans.apply_fresh(store, lambda t: plans.plan_assign(t, ranges, 1, force=True))
        new_epoch = store.load().epoch
        assert new_epoch > topo.epoch
        wait_until(lambda: r.info("proxy")["slot_map_epoch"] == new_epoch, "the new map")
        assert r.set(b, "moved")
        assert cluster.masters[0].client().get(b) == b"moved"
        assert r.info("proxy")["etcd_state"] in ("ok", "unreachable")
        wait_until(lambda: r.info("proxy")["etcd_state"] == "ok", "etcd seen again", 60)
        store.close()
        r.close()
        assert "etcd unreachable" in proxy.log() or "watch" in proxy.log()
    finally:
        cluster.stop()
        etcd.stop()


def test_backends_with_a_password(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> None:
    cluster = Cluster(tmp_path, etcd, cluster_name, 2, "--requirepass", "node-secret")
    try:
        good = cluster.proxy("--backend-password", "node-secret").client()
        keys = keys_in_groups(cluster, 4, "pw")
        assert good.mset({k: k for k in keys}) and good.mget(keys) == [k.encode() for k in keys]
        bad = RawClient(cluster.proxy("--backend-password", "wrong").port)
        reply = bad.call("GET", keys[0])
        assert reply.startswith(b"-ERR backend 127.0.0.1:")
        assert b"unavailable (AUTH refused: WRONGPASS" in reply
        bad.close()
        good.close()
    finally:
        cluster.stop()


def test_subscribers_leave_when_the_pubsub_node_changes(cluster: Cluster) -> None:
    proxy = cluster.proxy()
    c = RawClient(proxy.port)
    assert c.call("SUBSCRIBE", "news").startswith(b"*3\r\n$9\r\nsubscribe")
    # every slot to group 2: the default node (group 1's master, the lowest that owns slots)
    # changes, so the subscriber is disconnected to subscribe again where channels are now
    topo = cluster.store.load()
    ranges = [(r.start, r.end) for r in topo.slots.ranges if r.group == 1]
    plans.apply_fresh(cluster.store, lambda t: plans.plan_assign(t, ranges, 2, force=True))
    assert c.read_until_closed(30)[1]
    again = proxy.client().pubsub()
    again.subscribe("news")
    assert again.get_message(timeout=10)["type"] == "subscribe"
    publisher = proxy.client()
    assert publisher.publish("news", "x") == 1
    assert cluster.masters[1].client().pubsub_numsub("news") == [(b"news", 1)]
    again.close()
    publisher.close()


def test_maxclients(cluster: Cluster) -> None:
    proxy = cluster.proxy("--maxclients", "2")
    first, second = RawClient(proxy.port), RawClient(proxy.port)
    assert first.call("PING") == PONG and second.call("PING") == PONG
    third = RawClient(proxy.port)
    assert third.read_until_closed() == (b"-ERR max number of clients reached\r\n", True)
    first.close()
    wait_until(lambda: RawClient(proxy.port).call("PING") == PONG, "room for a client")
    second.close()


# -- bad input, as the server's table says (tests/test_bad_input.py) ---------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, etcd: EtcdServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("proxy-bad"), etcd, "bad-input", groups=2)
    c.proxy()
    c.proxy("--requirepass", "secret")
    c.proxy("--client-output-limit", "1000000")
    yield c
    c.stop()


@pytest.fixture
def witness(shared: Cluster) -> Iterator[RawClient]:
    c = RawClient(shared.proxies[0].port)
    assert c.call("SET", "witness:key", "intact") == b"+OK\r\n"
    yield c
    assert c.call("GET", "witness:key") == b"$6\r\nintact\r\n"
    assert c.call("PING") == PONG
    c.close()


@pytest.mark.parametrize(("data", "reply"), CLOSING, ids=[repr(d[:24]) for d, _ in CLOSING])
def test_bad_input_closes_with_redis_reply(
    shared: Cluster, witness: RawClient, data: bytes, reply: bytes
) -> None:
    check_closing(shared.proxies[0], witness, data, reply)


@pytest.mark.parametrize(("data", "reply"), CONTINUING, ids=[repr(d[:24]) for d, _ in CONTINUING])
def test_bad_input_continues(
    shared: Cluster, witness: RawClient, data: bytes, reply: bytes
) -> None:
    check_continuing(shared.proxies[0], witness, data, reply)


def test_password(shared: Cluster) -> None:
    port = shared.proxies[1].port
    c = RawClient(port)
    assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
    assert c.call("AUTH", "wrong") == (
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    )
    assert c.call("AUTH", "secret") == b"+OK\r\n"
    assert c.call("SET", "k", "v") == b"+OK\r\n"
    c.close()
    c = RawClient(port)
    c.send(b"*11\r\n")
    assert c.read_until_closed() == (
        b"-ERR Protocol error: unauthenticated multibulk length\r\n",
        True,
    )
    c = RawClient(port)
    hello = c.call("HELLO", "3", "AUTH", "default", "secret")
    assert hello.startswith(b"%7\r\n")
    assert c.call("GET", "k") == b"$1\r\nv\r\n"
    c.close()
    r = redis.Redis(port=port, password="secret", socket_timeout=30)
    assert r.get("k") == b"v"
    r.close()


def test_client_that_never_reads_is_closed(shared: Cluster) -> None:
    proxy = shared.proxies[2]
    r = proxy.client()
    r.set("big", b"x" * 200_000)
    s = socket.create_connection(("127.0.0.1", proxy.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET big\r\n" * 2000)  # 400 MB of replies it will not read
    wait_until(lambda: "output buffer over its limit" in proxy.log(), "the output limit")
    assert r.ping()  # others are served
    s.close()
    r.close()


def test_sigterm_stops_cleanly_and_unregisters(cluster: Cluster) -> None:
    proxy: ProxyProcess = cluster.proxy()
    r = proxy.client()
    assert r.set("k", "v")
    wait_until(lambda: len(cluster.store.load().proxies) == 1, "registration")
    assert proxy.stop(signal.SIGTERM) == 0
    assert cluster.store.load().proxies == {}
    assert "ledis-proxy stopped" in proxy.log()


def test_a_slow_backend_pushes_back_on_its_clients(cluster: Cluster) -> None:
    """In flight towards a backend is bounded: a client pipelining into a frozen backend stops
    being read; once the backend is back every reply arrives, in order."""
    proxy = cluster.proxy("--backend-max-in-flight", "200", "--backend-connections", "1")
    key = keys_in_groups(cluster, 1, "slow")[0]
    owner = cluster.owner(key)
    assert owner.proc is not None
    c = RawClient(proxy.port)
    assert c.call("SET", key, "0") == b"+OK\r\n"
    n = 100_000
    data = f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode() * n
    owner.proc.send_signal(signal.SIGSTOP)
    sender = threading.Thread(target=c.sock.sendall, args=(data,))
    try:
        sender.start()
        addr = f"127.0.0.1:{owner.port}"
        info = proxy.client()

        def in_flight() -> int:
            rows = info.info("proxy").values()
            return next(
                v["in_flight"] for v in rows if isinstance(v, dict) and v.get("addr") == addr
            )

        wait_until(lambda: in_flight() >= 200, "requests in flight")
        time.sleep(0.5)  # time to read more, if it wrongly did
        assert in_flight() <= 200 + 20_000  # the bound, plus what one read may hold
    finally:
        owner.proc.send_signal(signal.SIGCONT)
    sender.join(60)
    expected = b"".join(b":%d\r\n" % i for i in range(1, n + 1))
    got = b""
    while len(got) < len(expected):
        chunk = c.sock.recv(1 << 20)
        assert chunk, "closed"
        got += chunk
    assert got == expected
    c.close()


def test_sigterm_with_etcd_hung_exits_in_bounded_time(tmp_path: Path) -> None:
    """etcd stopped dead (SIGSTOP: calls hang until their timeout) while a proxy shuts down:
    the proxy gives etcd at most ETCD_STOP_SECONDS, says the registration goes when its lease
    expires, and exits cleanly (the lease thread, the revoke and the client's close each
    waited their own timeout, one after another, past a 30 s supervisor's patience)."""
    etcd = EtcdServer.on_free_ports(tmp_path / "etcd" / "data", no_fsync=True)
    cluster = Cluster(tmp_path / "c", etcd, "etcd-hung", groups=1)
    try:
        proxy = cluster.proxy()
        wait_until(lambda: proxy.client().info("proxy")["etcd_state"] == "ok", "registered")
        assert etcd.proc is not None
        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            assert proxy.stop() == 0
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        assert "ledis-proxy stopped" in proxy.log() and "Traceback" not in proxy.log()
    finally:
        cluster.stop()
        etcd.stop()
