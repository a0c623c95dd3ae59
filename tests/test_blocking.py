"""Blocking list pops: woken by pushes from other connections and by EXEC, first come first
served, and timing out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer

Connect = Callable[[], RawClient]


@pytest.fixture
def connect(ledis_server: LedisServer) -> Iterator[Connect]:
    """New raw connections, all closed when the test ends (so none stays blocked)."""
    made: list[RawClient] = []

    def new() -> RawClient:
        made.append(RawClient(ledis_server.port))
        return made[-1]

    yield new
    for c in made:
        c.close()


def wait_blocked(r: redis.Redis, n: int) -> None:
    deadline = time.monotonic() + 10
    while r.info("clients")["blocked_clients"] != n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.info("clients")["blocked_clients"] == n


def test_blpop_woken_by_push_from_another_client(r: redis.Redis, connect: Connect) -> None:
    waiter = connect()
    waiter.send(b"BLPOP queue 0\r\nPING\r\n")
    wait_blocked(r, 1)
    r.rpush("queue", "job1")
    assert waiter.read_reply() == b"*2\r\n$5\r\nqueue\r\n$4\r\njob1\r\n"
    assert waiter.read_reply() == b"+PONG\r\n"  # commands after it waited their turn
    assert r.llen("queue") == 0


def test_first_blocked_first_served(r: redis.Redis, connect: Connect) -> None:
    waiters = [connect() for _ in range(3)]
    for n, w in enumerate(waiters):
        w.send(b"BRPOP q 0\r\n")
        wait_blocked(r, n + 1)
    r.lpush("q", "a", "b", "c")  # q is now [c, b, a]; BRPOP takes from the right
    assert [w.read_reply() for w in waiters] == [
        b"*2\r\n$1\r\nq\r\n$1\r\na\r\n",
        b"*2\r\n$1\r\nq\r\n$1\r\nb\r\n",
        b"*2\r\n$1\r\nq\r\n$1\r\nc\r\n",
    ]


def test_woken_by_exec_and_by_lmove(r: redis.Redis, connect: Connect) -> None:
    waiter = connect()
    waiter.send(b"BLMOVE src dst LEFT RIGHT 0\r\n")
    wait_blocked(r, 1)
    with r.pipeline(transaction=True) as p:
        p.set("unrelated", "1")
        p.rpush("src", "moved")
        p.execute()
    assert waiter.read_reply() == b"$5\r\nmoved\r\n"
    assert r.lrange("dst", 0, -1) == [b"moved"]
    other = connect()
    other.send(b"BLPOP dst2 0\r\n")
    wait_blocked(r, 1)
    r.rpush("src2", "x")
    r.lmove("src2", "dst2", "LEFT", "LEFT")
    assert other.read_reply() == b"*2\r\n$4\r\ndst2\r\n$1\r\nx\r\n"


def test_timeout(r: redis.Redis, connect: Connect) -> None:
    waiter = connect()
    start = time.monotonic()
    assert waiter.call("BLPOP", "nothing", "0.2") == b"*-1\r\n"
    assert time.monotonic() - start >= 0.15
    assert waiter.call("BLMOVE", "nothing", "x", "LEFT", "LEFT", "0.05") == b"*-1\r\n"
    assert r.info("clients")["blocked_clients"] == 0


def test_disconnected_waiter_is_forgotten(r: redis.Redis, connect: Connect) -> None:
    gone = connect()
    gone.send(b"BLPOP q2 0\r\n")
    wait_blocked(r, 1)
    stays = connect()
    stays.send(b"BLPOP q2 0\r\n")
    wait_blocked(r, 2)
    gone.close()
    wait_blocked(r, 1)
    r.rpush("q2", "v")
    assert stays.read_reply() == b"*2\r\n$2\r\nq2\r\n$1\r\nv\r\n"
    assert r.llen("q2") == 0


def test_lists_survive_kill9(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.rpush("l", *[str(i) for i in range(100)])
    c.lpop("l", 10)
    c.lrem("l", 0, "50")
    c.linsert("l", "BEFORE", "60", "x")
    fresh_server.kill9()
    fresh_server.start()
    c = fresh_server.client()
    expected = [str(i).encode() for i in range(10, 100) if i != 50]
    expected.insert(expected.index(b"60"), b"x")
    assert c.lrange("l", 0, -1) == expected


def test_bzpopmin_woken_by_zadd(r: redis.Redis, connect: Connect) -> None:
    waiter = connect()
    waiter.send(b"BZPOPMIN board 0\r\n")
    wait_blocked(r, 1)
    r.zadd("board", {"low": 1, "high": 9})
    assert waiter.read_reply() == b"*3\r\n$5\r\nboard\r\n$3\r\nlow\r\n$1\r\n1\r\n"
    assert r.zrange("board", 0, -1) == [b"high"]
