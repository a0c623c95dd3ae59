"""No argument makes the server loop, allocate or reply without bound (issue 9, first part).

Each finding against Redis in the same run where the reply is Redis's (the ``pair`` fixture:
RESP2, RESP3 and the Python path); where Redis 7.0 itself loops without bound, ledis refuses
at once and goes on serving everyone.
"""

from __future__ import annotations

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer
from .test_differential import Cmd, Pair, pair  # noqa: F401  (pair: the fixture)

LONG_MIN = "-9223372036854775808"
LONG_MAX = "9223372036854775807"


def _rss(port: int) -> int:
    info = RawClient(port).call("INFO", "memory")
    return int(info.split(b"used_memory_rss:")[1].split(b"\r\n")[0])


RANDOM_COUNTS: list[Cmd] = [
    ("HSET", "h", "a", "1", "b", "2"), ("SADD", "s", "a", "b"), ("ZADD", "z", "1", "a", "2", "b"),
    ("HRANDFIELD", "h", LONG_MIN), ("HRANDFIELD", "h", LONG_MIN, "WITHVALUES"),
    ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
    ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
    ("HRANDFIELD", "h", LONG_MAX, "WITHVALUES"), ("HRANDFIELD", "nohash", LONG_MIN),
    ("HRANDFIELD", "h", LONG_MIN, "WITHSCORES"), ("HRANDFIELD", "h", "x", "FOO"),
    ("SRANDMEMBER", "s", LONG_MIN), ("SRANDMEMBER", "s", "-9223372036854775809"),
    ("SRANDMEMBER", "noset", LONG_MIN), ("SRANDMEMBER", "s", LONG_MIN, "x"),
    ("ZRANDMEMBER", "z", LONG_MIN), ("ZRANDMEMBER", "z", LONG_MIN, "WITHSCORES"),
    ("ZRANDMEMBER", "z", "4611686018427387904", "WITHSCORES"),
    ("ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"),
    ("SPOP", "s", LONG_MIN), ("SPOP", "s", "-1"), ("SPOP", "noset", "x"), ("SCARD", "s"),
    ("HSET", "h1", "a", "1"), ("SADD", "s1", "a"), ("ZADD", "z1", "1", "a"),
    ("HRANDFIELD", "h1", "-3"), ("HRANDFIELD", "h1", "-2", "WITHVALUES"),
    ("SRANDMEMBER", "s1", "-5"), ("ZRANDMEMBER", "z1", "-4"), ("ZRANDMEMBER", "z1", "-2", "WITHSCORES"),
]


def test_random_member_counts_at_the_edges_match_redis(pair: Pair) -> None:  # noqa: F811
    pair.run(RANDOM_COUNTS)


@pytest.mark.parametrize(
    "command",
    [("HRANDFIELD", "h", "-9223372036854775807"), ("HRANDFIELD", "h", "-2147483648", "WITHVALUES"),
     ("SRANDMEMBER", "s", "-9223372036854775807"), ("SRANDMEMBER", "s", "-2147483648"),
     ("ZRANDMEMBER", "z", "-2147483648", "WITHSCORES"), ("ZRANDMEMBER", "z", "-2147483648")],
)
def test_counts_redis_loops_on_are_refused_at_once(r: redis.Redis, ledis_server: LedisServer,
                                                   command: tuple[str, ...]) -> None:
    """Redis 7.0 builds these replies until memory runs out (5.6 GB after 13 minutes here);
    ledis refuses before any work, by the reply's size against the output buffer limit."""
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.sadd("s", "a", "b")
    r.zadd("z", {"a": 1, "b": 2})
    before = _rss(ledis_server.port)
    c = RawClient(ledis_server.port, timeout=10)
    reply = c.call(*command)
    assert reply.startswith(b"-ERR value is out of range, the reply would exceed"), reply
    assert RawClient(ledis_server.port, timeout=10).call("PING") == b"+PONG\r\n"
    assert _rss(ledis_server.port) - before < 50 * 1024 * 1024


def test_repeated_picks_are_bounded_by_the_output_limit(fresh_server: LedisServer) -> None:
    """A count whose reply fits is answered whole (streamed in slices); one that does not fit
    the client's output buffer limit is refused; the limit follows CONFIG SET."""
    fresh_server.extra += ["--client-output-buffer-limit", "normal 2mb 0 0"]
    fresh_server.start()
    c = fresh_server.client()
    c.sadd("s", "a", "b", "c")
    c.hset("h", mapping={"f": "v"})
    assert len(c.srandmember("s", -200_000)) == 200_000  # 7 bytes each: 1.4 MB
    assert set(c.srandmember("s", -1000)) == {b"a", b"b", b"c"}
    picks = c.hrandfield("h", -1000, withvalues=True)
    assert len(picks) == 2000 and set(picks) == {b"f", b"v"}
    with pytest.raises(redis.ResponseError, match="value is out of range, the reply would"):
        c.srandmember("s", -400_000)  # 2.8 MB
    with pytest.raises(redis.ResponseError, match="value is out of range, the reply would"):
        c.hrandfield("h", -200_000, withvalues=True)
    c.config_set("client-output-buffer-limit", "normal 8mb 0 0")
    assert len(c.srandmember("s", -400_000)) == 400_000
    resp3 = redis.Redis(port=fresh_server.port, protocol=3)
    pairs = resp3.zrandmember("nozset", -5, withscores=True)
    assert pairs == []
    resp3.zadd("z", {"m": 1.5})
    assert resp3.zrandmember("z", -3, withscores=True) == [[b"m", 1.5]] * 3


