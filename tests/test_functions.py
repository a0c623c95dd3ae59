"""Redis 7 functions against real Redis 7.0 (RESP2, RESP3, and the Python path): FUNCTION LOAD
and its every mistake, register_function in both forms, FCALL/FCALL_RO, LIST, STATS, DELETE,
FLUSH, DUMP/RESTORE (a payload of our own: round trips here, refused when bad); libraries kept
across a restart, in backups, and on replicas (streamed and by full sync)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer, wait_until
from .test_binlog_backup import tool
from .test_differential import Pair, pair  # noqa: F401 (the fixture)
from .test_replication import caught_up

Cmd = Sequence[str | bytes | int]


def load(code: str, *options: str) -> tuple[str, ...]:
    return ("FUNCTION", "LOAD", *options, code)


def reg(name: str, body: str = "return 1", lib: str | None = None) -> tuple[str, ...]:
    """A library of one function."""
    code = f"#!lua name={lib or 'lib_' + name}\n"
    return load(code + f"redis.register_function('{name}', function(keys, args) {body} end)")


MISTAKES: list[Cmd] = [
    load("return 1"),
    load("#!lua\nreturn 1"),
    load("#!lua\n"),
    load("#!lua name=e5"),
    load("#! name=e5\n"),
    load("#!py name=x\nreturn 1"),
    load("#!lua name=x name=y\nreturn 1"),
    load("#!lua name=x NAME=y\nreturn 1"),
    load("#!lua name=x-y\nreturn 1"),
    load("#!lua name=\nreturn 1"),
    load("#!lua foo=bar\nreturn 1"),
    load("#!lua name=x flags=no-writes\nreturn 1"),
    load('#!lua name=x "y\nreturn 1'),
    load("#!lua name=x\nreturn 1 +"),
    load("#!lua name=x\nreturn 1"),
    load("#!lua name=x\nerror('boom')"),
    load("#!lua name=x\nx = 1"),
    load("#!lua name=x\nredis.call('ping')"),
    load("#!lua name=x\nlocal s = string"),
    load("#!lua name=x\nredis.x = 1"),
    load("#!lua name=x\nlocal a = nil; a.b = 1"),
    load("#!lua name=x\nredis.log(1)"),
    load("#!lua name=x\nlocal n = redis.nope"),
    load("#!lua name=x\nwhile true do end"),
    load("#!lua name=x\nredis.register_function()"),
    load("#!lua name=x\nredis.register_function('f')"),
    load("#!lua name=x\nredis.register_function('f', 1)"),
    load("#!lua name=x\nredis.register_function(nil, function() end)"),
    load("#!lua name=x\nredis.register_function('f', function() end, 3)"),
    load("#!lua name=x\nredis.register_function('f', function() end, nil)"),
    load("#!lua name=x\nredis.register_function('f-x', function() end)"),
    load("#!lua name=x\nredis.register_function('', function() end)"),
    load("#!lua name=x\nredis.register_function({function_name='f', callback=print}, 2)"),
    load("#!lua name=x\nredis.register_function{function_name='f'}"),
    load("#!lua name=x\nredis.register_function{callback=function() end}"),
    load("#!lua name=x\nredis.register_function{function_name='f', callback=3}"),
    load("#!lua name=x\nredis.register_function{function_name={}, callback=function() end}"),
    load(
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, bogus=1}"
    ),
    load("#!lua name=x\nredis.register_function{[1]=3, callback=function() end}"),
    load("#!lua name=x\nredis.register_function{[true]=3, callback=function() end}"),
    load(
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
        "description={}}"
    ),
    load(
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
        "flags='no-writes'}"
    ),
    load(
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
        "flags={'bad'}}"
    ),
    load(
        "#!lua name=x\nredis.register_function{function_name='f', callback=function() end, "
        "flags={1}}"
    ),
    load(
        "#!lua name=x\nredis.register_function('g', function() end)\n"
        "redis.register_function('G', function() end)"
    ),
    ("FUNCTION", "LOAD"),
    ("FUNCTION", "LOAD", "a", "b", "c"),
    ("FUNCTION", "LOAD", "REPLACE", "REPLACE", "x"),
    ("FUNCTION", "LOAD", "NOPE", "#!lua name=x\nredis.register_function('f', print)"),
    ("FUNCTION",),
    ("FUNCTION", "NOPE"),
    ("FUNCTION", "HELP"),
    ("FUNCTION", "HELP", "x"),
    ("FUNCTION", "DELETE"),
    ("FUNCTION", "DELETE", "a", "b"),
    ("FUNCTION", "DELETE", "nope"),
    ("FUNCTION", "KILL"),
    ("FUNCTION", "FLUSH", "x"),
    ("FUNCTION", "FLUSH", "ASYNC", "x"),
    ("FUNCTION", "RESTORE"),
    ("FUNCTION", "RESTORE", "xx"),
    ("FUNCTION", "RESTORE", "xx", "FOO"),
    ("FUNCTION", "RESTORE", "xx", "FLUSH", "x"),
    ("FUNCTION", "RESTORE", "", "flush"),
    ("FUNCTION", "LIST", "LIBRARYNAME"),
    ("FUNCTION", "LIST", "WITHCODE", "withcode"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b"),
    ("FUNCTION", "LIST", "foo"),
    ("FUNCTION", "STATS", "x"),
    ("FCALL",),
    ("FCALL", "f"),
    ("FCALL", "nof", "0"),
    ("FCALL", "nof", "x"),
    ("FCALL_RO", "nof", "-1"),
    ("FCALL", "g", "0"),  # g and G: one library may hold both, FCALL finds one of them
    ("FUNCTION", "STATS"),
]

LIBRARY = """#!lua name=mylib
redis.log(redis.LOG_WARNING, 'loading mylib')
local calls = 0
redis.register_function('f', function() return 1 end)
redis.register_function('boom', function(k, a) error('boom') end)
redis.register_function('setk', function(k, a) return redis.call('set', k[1], a[1]) end)
redis.register_function{function_name='ro_set', callback=function(k, a)
  return redis.call('set', k[1], a[1]) end, flags={'no-writes'}}
