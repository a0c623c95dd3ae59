"""ledis-proxy in front of two real groups, with redis-py and redis-cli: routing by slot, split
multi-key commands, CROSSSLOT, pipelines in order, transactions, blocking, pub/sub, SCAN and
the fan-out commands, the proxy's own INFO and commands, its registration in etcd."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest
import redis

from stack.cluster.etcd_server import EtcdServer
from stack.core.slots import key_slot

from .proxy_cluster import Cluster, ProxyProcess, keys_in_groups
from .respclient import RawClient
from .servers import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, etcd: EtcdServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("proxy-routing"), etcd, "routing", groups=2)
    c.proxy()
    yield c
    c.stop()


@pytest.fixture
def proxy(cluster: Cluster) -> ProxyProcess:
    cluster.flushall()
    return cluster.proxies[0]


@pytest.fixture
def r(proxy: ProxyProcess) -> Iterator[redis.Redis]:
    client = proxy.client()
    yield client
    client.close()


def test_keys_land_in_the_group_that_owns_their_slot(cluster: Cluster, r: redis.Redis) -> None:
    keys = keys_in_groups(cluster, 40)
    for i, k in enumerate(keys):
        assert r.set(k, i)
    for i, k in enumerate(keys):
        assert r.get(k) == str(i).encode()
        assert cluster.owner(k).client().get(k) == str(i).encode()
        other = next(m for m in cluster.masters if m is not cluster.owner(k))
        assert other.client().get(k) is None
    assert r.incr(keys[0]) == 1
    assert r.hset("h", mapping={"a": 1, "b": 2}) == 2
    assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert cluster.owner("h").client().hlen("h") == 2


def test_split_commands_span_groups(cluster: Cluster, r: redis.Redis) -> None:
    keys = keys_in_groups(cluster, 10, "split")
    assert len({key_slot(k.encode()) for k in keys}) > 1
    assert r.mset({k: f"v{i}" for i, k in enumerate(keys)})
    assert r.mget([*keys, "missing"]) == [f"v{i}".encode() for i in range(10)] + [None]
    assert r.mget(list(reversed(keys))) == [f"v{i}".encode() for i in reversed(range(10))]
    for m in cluster.masters:
        assert m.client().dbsize() == 5
    assert r.exists(*keys, "missing", keys[0]) == 11
    assert r.touch(*keys) == 10
    assert r.delete(keys[0], keys[1], "missing") == 2
    assert r.unlink(*keys[2:5]) == 3
    assert r.exists(*keys) == 5
    assert r.dbsize() == 5
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'mset'"):
        r.execute_command("MSET", keys[0], "v", keys[1])
    r.set("str", "x")
    r.lpush("list", "x")
    assert r.mget("str", "list") == [b"x", None]


def test_other_multi_key_commands_across_slots_are_refused(r: redis.Redis) -> None:
    r.set("a", 1)
    assert key_slot(b"a") != key_slot(b"b")
    for cmd in (("RENAME", "a", "b"), ("SUNION", "a", "b"), ("MSETNX", "a", 1, "b", 2)):
        with pytest.raises(redis.ResponseError, match=r"^Keys in request don't hash"):
            r.execute_command(*cmd)
    assert r.set("{t}a", 1)
    assert r.rename("{t}a", "{t}b")
    assert r.get("{t}b") == b"1"
    assert r.get("a") == b"1"


def test_pipeline_of_mixed_slots_keeps_its_order(cluster: Cluster, r: redis.Redis) -> None:
    keys = keys_in_groups(cluster, 50, "p")
    pipe = r.pipeline(transaction=False)
    for _ in range(4):
        for k in keys:
            pipe.incr(k)
            pipe.get(k)
        pipe.mget(keys)
        pipe.ping()
        pipe.execute_command("RENAME", keys[0], keys[1])  # CROSSSLOT in the middle
    out = pipe.execute(raise_on_error=False)
    pos = 0
    for round_ in range(4):
        for _k in keys:
            assert out[pos] == round_ + 1
            assert out[pos + 1] == str(round_ + 1).encode()
            pos += 2
        assert out[pos] == [str(round_ + 1).encode()] * len(keys)
        assert out[pos + 1] is True
        assert isinstance(out[pos + 2], redis.ResponseError)
        pos += 3


def test_big_pipeline_through_raw_socket(cluster: Cluster, proxy: ProxyProcess) -> None:
    keys = keys_in_groups(cluster, 20, "raw")
    c = RawClient(proxy.port)
    payload = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%d\r\n" % (len(k), k.encode(), len(str(i)), i)
        for i in range(5000)
        for k in [keys[i % 20]]
    )
    c.send(payload)
    replies = [c.read_reply() for _ in range(5000)]
    assert replies == [b"+OK\r\n"] * 5000
    assert c.call("GET", keys[19]) == b"$4\r\n4999\r\n"
    c.close()


def test_transaction_in_one_slot(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.set("{u}a", 1).incr("{u}a").get("{u}a").lpush("{u}l", "x")
    assert pipe.execute() == [True, 2, b"2", 1]
    with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
        pipe = r.pipeline(transaction=True)
        pipe.set("{u}a", 1).set("{v}b", 2)
        pipe.execute()
    assert r.get("{v}b") is None
    raw = RawClient(r.connection_pool.connection_kwargs["port"])
    assert raw.call("EXEC") == b"-ERR EXEC without MULTI\r\n"
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("MULTI") == b"-ERR MULTI calls can not be nested\r\n"
    assert raw.call("SET", "{u}x", "1") == b"+QUEUED\r\n"
    assert raw.call("NOSUCH") == (b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n")
    assert raw.call("EXEC") == (b"-EXECABORT Transaction discarded because of previous errors.\r\n")
    assert raw.call("MULTI") == b"+OK\r\n"
    assert raw.call("PING") == b"+QUEUED\r\n"
    assert raw.call("DISCARD") == b"+OK\r\n"
    assert raw.call("DISCARD") == b"-ERR DISCARD without MULTI\r\n"
    raw.close()


def test_watch_detects_a_change_by_another_client(proxy: ProxyProcess, r: redis.Redis) -> None:
    other = proxy.client()
    r.set("{w}k", 1)
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("{w}k")
        other.set("{w}k", 2)
        pipe.multi()
        pipe.set("{w}k", 3)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("{w}k") == b"2"
    with r.pipeline(transaction=True) as pipe:
        pipe.watch("{w}k")
        value = int(pipe.get("{w}k"))
        pipe.multi()
        pipe.set("{w}k", value + 10)
        assert pipe.execute() == [True]
    assert r.get("{w}k") == b"12"
    with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
        r.execute_command("WATCH", "a", "b")
    other.close()


def test_blpop_waits_on_its_own_connection(proxy: ProxyProcess, r: redis.Redis) -> None:
    waiter = proxy.client()
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(waiter.blpop(["queue"], timeout=20)))
    t.start()
    wait_until(lambda: r.info("clients")["blocked_clients"] == 1, "BLPOP")
    # the shared links still carry other clients' requests meanwhile
    for i in range(50):
        assert r.set(f"x{i}", i)
    assert r.rpush("queue", "job") == 1
    t.join(30)
    assert result == [(b"queue", b"job")]
    assert waiter.blpop(["queue"], timeout=0.2) is None
    assert r.execute_command("BLMPOP", "0.1", "2", "{q}a", "{q}b", "LEFT") is None
    waiter.close()


def test_pubsub_through_the_proxy(proxy: ProxyProcess, r: redis.Redis) -> None:
    sub = proxy.client().pubsub()
    sub.subscribe("news")
    sub.psubscribe("wea*")
    assert sub.get_message(timeout=5)["type"] == "subscribe"
    assert sub.get_message(timeout=5)["type"] == "psubscribe"
    assert r.publish("news", "hello") == 1
    assert r.publish("weather", "rain") == 1
    msg = sub.get_message(timeout=5)
    assert (msg["type"], msg["channel"], msg["data"]) == ("message", b"news", b"hello")
    msg = sub.get_message(timeout=5)
    assert (msg["type"], msg["channel"], msg["data"]) == ("pmessage", b"weather", b"rain")
    assert r.pubsub_numsub("news") == [(b"news", 1)]
    sub.close()
    # a raw RESP2 client: subscribed mode, then back to normal routing after unsubscribing
    c = RawClient(proxy.port)
    c.send(b"SUBSCRIBE ch1 ch2\r\n")
    assert c.read_reply() == b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n"
    assert c.read_reply() == b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n"
    assert c.call("GET", "x").startswith(b"-ERR Can't execute 'get'")
    assert c.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    c.send(b"UNSUBSCRIBE\r\nSET after 1\r\nGET after\r\n")
    got = {c.read_reply(), c.read_reply()}
    assert got == {
        b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:1\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:0\r\n",
    }
    assert c.read_reply() == b"+OK\r\n"
    assert c.read_reply() == b"$1\r\n1\r\n"
    assert c.call("UNSUBSCRIBE", "x") == b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nx\r\n:0\r\n"
    c.close()


def test_resp3_client(proxy: ProxyProcess) -> None:
    c = RawClient(proxy.port)
    hello = c.call("HELLO", "3")
    assert hello.startswith(b"%7\r\n") and b"proto\r\n:3" in hello
    assert c.call("SET", "r3", "v") == b"+OK\r\n"
    assert c.call("GET", "nothing") == b"_\r\n"
    assert c.call("HSET", "h3", "f", "v") == b":1\r\n"
    assert c.call("HGETALL", "h3") == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert c.call("MGET", "r3", "nothing", "other") == b"*3\r\n$1\r\nv\r\n_\r\n_\r\n"
    assert c.call("SUBSCRIBE", "c3") == b">3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:1\r\n"
    assert c.call("GET", "r3") == b"$1\r\nv\r\n"  # RESP3: any command while subscribed
    c.close()
    client = redis.Redis(port=proxy.port, protocol=3, socket_timeout=30)
    assert client.set("r3b", 1) and client.get("r3b") == b"1"
    client.close()


def test_select_and_connection_commands(r: redis.Redis, proxy: ProxyProcess) -> None:
    c = RawClient(proxy.port)
    assert c.call("SELECT", "0") == b"+OK\r\n"
    assert c.call("SELECT", "1") == b"-ERR SELECT is not allowed in cluster mode\r\n"
    assert c.call("SELECT", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert c.call("PING") == b"+PONG\r\n"
    assert c.call("PING", "a", "b") == b"-ERR wrong number of arguments for 'ping' command\r\n"
    assert c.call("ECHO", "hi") == b"$2\r\nhi\r\n"
    # the nil of a nameless client (a cached constant: the proxy once dropped the
    # connection on it; the socket fuzzer through the proxy found it)
    assert c.call("CLIENT", "GETNAME") == b"$-1\r\n"
    assert c.call("PING") == b"+PONG\r\n"
    assert c.call("CLIENT", "SETNAME", "me") == b"+OK\r\n"
    assert c.call("CLIENT", "GETNAME") == b"$2\r\nme\r\n"
    assert c.call("CLIENT", "NOPE") == b"-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
    assert c.call("CLUSTER", "KEYSLOT", "foo") == b":12182\r\n"
    assert c.call("SHUTDOWN").startswith(b"-ERR 'shutdown' is not supported by ledis-proxy")
    assert c.call("CONFIG", "SET", "a", "b").startswith(b"-ERR 'config set' is not supported")
    assert c.call("AUTH", "x").startswith(b"-ERR AUTH <password> called without any password")
    assert c.call("GET") == b"-ERR wrong number of arguments for 'get' command\r\n"
    assert c.call("NOPE", "a") == b"-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n"
    assert c.call("COMMAND", "COUNT").startswith(b":")
    assert c.call("TIME").startswith(b"*2\r\n")
    c.close()


def test_scan_and_fan_out_commands(cluster: Cluster, r: redis.Redis) -> None:
    keys = keys_in_groups(cluster, 300, "scan")
    r.mset({k: 1 for k in keys})
    assert r.dbsize() == 300
    assert sorted(r.keys("scan*")) == sorted(k.encode() for k in keys)
    seen = []
    cursor = 0
    for _ in range(1000):
        cursor, batch = r.scan(cursor, count=25)
        seen += batch
        if cursor == 0:
            break
    assert sorted(seen) == sorted(k.encode() for k in keys)
    assert set(r.scan_iter(match="scan1*")) == {k.encode() for k in keys if k.startswith("scan1")}
    assert r.randomkey() in {k.encode() for k in keys}
    assert r.flushall()
    assert r.dbsize() == 0 and r.randomkey() is None
    assert all(m.client().dbsize() == 0 for m in cluster.masters)


def test_info_and_proxy_commands(cluster: Cluster, r: redis.Redis) -> None:
    r.set("counted", 1)
    info = r.info("proxy")
    assert info["slot_map_epoch"] == cluster.store.load().epoch
    assert info["etcd_state"] == "ok" and info["groups"] == 2
    assert sum(1 for k in info if k.startswith("backend")) == 2
    assert all(info[k]["state"] == "up" for k in info if k.startswith("backend"))
    everything = r.info("all")
    assert everything["cmdstat_set"]["calls"] >= 1 and everything["connected_clients"] >= 1
    slot = key_slot(b"counted")
    stats = r.execute_command("PROXY", "SLOTSTATS", slot, slot)
    assert stats and stats[0][0] == slot and stats[0][1] >= 1
    route = r.execute_command("PROXY", "ROUTE", "counted")
    assert route[0] == slot and route[2] == f"127.0.0.1:{cluster.owner('counted').port}".encode()
    assert route[3] == b"online"


def test_counts_and_client_list_follow_routed_commands(r: redis.Redis) -> None:
    """Commands the C router takes show in CLIENT LIST's cmd= and in PROXY SLOTSTATS, also
    after a CONFIG RESETSTAT in the same pipeline."""
    r.get("counted-a")
    assert r.client_info()["cmd"] == "client|info"
    pipe = r.pipeline(transaction=False)
    pipe.get("counted-a").config_resetstat().get("counted-a").get("counted-a")
    pipe.execute()
    slot = key_slot(b"counted-a")
    assert r.execute_command("PROXY", "SLOTSTATS", slot, slot)[0][1] == 2
    other = r.connection_pool.get_connection()
    try:
        other.send_command("GET", "counted-a")
        other.read_response()
        mine = [c for c in r.client_list() if c["id"] != str(r.client_id())]
        assert any(c["cmd"] == "get" for c in mine)
    finally:
        r.connection_pool.release(other)


def test_registered_in_etcd(cluster: Cluster, proxy: ProxyProcess) -> None:
    def registered() -> bool:
        topo = cluster.store.load()
        found = [p for p in topo.proxies.values() if p.addr == f"127.0.0.1:{proxy.port}"]
        return bool(found) and found[0].epoch_seen == topo.epoch

    wait_until(registered, "the proxy's registration")


def test_redis_cli_through_the_proxy(cluster: Cluster, proxy: ProxyProcess) -> None:
    def cli(*args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(proxy.port), *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout

    keys = keys_in_groups(cluster, 6, "cli")
    assert cli("MSET", *[x for k in keys for x in (k, k.upper())]).strip() == "OK"
    assert cli("MGET", *keys).split() == [k.upper() for k in keys]
    assert cli("--raw", "DEL", *keys).strip() == "6"
    piped = cli(stdin="SET piped 1\nINCR piped\nGET piped\n")
    assert piped.split() == ["OK", "2", "2"]
    assert json.loads(cli("--json", "GET", "piped")) == "2"


def test_inline_commands_and_reads_cut_anywhere(proxy: ProxyProcess) -> None:
    """Inline commands (as telnet sends them) and commands cut across reads: forwarded as they
    came when a read holds whole commands for one backend, re-encoded otherwise."""
    c = RawClient(proxy.port)
    c.send(b'SET {i}a "x y"\r\nGET {i}a\r\nAPPEND {i}a z\r\n')
    assert [c.read_reply() for _ in range(3)] == [b"+OK\r\n", b"$3\r\nx y\r\n", b":4\r\n"]
    wire = b"*2\r\n$3\r\nGET\r\n$4\r\n{i}a\r\n" * 3 + b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nvv\r\n"
    for cut in range(1, len(wire)):
        c.send(wire[:cut])
        c.send(wire[cut:])
        assert [c.read_reply() for _ in range(4)] == [b"$4\r\nx yz\r\n"] * 3 + [b"+OK\r\n"]
    c.close()


def test_scripts_and_functions_route_by_their_declared_keys(
    cluster: Cluster, r: redis.Redis
) -> None:
    """EVAL, FCALL and FCALL_RO go to the group of their declared keys (libraries are loaded on
    each node: FUNCTION is per node, refused through the proxy as SCRIPT is)."""
    keys = keys_in_groups(cluster, 4, "script")
    lib = (
        "#!lua name=plib\n"
        "redis.register_function('pset', function(k, a) return redis.call('set', k[1], a[1]) end)\n"
        "redis.register_function{function_name='pget', callback=function(k) "
        "return redis.call('get', k[1]) end, flags={'no-writes'}}"
    )
    for m in cluster.masters:
        m.client().function_load(lib, replace=True)
    try:
        for i, k in enumerate(keys):
            assert r.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, k, f"e{i}") == b"OK"
            assert cluster.owner(k).client().get(k) == f"e{i}".encode()
            assert r.fcall("pset", 1, k, f"f{i}") == b"OK"
            assert cluster.owner(k).client().get(k) == f"f{i}".encode()
            assert r.fcall_ro("pget", 1, k) == f"f{i}".encode()
        assert key_slot(keys[0].encode()) != key_slot(keys[1].encode())
        for call in (lambda: r.eval("return 1", 2, keys[0], keys[1]),
                     lambda: r.fcall("pset", 2, keys[0], keys[1], "x")):  # fmt: skip
            with pytest.raises(redis.exceptions.ClusterCrossSlotError):
                call()
        with pytest.raises(redis.ResponseError, match="not supported by ledis-proxy"):
            r.function_load(lib, replace=True)
    finally:
        for m in cluster.masters:
            m.client().function_flush()