NUMBERS: list[Cmd] = [
    # long doubles: Redis reads hex, and 1e400 or 1e-400 fit a long double (not a double)
    ("INCRBYFLOAT", "f", "1e400"), ("INCRBYFLOAT", "f", "-1e400"), ("INCRBYFLOAT", "g", "0x10"),
    ("INCRBYFLOAT", "g", "1e-400"), ("INCRBYFLOAT", "g", "0x1p-16440"),
    ("INCRBYFLOAT", "g", "1e-99999999999999999"), ("INCRBYFLOAT", "g", "1e99999999999999999"),
    ("INCRBYFLOAT", "g", "9" * 5119), ("INCRBYFLOAT", "g", "9" * 5120), ("INCRBYFLOAT", "g", "1e4932"),
    ("INCRBYFLOAT", "g", "1.18e4932"), ("INCRBYFLOAT", "g", "1.19e4932"), ("INCRBYFLOAT", "g", "0x"),
    ("INCRBYFLOAT", "g", "1e"), ("INCRBYFLOAT", "g", "infinity"), ("INCRBYFLOAT", "g", "nan"),
    ("INCRBYFLOAT", "g", "-0"), ("INCRBYFLOAT", "g", ".5"), ("INCRBYFLOAT", "g", "5."),
    ("INCRBYFLOAT", "g", "1\x00"), ("SET", "big", "1" + "0" * 4000), ("INCRBYFLOAT", "big", "1"),
    ("HINCRBYFLOAT", "h", "f", "1e400"), ("HINCRBYFLOAT", "h", "f", "inf"),
    ("HINCRBYFLOAT", "h", "f", "0x10"), ("HGET", "h", "f"),
    # doubles (strtod): hex yes, overflow and underflow to zero no, "inf" yes
    ("ZADD", "z", "0x10", "a"), ("ZADD", "z", "1e400", "b"), ("ZADD", "z", "1e-400", "b"),
    ("ZADD", "z", "5e-324", "c"), ("ZADD", "z", "-inf", "d"), ("ZADD", "z", "0X1P4", "e"),
    ("ZSCORE", "z", "a"), ("ZSCORE", "z", "c"), ("ZINCRBY", "z", "0x.8p1", "a"),
    ("ZRANGEBYSCORE", "z", "1e400", "inf"), ("ZRANGEBYSCORE", "z", "", "(1e400"),
    ("ZRANGEBYSCORE", "z", " 16", "+inf"), ("ZCOUNT", "z", "(", "inf"),
    ("ZRANGEBYSCORE", "z", "nan", "1"), ("ZRANGEBYSCORE", "z", "1x", "1"),
    ("ZADD", "w", "1", "x"), ("ZUNIONSTORE", "u", "1", "w", "WEIGHTS", "0x10"), ("ZSCORE", "u", "x"),
    ("ZUNIONSTORE", "u", "1", "w", "WEIGHTS", "1e400"),
    # the int64 edges of expiry arithmetic
    ("SET", "k", "v", "EX", "9223372036854775"), ("SET", "k", "v", "EX", "9223372036854776"),
    ("SET", "k", "v", "PX", LONG_MAX), ("SET", "k", "v", "EXAT", "9223372036854775"),
    ("SET", "k", "v", "PXAT", LONG_MAX), ("EXPIRETIME", "k"), ("EXPIRE", "k", "9223372036854775"),
    ("EXPIRE", "k", "9223372036854776"), ("EXPIRE", "k", "-9223372036854775"),
    ("PEXPIRE", "k", LONG_MAX), ("PEXPIREAT", "k", LONG_MAX), ("EXPIREAT", "k", LONG_MIN),
    ("EXISTS", "k"), ("SET", "k", "v"), ("GETEX", "k", "EX", "9223372036854776"),
    ("GETEX", "k", "PXAT", LONG_MAX), ("EXPIRETIME", "k"), ("SETEX", "k", "9223372036854776", "v"),
    ("PSETEX", "k", LONG_MAX, "v"), ("RESTORE", "k", LONG_MAX, "x"),
    ("SET", "k", "v", "PXAT", "4102444800600"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
    ("SET", "k", "v", "PXAT", "4102444800400"), ("EXPIRETIME", "k"),
    # counters
    ("SET", "c", LONG_MAX), ("INCR", "c"), ("INCRBY", "c", LONG_MIN), ("DECRBY", "c", LONG_MIN),
    ("INCRBY", "c", "9223372036854775808"), ("HINCRBY", "h", "n", LONG_MAX), ("HINCRBY", "h", "n", "1"),
    # offsets
    ("SETRANGE", "s", "536870912", "x"), ("SETRANGE", "s", "536870911", "xy"),
    ("SETRANGE", "s", "-1", "x"), ("SETBIT", "s", "4294967296", "1"), ("GETBIT", "s", LONG_MAX),
    ("BITFIELD", "s", "GET", "u8", "#9223372036854775807"), ("BITFIELD", "s", "GET", "I8", "0"),
    ("BITFIELD", "s", "GET", "u08", "0"), ("BITFIELD", "s", "GET", "u8", "#2305843009213693953"),
    ("BITCOUNT", "s", "-1", "-2", "FOO"), ("BITPOS", "nos", "1", "x", "y", "z", "w", "v"),
    ("GETRANGE", "s", LONG_MIN, LONG_MAX), ("LPOS", "l", "a", "RANK", LONG_MIN),
    ("RPUSH", "l", "a", "b", "a"), ("LPOS", "l", "a", "RANK", LONG_MIN, "COUNT", "1"),
    ("LPOS", "l", "a", "FOO", "x"), ("LRANGE", "l", LONG_MIN, LONG_MAX),
    ("SORT", "l", "ALPHA", "LIMIT", "1", LONG_MAX), ("SORT", "l", "ALPHA", "LIMIT", "0", LONG_MAX),
    ("SORT", "l", "ALPHA", "LIMIT", LONG_MIN, "1"), ("SCAN", "18446744073709551616"),
    ("SCAN", "-", "COUNT", LONG_MAX), ("SCAN", " 0"),
]


def test_numeric_edges_match_redis(pair: Pair) -> None:  # noqa: F811
    pair.run(NUMBERS)


def test_timeouts_at_the_edges_match_redis(pair: Pair) -> None:  # noqa: F811
    """A long double too big for a C long long turns negative ("timeout is negative"); a
    number of seconds past the int64 range of milliseconds is accepted (and pops at once
    from a list that has something)."""
    pair.run([
        ("RPUSH", "full", "a", "b"), ("BLPOP", "full", "9223372036854775"),
        ("BRPOP", "empty", "1e400"), ("BLMOVE", "empty", "x", "LEFT", "LEFT", "inf"),
        ("BZPOPMIN", "empty", "-0.002"), ("BLPOP", "empty", "nan"), ("BLPOP", "empty", "0x"),
        ("BRPOP", "full", "0x10"), ("WAIT", "0", LONG_MAX), ("WAIT", "x", "-1"),
        ("WAIT", "0", "1.5"), ("BLPOP", "full", "9223372036854775807"),
    ])


def test_a_deadline_past_int64_waits_until_served(r: redis.Redis,
                                                  ledis_server: LedisServer) -> None:
    """Redis 7.0 wraps such a deadline to a negative one and never reaches it: the client
    waits until a push serves it, here too."""
    c = RawClient(ledis_server.port, timeout=10)
    c.send(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nempty\r\n$16\r\n9223372036854775\r\n")
    assert c.quiet_read(0.3) == b""  # still waiting
    assert RawClient(ledis_server.port).call("RPUSH", "empty", "x") == b":1\r\n"
    assert c.read_reply() == b"*2\r\n$5\r\nempty\r\n$1\r\nx\r\n"


def test_pathological_numbers_cost_nothing(r: redis.Redis, ledis_server: LedisServer) -> None:
    """Exponents of any length and values at the limits are judged by their order of
    magnitude, so none of them makes the server compute for long: each answers (within the
    clients' 10 s deadline) and another client is served after each."""
    c = RawClient(ledis_server.port, timeout=10)
    for text in ("1e-" + "9" * 5000, "1e" + "9" * 5000, "0x1p-" + "9" * 5000,
                 "0." + "0" * 5000 + "1", "1" * 5000, "1e-" + "9" * 100_000):
        for cmd in (("INCRBYFLOAT", "f", text), ("ZADD", "z", text, "m"),
                    ("BLPOP", "nolist", text), ("ZRANGEBYSCORE", "z", text, "+inf")):
            assert c.call(*cmd)[:1] in (b"-", b"$", b":", b"*")
            assert RawClient(ledis_server.port, timeout=10).call("PING") == b"+PONG\r\n"


def test_lcs_up_to_redis_bound_matches_redis(pair: Pair) -> None:  # noqa: F811
    """LCS computes what Redis computes, up to Redis's own bound (a table of 4-byte cells
    within proto-max-bulk-len), quickly (a bit-parallel table, not a Python loop per cell)."""
    import random

    rng = random.Random(9)
    a = "".join(rng.choice("acgt") for _ in range(11_000))
    b = "".join(rng.choice("acgt") for _ in range(10_000))
    pair.run([
        ("SET", "a", a), ("SET", "b", b), ("LCS", "a", "b", "LEN"), ("LCS", "a", "b"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "12", "WITHMATCHLEN"),
        ("SET", "c", "x" * 11_585), ("LCS", "c", "c", "LEN"), ("LCS", "c", "a", "LEN"),
    ])
