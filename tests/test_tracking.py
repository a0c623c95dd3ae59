"""CLIENT TRACKING (client-side caching) against the real Redis 7.0: the same commands on both
servers, the same bytes back, invalidation pushes included (RESP3 pushes, RESP2 redirection to
``__redis__:invalidate``, BCAST, OPTIN/OPTOUT, NOLOOP, flushes, expiry)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .servers import LedisServer, RedisServer, wait_until
from .twin import Id, Twins, no_numbers, twins_fixture

pytestmark = pytest.mark.differential

PUSH = b">2\r\n$10\r\ninvalidate\r\n"


def invalidate(*keys: str) -> bytes:
    return (
        PUSH
        + b"*%d\r\n" % len(keys)
        + b"".join(b"$%d\r\n%s\r\n" % (len(k), k.encode()) for k in keys)
    )


@pytest.fixture
def twins(ledis_server: LedisServer, redis_server: RedisServer) -> Iterator[Twins]:
    yield from twins_fixture(ledis_server, redis_server)


def test_default_mode_resp3(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on"), ("GET", "a"), ("MGET", "a", "b"), ("HGET", "h", "f"))
    # its own write: the invalidation comes right after the reply
    s.send(("SET", "a", "1"), ("PING",))
    assert s.read(3) == [b"+OK\r\n", invalidate("a"), b"+PONG\r\n"]
    s.call("GET", "a")
    info = s.call("CLIENT", "TRACKINGINFO", norm=no_numbers)
    assert b"on" in info
    assert s.call("CLIENT", "GETREDIR") == b":0\r\n"
    o.run(("SET", "a", "2"), ("SET", "b", "2"), ("HSET", "h", "f", "v"), ("SET", "a", "3"))
    assert s.read(3) == [invalidate("a"), invalidate("b"), invalidate("h")]
    s.quiet()  # a key is announced once until it is read again
    # inside a transaction: after EXEC's reply
    s.call("GET", "a")
    s.send(("MULTI",), ("SET", "a", "y"), ("GET", "a"), ("EXEC",))
    s.read(4)
    assert s.read() == [invalidate("a")]
    s.quiet()


def test_flushes_send_null(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on"), ("GET", "a"))
    s.send(("FLUSHDB",), ("PING",))
    assert s.read(3) == [b"+OK\r\n", PUSH + b"_\r\n", b"+PONG\r\n"]
    o.call("FLUSHALL")
    assert s.read() == [PUSH + b"_\r\n"]
    o.call("SET", "a", "1")  # the table was emptied: nothing more for a
    s.quiet()


def test_optin_optout_and_caching(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(
        ("CLIENT", "CACHING", "yes"),  # not tracking
        ("CLIENT", "TRACKING", "on", "OPTIN"),
        ("CLIENT", "CACHING", "yes"),
        ("GET", "k1"),
        ("GET", "k2"),  # CACHING lasted one command
        ("CLIENT", "CACHING", "no"),
        ("CLIENT", "CACHING", "maybe"),
        ("CLIENT", "TRACKINGINFO"),
        ("MULTI",),
        ("GET", "k3"),
        ("EXEC",),
        ("CLIENT", "CACHING", "yes"),
        ("MULTI",),
        ("GET", "k4"),
        ("EXEC",),  # CACHING YES covers the whole transaction
        norm=no_numbers,
    )
    o.run(("MSET", "k1", "1", "k2", "1", "k3", "1", "k4", "1"))
    assert s.read(2) == [invalidate("k1"), invalidate("k4")]
    s.quiet()
    s.run(
        ("CLIENT", "TRACKING", "off"),
        ("CLIENT", "TRACKING", "on", "OPTOUT"),
        ("CLIENT", "CACHING", "no"),
        ("GET", "x1"),  # not remembered
        ("GET", "x2"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "on", "OPTIN"),
        norm=no_numbers,
    )
    o.run(("SET", "x1", "1"), ("SET", "x2", "1"))
    assert s.read() == [invalidate("x2")]
    s.quiet()


def test_noloop(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on", "NOLOOP"), ("GET", "n"), ("SET", "n", "v"), ("GET", "n"))
    s.quiet()  # its own write is not announced to it
    o.call("SET", "n", "w")
    assert s.read() == [invalidate("n")]


def test_bcast(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:", "PREFIX", "v:"))
    s.send(("SET", "u:1", "a"), ("SET", "w", "1"), ("SET", "v:2", "b"), ("PING",))
    assert s.read(4)[-1] == b"+PONG\r\n"
    assert s.read(2) == [invalidate("u:1"), invalidate("v:2")]  # once the loop turns
    o.run(("MSET", "u:3", "1", "u:2", "2", "zz", "3"), ("DEL", "u:1", "nokey"), ("SET", "v:9", "x"))
    assert s.read(2) == [invalidate("u:1", "u:2", "u:3"), invalidate("v:9")]
    s.run(
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:x"),  # overlaps u:
        ("CLIENT", "TRACKING", "on", "PREFIX", "a"),  # needs BCAST
        ("CLIENT", "TRACKING", "on"),  # cannot leave BCAST while on
        ("CLIENT", "TRACKING", "on", "BCAST", "OPTIN"),
        ("CLIENT", "TRACKING", "off"),
        ("CLIENT", "TRACKING", "on", "BCAST", "NOLOOP"),  # every key, not its own
        norm=no_numbers,
    )
    s.run(("SET", "q", "1"), ("PING",))
    o.run(("SET", "q", "2"), ("SET", "r", "2"))
    assert s.read() == [invalidate("q", "r")]


def test_redirect_resp2(twins: Twins) -> None:
    r = twins.open("r")
    s = twins.open("s")
    o = twins.open("o")
    r.call("SUBSCRIBE", "__redis__:invalidate")
    s.run(
        ("CLIENT", "TRACKING", "on", "REDIRECT", Id("r")),
        ("GET", "a"),
        ("CLIENT", "TRACKINGINFO"),
        ("CLIENT", "GETREDIR"),
        norm=no_numbers,
    )
    o.call("SET", "a", "1")
    message = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
    assert r.read() == [message + b"*1\r\n$1\r\na\r\n"]
    s.run(("GET", "a"), ("FLUSHALL",))
    assert r.read() == [message + b"$-1\r\n"]  # null in the tracking client's protocol
    s.quiet()  # RESP2 without redirection would get nothing on its own connection
    s.run(
        ("CLIENT", "TRACKING", "on", "REDIRECT", "x"),
        ("CLIENT", "TRACKING", "on", "REDIRECT", "0"),
        ("CLIENT", "TRACKING", "on", "REDIRECT", Id("r"), "REDIRECT", Id("r")),
        ("CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"),
        ("CLIENT", "TRACKING", "maybe"),
        ("CLIENT", "TRACKING", "on", "NOLOOP", "extra"),
        ("CLIENT", "TRACKING", "off", "BCAST", "OPTIN", "OPTOUT"),  # OFF ignores them
    )


def test_broken_redirect_resp3(twins: Twins) -> None:
    t = twins.open("t")
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on", "REDIRECT", Id("t")), ("GET", "c"))
    for c in t.clients:
        c.close()
    wait_until(
        lambda: all(
            b"id=%d " % i not in o.clients[n].call("CLIENT", "LIST")
            for n, i in enumerate(twins.ids["t"])
        ),
        "the redirect target to be gone",
    )
    o.call("SET", "c", "1")
    assert s.read(norm=no_numbers) == [b">2\r\n$21\r\ntracking-redir-broken\r\n:N\r\n"]
    s.run(("CLIENT", "TRACKINGINFO"), ("GET", "c"), norm=no_numbers)
    s.send(("SET", "c", "2"), ("PING",))
    assert s.read(3, norm=no_numbers)[1] == b">2\r\n$21\r\ntracking-redir-broken\r\n:N\r\n"
    assert b"flags=tR " in o.clients[1].call("CLIENT", "LIST")


# Writes of every kind must invalidate the keys they change: (setup, read, write).
WRITES: list[tuple[list[list[str]], list[str], list[str]]] = [
    ([["SET", "k", "1"]], ["GET", "k"], ["APPEND", "k", "x"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["INCR", "k"]),
    ([["SET", "k", "1"]], ["STRLEN", "k"], ["SETRANGE", "k", "3", "x"]),
    ([], ["GETBIT", "k", "3"], ["SETBIT", "k", "3", "1"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["GETDEL", "k"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["GETEX", "k", "EX", "100"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["EXPIRE", "k", "100"]),
    ([["SET", "k", "1", "EX", "100"]], ["TTL", "k"], ["PERSIST", "k"]),
    ([["SET", "k", "1"]], ["EXISTS", "k"], ["DEL", "k"]),
    ([["SET", "k", "1"]], ["TYPE", "k"], ["UNLINK", "k"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["RENAME", "k", "k2"]),
    ([["SET", "k", "1"]], ["GET", "k2"], ["COPY", "k", "k2"]),
    ([["SET", "k", "1"]], ["GET", "k"], ["MOVE", "k", "1"]),
    ([["SET", "k", "x" * 5000]], ["STRLEN", "k"], ["SETRANGE", "k", "10", "y"]),  # chunked
    ([["SET", "k", "x" * 5000]], ["GETRANGE", "k", "0", "3"], ["SETBIT", "k", "7", "1"]),
    ([["HSET", "k", "f", "1"]], ["HGETALL", "k"], ["HINCRBY", "k", "f", "2"]),
    ([["HSET", "k", "f", "1"]], ["HGET", "k", "f"], ["HSET", "k", "f", "2"]),
    ([["ZADD", "k", "1", "a"]], ["ZSCORE", "k", "a"], ["ZADD", "k", "5", "a"]),
    ([["HSET", "k", "f", "1", "g", "2"]], ["HLEN", "k"], ["HDEL", "k", "f"]),
    ([["RPUSH", "k", "a", "b"]], ["LRANGE", "k", "0", "-1"], ["LPUSH", "k", "c"]),
    ([["RPUSH", "k", "a", "b"]], ["LLEN", "k"], ["RPOP", "k"]),
    ([["RPUSH", "k", "a", "b"]], ["LINDEX", "k", "0"], ["LSET", "k", "0", "z"]),
    ([["RPUSH", "k", "a", "b", "a"]], ["LLEN", "k"], ["LREM", "k", "0", "a"]),
    ([["RPUSH", "k", "a", "b"]], ["LLEN", "k"], ["LTRIM", "k", "1", "1"]),
    ([["RPUSH", "k", "a", "b"]], ["LLEN", "k"], ["LMOVE", "k", "k2", "LEFT", "RIGHT"]),
    ([["SADD", "k", "a", "b"]], ["SCARD", "k"], ["SREM", "k", "a"]),
    ([["SADD", "k", "a"]], ["SISMEMBER", "k", "a"], ["SMOVE", "k", "k2", "a"]),
    ([["SADD", "k", "a"], ["SADD", "k2", "b"]], ["SMEMBERS", "k"], ["SUNIONSTORE", "k", "k2"]),
    ([["ZADD", "k", "1", "a"]], ["ZSCORE", "k", "a"], ["ZINCRBY", "k", "2", "a"]),
    ([["ZADD", "k", "1", "a", "2", "b"]], ["ZCARD", "k"], ["ZPOPMIN", "k"]),
    ([["ZADD", "k", "1", "a"]], ["ZRANGE", "k", "0", "-1"], ["ZREM", "k", "a"]),
    ([["ZADD", "k2", "1", "a"]], ["ZCARD", "k"], ["ZUNIONSTORE", "k", "1", "k2"]),
    ([["RPUSH", "k2", "3", "1"]], ["EXISTS", "k"], ["SORT", "k2", "STORE", "k"]),
    ([["SET", "a", "x"]], ["GET", "k"], ["BITOP", "NOT", "k", "a"]),
]


@pytest.mark.parametrize(
    "setup,read,write", WRITES, ids=[f"{n}-{w[2][0]}" for n, w in enumerate(WRITES)]
)
def test_every_write_invalidates(
    twins: Twins, setup: list[list[str]], read: list[str], write: list[str]
) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    o.run(("FLUSHALL",), *setup)
    s.run(("CLIENT", "TRACKING", "on"), read)
    o.call(*write)
    s.read()  # the invalidation of the key it read
    s.quiet()


def test_expiry_invalidates(twins: Twins) -> None:
    s = twins.open("s", resp=3)
    o = twins.open("o")
    s.run(("CLIENT", "TRACKING", "on"), ("GET", "e"))
    o.call("SET", "e", "1", "PX", "200")
    assert s.read() == [invalidate("e")]  # the write
    for client in s.clients:  # each server on its own: when the read comes is up to the machine
        if client.call("GET", "e") == b"$1\r\n1\r\n":  # read before it expired:
            assert client.read_reply() == invalidate("e")  # its expiry is announced
        # (read after it expired: the read found nothing and remembered the key again)
        assert client.call("PING") == b"+PONG\r\n"


def test_tracking_clients_in_info_and_client_list(ledis_server: LedisServer) -> None:
    c = ledis_server.client()
    t = redis.Redis(host="127.0.0.1", port=ledis_server.port, protocol=3, socket_timeout=30)
    t.execute_command("CLIENT", "TRACKING", "on")
    t.get("tracked")
    info = c.info()
    assert info["tracking_clients"] >= 1
    assert info["tracking_total_keys"] >= 1
    line = t.execute_command("CLIENT", "INFO")
    assert b" flags=t " in line
    assert b"resp=3" in line
    t.execute_command("CLIENT", "TRACKING", "off")
    t.close()
    c.close()


def test_table_bounded_by_tracking_table_max_keys(ledis_server: LedisServer) -> None:
    """Beyond tracking-table-max-keys, keys are dropped as if they changed: their readers
    are told, and the table shrinks back under the limit."""
    from .respclient import RawClient

    c = ledis_server.client()
    t = RawClient(ledis_server.port)
    try:
        c.config_set("tracking-table-max-keys", 10)
        t.call("HELLO", 3)
        t.call("CLIENT", "TRACKING", "on")
        pushes = 0
        for i in range(31):  # 30 reads, then a PING
            if i < 30:
                t.send(b"*2\r\n$3\r\nGET\r\n$%d\r\ntk:%d\r\n" % (len(str(i)) + 3, i))
            else:
                t.send(b"*1\r\n$4\r\nPING\r\n")
            while (reply := t.read_reply()).startswith(PUSH):  # dropped keys, each announced
                pushes += 1  # right after the reply of the command that dropped it
            assert reply == (b"_\r\n" if i < 30 else b"+PONG\r\n")
        assert pushes >= 19
        assert c.info()["tracking_total_keys"] <= 11
    finally:
        c.config_set("tracking-table-max-keys", 1_000_000)
        t.close()
        c.close()


@pytest.fixture
def redis_tcp(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis listening on TCP (redis-py caches only over TCP): a free port is picked,
    and another one if something took it before the server bound it."""
    for attempt in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = RedisServer(tmp_path / f"r{attempt}", port=port)
        try:
            server.start()
        except RuntimeError:
            continue
        yield server
        server.stop()
        return
    raise RuntimeError("no free port for redis-server")


