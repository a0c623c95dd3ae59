"""CONFIG GET with several patterns and CONFIG SET with several parameters, against the real
Redis 7.0; the parameters tools read, with honest values, and a clear refusal where a value
cannot apply to a store that keeps its data on disk."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.core.resp_client import set_keepalive

from .respclient import RawClient
from .servers import LedisServer, RedisServer
from .twin import raw_pair

GETS = [
    ("maxmemory", "maxmemory-policy", "timeout", "hz", "databases"),
    ("HZ", "Hz", "h?"),
    ("",),
    ("nosuch",),
    ("maxmemory*",),
    ("lua*", "busy*"),
    ("LUA-TIME-LIMIT",),
    ("notify-keyspace-events",),
    ("appendonly", "save", "tcp-keepalive", "maxclients", "slowlog-*", "latency-tracking*"),
    ("maxmemory", "MAXMEMORY", "max*memory"),
]
SETS = [
    ("hz", "5", "hz", "6"),
    ("hz", "5", "nosuch", "3"),
    ("hz",),
    ("hz", "5", "timeout"),
    ("databases", "3"),
    ("hz", "501"),
    ("hz", "0"),
    ("hz", "10"),
    ("maxmemory-policy", "foo"),
    ("maxmemory", "10x"),
    ("maxmemory", "0", "maxmemory-policy", "noeviction", "save", "", "appendonly", "no"),
    ("notify-keyspace-events", "KEA"),
    ("notify-keyspace-events", "Kgx$"),
    ("notify-keyspace-events", "EAn"),
    ("notify-keyspace-events", "Q"),
    ("notify-keyspace-events", ""),
    ("timeout", "5", "maxclients", "x"),  # all or nothing: timeout stays
    ("timeout", "0", "timeout2", "1"),
    ("lua-time-limit", "6000"),
    ("busy-reply-threshold", "5000"),
    ("tcp-keepalive", "-1"),
    ("tcp-keepalive", "abc"),
    ("tcp-keepalive", "300"),
    ("latency-tracking", "maybe"),
    ("latency-tracking-info-percentiles", "50.5 99 100.0 0"),
    ("latency-tracking-info-percentiles", "x"),
    ("latency-tracking-info-percentiles", "101"),
    ("latency-tracking-info-percentiles", "50 99 99.9"),
    ("tracking-table-max-keys", "-1"),
    ("protected-mode", "maybe"),
]


def pairs(reply: bytes) -> list[bytes]:
    """A CONFIG GET reply's names and values, sorted (its order is the dict's, in Redis)."""
    return sorted(re.findall(rb"\$\d+\r\n([^\r]*)\r\n", reply))


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def clients(
    request: pytest.FixtureRequest, ledis_server: LedisServer, redis_server: RedisServer
) -> Iterator[tuple[RawClient, RawClient]]:
    theirs, ours = raw_pair(ledis_server, redis_server, request.param)
    yield theirs, ours
    theirs.close()
    ours.close()


@pytest.mark.differential
def test_config_get_and_set_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    theirs, ours = clients
    for args in GETS:
        assert pairs(ours.call("CONFIG", "GET", *args)) == pairs(
            theirs.call("CONFIG", "GET", *args)
        ), args
    for args in SETS:
        expected = theirs.call("CONFIG", "SET", *args)
        assert ours.call("CONFIG", "SET", *args) == expected, args
        for name in args[::2]:
            if name and name not in ("nosuch", "timeout2"):
                got = ours.call("CONFIG", "GET", name)
                assert pairs(got) == pairs(theirs.call("CONFIG", "GET", name)), (args, name)


@pytest.mark.parametrize(
    "name,value,words",
    [
        ("maxmemory", "1gb", "LevelDB"),
        ("maxmemory-policy", "allkeys-lru", "no key is ever evicted"),
        ("maxmemory-samples", "10", "no key is ever evicted"),
        ("appendonly", "yes", "appendfsync"),
        ("save", "900 1", "BGSAVE"),
    ],
)
def test_values_that_cannot_apply_are_refused_with_the_reason(
    r: redis.Redis, name: str, value: str, words: str
) -> None:
    with pytest.raises(redis.ResponseError) as e:
        r.config_set(name, value)
    assert str(e.value).startswith(f"CONFIG SET failed (possibly related to argument '{name}') - ")
    assert words in str(e.value)
    assert r.config_get(name)[name] != value


def test_appendonly_refusal_explains_durability(r: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="binlog") as e:
        r.config_set("appendonly", "yes")
    assert "write-ahead log" in str(e.value)
    assert r.config_get("appendonly") == {"appendonly": "no"}
    assert r.info("persistence")["aof_enabled"] == 0


def test_config_file_with_a_value_that_cannot_apply(
    fresh_server: LedisServer, tmp_path: Path
) -> None:
    cfg = tmp_path / "ledis.toml"
    cfg.write_text('maxmemory = "2gb"\n')
    fresh_server.extra += ["--config", str(cfg)]
    with pytest.raises(RuntimeError):
        fresh_server.start()
    assert "maxmemory" in fresh_server.log() and "LevelDB" in fresh_server.log()


def test_tcp_keepalive_as_redis_sets_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as conn:
            set_keepalive(conn, 300)
            assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 300
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 100
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            listener.accept()[0].close()


def test_resetstat_resets_what_info_counts(r: redis.Redis) -> None:
    r.set("rs", "1")
    r.get("rs")
    r.get("missing")
    with pytest.raises(redis.ResponseError):
        r.execute_command("NOSUCHCMD")
    assert r.info("commandstats")
    assert r.info("stats")["total_error_replies"] >= 1
    assert r.execute_command("LATENCY", "HISTOGRAM", "get")
    assert r.config_resetstat()
    stats = r.info("stats")
    assert stats["keyspace_hits"] == 0 and stats["keyspace_misses"] == 0
    assert stats["total_error_replies"] == 0
    assert not r.info("errorstats")
    assert set(r.info("commandstats")) <= {"cmdstat_config|resetstat", "cmdstat_info"}
    assert r.execute_command("LATENCY", "HISTOGRAM", "get") in ({}, [])
