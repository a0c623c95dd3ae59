"""RESP3 (HELLO 3), as redis-py 8 speaks it by default. The differential cases of
test_differential.py also run over RESP3 against Redis; here: the handshake, pub/sub pushes,
and a client using its default protocol."""

from __future__ import annotations

import redis

from .respclient import RawClient
from .servers import LedisServer, RedisServer


def test_hello_3_then_2(ledis_server: LedisServer) -> None:
    c = RawClient(ledis_server.port)
    reply = c.call("HELLO", "3")
    assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in reply
    assert c.call("GET", "missing") == b"_\r\n"
    assert c.call("HELLO", "2").startswith(b"*14\r\n")
    assert c.call("GET", "missing") == b"$-1\r\n"
    assert c.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n"


def test_pubsub_pushes_match_redis(ledis_server: LedisServer, redis_server: RedisServer) -> None:
    flows = []
    for sub, pub in (
        (RawClient(ledis_server.port), RawClient(ledis_server.port)),
        (RawClient(unix=str(redis_server.socket)), RawClient(unix=str(redis_server.socket))),
    ):
        sub.call("HELLO", "3")
        got = [sub.call("SUBSCRIBE", "ch3")]
        sub.send(b"PSUBSCRIBE c*\r\n")
        got.append(sub.read_reply())
        pub.call("PUBLISH", "ch3", "hi")
        got += [sub.read_reply(), sub.read_reply()]
        got.append(sub.call("PING"))
        flows.append(got)
        sub.close()
        pub.close()
    assert flows[0] == flows[1]
    assert flows[0][2] == b">3\r\n$7\r\nmessage\r\n$3\r\nch3\r\n$2\r\nhi\r\n"


def test_redis_py_default_protocol(r: redis.Redis, ledis_server: LedisServer) -> None:
    c = redis.Redis(port=ledis_server.port)  # redis-py 8 defaults to RESP3
    assert c.set("k", "v") and c.get("k") == b"v"
    c.hset("h", mapping={"a": "1", "b": "2"})
    assert c.hgetall("h") == {b"a": b"1", b"b": b"2"}
    c.sadd("s", "x", "y")
    assert c.smembers("s") == {b"x", b"y"}
    c.zadd("z", {"m": 1.5, "n": 2})
    assert c.zrange("z", 0, -1, withscores=True) == [[b"m", 1.5], [b"n", 2.0]] or \
        c.zrange("z", 0, -1, withscores=True) == [(b"m", 1.5), (b"n", 2.0)]
    assert c.zscore("z", "m") == 1.5
    assert c.info("server")["redis_version"] == "7.0.15"
    assert c.config_get("maxclients") == {b"maxclients": b"10000"} or \
        c.config_get("maxclients") == {"maxclients": "10000"}
    p = c.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    c.publish("news", "hello")
    message = p.get_message(timeout=5)
    assert message is not None and message["data"] == b"hello"
    p.close()
