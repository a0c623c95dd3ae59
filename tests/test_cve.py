"""Regression tests for the Redis CVEs that bad-inputs.md names, against a real ledis-server
(and the real redis-server where the reply is Redis's).

- CVE-2021-32675: huge claimed counts and lengths on many connections allocate nothing.
- CVE-2021-32627 / CVE-2021-32628: limits configured too large are refused (clamped to their
  maximum), whether by CONFIG SET, a flag or the config file; the limit in force is enforced.
- CVE-2025-21605: unauthenticated clients that never read cannot grow the server's memory.
- CVE-2022-36021: pathological glob patterns in KEYS and SCAN MATCH answer in bounded time.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer, RedisServer

PONG = b"+PONG\r\n"


def _rss(port: int, password: str | None = None) -> int:
    c = RawClient(port)
    if password:
        assert c.call("AUTH", password) == b"+OK\r\n"
    info = c.call("INFO", "memory")
    c.close()
    return int(info.split(b"used_memory_rss:")[1].split(b"\r\n")[0])


def test_cve_2021_32675_claimed_sizes_allocate_nothing(fresh_server: LedisServer) -> None:
    fresh_server.start()
    before = _rss(fresh_server.port)
    conns = [RawClient(fresh_server.port) for _ in range(200)]
    for c in conns:  # each claims a million arguments of ~500 MB, then sends a few bytes
        c.send(b"*1000000\r\n$500000000\r\n" + b"x" * 100)
    assert RawClient(fresh_server.port).call("PING") == PONG
    assert _rss(fresh_server.port) - before < 50 * 1024 * 1024
    for c in conns:
        c.close()


def test_cve_2021_32675_before_auth_as_redis(fresh_server: LedisServer, tmp_path: Path) -> None:
    """Before AUTH the claims themselves are refused, with Redis's words."""
    fresh_server.extra += ["--requirepass", "pw"]
    fresh_server.start()
    theirs_server = RedisServer(tmp_path / "redis", "--requirepass", "pw").start()
    try:
        for data in (b"*1000000\r\n", b"*2\r\n$3\r\nGET\r\n$500000000\r\n", b"*11\r\n"):
            ours = RawClient(fresh_server.port)
            ours.send(data)
            theirs = RawClient(unix=str(theirs_server.socket))
            theirs.send(data)
            assert ours.read_until_closed() == theirs.read_until_closed()
    finally:
        theirs_server.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [("proto-max-bulk-len", "100gb"), ("proto-max-bulk-len", "536870913"),
     ("client-query-buffer-limit", "9999gb"), ("client-query-buffer-limit", "1073741825")],
)
def test_cve_2021_32627_limits_too_large_are_refused(
    fresh_server: LedisServer, tmp_path: Path, name: str, value: str
) -> None:
    fresh_server.start()
    c = RawClient(fresh_server.port)
    reply = c.call("CONFIG", "SET", name, value)
    assert reply.startswith(
        f"-ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be "
        "between".encode()
    )
    for flags in ([f"--{name}", value], ["--config", str(tmp_path / "c.toml")]):
        (tmp_path / "c.toml").write_text(f'{name} = "{value}"\n')
        run = subprocess.run(
            [sys.executable, "-m", "stack.server.main", "--port", "0", "--data-dir",
             str(tmp_path / "d"), *flags],
            capture_output=True, text=True, timeout=60,
        )
        assert run.returncode == 2 and name in run.stderr, run.stderr


def test_cve_2021_32627_the_limit_in_force_is_enforced(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = RawClient(fresh_server.port)
    assert c.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
    assert c.call("SET", "k", b"x" * (1 << 20)) == b"+OK\r\n"
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
    assert c.read_until_closed() == (b"-ERR Protocol error: invalid bulk length\r\n", True)


def test_cve_2025_21605_unauthenticated_clients_that_never_read(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--requirepass", "pw"]
    fresh_server.start()
    before = _rss(fresh_server.port, "pw")
    flood = b"PING\r\n" * 20000  # 120 KB of requests, 680 KB of NOAUTH replies
    clients = []
    for _ in range(20):
        c = RawClient(fresh_server.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sock.settimeout(1)
        clients.append(c)
    # each sends until the server closes it or stops reading from it (a send blocked for a
    # second): then it is left as it is
    sending = list(clients)
    for _ in range(50):
        for c in list(sending):
            try:
                c.send(flood)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                sending.remove(c)
    probe = RawClient(fresh_server.port)
    assert probe.call("PING") == b"-NOAUTH Authentication required.\r\n"
    assert _rss(fresh_server.port, "pw") - before < 100 * 1024 * 1024
    listed = RawClient(fresh_server.port)
    listed.call("AUTH", "pw")
    # The floods are closed once their replies pass the pre-AUTH output limit, or held back
    # (not read) while they do not read: never an unbounded queue.
    for line in listed.call("CLIENT", "LIST").split(b"\n"):
        if b"omem=" in line:
            omem = int(line.split(b"omem=")[1].split(b" ")[0])
            assert omem <= 1024 * 1024, line


PATTERNS = [
    "*a" * 60 + "b",
    "a*" * 200 + "b",
    "*" * 20000 + "b",
    "*?" * 100 + "b",
    "[a" + "*a" * 50 + "b",
    "*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*c",
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p[:16] for p in PATTERNS])
def test_cve_2022_36021_pathological_globs(
    r: redis.Redis, real: redis.Redis, ledis_server: LedisServer, redis_server: RedisServer,
    pattern: str,
) -> None:
    """Each answers within the client's deadline (30 s; an exponential matcher takes years)
    and as Redis answers."""
    ours, theirs = RawClient(ledis_server.port), RawClient(unix=str(redis_server.socket))
    for c in (ours, theirs):
        c.call("SET", "a" * 5000, "v")
        c.call("SET", "ab" * 2000, "v")
    for call in (("KEYS", pattern), ("SCAN", "0", "MATCH", pattern, "COUNT", "1000")):
        assert ours.call(*call) == theirs.call(*call)
