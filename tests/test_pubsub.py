"""Publish/subscribe between real connections, with Redis's reply shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .respclient import RawClient
from .servers import LedisServer, RedisServer


@pytest.fixture(params=["ledis", "redis"])
def connect(request: pytest.FixtureRequest, ledis_server: LedisServer,
            redis_server: RedisServer) -> Iterator[object]:
    made: list[RawClient] = []

    def new() -> RawClient:
        if request.param == "ledis":
            made.append(RawClient(ledis_server.port))
        else:
            made.append(RawClient(unix=str(redis_server.socket)))
        return made[-1]

    yield new
    for c in made:
        c.close()


def test_subscribe_publish_and_patterns(connect) -> None:  # type: ignore[no-untyped-def]
    sub, pub = connect(), connect()
    assert sub.call("SUBSCRIBE", "news") == b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    sub.send(b"PSUBSCRIBE n*\r\n")
    assert sub.read_reply() == b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n"
    assert pub.call("PUBLISH", "news", "hi") == b":2\r\n"
    assert sub.read_reply() == b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    assert sub.read_reply() == b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
    assert pub.call("PUBLISH", "other", "x") == b":0\r\n"
    assert pub.call("PUBSUB", "CHANNELS") == b"*1\r\n$4\r\nnews\r\n"
    assert pub.call("PUBSUB", "NUMSUB", "news", "x") == b"*4\r\n$4\r\nnews\r\n:1\r\n$1\r\nx\r\n:0\r\n"
    assert pub.call("PUBSUB", "NUMPAT") == b":1\r\n"


def test_subscribed_context(connect) -> None:  # type: ignore[no-untyped-def]
    c = connect()
    assert c.call("UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    c.call("SUBSCRIBE", "a")
    assert c.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    # a key no other test writes (the real Redis is shared by the tests of a worker)
    assert c.call("GET", "pubsub:context:absent") == (
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
    )
    assert c.call("UNSUBSCRIBE", "a") == b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"
    assert c.call("GET", "pubsub:context:absent") == b"$-1\r\n"


def test_disconnect_unsubscribes(connect) -> None:  # type: ignore[no-untyped-def]
    sub, pub = connect(), connect()
    sub.call("SUBSCRIBE", "gone")
    sub.close()
    for _ in range(200):
        if pub.call("PUBSUB", "NUMSUB", "gone") == b"*2\r\n$4\r\ngone\r\n:0\r\n":
            break
    assert pub.call("PUBLISH", "gone", "x") == b":0\r\n"


NOTIFY_SCRIPT = [
    ("SET", "a", "1"), ("APPEND", "a", "2"), ("INCR", "c"), ("INCRBYFLOAT", "c", "1.5"),
    ("LPUSH", "l", "x"), ("RPUSH", "l", "y"), ("LPOP", "l"), ("RPOP", "l"),
    ("HSET", "h", "f", "v"), ("HDEL", "h", "f"), ("SADD", "s", "m"), ("SREM", "s", "m"),
    ("ZADD", "z", "1", "m"), ("ZINCRBY", "z", "1", "m"), ("ZREM", "z", "m"),
    ("EXPIRE", "a", "100"), ("PERSIST", "a"), ("DEL", "a"),
    ("SETRANGE", "r", "0", "x"), ("GETDEL", "r"), ("MSET", "m1", "1", "m2", "2"),
    ("RENAME", "m1", "m3"), ("SADD", "s1", "x"), ("SMOVE", "s1", "s2", "x"),
    ("RPUSH", "q", "1", "2"), ("LMOVE", "q", "q2", "LEFT", "RIGHT"), ("RPOPLPUSH", "q", "q2"),
    ("SET", "b", "1", "PX", "1"),  # last, so its expiry cannot come in the middle
]


def test_keyspace_notifications_match_redis(connect) -> None:  # type: ignore[no-untyped-def]
    admin, listener = connect(), connect()
    admin.call("FLUSHALL")
    assert admin.call("CONFIG", "SET", "notify-keyspace-events", "KEA") == b"+OK\r\n"
    try:
        listener.call("PSUBSCRIBE", "__key*@0__:*")
        for cmd in NOTIFY_SCRIPT:
            assert not admin.call(*cmd).startswith(b"-")
        # Let the 1 ms TTL pass, then touch the key so expiry happens (and is announced).
        import time

        time.sleep(0.05)
        admin.call("GET", "b")
        admin.call("PING")
        messages = []
        listener.sock.settimeout(1)
        while True:
            try:
                messages.append(listener.read_reply())
            except (TimeoutError, OSError):
                break
        events = [m.split(b"\r\n")[6] + b"|" + m.split(b"\r\n")[8] for m in messages]
    finally:
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
    assert events == EXPECTED_EVENTS


EXPECTED_EVENTS = [
    b"__keyspace@0__:a|set", b"__keyevent@0__:set|a",
    b"__keyspace@0__:a|append", b"__keyevent@0__:append|a",
    b"__keyspace@0__:c|incrby", b"__keyevent@0__:incrby|c",
    b"__keyspace@0__:c|incrbyfloat", b"__keyevent@0__:incrbyfloat|c",
    b"__keyspace@0__:l|lpush", b"__keyevent@0__:lpush|l",
    b"__keyspace@0__:l|rpush", b"__keyevent@0__:rpush|l",
    b"__keyspace@0__:l|lpop", b"__keyevent@0__:lpop|l",
    b"__keyspace@0__:l|rpop", b"__keyevent@0__:rpop|l",
    b"__keyspace@0__:l|del", b"__keyevent@0__:del|l",
    b"__keyspace@0__:h|hset", b"__keyevent@0__:hset|h",
    b"__keyspace@0__:h|hdel", b"__keyevent@0__:hdel|h",
    b"__keyspace@0__:h|del", b"__keyevent@0__:del|h",
    b"__keyspace@0__:s|sadd", b"__keyevent@0__:sadd|s",
    b"__keyspace@0__:s|srem", b"__keyevent@0__:srem|s",
    b"__keyspace@0__:s|del", b"__keyevent@0__:del|s",
    b"__keyspace@0__:z|zadd", b"__keyevent@0__:zadd|z",
    b"__keyspace@0__:z|zincr", b"__keyevent@0__:zincr|z",
    b"__keyspace@0__:z|zrem", b"__keyevent@0__:zrem|z",
    b"__keyspace@0__:z|del", b"__keyevent@0__:del|z",
    b"__keyspace@0__:a|expire", b"__keyevent@0__:expire|a",
    b"__keyspace@0__:a|persist", b"__keyevent@0__:persist|a",
    b"__keyspace@0__:a|del", b"__keyevent@0__:del|a",
    b"__keyspace@0__:r|setrange", b"__keyevent@0__:setrange|r",
    b"__keyspace@0__:r|del", b"__keyevent@0__:del|r",
    b"__keyspace@0__:m1|set", b"__keyevent@0__:set|m1",
    b"__keyspace@0__:m2|set", b"__keyevent@0__:set|m2",
    b"__keyspace@0__:m1|rename_from", b"__keyevent@0__:rename_from|m1",
    b"__keyspace@0__:m3|rename_to", b"__keyevent@0__:rename_to|m3",
    b"__keyspace@0__:s1|sadd", b"__keyevent@0__:sadd|s1",
    b"__keyspace@0__:s1|srem", b"__keyevent@0__:srem|s1",
    b"__keyspace@0__:s1|del", b"__keyevent@0__:del|s1",
    b"__keyspace@0__:s2|sadd", b"__keyevent@0__:sadd|s2",
    b"__keyspace@0__:q|rpush", b"__keyevent@0__:rpush|q",
    b"__keyspace@0__:q2|rpush", b"__keyevent@0__:rpush|q2",
    b"__keyspace@0__:q|lpop", b"__keyevent@0__:lpop|q",
    b"__keyspace@0__:q2|lpush", b"__keyevent@0__:lpush|q2",
    b"__keyspace@0__:q|rpop", b"__keyevent@0__:rpop|q",
    b"__keyspace@0__:q|del", b"__keyevent@0__:del|q",
    b"__keyspace@0__:b|set", b"__keyevent@0__:set|b",
    b"__keyspace@0__:b|expire", b"__keyevent@0__:expire|b",
    b"__keyspace@0__:b|expired", b"__keyevent@0__:expired|b",
]
