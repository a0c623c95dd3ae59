"""The core's RESP client (asyncio and blocking) against real servers: ledis-server and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from stack.core.blocking_client import BlockingClient
from stack.core.reply_parser import ErrorReply
from stack.core.resp import Map, Push
from stack.core.resp_client import (
    Backoff,
    ConnectionLost,
    Endpoint,
    HandshakeError,
    RequestTimeout,
    RespClient,
    RespPool,
    ServerError,
)

from .servers import LedisServer, RedisServer


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def ledis(r: object, ledis_server: LedisServer) -> Iterator[Endpoint]:
    yield Endpoint(port=ledis_server.port)


async def until(check, what: str, limit: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Poll an async condition with a generous deadline (no fixed sleeps)."""
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_pipelining_many_in_flight_resolves_in_order(ledis: Endpoint) -> None:
    async def go() -> None:
        c = RespClient(ledis, max_in_flight=7)
        futures = [await c.submit(["INCR", "n"]) for _ in range(2000)]
        assert [await f for f in futures] == list(range(1, 2001))
        replies = await c.pipeline([["SET", "a", "1"], ["INCR", "a"], ["HGET", "a", "f"]])
        assert replies[:2] == ["OK", 2]
        assert isinstance(replies[2], ErrorReply) and replies[2].code == "WRONGTYPE"
        with pytest.raises(ServerError) as e:
            await c.execute("HGET", "a", "f")
        assert e.value.code == "WRONGTYPE"
        assert not isinstance(e.value, ConnectionLost)
        await c.close()

    run(go())


def test_handshake_restores_db_and_name_after_reconnect(ledis: Endpoint) -> None:
    async def go() -> None:
        c = RespClient(Endpoint(port=ledis.port, db=3, client_name="first"))
        assert await c.execute("SET", "where", "db3") == "OK"
        assert await c.execute("SELECT", "5") == "OK"
        await c.execute("SET", "where", "db5")
        my_id = await c.execute("CLIENT", "ID")
        killer = RespClient(ledis)
        assert await killer.execute("CLIENT", "KILL", "ID", my_id) == 1
        with contextlib.suppress(ConnectionLost):  # the kill may not be noticed yet
            await c.execute("PING")
        assert await c.execute("GET", "where") == b"db5"  # reconnected, SELECT 5 again
        assert await c.execute("CLIENT", "GETNAME") == b"first"
        assert await c.execute("CLIENT", "ID") != my_id
        await c.close()
        await killer.close()

    run(go())


def test_auth_password_and_user(fresh_server: LedisServer, redis_server: RedisServer) -> None:
    fresh_server.extra += ["--requirepass", "s3cret"]
    fresh_server.start()

    async def go() -> None:
        ok = RespClient(Endpoint(port=fresh_server.port, password="s3cret", db=1))
        assert await ok.execute("SET", "k", "v") == "OK"
        assert await ok.execute("DBSIZE") == 1
        with pytest.raises(HandshakeError) as e:
            await RespClient(Endpoint(port=fresh_server.port, password="wrong")).execute("PING")
        assert e.value.code == "WRONGPASS" or "WRONGPASS" in str(e.value)
        anon = RespClient(Endpoint(port=fresh_server.port))
        with pytest.raises(ServerError) as e2:
            await anon.execute("GET", "k")
        assert e2.value.code == "NOAUTH"
        hello3 = RespClient(Endpoint(port=fresh_server.port, password="s3cret", protocol=3))
        assert await hello3.execute("PING") == "PONG"
        for c in (ok, anon, hello3):
            await c.close()
        # a named user with its password (ACL), against the real Redis
        admin = RespClient(Endpoint(unix_path=str(redis_server.socket)))
        await admin.execute("ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all")
        alice = RespClient(
            Endpoint(
                unix_path=str(redis_server.socket), username="alice", password="pw", protocol=3
            )
        )
        assert await alice.execute("ACL", "WHOAMI") == b"alice"
        alice2 = RespClient(
            Endpoint(unix_path=str(redis_server.socket), username="alice", password="pw")
        )
        assert await alice2.execute("ACL", "WHOAMI") == b"alice"
        await admin.execute("ACL", "DELUSER", "alice")
        for c in (admin, alice, alice2):
            await c.close()

    run(go())


def test_resp3_types_and_pushes(ledis: Endpoint) -> None:
    async def go() -> None:
        pushes: list[object] = []
        sub = RespClient(Endpoint(port=ledis.port, protocol=3), on_push=pushes.append)
        c = RespClient(Endpoint(port=ledis.port, protocol=3))
        await c.execute("HSET", "h", "f", "v")
        reply = await c.execute("HGETALL", "h")
        assert type(reply) is Map and reply == [b"f", b"v"]
        await sub.subscribe("news")
        assert await sub.execute("PING") == "PONG"  # replies and pushes apart
        await until(lambda: _published(c, "news", "hello"), "a subscriber")
        await until(lambda: _has(pushes, [b"message", b"news", b"hello"]), "the message")
        assert type(pushes[0]) is Push and pushes[0][0] == b"subscribe"
        await sub.close()
        await c.close()

    run(go())


