"""ledis-cli in scripted mode prints the same bytes as redis-cli, against ledis and Redis."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-tools")

SETUP = [
    ["SET", "greeting", "hello world"],
    ["SET", "bin", "a\tb\nc\"d\\e\x01"],
    ["SET", "n", "42"],
    ["SETBIT", "bits", "3", "1"],
]
COMMANDS = [
    ["PING"], ["PING", "hi there"], ["GET", "greeting"], ["GET", "bin"], ["GET", "missing"],
    ["INCRBY", "n", "0"], ["MGET", "greeting", "missing", "n"], ["FOO", "bar"], ["GET"],
    ["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"], ["KEYS", "nomatch*"],
    ["LCS", "greeting", "bin", "IDX", "WITHMATCHLEN"], ["TYPE", "greeting"], ["DBSIZE"],
    ["SET", "k", "v"], ["BITFIELD", "bits", "GET", "u4", "0", "GET", "i8", "0"],
    ["CLUSTER", "KEYSLOT", "{user1000}.following"], ["ECHO", ""], ["STRLEN", "bin"],
]


def run(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60)


def ledis_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "console.cli.main", "--config", "/nonexistent", *args]


@pytest.fixture(params=["ledis", "redis"])
def endpoint(request: pytest.FixtureRequest, ledis_server: LedisServer,
             redis_server: RedisServer) -> Iterator[list[str]]:
    """Connection flags for both CLIs, against our server or the real Redis."""
    if request.param == "ledis":
        flags = ["-p", str(ledis_server.port)]
    else:
        flags = ["-s", str(redis_server.socket)]
    run(["redis-cli", *flags, "FLUSHALL"])
    for cmd in SETUP:
        run(["redis-cli", *flags, *cmd])
    yield flags


@pytest.mark.parametrize("mode", ["--raw", "--no-raw"])
def test_same_bytes_as_redis_cli(endpoint: list[str], mode: str) -> None:
    for cmd in COMMANDS:
        theirs = run(["redis-cli", *endpoint, mode, *cmd])
        ours = run(ledis_cli(*endpoint, mode, *cmd))
        assert ours.stdout == theirs.stdout, cmd
        assert ours.returncode == theirs.returncode, cmd


def test_stdin_lines_like_redis_cli(endpoint: list[str]) -> None:
    script = b"SET a 1\nINCR a\nGET a\nFOO\n\nMGET a nope\n"
    theirs = run(["redis-cli", *endpoint], stdin=script)
    ours = run(ledis_cli(*endpoint), stdin=script)
    assert ours.stdout == theirs.stdout


def test_repeat_and_stdin_argument(endpoint: list[str]) -> None:
    assert run(ledis_cli(*endpoint, "-r", "3", "INCR", "ctr")).stdout == b"1\n2\n3\n"
    run(ledis_cli(*endpoint, "-x", "SET", "fromstdin"), stdin=b"payload\n")
    assert run(["redis-cli", *endpoint, "GET", "fromstdin"]).stdout == b"payload\n\n"


def test_pipe_mode(endpoint: list[str]) -> None:
    payload = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
                       for k in (b"p%d" % i for i in range(5000)))
    ok = run(ledis_cli(*endpoint, "--pipe"), stdin=payload)
    assert ok.returncode == 0
    assert b"errors: 0, replies: 5000" in ok.stdout
    bad = run(ledis_cli(*endpoint, "--pipe"), stdin=b"*1\r\n$4\r\nNOPE\r\n*1\r\n$4\r\nPING\r\n")
    assert bad.returncode == 1
    assert b"errors: 1, replies: 2" in bad.stdout
    assert b"unknown command 'NOPE'" in bad.stderr


def test_connection_refused_exit_status() -> None:
    theirs = run(["redis-cli", "-p", "1", "PING"])
    ours = run(ledis_cli("-p", "1", "PING"))
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.strip() == theirs.stderr.strip()


def test_uri_and_password(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--requirepass", "pw"]
    fresh_server.start()
    out = run(ledis_cli("-u", f"redis://:pw@127.0.0.1:{fresh_server.port}/3", "--no-auth-warning",
                        "SET", "x", "1"))
    assert out.stdout == b"OK\n"
    out = run(ledis_cli("-p", str(fresh_server.port), "-a", "pw", "-n", "3", "GET", "x"))
    assert out.stdout == b"1\n"
    assert b"may not be safe" in out.stderr
    out = run(ledis_cli("-p", str(fresh_server.port), "GET", "x"))
    assert out.stdout == b"NOAUTH Authentication required.\n\n"


EVAL_SCRIPT = """redis.call('set', KEYS[1], ARGV[1])
return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV, redis.call('get', KEYS[1])}
"""
EVAL_WORDS = [
    ["k1", "k2", ",", "a1", "a2,x"],
    ["k1", ",", "a1", ",", "a2"],  # only the first lone comma splits
    [",", "a1"],
    ["k1"],
    [],
]


@pytest.mark.parametrize("mode", ["--raw", "--no-raw"])
def test_eval_file_as_redis_cli(endpoint: list[str], mode: str, tmp_path: Path) -> None:
    """``--eval file.lua key1 key2 , arg1 arg2`` through the installed ledis-cli binary."""
    binary = Path(sys.executable).parent / "ledis-cli"
    script = tmp_path / "s.lua"
    script.write_text(EVAL_SCRIPT)
    bad = tmp_path / "bad.lua"
    bad.write_text("return redis.call('nope')")
    cases = [[str(script), *w] for w in EVAL_WORDS]
    cases += [[str(bad)], [str(tmp_path / "missing.lua")]]
    for case in cases:
        theirs = run(["redis-cli", *endpoint, mode, "--eval", *case])
        ours = run([str(binary), "--config", "/nonexistent", *endpoint, mode, "--eval", *case])
        assert ours.stdout == theirs.stdout, case
        assert ours.stderr == theirs.stderr, case
        assert ours.returncode == theirs.returncode, case


def _same_streams(ours: subprocess.CompletedProcess[bytes],
                  theirs: subprocess.CompletedProcess[bytes], what: object) -> None:
    assert (ours.stdout, ours.stderr, ours.returncode) == (
        theirs.stdout, theirs.stderr, theirs.returncode), what


def test_missing_db_warns_and_runs_on_db0(endpoint: list[str]) -> None:
    # redis-cli: "SELECT 99 failed: ERR DB index is out of range" on stderr, then the command
    for mode in ("--raw", "--no-raw"):
        cmd = [*endpoint, mode, "-n", "99", "GET", "greeting"]
        ours, theirs = run(ledis_cli(*cmd)), run(["redis-cli", *cmd])
        _same_streams(ours, theirs, mode)
        assert b"SELECT 99 failed: ERR DB index is out of range" in ours.stderr
        assert ours.stdout.strip() in (b"hello world", b'"hello world"')


def test_refused_password_warns_and_runs(endpoint: list[str], fresh_server: LedisServer) -> None:
    # No password configured: AUTH is refused, the command runs anyway.
    cmd = [*endpoint, "-a", "wrong", "PING"]
    _same_streams(run(ledis_cli(*cmd)), run(["redis-cli", *cmd]), "no requirepass")
    # A password configured: the warning, then the server's NOAUTH, exit status 0.
    fresh_server.extra += ["--requirepass", "pw"]
    fresh_server.start()
    for extra in (["--no-raw"], ["--raw"], ["-n", "3"], ["-e"]):
        cmd = ["-p", str(fresh_server.port), "-a", "wrong", *extra, "PING"]
        ours, theirs = run(ledis_cli(*cmd)), run(["redis-cli", *cmd])
        _same_streams(ours, theirs, extra)
        assert b"AUTH failed: WRONGPASS" in ours.stderr
        assert b"NOAUTH" in (ours.stderr if extra == ["-e"] else ours.stdout)  # -e: stderr, 1


def test_shutdown_says_nothing(fresh_server: LedisServer, tmp_path: Path) -> None:
    peer = RedisServer(tmp_path / "redis").start()
    try:
        theirs = run(["redis-cli", "-s", str(peer.socket), "SHUTDOWN", "NOSAVE"])
    finally:
        peer.stop()
    fresh_server.start()
    ours = run(ledis_cli("-p", str(fresh_server.port), "SHUTDOWN", "NOSAVE"))
    assert fresh_server.proc is not None and fresh_server.proc.wait(30) == 0
    _same_streams(ours, theirs, "SHUTDOWN")
    assert ours.stdout == ours.stderr == b"" and ours.returncode == 0


def test_monitor_streams_until_the_connection_ends(fresh_server: LedisServer) -> None:
    fresh_server.start()
    proc = subprocess.Popen(ledis_cli("-p", str(fresh_server.port), "MONITOR"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"OK\n"  # before it: MONITOR is on
        writer = fresh_server.client()
        for i in range(3):
            writer.set(f"mon{i}", "v")
        seen = [proc.stdout.readline() for _ in range(3)]
        for i, line in enumerate(seen):
            assert line.endswith(b'"SET" "mon%d" "v"\n' % i), seen
        writer.shutdown(nosave=True)  # the connection ends: as redis-cli, an error and status 1
        assert proc.wait(30) == 1
        assert proc.stderr.read() == b"Error: Server closed the connection\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_monitor_from_stdin_stops_on_sigint(ledis_server: LedisServer) -> None:
    proc = subprocess.Popen(ledis_cli("-p", str(ledis_server.port)), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdin.write(b"PING\nMONITOR\nSET never-run 1\n")  # as redis-cli: after MONITOR
        proc.stdin.flush()                                       # the lines are not run
        assert proc.stdout.readline() == b"PONG\n"
        assert proc.stdout.readline() == b"OK\n"
        writer = ledis_server.client()
        writer.set("from-writer", "1")
        assert proc.stdout.readline().endswith(b'"SET" "from-writer" "1"\n')
        assert writer.get("never-run") is None
        writer.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


RESP3_SETUP = [["HSET", "h", "a", "1", "b", "2"], ["SADD", "s", "x"],
               ["ZADD", "z", "1.1", "m", "2.5", "n"]]
RESP3_COMMANDS = [
    ["HGETALL", "h"], ["HGETALL", "nokey"], ["SMEMBERS", "s"], ["SMEMBERS", "nokey"],
    ["ZSCORE", "z", "m"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["ZMSCORE", "z", "n", "o"],
    ["CONFIG", "GET", "maxmemory"], ["COMMAND", "INFO", "GET"], ["GET", "missing"],
    ["XINFO", "STREAM", "nokey"], ["COMMAND", "DOCS", "GET"], ["FOO"],
]


@pytest.mark.parametrize("mode", ["--raw", "--no-raw"])
def test_resp3_same_bytes_as_redis_cli(endpoint: list[str], mode: str) -> None:
    for cmd in RESP3_SETUP:
        run(["redis-cli", *endpoint, *cmd])
    for cmd in RESP3_COMMANDS:
        theirs = run(["redis-cli", *endpoint, "-3", mode, *cmd])
        ours = run(ledis_cli(*endpoint, "-3", mode, *cmd))
        _same_streams(ours, theirs, cmd)
    # After HELLO 3 on the same connection (commands from stdin) as well.
    script = b"HELLO 3\nHGETALL h\nSMEMBERS s\nZSCORE z m\n"
    theirs = run(["redis-cli", *endpoint, mode], stdin=script)
    ours = run(ledis_cli(*endpoint, mode), stdin=script)
    assert b'1# "a" => "1"' in ours.stdout or b"a 1" in ours.stdout
    assert _drop_id(ours.stdout) == _drop_id(theirs.stdout)


def _drop_id(out: bytes) -> bytes:
    """HELLO's reply, without the connection id (each CLI has its own connection)."""
    return b"\n".join(line for line in out.split(b"\n") if b'"id"' not in line
                      and not line.startswith(b"id "))


def test_resp3_types_like_redis_cli(redis_server: RedisServer) -> None:
    # DEBUG PROTOCOL (real Redis): one reply of each RESP3 type redis-cli 7.0 can print.
    flags = ["-s", str(redis_server.socket), "-3"]
    for kind in ("string", "integer", "double", "null", "array", "set", "map", "push",
                 "verbatim", "true", "false"):
        for mode in ("--raw", "--no-raw"):
            cmd = [*flags, mode, "DEBUG", "PROTOCOL", kind]
            _same_streams(run(ledis_cli(*cmd)), run(["redis-cli", *cmd]), (kind, mode))