redis.register_function{function_name='echo', callback=function(k, a)
  return {k[1], a[1], #k, #a} end, flags={'allow-stale', 'NO-WRITES'}, description='desc'}
redis.register_function('global_read', function(k, a) return y end)
redis.register_function('global_write', function(k, a) z = 1 end)
redis.register_function('reg_at_run', function() return redis.register_function('x', print) end)
redis.register_function('unknown', function(k, a) return redis.call('nope') end)
redis.register_function('nested', function(k, a) return redis.call('fcall', 'f', 0) end)
redis.register_function('libs', function(k, a)
  return {cjson.encode({1, 2}), string.format('%d', 5), bit.band(7, 3), type(KEYS)} end)
redis.register_function('pcalled', function() local ok, e = pcall(error, 'x') return {ok, e} end)
redis.register_function('wrong_arity', function() return redis.call('get') end)
redis.register_function('resp3', function() redis.setresp(3) return redis.call('hgetall', 'h') end)
redis.register_function(7, function() return 'numbered' end)
"""

CALLS: list[Cmd] = [
    ("FCALL", "f", "0"),
    ("FCALL", "F", "0"),
    ("FCALL", "f", "x"),
    ("FCALL", "f", "-1"),
    ("FCALL", "f", "99999999999999999999"),
    ("FCALL", "f", "2", "a"),
    ("FCALL_RO", "f", "0"),
    ("FCALL", "boom", "0"),
    ("FCALL", "setk", "1", "k", "v"),
    ("FCALL_RO", "setk", "1", "k", "v2"),
    ("FCALL", "ro_set", "1", "k", "v3"),
    ("FCALL_RO", "echo", "1", "k", "v"),
    ("FCALL", "echo", "2", "k1", "k2", "a1", "a2", "a3"),
    ("FCALL", "global_read", "0"),
    ("FCALL", "global_write", "0"),
    ("FCALL", "reg_at_run", "0"),
    ("FCALL", "unknown", "0"),
    ("FCALL", "nested", "0"),
    ("FCALL", "libs", "0"),
    ("FCALL", "pcalled", "0"),
    ("FCALL", "wrong_arity", "0"),
    ("FCALL", "resp3", "0"),
    ("FCALL", "7", "0"),
    ("GET", "k"),
    ("EVAL", "return redis.call('fcall', 'f', 0)", "0"),
    ("EVAL", "return redis.call('function', 'list')", "0"),
    ("EVAL_RO", "#!lua\nreturn 1", "0"),
    ("EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"),
    load(LIBRARY),  # exists
    load(LIBRARY.replace("'f'", "'f2'"), "REPLACE"),
    ("FCALL", "f", "0"),
    ("FCALL", "f2", "0"),
    reg("f2", lib="other"),  # mylib's
    ("FUNCTION", "STATS"),
    ("FUNCTION", "DELETE", "mylib"),
    ("FCALL", "f2", "0"),
    ("FUNCTION", "STATS"),
]

LISTS: list[Cmd] = [
    reg("g1", lib="alpha"),
    load(
        "#!lua name=beta\nredis.register_function{function_name='g2', callback=function() "
        "return 2 end, flags={'no-writes','allow-oom','allow-stale','no-cluster',"
        "'allow-cross-slot-keys'}, description=5}"
    ),
    ("FUNCTION", "LIST", "LIBRARYNAME", "alpha"),
    ("FUNCTION", "LIST", "libraryname", "BE*", "WITHCODE"),
    ("FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "b?ta"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch"),
    ("FUNCTION", "STATS"),
    reg("g2", lib="gamma"),  # g2 is beta's
    ("FUNCTION", "FLUSH", "SYNC"),
    ("FUNCTION", "LIST"),
    reg("g1", lib="alpha"),
    ("FUNCTION", "FLUSH", "async"),
    ("FUNCTION", "FLUSH"),
    ("FCALL", "g1", "0"),
]


@pytest.fixture
def fpair(pair: Pair) -> Iterator[Pair]:  # noqa: F811
    """The pair with no libraries on either side, before and after (the servers are shared)."""
    pair.run([("FUNCTION", "FLUSH")])
    yield pair
    pair.run([("FUNCTION", "FLUSH")])


@pytest.mark.differential
def test_function_mistakes_match_redis(fpair: Pair) -> None:
    fpair.run(MISTAKES)


@pytest.mark.differential
def test_function_calls_match_redis(fpair: Pair) -> None:
    fpair.run([("HSET", "h", "f", "v"), load(LIBRARY)])
    fpair.run(CALLS)


@pytest.mark.differential
def test_function_list_stats_flush_match_redis(fpair: Pair) -> None:
    fpair.run(LISTS)


@pytest.mark.differential
def test_function_dump_restore_as_redis(fpair: Pair) -> None:
    """Each side restores its own payload (ours is not Redis's blob); replies must match."""
    setup = [reg("a1", lib="la"), reg("b1", lib="lb")]
    fpair.run(setup)
    payloads = [c.call("FUNCTION", "DUMP") for c in (fpair.theirs, fpair.ours)]
    for p in payloads:
        assert p.startswith(b"$")
    bodies = [p[p.index(b"\r\n") + 2 : -2] for p in payloads]

    def both(*steps: tuple[str, ...]) -> None:
        for step in steps:
            replies = []
            for client, body in zip((fpair.theirs, fpair.ours), bodies, strict=True):
                args = [body if a == "<payload>" else a for a in step]
                replies.append(client.call(*args))
            assert replies[0] == replies[1], (step, replies)

    both(
        ("FUNCTION", "DELETE", "lb"),  # one collision: which of two Redis names first varies
        ("FUNCTION", "RESTORE", "<payload>"),  # la exists
        ("FUNCTION", "RESTORE", "<payload>", "APPEND"),
        ("FUNCTION", "RESTORE", "<payload>", "replace"),
        ("FCALL", "a1", "0"),
        ("FUNCTION", "DELETE", "la"),
        reg("a1", "return 2", lib="lc"),  # a1 now in lc
        ("FUNCTION", "RESTORE", "<payload>", "REPLACE"),  # a1 collides with lc's
        ("FCALL", "a1", "0"),
        ("FCALL", "b1", "0"),
        ("FUNCTION", "RESTORE", "<payload>", "FLUSH"),
        ("FCALL", "a1", "0"),
        ("FUNCTION", "LIST", "LIBRARYNAME", "lc"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "RESTORE", "<payload>"),
        ("FCALL", "b1", "0"),
    )
    empty = fpair.ours.call("FUNCTION", "DUMP")
    body = bodies[1]
    for bad in (body[:-1], body[:-5] + b"x" + body[-4:], b"LFUN", b"", empty[:4] + body[4:]):
        assert fpair.ours.call("FUNCTION", "RESTORE", bad) == (
            b"-ERR DUMP payload version or checksum are wrong\r\n"
        )
    assert fpair.ours.call("FCALL", "b1", "0") == b":1\r\n"  # nothing changed
    for client in (fpair.theirs, fpair.ours):  # each side's DUMP of a key: valid, no libraries
        client.call("SET", "k", "v")
        key = client.call("DUMP", "k")
        assert client.call("FUNCTION", "RESTORE", key[key.index(b"\r\n") + 2 : -2]) == (
            b"-ERR given type is not a function\r\n"
        )


def test_restore_payload_round_trips_and_refuses_garbage(ledis_server: LedisServer) -> None:
    from stack.server.scripting import function_dump

    codes = [b"#!lua name=a\n", b"", b"\x00\xff" * 100]
    assert function_dump.decode(function_dump.encode(codes)) == codes
    payload = function_dump.encode(codes)
    for cut in range(len(payload)):
        with pytest.raises(function_dump.BadPayload):
            function_dump.decode(payload[:cut])
    c = RawClient(ledis_server.port)
    c.call("FUNCTION", "FLUSH")
    # The checksum holds but the code is not a library: Redis's error for the code, no change.
    assert c.call("FUNCTION", "RESTORE", function_dump.encode([b"return 1"])) == (
        b"-ERR Missing library metadata\r\n"
    )
    two = function_dump.encode([b"#!lua name=d\nredis.register_function('d1', function() end)"] * 2)
    assert c.call("FUNCTION", "RESTORE", two) == b"-ERR Library 'd' already exists\r\n"
    assert c.call("FUNCTION", "LIST") == b"*0\r\n"


def lib_names(c: redis.Redis) -> list[bytes]:
    """FUNCTION LIST's library names (RESP2: each library a flat list, its name second)."""
    return sorted(lib[1] for lib in c.function_list())


def _library(name: str, fn: str, value: int) -> str:
    return (
        f"#!lua name={name}\nredis.register_function('{fn}', function(k, a) "
        f"redis.call('incr', k[1]) return {value} end)"
    )


def test_libraries_survive_restart_and_go_in_backups(
    fresh_server: LedisServer, tmp_path: Path
) -> None:
    fresh_server.extra += ["--backup-dir", str(tmp_path / "backups")]
    fresh_server.start()
    c = fresh_server.client()
    c.function_load(_library("keep", "kf", 1))
    c.function_load(_library("gone", "gf", 2))
    c.function_delete("gone")
    assert c.fcall("kf", 1, "n") == 1
    fresh_server.stop()
    fresh_server.start()
    c = fresh_server.client()
    assert c.fcall("kf", 1, "n") == 1
    with pytest.raises(redis.ResponseError, match="Function not found"):
        c.fcall("gf", 0)
    assert c.bgsave()
    wait_until(lambda: c.info("persistence")["rdb_bgsave_in_progress"] == 0, timeout=60)
    path = c.info("persistence")["ledis_last_backup"]
    restored = tmp_path / "restored"
    out = tool("restore", path, "--data-dir", str(restored))
    assert out.returncode == 0, out.stderr
    copy = LedisServer(tmp_path / "copy", data_dir=restored).start()
    try:
        d = copy.client()
        assert d.fcall("kf", 1, "n") == 1 and d.get("n") == b"3"
        assert lib_names(d) == [b"keep"]
    finally:
        copy.stop()


def test_replicas_hold_the_same_libraries(tmp_path: Path) -> None:
    master = LedisServer(tmp_path / "m").start()
    m = master.client()
    m.function_load(_library("before", "bf", 1))  # there before the replica syncs
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        r = replica.client()
        wait_until(lambda: caught_up(m, r), timeout=60)
        assert lib_names(r) == [b"before"]
        m.function_load(_library("after", "af", 2))
        m.function_load(_library("before", "bf2", 3), replace=True)
        wait_until(lambda: caught_up(m, r), timeout=60)
        assert lib_names(r) == [b"after", b"before"]
        ro = (
            "#!lua name=ro\nredis.register_function{function_name='rf', callback=function() "
            "return 'ro' end, flags={'no-writes'}}"
        )
        m.function_load(ro)
        wait_until(lambda: caught_up(m, r), timeout=60)
        assert r.fcall_ro("rf", 0) == b"ro"  # a replica runs read-only functions
        with pytest.raises(redis.ResponseError, match="Function not found"):
            r.fcall_ro("bf", 0)  # replaced by bf2
        payload = m.function_dump()
        m.function_flush()
        wait_until(lambda: caught_up(m, r), timeout=60)
        assert lib_names(r) == []
        m.execute_command("FUNCTION", "RESTORE", payload)
        wait_until(lambda: caught_up(m, r), timeout=60)
        assert lib_names(r) == [b"after", b"before", b"ro"]
        with pytest.raises(redis.ReadOnlyError):
            r.function_flush()
    finally:
        master.kill9()
        replica.kill9()


def test_busy_function_is_killed_by_function_kill(tmp_path: Path) -> None:
    server = LedisServer(tmp_path, "--busy-reply-threshold", "100").start()
    try:
        c = server.client()
        c.function_load(
            "#!lua name=spin\nredis.register_function('spin', function() "
            "local x = redis.call('get', 'k') while true do end end)"
        )
        out: list[object] = []

        def go() -> None:
            try:
                out.append(server.client().fcall("spin", 0))
            except redis.ResponseError as e:
                out.append(str(e))

        t = threading.Thread(target=go)
        t.start()
        other = RawClient(server.port, timeout=60)
        wait_until(lambda: other.call("PING").startswith(b"-BUSY"), timeout=60)
        assert other.call("GET", "k") == (
            b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN "
            b"NOSAVE.\r\n"
        )
        assert other.call("SCRIPT", "KILL").startswith(b"-BUSY Redis is busy running a script")
        stats = other.call("FUNCTION", "STATS")
        assert b"running_script" in stats and b"spin" in stats and b"duration_ms" in stats
        assert other.call("FUNCTION", "KILL") == b"+OK\r\n"
        t.join(60)
        assert out and str(out[0]).startswith("Script killed by user with SCRIPT KILL...")
        assert other.call("FUNCTION", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
    finally:
        server.stop()