async def _published(c: RespClient, channel: str, text: str) -> bool:
    return await c.execute("PUBLISH", channel, text) == 1


async def _has(pushes: list[object], message: list[bytes]) -> bool:
    return message in pushes


def test_resp2_pubsub_resubscribes_after_reconnect(ledis: Endpoint) -> None:
    async def go() -> None:
        sub = RespClient(ledis, backoff=Backoff(initial=0.01, maximum=0.2))
        c = RespClient(ledis)
        await sub.subscribe("a", "b")
        await sub.psubscribe("p*")
        first = await sub.next_pushes()
        while len(first) < 3:
            first += await sub.next_pushes()
        assert [m[0] for m in first] == [b"subscribe", b"subscribe", b"psubscribe"]  # type: ignore[index]
        assert await sub.execute("PING") == [b"pong", b""]  # a reply in subscribed mode
        await c.execute("CLIENT", "KILL", "TYPE", "pubsub")
        await until(lambda: _published(c, "a", "again"), "the resubscription")
        messages: list[object] = []
        while [b"message", b"a", b"again"] not in messages:
            messages += await sub.next_pushes(timeout=20)
        await sub.unsubscribe()
        await sub.punsubscribe()
        await sub.close()
        await c.close()

    run(go())


def test_request_timeout_keeps_the_connection_in_step(ledis: Endpoint) -> None:
    async def go() -> None:
        c = RespClient(ledis)
        other = RespClient(ledis)
        with pytest.raises(RequestTimeout):
            await c.execute("BLPOP", "q", "0", timeout=0.2)
        await other.execute("RPUSH", "q", "late")  # wakes the BLPOP: its reply is dropped
        await other.execute("SET", "k", "v")
        assert await c.execute("GET", "k") == b"v"
        assert await other.execute("LLEN", "q") == 0
        await c.close()
        await other.close()

    run(go())


def test_connection_lost_fails_requests_in_flight(ledis: Endpoint) -> None:
    async def go() -> None:
        c = RespClient(ledis)
        killer = RespClient(ledis)
        my_id = await c.execute("CLIENT", "ID")
        blocked = await c.submit(["BLPOP", "nothing", "0"])
        await until(lambda: _blocked(killer), "the BLPOP to block")
        await killer.execute("CLIENT", "KILL", "ID", my_id)
        with pytest.raises(ConnectionLost):
            await blocked
        assert await c.execute("PING") == "PONG"  # reconnects on the next request
        await c.close()
        with pytest.raises(ConnectionLost):
            await c.execute("PING")  # closed for good
        await killer.close()

    run(go())


async def _blocked(c: RespClient) -> bool:
    info = await c.execute("INFO", "clients")
    return b"blocked_clients:1" in info  # type: ignore[operator]


def test_unreachable_server_backs_off(fresh_server: LedisServer) -> None:
    fresh_server.start()
    port = fresh_server.port
    fresh_server.stop()

    async def go() -> None:
        c = RespClient(Endpoint(port=port), backoff=Backoff(initial=30, maximum=60))
        with pytest.raises(ConnectionLost, match="Connection refused"):
            await c.execute("PING")
        with pytest.raises(ConnectionLost, match="next attempt in"):
            await c.execute("PING")  # fails fast inside the backoff delay
        await c.close()

    run(go())


def test_raw_replies_and_pool(ledis: Endpoint) -> None:
    async def go() -> None:
        raw = RespClient(ledis, raw=True)
        assert await raw.call("SET", "k", "v") == b"+OK\r\n"
        assert await raw.call("MGET", "k", "none") == b"*2\r\n$1\r\nv\r\n$-1\r\n"
        assert (
            await raw.call("NOPE") == b"-ERR unknown command 'NOPE', with args beginning with: \r\n"
        )
        pool = RespPool(ledis, size=3)
        futures = [await pool.submit(["INCR", "ctr"]) for _ in range(300)]
        assert sorted([await f for f in futures]) == list(range(1, 301))  # type: ignore[type-var]
        assert sum(c.connected for c in pool.clients) == 3
        await pool.close()
        await raw.close()

    run(go())


def test_blocking_client(ledis: Endpoint) -> None:
    c = BlockingClient(Endpoint(port=ledis.port, db=2))
    c.connect()
    assert c.call("SET", "k", "v") == "OK"
    assert c.pipeline([["GET", "k"], ["NOPE"]])[0] == b"v"
    with pytest.raises(ServerError):
        c.execute("NOPE")
    c.call("SELECT", "4")
    assert c.session.db == 4
    c.call("SUBSCRIBE", "x")
    assert c.read_push() == [b"subscribe", b"x", 1]
    c.close()
    with pytest.raises(ConnectionLost, match="Connection refused"):
        BlockingClient(Endpoint(port=1)).connect()
