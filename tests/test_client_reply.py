"""CLIENT REPLY ON|OFF|SKIP against the real Redis 7.0: pipelines (in one write and cut into
pieces), transactions, errors, pub/sub pushes, RESP2 and RESP3, with and without the C lane."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from stack.core.resp import encode_command

from .respclient import RawClient
from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.differential

END = b"$3\r\nend\r\n"
Cmd = Sequence[str]

SEQUENCES: dict[str, list[Cmd]] = {
    "skip then off": [
        ("SET", "a", "1"),
        ("CLIENT", "REPLY", "SKIP"),
        ("SET", "a", "2"),
        ("GET", "a"),
        ("CLIENT", "REPLY", "OFF"),
        ("GET", "a"),
        ("INCR", "n"),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "a"),
    ],
    "skip twice": [
        ("CLIENT", "REPLY", "SKIP"),
        ("CLIENT", "REPLY", "SKIP"),
        ("PING", "a"),
        ("PING", "b"),
    ],
    "skip an error": [("CLIENT", "REPLY", "SKIP"), ("NOSUCH",), ("PING", "c"), ("GET",)],
    "skip then on": [("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"), ("PING", "d")],
    "off inside exec": [
        ("MULTI",),
        ("SET", "a", "2"),
        ("CLIENT", "REPLY", "OFF"),
        ("GET", "a"),
        ("EXEC",),
        ("PING",),
    ],
    "skip inside exec": [
        ("MULTI",),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "a"),
        ("EXEC",),
        ("PING", "x"),
        ("PING", "y"),
    ],
    "skip before multi": [
        ("CLIENT", "REPLY", "SKIP"),
        ("MULTI",),
        ("GET", "a"),
        ("EXEC",),
        ("PING", "z"),
    ],
    "skip, on inside exec": [
        ("MULTI",),
        ("CLIENT", "REPLY", "SKIP"),
        ("CLIENT", "REPLY", "ON"),
        ("EXEC",),
        ("PING", "d"),
        ("PING", "e"),
    ],
    "off, queued": [
        ("CLIENT", "REPLY", "OFF"),
        ("MULTI",),
        ("SET", "q", "1"),
        ("EXEC",),
        ("GET", "q"),
    ],
    "skip while off": [
        ("CLIENT", "REPLY", "OFF"),
        ("CLIENT", "REPLY", "SKIP"),
        ("CLIENT", "REPLY", "ON"),
        ("PING", "f"),
    ],
    "reset": [
        ("CLIENT", "REPLY", "OFF"), ("RESET",), ("PING", "a"), ("CLIENT", "REPLY", "SKIP"),
        ("RESET",), ("PING", "b"), ("MULTI",), ("CLIENT", "REPLY", "SKIP"), ("EXEC",),
        ("RESET",), ("PING", "c"),
    ],
    "bad arguments": [
        ("CLIENT", "REPLY", "FOO"),
        ("CLIENT", "REPLY"),
        ("CLIENT", "REPLY", "on", "x"),
        ("CLIENT", "REPLY", "off"),
        ("CLIENT", "REPLY", "on"),
    ],
    "subscriptions are pushes": [
        ("CLIENT", "REPLY", "OFF"),
        ("SUBSCRIBE", "ch1"),
        ("PING",),
        ("UNSUBSCRIBE", "ch1"),
        ("CLIENT", "REPLY", "SKIP"),
        ("SUBSCRIBE", "ch2"),
        ("UNSUBSCRIBE",),
    ],
    "in a fast-lane pipeline": [
        ("SET", "a", "1"),
        ("GET", "a"),
        ("CLIENT", "REPLY", "OFF"),
        ("SET", "b", "2"),
        ("GET", "b"),
        ("MSET", "c", "1", "d", "2"),
        ("INCR", "c"),
        ("CLIENT", "REPLY", "SKIP"),
        ("GET", "a"),
        ("CLIENT", "REPLY", "ON"),
        ("GET", "b"),
        ("CLIENT", "REPLY", "SKIP"),
        ("SET", "e", "1"),
        ("GET", "e"),
    ],
}


def read_until_end(c: RawClient) -> bytes:
    """The bytes received up to the reply of the final PING (compared as bytes: a CLIENT
    REPLY OFF inside EXEC leaves an array whose missing elements are the replies after it)."""
    data = c.buf
    while not data.endswith(END):
        chunk = c.sock.recv(1 << 16)
        assert chunk, f"closed; received {data!r}"
        data += chunk
    c.buf = b""
    return data


@pytest.fixture(
    params=[(2, "ledis_server"), (3, "ledis_server"), (2, "ledis_server_python")],
    ids=["resp2", "resp3", "resp2-python-path"],
)
def clients(request: pytest.FixtureRequest, redis_server: RedisServer) -> list[RawClient]:
    resp, name = request.param
    server: LedisServer = request.getfixturevalue(name)
    made = [RawClient(unix=str(redis_server.socket)), RawClient(server.port)]
    for c in made:
        c.call("HELLO", resp)
        assert c.call("FLUSHALL") == b"+OK\r\n"
    yield made  # type: ignore[misc]
    for c in made:
        c.close()


@pytest.mark.parametrize("cut", ["whole", "pieces"])
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_client_reply_as_redis(clients: list[RawClient], name: str, cut: str) -> None:
    commands = [*SEQUENCES[name], ("CLIENT", "REPLY", "ON"), ("PING", "end")]
    encoded = [encode_command(c) for c in commands]
    got = []
    for c in clients:
        if cut == "whole":
            c.send(b"".join(encoded))
        else:  # each command in its own write, the last ones split mid-command
            for data in encoded[:-1]:
                c.send(data)
            c.send(encoded[-1][:5])
            c.send(encoded[-1][5:])
        got.append(read_until_end(c))
        assert c.call("PING", "quiet?") == b"$6\r\nquiet?\r\n"  # nothing more came
    theirs, ours = got
    assert ours == theirs


def test_replies_off_for_bulk_loading(ledis_server: LedisServer) -> None:
    """A loader that turns replies off (as mass-insertion tools do) gets no reply to its
    writes, and they are all applied."""
    c = RawClient(ledis_server.port)
    c.send(encode_command(["CLIENT", "REPLY", "OFF"]))
    c.send(b"".join(encode_command(["SET", f"bulk:{i}", str(i)]) for i in range(5000)))
    c.send(encode_command(["CLIENT", "REPLY", "ON"]))
    assert c.read_reply() == b"+OK\r\n"
    assert c.call("GET", "bulk:4999") == b"$4\r\n4999\r\n"
    assert c.call("CLIENT", "INFO").count(b"flags=N ") == 1
    c.close()
