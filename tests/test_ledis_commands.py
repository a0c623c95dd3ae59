"""LedisDB's own commands, with the replies its documentation gives."""

from __future__ import annotations

import redis

from .respclient import RawClient, parse_reply
from .servers import LedisServer


def call(r: redis.Redis, *args: object) -> object:
    return r.execute_command(*args)


def test_typed_clear_expire_ttl_persist_exists(r: redis.Redis) -> None:
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.rpush("l", "x", "y", "z")
    r.sadd("s", "m")
    r.zadd("z", {"m": 1})
    r.set("str", "v")
    assert call(r, "HKEYEXISTS", "h") == 1 and call(r, "HKEYEXISTS", "str") == 0
    assert call(r, "LKEYEXISTS", "l") == 1 and call(r, "SKEYEXISTS", "l") == 0
    assert call(r, "LEXPIRE", "l", 100) == 1
    assert 99 <= call(r, "LTTL", "l") <= 100
    assert call(r, "LTTL", "nope") == -1 and call(r, "STTL", "s") == -1
    assert call(r, "LPERSIST", "l") == 1 and call(r, "LPERSIST", "l") == 0
    assert call(r, "SEXPIRE", "l", 100) == 0  # l is not a set
    assert call(r, "ZEXPIREAT", "z", 4102444800) == 1 and r.ttl("z") > 0
    assert call(r, "HCLEAR", "h") == 2 and r.exists("h") == 0
    assert call(r, "HCLEAR", "str") == 0 and r.get("str") == b"v"  # other types untouched
    assert call(r, "LMCLEAR", "l", "nope") == 2 and r.exists("l") == 0
    assert call(r, "SCLEAR", "s") == 1 and call(r, "ZCLEAR", "z") == 1


def test_hexpire_fields_form_is_refused_clearly(r: redis.Redis) -> None:
    r.hset("h", "f", "v")
    try:
        call(r, "HEXPIRE", "h", 10, "FIELDS", 1, "f")
        raise AssertionError("accepted per-field HEXPIRE")
    except redis.ResponseError as e:
        assert "per-field expiry" in str(e)
    assert call(r, "HEXPIRE", "h", 10) == 1 and 0 < r.ttl("h") <= 10


def test_ltrim_front_back(r: redis.Redis) -> None:
    r.rpush("l", *"abcdef")
    assert call(r, "LTRIM_FRONT", "l", 2) == 2
    assert call(r, "LTRIM_BACK", "l", 1) == 1
    assert r.lrange("l", 0, -1) == [b"c", b"d", b"e"]
    assert call(r, "LTRIM_BACK", "l", 10) == 3 and r.exists("l") == 0


def test_xscan_family(r: redis.Redis, ledis_server: LedisServer) -> None:
    raw = RawClient(ledis_server.port)
    for i in range(25):
        r.set(f"k{i}", i)
    r.hset("h1", mapping={f"f{i}": i for i in range(12)})
    r.sadd("s1", *[f"m{i}" for i in range(7)])
    r.zadd("z1", {"a": 1, "b": 2})
    keys: list[bytes] = []
    cursor = b""
    for _ in range(20):
        reply = parse_reply(raw.call("XSCAN", "KV", cursor, "COUNT", "10"))
        assert isinstance(reply, list)
        cursor, batch = reply[0], reply[1]
        keys += batch
        if not cursor:
            break
    assert sorted(keys) == sorted(f"k{i}".encode() for i in range(25))
    first = parse_reply(raw.call("XHSCAN", "h1", "", "COUNT", "5"))
    assert isinstance(first, list) and len(first[1]) == 10 and first[0] == b"f2"  # byte order
    rest = parse_reply(raw.call("XHSCAN", "h1", first[0], "COUNT", "100"))
    assert isinstance(rest, list) and rest[0] == b"" and len(rest[1]) == 14
    assert parse_reply(raw.call("XSSCAN", "s1", "m3", "MATCH", "m*")) == [b"", [b"m4", b"m5", b"m6"]]
    assert parse_reply(raw.call("XZSCAN", "z1", "")) == [b"", [b"a", b"1", b"b", b"2"]]
    assert raw.call("XSCAN", "NOPE", "").startswith(b"-ERR invalid data type")


def test_typed_sort(r: redis.Redis) -> None:
    r.rpush("l", 3, 1, 2)
    r.sadd("s", 3, 1, 2)
    assert call(r, "XLSORT", "l") == [b"1", b"2", b"3"]
    assert call(r, "XSSORT", "s", "DESC") == [b"3", b"2", b"1"]
    try:
        call(r, "XLSORT", "s")
        raise AssertionError("XLSORT sorted a set")
    except redis.ResponseError as e:
        assert str(e).startswith("WRONGTYPE")
