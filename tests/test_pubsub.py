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
    assert c.call("GET", "k") == (
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
    )
    assert c.call("UNSUBSCRIBE", "a") == b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n"
    assert c.call("GET", "k") == b"$-1\r\n"


def test_disconnect_unsubscribes(connect) -> None:  # type: ignore[no-untyped-def]
    sub, pub = connect(), connect()
    sub.call("SUBSCRIBE", "gone")
    sub.close()
    for _ in range(200):
        if pub.call("PUBSUB", "NUMSUB", "gone") == b"*2\r\n$4\r\ngone\r\n:0\r\n":
            break
    assert pub.call("PUBLISH", "gone", "x") == b":0\r\n"
