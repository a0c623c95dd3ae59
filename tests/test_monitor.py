"""MONITOR: Redis 7.0's lines, byte for byte (time and address aside), read by redis-cli and
redis-py as they read Redis's; secrets redacted; a monitor that does not read is closed."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator

import pytest
import redis

from stack.server.monitor import line, quoted

from .respclient import RawClient
from .servers import LedisServer, RedisServer, wait_until
from .twin import Twins, twins_fixture

STAMP = re.compile(rb"^\+\d+\.\d{6} \[(\d+) [^\]]+\] ", re.M)


def stamped(reply: bytes) -> bytes:
    """A monitor line with its time and client address hidden."""
    return STAMP.sub(rb"+T [\1 ADDR] ", reply)


@pytest.fixture
def twins(ledis_server: LedisServer, redis_server: RedisServer) -> Iterator[Twins]:
    yield from twins_fixture(ledis_server, redis_server)


def test_quoting_is_sdscatrepr() -> None:
    assert quoted(b"plain") == b'"plain"'
    assert quoted(b"") == b'""'
    assert quoted(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert quoted(b"\n\r\t\x07\x08") == b'"\\n\\r\\t\\a\\b"'
    assert quoted(b"\x00\x7f\xff\xc3\xa9 ~") == b'"\\x00\\x7f\\xff\\xc3\\xa9 ~"'
    assert line(2, "127.0.0.1:5555", [b"SET", b"k", b"v"], now=1700000000.123456) == (
        b'+1700000000.123456 [2 127.0.0.1:5555] "SET" "k" "v"\r\n'
    )


@pytest.mark.differential
@pytest.mark.parametrize("resp", [2, 3])
def test_monitor_lines_as_redis(twins: Twins, resp: int) -> None:
    s = twins.open("s")
    m = twins.open("m", resp=resp)
    assert m.call("MONITOR") == b"+OK\r\n"
    commands = [
        ("SET", "k", 'v\x00\n"\\\xe9\t\r\x07\x08\x7f'),
        ("AUTH", "secret"),  # refused, shown redacted
        ("AUTH", "user", "pass"),
        ("HELLO", "3", "AUTH", "default", "pw"),
        ("HELLO", "2"),
        ("CONFIG", "SET", "maxclients", "10000"),  # administrative: never shown
        ("MULTI",),
        ("SET", "a", "1"),
        ("GET", "a"),
        ("EXEC",),
        ("NOSUCH", "x"),  # refused before running: not shown
        ("GET",),
        ("SELECT", "3"),
        ("PING",),
        ("CLIENT", "SETNAME", "x y"),
        ("DEBUG", "SLEEP", "0"),
        ("CLIENT", "LIST"),
        ("CLIENT", "ID"),
        ("MULTI",),
        ("GET",),
        ("EXEC",),  # EXECABORT: MULTI and EXEC shown
        ("SET", "", ""),
        ("WATCH", "a"),
        ("SELECT", "0"),
    ]
    s.send(*commands)
    for c in s.clients:
        for _ in commands:
            c.read_reply()
    shown = m.read(18, norm=stamped)
    assert shown[1] == b'+T [0 ADDR] "AUTH" "(redacted)"\r\n'
    assert shown[3] == b'+T [0 ADDR] "HELLO" "3" "AUTH" "(redacted)" "(redacted)"\r\n'
    assert shown[5:9] == [
        b'+T [0 ADDR] "MULTI"\r\n',
        b'+T [0 ADDR] "SET" "a" "1"\r\n',
        b'+T [0 ADDR] "GET" "a"\r\n',
        b'+T [0 ADDR] "EXEC"\r\n',
    ]
    # the monitor sees its own commands after their replies; it may not touch keys
    m.send(("PING",), ("GET", "x"), ("MONITOR",), ("CLIENT", "GETNAME"))
    m.read(5, norm=stamped)  # PONG, its line; the refusal; (MONITOR: nothing); nil, its line
    assert m.call("RESET") == b"+RESET\r\n"
    assert m.call("GET", "x") in (b"$-1\r\n", b"_\r\n")  # back to normal


@pytest.mark.differential
def test_monitor_inside_multi_is_refused(twins: Twins) -> None:
    m = twins.open("m")
    m.run(("MULTI",), ("MONITOR",), ("EXEC",))


def test_redis_cli_monitor_reads_it(ledis_server: LedisServer) -> None:
    proc = subprocess.Popen(
        ["redis-cli", "-p", str(ledis_server.port), "monitor"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"OK\n"
        c = ledis_server.client()
        c.set("cli:k", "va\nl")
        line = proc.stdout.readline()
        assert re.match(rb'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "cli:k" "va\\nl"\n$', line)
        c.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_redis_py_monitor_reads_it(ledis_server: LedisServer) -> None:
    r = redis.Redis(host="127.0.0.1", port=ledis_server.port, socket_timeout=30)
    c = ledis_server.client()
    with r.monitor() as m:
        c.set("py:k", 'a "quoted" value')
        c.lpush("py:l", "x")
        seen = [m.next_command() for _ in range(2)]
    assert [s["command"] for s in seen] == ['SET py:k a "quoted" value', "LPUSH py:l x"]
    assert all(s["db"] == 0 and s["client_type"] == "tcp" for s in seen)
    assert seen[0]["client_address"] == "127.0.0.1"
    c.close()
    r.close()


def test_monitor_shows_clients_by_their_addresses(ledis_server: LedisServer) -> None:
    m = RawClient(ledis_server.port)
    c = RawClient(ledis_server.port)
    assert m.call("MONITOR") == b"+OK\r\n"
    c.call("SELECT", "5")
    addr = re.search(rb"addr=(\S+)", c.call("CLIENT", "INFO")).group(1)  # type: ignore[union-attr]
    c.call("SET", "x", "1")
    lines = [m.read_reply() for _ in range(3)]
    assert [stamped(x) for x in lines] == [
        b'+T [5 ADDR] "SELECT" "5"\r\n',  # the database after the command, as Redis
        b'+T [5 ADDR] "CLIENT" "INFO"\r\n',
        b'+T [5 ADDR] "SET" "x" "1"\r\n',
    ]
    assert b" [5 %s] " % addr in lines[2]
    c.call("SELECT", "0")
    m.close()
    c.close()


def test_a_monitor_that_does_not_read_is_closed(ledis_server: LedisServer) -> None:
    """Fed by every other client, a monitor that never reads is held to its class's output
    limits (the pubsub class's while the normal class has none, as by default)."""
    admin = ledis_server.client()
    before = admin.info("stats")["ledis_output_limit_disconnections"]
    admin.config_set("client-output-buffer-limit", "pubsub 256kb 128kb 1")
    m = RawClient(ledis_server.port)
    m.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert m.call("MONITOR") == b"+OK\r\n"
        w = ledis_server.client()
        value = "v" * 10_000
        for i in range(2_000):  # 20 MB of lines for a monitor that reads none of them
            w.set(f"mon:{i}", value)
            if i % 100 == 99 and admin.info("stats")["ledis_output_limit_disconnections"] > before:
                break
        wait_until(
            lambda: admin.info("stats")["ledis_output_limit_disconnections"] > before,
            "the monitor to be closed",
        )
        assert not [x for x in admin.client_list() if "O" in x["flags"]]
        w.delete(*[f"mon:{i}" for i in range(2_000)])
        w.close()
    finally:
        admin.config_set(
            "client-output-buffer-limit",
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        )
        admin.close()
        m.close()