@pytest.mark.parametrize("server", ["ledis_server", "redis_tcp"])
def test_redis_py_client_side_caching(request: pytest.FixtureRequest, server: str) -> None:
    """redis-py's client-side cache, as a user turns it on, stays right while another client
    writes. redis-py 8 only allows it against servers announcing 7.4 or later (HELLO's
    version): Redis 7.0.15 and ledis-server (which speaks 7.0) are both refused as they come,
    so the version gate is lowered here and the same test runs against both."""
    from redis.cache import CacheConfig
    from redis.connection import CacheProxyConnection

    srv = request.getfixturevalue(server)
    writer = redis.Redis(host="127.0.0.1", port=srv.port)
    writer.delete("csc:a", "csc:b")
    writer.set("csc:a", "1")
    gate = CacheProxyConnection.MIN_ALLOWED_VERSION
    CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"
    try:
        cached = redis.Redis(
            host="127.0.0.1", port=srv.port, protocol=3, cache_config=CacheConfig()
        )
        assert cached.get("csc:a") == b"1"
        assert cached.get("csc:a") == b"1"  # from the cache
        cache = cached.get_cache()
        assert cache is not None and cache.size == 1
        writer.set("csc:a", "2")
        wait_until(lambda: cached.get("csc:a") == b"2", "the cache to be invalidated")
        cached.get("csc:b")
        writer.flushdb()
        wait_until(lambda: cached.get("csc:a") is None, "the flush to empty the cache")
        assert cache.size <= 1
        cached.close()
    finally:
        CacheProxyConnection.MIN_ALLOWED_VERSION = gate
        writer.close()
