"""Real redis-cli and redis-benchmark (Debian's redis-tools) against ledis-server."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .servers import LedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-cli") is None, reason="redis-tools not installed"
)


def cli(server: LedisServer, *args: str, stdin: str | bytes | None = None) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(server.port), *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


def test_tour(r: object, ledis_server: LedisServer) -> None:
    assert cli(ledis_server, "PING") == "PONG\n"
    assert cli(ledis_server, "SET", "greeting", "hello world") == "OK\n"
    assert cli(ledis_server, "GET", "greeting") == "hello world\n"
    assert cli(ledis_server, "--no-raw", "GET", "greeting") == '"hello world"\n'
    assert cli(ledis_server, "--no-raw", "INCR", "n") == "(integer) 1\n"
    assert cli(ledis_server, "--no-raw", "GET", "missing") == "(nil)\n"
    assert cli(ledis_server, "--no-raw", "NOPE").startswith("(error) ERR unknown command 'NOPE'")
    assert cli(ledis_server, "-r", "3", "INCR", "n") == "2\n3\n4\n"
    assert cli(ledis_server, "CLUSTER", "KEYSLOT", "{user1000}.followers") == "3443\n"


def test_stdin_commands_and_pipe_mode(r: object, ledis_server: LedisServer) -> None:
    assert cli(ledis_server, stdin="SET a 1\nINCR a\nGET a\n") == "OK\n2\n2\n"
    payload = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
        for k in (b"p%d" % i for i in range(1000))
    )
    out = cli(ledis_server, "--pipe", stdin=payload)
    assert "errors: 0, replies: 1000" in out
    assert cli(ledis_server, "DBSIZE") == "1001\n"


def test_scan_and_bigkeys(r: object, ledis_server: LedisServer) -> None:
    cli(ledis_server, "MSET", "user:1", "a", "user:2", "bb", "other", "ccc")
    keys = sorted(cli(ledis_server, "--scan", "--pattern", "user:*").split())
    assert keys == ["user:1", "user:2"]
    out = cli(ledis_server, "--bigkeys")
    assert "Biggest string found" in out and "other" in out


def test_info_parses(r: object, ledis_server: LedisServer) -> None:
    out = cli(ledis_server, "INFO", "server")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert fields["redis_version"] == "7.0.15"
    assert fields["arch_bits"] == "64"
    assert fields["cluster_enabled"] == "0"
    assert "ledis_version" in fields


def test_redis_benchmark_runs(r: object, ledis_server: LedisServer) -> None:
    if shutil.which("redis-benchmark") is None:
        pytest.skip("redis-benchmark not installed")
    out = subprocess.run(
        ["redis-benchmark", "-p", str(ledis_server.port), "-q", "-n", "2000", "-c", "4",
         "-t", "set,get,incr,mset", "-P", "8"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for test in ("SET", "GET", "INCR", "MSET"):
        assert f"{test}: " in out.stdout or f"{test} (" in out.stdout, out.stdout
