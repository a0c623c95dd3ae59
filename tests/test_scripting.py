"""Lua scripting against real Redis 7.0 (RESP2, RESP3, and the Python path): conversions both
ways, errors with the script's sha and line, the sandbox, libraries, SCRIPT, EVAL inside MULTI
and in pipelines; redis-py's Lock and register_script as a user runs them; a busy script, -BUSY
and SCRIPT KILL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer, wait_until
from .test_differential import Pair, pair  # noqa: F401 (the fixture)

Cmd = Sequence[str | bytes | int]

SCRIPTS: list[tuple[str, ...]] = [
    ("return 1",),
    ("",),
    ("return",),
    ("return 1, 2",),
    ("return redis.call('nope')",),
    ("x = 1",),
    ("return y",),
    ("error('boom')",),
    ("return redis.pcall('incr','a','b')",),
    ("return redis.call('incr','s')",),
    ("return {1,2,3.9,'x',nil,4}",),
    ("return {-3.9, 2^40, 1e300, -1e300}",),
    ("return redis.error_reply('MY err')",),
    ("return redis.error_reply('-MY err')",),
    ("return {err='x y'}",),
    ("return {ok='fine\\r\\nline'}",),
    ("return redis.call('get', KEYS[1])", "s"),
    ("#!lua flags=no-writes\nreturn redis.call('set','a','b')",),
    ("#!lua flags=no-writes\nreturn redis.call('get','s')",),
    ("return os",),
    ("return print",),
    ("return {1,{2,{3}}, true, false}",),
    ("return redis.REDIS_VERSION",),
    ("return math.huge",),
    ("return 1+",),
    ("error({err='FOO bar'})",),
    ("return redis.call('set','a')",),
    ("string.x = 1",),
    ("rawset(_G,'x',1)",),
    ("function f() end",),
    ("local function f() return redis.call('incr','s') end\nreturn f()",),
    ("return cjson.encode({1,2,{a=1}})",),
    ("return cjson.encode({})",),
    ('return cjson.decode(\'[1,2,{"a":"x"}]\')[3].a',),
    ('return cjson.encode(cjson.decode(\'{"a":null,"b":[true,false,1.5]}\'))',),
    ("return {bit.band(0xff, 0x0f), bit.bor(1,2,4), bit.bxor(5,3), bit.bnot(0)}",),
    ("return {bit.lshift(1,31), bit.rshift(-1,28), bit.arshift(-256,4), bit.tobit(2^32+5)}",),
    ("return {bit.tohex(65535), bit.tohex(-1, -4), bit.rol(1,33), bit.bswap(0x12345678)}",),
    ("redis.setresp(3); return redis.call('hgetall','h')",),
    ("redis.setresp(3); return redis.call('smembers','nokey')",),
    ("redis.setresp(3); return redis.call('get','nokey')",),
    ("redis.setresp(3); return {double=3.5}",),
    ("redis.setresp(3); return {true, false}",),
    ("redis.setresp(3); return redis.call('hgetall','h').map.f",),
    ("redis.setresp(4)",),
    ("return redis.sha1hex('')",),
    ("return redis.call('get','nokey')",),
    ("return type(redis.call('get','nokey'))",),
    ("return redis.status_reply('FINE')",),
    ("return redis.call('ping')",),
    ("return redis.pcall('ping', {})",),
    ("return redis.call()",),
    ("return redis.call('multi')",),
    ("return redis.call('eval', 'return 1', 0)",),
    ("return redis.call('incrbyfloat', 'f', 1.5)",),
    ("return redis.call('set', 'n', 3.25)",),
    ("return redis.pcall('lpush', 's', 'x')",),
    ("return redis.pcall('lpush', 's', 'x')['err']",),
    ("local ok, e = pcall(redis.call, 'nope') return {ok and 1 or 0, type(e), e}",),
    ("local ok, e = pcall(error, {err='t'}) return {type(e), e.err}",),
    ("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", "k1", "k2"),
    ("redis.call('select', 1); return redis.call('dbsize')",),
    ("return redis.call('blpop', 'nolist', 0)",),
    ("return {type(cjson), type(bit), type(loadstring), type(unpack), type(coroutine)}",),
    ("redis.log(redis.LOG_WARNING, 'from a script', 1) return redis.breakpoint()",),
    ("return {redis.set_repl(redis.REPL_ALL), redis.replicate_commands()}",),
    ("return _G.KEYS[1]", "k"),
    ("#!lua\nreturn 1",),
    ("#!lua flags=nosuchflag\nreturn 1",),
    ("#!python\nreturn 1",),
]


def _eval(script: tuple[str, ...]) -> tuple[str | int, ...]:
    body, *keys = script
    args = ["a1", "a2"] if "ARGV" in body else []
    return ("EVAL", body, len(keys), *keys, *args)


@pytest.mark.differential
def test_scripts_match_redis(pair: Pair) -> None:  # noqa: F811
    pair.run([("SET", "s", "x"), ("HSET", "h", "f", "v")])
    for script in SCRIPTS:
        pair.run([_eval(script), ("GET", "s"), ("GET", "a")])


@pytest.mark.differential
def test_script_cache_and_subcommands_match_redis(pair: Pair) -> None:  # noqa: F811
    sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # sha1("return 1")
    pair.run(
        [
            ("SCRIPT", "FLUSH"),
            ("SCRIPT", "EXISTS", sha, "nosuch"),
            ("EVALSHA", sha, 0),
            ("EVAL", "return 1", 0),
            ("SCRIPT", "EXISTS", sha),
            ("EVALSHA", sha, 0),
            ("EVALSHA", sha.upper(), 0),
            ("EVALSHA_RO", sha, 0),
            ("SCRIPT", "LOAD", "return ARGV[1]"),
            ("EVALSHA", "6d5d2b2bc0f1e1c0b3b0b0f8d2bdcf4a2d7a8b3c", 0),
            ("EVALSHA", "short", 0),
            ("SCRIPT", "LOAD", "return +"),
            ("SCRIPT", "FLUSH"),
            ("SCRIPT", "EXISTS", sha),
            ("SCRIPT", "FLUSH", "ASYNC"),
            ("SCRIPT", "FLUSH", "SYNC"),
            ("SCRIPT", "FLUSH", "x"),
            ("SCRIPT", "KILL"),
            ("SCRIPT", "HELP"),
            ("SCRIPT", "NOPE"),
            ("SCRIPT",),
            ("EVAL", "return 1", "x"),
            ("EVAL", "return 1", -1),
            ("EVAL", "return 1", 2, "a"),
            ("EVAL", "return 1"),
            ("EVAL_RO", "return redis.call('set','a','1')", 0),
            ("EVAL_RO", "return redis.call('get','a')", 1, "a"),
            ("GET", "a"),
        ]
    )


@pytest.mark.differential
def test_eval_in_multi_and_pipelines_match_redis(pair: Pair) -> None:  # noqa: F811
    incr = "return redis.call('incrby', KEYS[1], ARGV[1])"
    pair.run(
        [
            ("MULTI",),
            ("EVAL", incr, 1, "c", 5),
            ("EVAL", "return redis.call('nope')", 0),
            ("EVAL", incr, 1, "c", 2),
            ("EXEC",),
            ("GET", "c"),
            ("MULTI",),
            ("EVAL", "return 1"),
            ("EXEC",),
        ]
    )
    pair.run_pipelined(
        [("EVAL", incr, 1, "p", i) for i in range(50)] + [("GET", "p")], cuts=[37, 200, 1001]
    )


def test_redis_py_lock_and_register_script(ledis_server: LedisServer) -> None:
    c = redis.Redis(port=ledis_server.port)
    c.flushall()
    lock = c.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert not c.lock("resource", timeout=10).acquire(blocking=False)
    assert lock.extend(5)
    assert 10 < c.pttl("resource") <= 15_000
    assert lock.reacquire()
    lock.release()
    assert c.get("resource") is None
    assert lock.acquire(blocking=False)
    c.set("resource", "someone else's token")  # it expired and another took it
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        lock.release()
    assert c.get("resource") == b"someone else's token"

    add = c.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert add(keys=["n"], args=[4]) == 4
    c.script_flush()  # EVALSHA gets NOSCRIPT, redis-py loads it again
    assert add(keys=["n"], args=[3]) == 7
    pipe = c.pipeline()
    add(keys=["n"], args=[1], client=pipe)
    add(keys=["n"], args=[1], client=pipe)
    assert pipe.execute() == [8, 9]


def test_lua_memory_is_bounded(ledis_server: LedisServer) -> None:
    c = RawClient(ledis_server.port)
    reply = c.call("EVAL", "local s = 'x' while true do s = s .. s end", 0)
    assert reply.startswith(b"-ERR not enough memory script: "), reply
    assert c.call("EVAL", "return 'still here'", 0) == b"$10\r\nstill here\r\n"


@pytest.fixture
def busy_server(tmp_path: Path) -> Iterator[LedisServer]:
    server = LedisServer(tmp_path, "--busy-reply-threshold", "100").start()
    yield server
    server.stop()


def _run_script(port: int, script: str, out: list[bytes]) -> threading.Thread:
    def go() -> None:
        c = RawClient(port, timeout=120)
        try:
            out.append(c.call("EVAL", script, 0))
        except ConnectionError:  # SHUTDOWN NOSAVE ended the server
            out.append(b"closed")

    t = threading.Thread(target=go)
    t.start()
    return t


def _until_busy(c: RawClient) -> None:
    def busy() -> bool:
        return c.call("PING").startswith(b"-BUSY")

    wait_until(busy, timeout=60)


def test_busy_script_is_killed(busy_server: LedisServer) -> None:
    port = busy_server.port
    other = RawClient(port, timeout=60)
    assert other.call("SET", "k", "before") == b"+OK\r\n"
    out: list[bytes] = []
    t = _run_script(port, "local x = redis.call('get', 'k') while true do end", out)
    _until_busy(other)
    assert other.call("GET", "k") == (
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
        b"NOSAVE.\r\n"
    )
    assert other.call("SCRIPT", "KILL") == b"+OK\r\n"
    t.join(60)
    assert out and out[0].startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
    assert other.call("GET", "k") == b"$6\r\nbefore\r\n"
    assert other.call("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"


def test_connections_made_during_a_busy_script_are_served(busy_server: LedisServer) -> None:
    """A connection opened while the script runs is accepted and answered as in Redis (the
    loop that accepts is held by the script): PING gets -BUSY, SCRIPT KILL works from it, and
    once the script ends the same connection goes on as any other. Before, it hung until
    the script ended (and a script that never ends took a kill -9). With a password, it must
    AUTH first (HELLO and AUTH work meanwhile) and cannot kill without it."""
    port = busy_server.port
    other = RawClient(port, timeout=60)
    assert other.call("CONFIG", "SET", "requirepass", "pw") == b"+OK\r\n"
    out: list[bytes] = []
    t = _run_script(port, "while true do end", out)  # without AUTH: refused at once
    t.join(60)
    assert out and out[0].startswith(b"-NOAUTH")
    t = _run_script_as(port, "pw", "while true do end", out)
    assert other.call("AUTH", "pw") == b"+OK\r\n"
    _until_busy(other)
    stranger = RawClient(port, timeout=60)  # new, and not logged in
    assert stranger.call("SCRIPT", "KILL") == b"-NOAUTH Authentication required.\r\n"
    fresh = RawClient(port, timeout=60)  # new
    assert fresh.call("HELLO", "3", "AUTH", "default", "pw").startswith(b"%7\r\n")
    assert fresh.call("PING").startswith(b"-BUSY Redis is busy running a script.")
    assert fresh.call("SCRIPT", "KILL") == b"+OK\r\n"
    t.join(60)
    assert out[-1].startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
    # the loop has taken the connection over: it works as any other, still RESP3, logged in
    assert fresh.call("SET", "k", "v") == b"+OK\r\n"
    assert fresh.call("GET", "k") == b"$1\r\nv\r\n"
    assert fresh.call("CLIENT", "INFO").count(b"resp=3") == 1
    assert stranger.call("GET", "k").startswith(b"-NOAUTH")
    assert other.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"


def _run_script_as(port: int, password: str, script: str, out: list[bytes]) -> threading.Thread:
    def go() -> None:
        c = RawClient(port, timeout=120)
        assert c.call("AUTH", password) == b"+OK\r\n"
        out.append(c.call("EVAL", script, 0))

    t = threading.Thread(target=go)
    t.start()
    return t


def test_a_script_that_wrote_is_unkillable(busy_server: LedisServer) -> None:
    port = busy_server.port
    other = RawClient(port, timeout=60)
    out: list[bytes] = []
    t = _run_script(port, "redis.call('set', 'k', 'half') while true do end", out)
    _until_busy(other)
    assert other.call("SCRIPT", "KILL").startswith(b"-UNKILLABLE Sorry the script already")
    other.send(b"SHUTDOWN NOSAVE\r\n")
    t.join(60)
    assert busy_server.proc is not None and busy_server.proc.wait(60) == 0
    busy_server.start()  # the script's write never reached the store
    again = RawClient(busy_server.port, timeout=60)
    assert again.call("GET", "k") == b"$-1\r\n"
