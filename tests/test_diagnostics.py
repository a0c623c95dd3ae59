"""MEMORY, LATENCY and DEBUG: Redis 7.0's replies and refusals (against the real server), and
figures that come from what the server knows."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from stack.core.reply_parser import ReplyParser
from stack.server.latency import bucket_bound_ns, cumulative, percentile

from .respclient import RawClient
from .servers import LedisServer, RedisServer, wait_until
from .twin import raw_pair


def parse(raw: bytes) -> object:
    p = ReplyParser()
    p.feed(raw)
    return p.get()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def clients(
    request: pytest.FixtureRequest, ledis_server: LedisServer, redis_server: RedisServer
) -> Iterator[tuple[RawClient, RawClient]]:
    theirs, ours = raw_pair(ledis_server, redis_server, request.param)
    for c in (theirs, ours):
        c.call("FLUSHALL")
    yield theirs, ours
    for c in (theirs, ours):
        c.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        c.call("LATENCY", "RESET")
        c.close()


def same(clients: tuple[RawClient, RawClient], *args: str) -> bytes:
    theirs, ours = clients
    expected = theirs.call(*args)
    got = ours.call(*args)
    assert got == expected, args
    return got


# --- MEMORY ----------------------------------------------------------------------------------


@pytest.mark.differential
def test_memory_refusals_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    same(clients, "SET", "k", "v")
    for args in [
        ("MEMORY", "USAGE", "nokey"),
        ("MEMORY", "USAGE", "k", "SAMPLES", "-1"),
        ("MEMORY", "USAGE", "k", "SAMPLES", "x"),
        ("MEMORY", "USAGE", "k", "SAMPLES"),
        ("MEMORY", "USAGE", "k", "FOO", "1"),
        ("MEMORY", "USAGE"),
        ("MEMORY",),
        ("MEMORY", "NOSUCH"),
        ("MEMORY", "STATS", "x"),
        ("MEMORY", "PURGE"),
    ]:
        same(clients, *args)


@pytest.mark.differential
def test_memory_stats_fields_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    theirs, ours = clients
    for c in clients:
        c.call("SET", "k", "v")
    a, b = (parse(c.call("MEMORY", "STATS")) for c in (theirs, ours))
    redis_fields = dict(zip(a[::2], a[1::2], strict=True))  # type: ignore[index]
    our_fields = dict(zip(b[::2], b[1::2], strict=True))  # type: ignore[index]
    redis_only = set(redis_fields) - set(our_fields)
    assert not redis_only
    assert all(k.startswith(b"ledis.") for k in set(our_fields) - set(redis_fields))
    for name, value in redis_fields.items():
        assert type(our_fields[name]) is type(value), name  # numbers as numbers, ratios as doubles
    assert our_fields[b"keys.count"] == 1


def test_memory_usage_from_record_sizes(r: redis.Redis) -> None:
    r.set("small", "x")
    r.set("big", "x" * 3000)
    r.set("chunked", "x" * 100_000)
    assert r.memory_usage("small") < r.memory_usage("big") < r.memory_usage("chunked")
    assert 100_000 <= r.memory_usage("chunked") < 110_000
    r.set("ttl", "x", ex=100)
    assert r.memory_usage("ttl") > r.memory_usage("small")
    r.hset("h", mapping={f"field:{i:05d}": "v" * 20 for i in range(2000)})
    usage = r.memory_usage("h")
    every = r.memory_usage("h", samples=0)
    assert 2000 * 40 < every < 2000 * 120  # members of ~60 bytes stored, with their keys
    assert abs(usage - every) < every * 0.1  # five samples of similar members: close
    r.zadd("z", {f"m{i}": i for i in range(100)})
    r.sadd("s", *[f"m{i}" for i in range(100)])
    assert r.memory_usage("z", samples=0) > r.memory_usage("s", samples=0)  # two records each
    assert r.memory_usage("nokey") is None


def test_memory_doctor_stats_purge(r: redis.Redis) -> None:
    assert isinstance(r.execute_command("MEMORY", "DOCTOR"), (bytes, str))
    stats = r.memory_stats()
    assert stats["total.allocated"] > 0
    assert stats["startup.allocated"] > 0
    assert "ledis.disk.bytes" in stats
    assert r.memory_purge()
    text = r.execute_command("MEMORY", "MALLOC-STATS")
    assert b"uordblks" in text or b"not supported" in text


# --- LATENCY ---------------------------------------------------------------------------------


def test_histogram_buckets_are_redis_bounds() -> None:
    """Bucket k holds calls shorter than 1024 << k ns, reported at the bound Redis's
    HdrHistogram (two significant digits) reports: 1, 2, 4, 8, 16, 33, 66, 132 ... µs."""
    assert [bucket_bound_ns(k) // 1000 for k in range(10)] == [
        1,
        2,
        4,
        8,
        16,
        33,
        66,
        132,
        264,
        528,
    ]
    hist = [0] * 64
    for ns in (500, 900, 1500, 5000, 5000, 2_000_000):
        hist[(ns >> 10).bit_length()] += 1
    assert cumulative(hist) == [(1, 2), (2, 3), (8, 5), (2113, 6)]
    assert percentile(hist, 50) == 2.063
    assert percentile(hist, 100) == 2113.535


@pytest.mark.differential
def test_latency_histogram_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    theirs, ours = clients
    for c in clients:
        assert c.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
        for i in range(20):
            c.call("SET", f"k{i}", "v")
        c.call("GET", "k1")
        c.call("CLIENT", "ID")
    for args in [
        ("set", "get"),
        ("nosuch", "GET"),
        ("client",),
        ("client|id",),
        ("latency",),
    ]:
        a, b = (parse(c.call("LATENCY", "HISTOGRAM", *args)) for c in (theirs, ours))

        def shape(reply: object) -> dict[bytes, int]:
            items = list(reply)  # type: ignore[call-overload]
            out = {}
            for name, body in zip(items[::2], items[1::2], strict=True):
                fields = dict(zip(body[::2], body[1::2], strict=True))
                buckets = list(fields[b"histogram_usec"])
                assert buckets[-1] == fields[b"calls"]  # cumulative: the last holds all
                assert set(buckets[::2]) <= {bucket_bound_ns(k) // 1000 for k in range(40)}
                out[name] = fields[b"calls"]
            return out

        assert shape(b) == shape(a), args
    same(clients, "LATENCY", "HISTOGRAM", "nosuch")


@pytest.mark.differential
def test_latency_events_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    theirs, ours = clients
    for args in [
        ("LATENCY", "LATEST"),
        ("LATENCY", "HISTORY", "command"),
        ("LATENCY", "GRAPH", "command"),
        ("LATENCY", "RESET"),
        ("LATENCY", "RESET", "nosuch", "other"),
        ("LATENCY", "NOSUCH"),
        ("LATENCY", "GRAPH"),
        ("LATENCY", "HISTORY"),
    ]:
        same(clients, *args)
    for c in clients:
        c.call("CONFIG", "SET", "latency-monitor-threshold", "10")
        c.call("DEBUG", "SLEEP", "0.03")
    a, b = (parse(c.call("LATENCY", "LATEST")) for c in (theirs, ours))
    assert [e[0] for e in b] == [e[0] for e in a] == [b"command"]  # type: ignore[index]
    assert all(e[2] >= 30 and e[3] >= e[2] for e in b)  # type: ignore[union-attr,index]
    a, b = (parse(c.call("LATENCY", "HISTORY", "command")) for c in (theirs, ours))
    assert len(a) == len(b) == 1  # type: ignore[arg-type]
    graph = parse(ours.call("LATENCY", "GRAPH", "command"))
    text = graph if isinstance(graph, bytes) else graph.text  # type: ignore[union-attr]
    assert text.startswith(b"command - high ")
    assert b"(all time high " in text
    assert b"\n" + b"-" * 80 + b"\n" in text
    assert b"_" in text or b"#" in text  # one sample: the lowest bar
    for c in clients:
        assert c.call("LATENCY", "RESET", "COMMAND") == b":1\r\n"  # names match in any case
    same(clients, "LATENCY", "LATEST")


def test_latency_doctor(r: redis.Redis) -> None:
    r.config_set("latency-monitor-threshold", 0)
    r.execute_command("LATENCY", "RESET")
    assert b"off" in r.execute_command("LATENCY", "DOCTOR")
    r.config_set("latency-monitor-threshold", 5)
    try:
        assert b"No latency spike" in r.execute_command("LATENCY", "DOCTOR")
        r.execute_command("DEBUG", "SLEEP", "0.01")
        report = r.execute_command("LATENCY", "DOCTOR")
        assert b"1. command: 1 latency spikes" in report
        assert b"SLOWLOG GET" in report
    finally:
        r.config_set("latency-monitor-threshold", 0)
        r.execute_command("LATENCY", "RESET")


def test_latencystats_percentiles_in_info(r: redis.Redis) -> None:
    r.config_resetstat()
    for _ in range(10):
        r.ping()
    stats = r.info("latencystats")
    entry = stats["latency_percentiles_usec_ping"]
    assert set(entry) == {"p50", "p99", "p99.9"}
    r.config_set("latency-tracking-info-percentiles", "25 100")
    try:
        assert set(r.info("latencystats")["latency_percentiles_usec_ping"]) == {"p25", "p100"}
        r.config_set("latency-tracking", "no")
        r.config_resetstat()
        r.ping()
        assert "latency_percentiles_usec_ping" not in r.info("latencystats")
        assert r.execute_command("LATENCY", "HISTOGRAM", "ping") in ({}, [])
    finally:
        r.config_set("latency-tracking", "yes")
        r.config_set("latency-tracking-info-percentiles", "50 99 99.9")


# --- DEBUG -----------------------------------------------------------------------------------


@pytest.mark.differential
def test_debug_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    same(clients, "SET", "s", "123")
    for args in [
        ("DEBUG", "ERROR", "foo bar"),
        ("DEBUG", "ERROR", "MYERR oops"),
        ("DEBUG", "ERROR", ""),
        ("DEBUG", "ERROR", "a", "b"),
        ("DEBUG", "SET-ACTIVE-EXPIRE", "0"),
        ("DEBUG", "SET-ACTIVE-EXPIRE", "x"),
        ("DEBUG", "SET-ACTIVE-EXPIRE", "1"),
        ("DEBUG", "SET-ACTIVE-EXPIRE"),
        ("DEBUG", "SLEEP", "x"),
        ("DEBUG", "SLEEP", "0.001"),
        ("DEBUG", "NOSUCH"),
        ("DEBUG",),
        ("DEBUG", "OBJECT", "nokey"),
        ("DEBUG", "OBJECT"),
    ]:
        same(clients, *args)


def test_debug_set_active_expire(r: redis.Redis) -> None:
    """With active expiry off, keys past their time stay until read (counted in DBSIZE, as in
    Redis); turned back on, the sweep removes them."""
    before = r.info("stats")["expired_keys"]
    assert r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for i in range(3):
            r.set(f"ae:{i}", "v", px=20)
        time.sleep(0.5)  # several cron ticks past their time: none is swept meanwhile
        assert r.dbsize() == 3
        assert r.info("stats")["expired_keys"] == before
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    wait_until(lambda: r.dbsize() == 0, "the sweep to remove them")
    assert r.info("stats")["expired_keys"] == before + 3
