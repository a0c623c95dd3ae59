"""Every row of shared/reference/bad-inputs.md, on a raw socket, against a real ledis-server.

"close" rows: the server sends the reply (if any) and closes that connection. "continue" rows:
the connection stays usable. In every case other connections and stored data are untouched.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from .respclient import RawClient
from .servers import LedisServer

PONG = b"+PONG\r\n"


@pytest.fixture
def witness(ledis_server: LedisServer) -> Iterator[RawClient]:
    """Another client holding data, checked after each bad input."""
    c = RawClient(ledis_server.port)
    assert c.call("SET", "witness:key", "intact") == b"+OK\r\n"
    yield c
    assert c.call("GET", "witness:key") == b"$6\r\nintact\r\n"
    assert c.call("PING") == PONG
    c.close()


CLOSING = [
    (b"*3000000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*01\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*12345678901234567890\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*" + b"1" * 70000, b"-ERR Protocol error: too big mbulk count string\r\n"),
    (b"*1\r\n$" + b"1" * 70000, b"-ERR Protocol error: too big bulk count string\r\n"),
    (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (b"*2\r\n$3\r\nGET\r\n*1\r\n", b"-ERR Protocol error: expected '$', got '*'\r\n"),
    (b"*1\r\n$-10\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$2000000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$4\r\nPINGxx", b"-ERR Protocol error: bulk string is not followed by CRLF\r\n"),
    (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n"),
    (b'set "k v\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"set 'k v\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b'set "k"v x\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"POST / HTTP/1.1\r\n", b""),
    (b"Host: example.com\r\n", b""),
    (b"*1\r\n$4\r\nPOST\r\n", b""),
]


@pytest.mark.parametrize(("data", "reply"), CLOSING, ids=[repr(d[:24]) for d, _ in CLOSING])
def test_bad_input_closes_with_redis_reply(
    ledis_server: LedisServer, witness: RawClient, data: bytes, reply: bytes
) -> None:
    c = RawClient(ledis_server.port)
    c.send(b"PING\r\n" + data)
    received, closed = c.read_until_closed()
    # Commands before the bad input are answered; HTTP smuggling gets nothing at all (as Redis).
    assert received == (PONG + reply if reply else b"")
    assert closed


CONTINUING = [
    (b"*-10\r\n", b""),
    (b"*0\r\n", b""),
    (b"\r\n", b""),
    (b"\n", b""),
    (b"   \r\n", b""),
    (b"foo a\r\n", b"-ERR unknown command 'foo', with args beginning with: 'a' \r\n"),
    (b"GET\r\n", b"-ERR wrong number of arguments for 'get' command\r\n"),
    (b"INCRBY k x\r\n", b"-ERR value is not an integer or out of range\r\n"),
    (b"INCRBYFLOAT k x\r\n", b"-ERR value is not a valid float\r\n"),
    (b"AUTH x\r\n", b"-ERR AUTH <password> called without any password configured for the "
                    b"default user. Are you sure your configuration is correct?\r\n"),
    (b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", b"$-1\r\n"),
]


@pytest.mark.parametrize(("data", "reply"), CONTINUING, ids=[repr(d[:24]) for d, _ in CONTINUING])
def test_bad_input_continues(
    ledis_server: LedisServer, witness: RawClient, data: bytes, reply: bytes
) -> None:
    c = RawClient(ledis_server.port)
    c.send(data + b"PING\r\n")
    expected = reply + PONG
    received = b""
    while len(received) < len(expected):
        chunk = c.sock.recv(65536)
        assert chunk, f"closed; got {received!r}"
        received += chunk
    assert received == expected
    assert c.call("PING") == PONG
    c.close()


def test_wrong_type(r: object, ledis_server: LedisServer) -> None:
    c = RawClient(ledis_server.port)
    c.call("SET", "s", "v")
    # No collections exist yet; a string under a bitmap op that needs another type is the case
    # we can show: LCS requires strings, INCR requires an integer string.
    assert c.call("INCR", "s") == b"-ERR value is not an integer or out of range\r\n"
    c.close()


def test_query_buffer_limit_closes_silently(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--client-query-buffer-limit", "1mb"]
    fresh_server.start()
    c = RawClient(fresh_server.port)
    # A bulk that is allowed by proto-max-bulk-len but exceeds the query buffer limit.
    c.send(b"*2\r\n$4\r\nECHO\r\n$5000000\r\n")
    chunk = b"x" * 65536
    closed = False
    for _ in range(40):
        try:
            c.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    if not closed:
        received, closed = c.read_until_closed()
        assert received == b""
    assert closed
    assert "query buffer" in fresh_server.log()
    ok = RawClient(fresh_server.port)
    assert ok.call("PING") == PONG


class TestBeforeAuth:
    @pytest.fixture
    def server(self, fresh_server: LedisServer) -> LedisServer:
        fresh_server.extra += ["--requirepass", "s3cret"]
        return fresh_server.start()

    def test_noauth_then_auth(self, server: LedisServer) -> None:
        c = RawClient(server.port)
        assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("PING") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("AUTH", "wrong") == (
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        )
        assert c.call("AUTH", "s3cret") == b"+OK\r\n"
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("RESET") == b"+RESET\r\n"
        assert c.call("GET", "k") == b"-NOAUTH Authentication required.\r\n"
        assert c.call("HELLO", "2", "AUTH", "default", "s3cret")[:3] == b"*14"
        assert c.call("GET", "k") == b"$1\r\nv\r\n"

    def test_hello_without_auth(self, server: LedisServer) -> None:
        c = RawClient(server.port)
        assert c.call("HELLO", "2").startswith(b"-NOAUTH HELLO must be called")

    @pytest.mark.parametrize(
        ("data", "reply"),
        [
            (b"*11\r\n", b"-ERR Protocol error: unauthenticated multibulk length\r\n"),
            (b"*2\r\n$3\r\nGET\r\n$16385\r\n",
             b"-ERR Protocol error: unauthenticated bulk length\r\n"),
        ],
    )
    def test_pre_auth_limits(self, server: LedisServer, data: bytes, reply: bytes) -> None:
        c = RawClient(server.port)
        c.send(data)
        assert c.read_until_closed() == (reply, True)

    def test_limits_lift_after_auth_in_same_pipeline(self, server: LedisServer) -> None:
        c = RawClient(server.port)
        big = b"x" * 20000
        from stack.core.resp import encode_command

        c.send(encode_command([b"AUTH", b"s3cret"]) + encode_command([b"SET", b"k", big]))
        assert c.read_reply() == b"+OK\r\n"
        assert c.read_reply() == b"+OK\r\n"


def test_maxclients(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--maxclients", "2"]
    fresh_server.start()
    a, b = RawClient(fresh_server.port), RawClient(fresh_server.port)
    assert a.call("PING") == PONG and b.call("PING") == PONG
    c = RawClient(fresh_server.port)
    assert c.read_until_closed() == (b"-ERR max number of clients reached\r\n", True)
    assert a.call("PING") == PONG


def test_idle_timeout_closes(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--timeout", "1"]
    fresh_server.start()
    c = RawClient(fresh_server.port)
    c.send(b"*2\r\n$3\r\nGET\r\n")  # half a command, then silence
    assert c.read_until_closed(limit=10) == (b"", True)


def test_client_that_never_reads_is_bounded(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--client-output-buffer-limit", "normal 1mb 0 0"]
    fresh_server.start()
    setup = RawClient(fresh_server.port)
    assert setup.call("SET", "big", "x" * 500_000) == b"+OK\r\n"
    c = RawClient(fresh_server.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(2)
    request = b"GET big\r\n" * 200
    closed = False
    for _ in range(200):
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            closed = True
            break
    # Either the server closed the connection or stopped reading it (back-pressure); in both
    # cases its memory stays bounded and others are served.
    assert setup.call("PING") == PONG
    info = setup.call("INFO", "memory")
    rss = int(info.split(b"used_memory_rss:")[1].split(b"\r\n")[0])
    assert rss < 400 * 1024 * 1024, (rss, closed)


def test_peer_reset_mid_frame_frees_state(fresh_server: LedisServer) -> None:
    import socket
    import struct

    fresh_server.start()
    for _ in range(20):
        c = RawClient(fresh_server.port)
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + b"x" * 5000)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST with a partial frame
    probe = RawClient(fresh_server.port)
    assert probe.call("GET", "k") == b"$-1\r\n"
    clients = probe.call("CLIENT", "LIST").count(b"id=")
    assert clients == 1
