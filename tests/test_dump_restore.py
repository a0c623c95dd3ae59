"""DUMP / RESTORE round trips for every type; bad payloads change nothing."""

from __future__ import annotations

import redis

BAD = b"-ERR DUMP payload version or checksum are wrong"


def test_round_trip_every_type(r: redis.Redis) -> None:
    r.set("s", "value\x00bin", ex=1000)
    r.hset("h", mapping={"a": "1", "b": "2"})
    r.rpush("l", "x", "y", "x")
    r.sadd("set", "m1", "m2")
    r.zadd("z", {"low": -1.5, "high": float("inf")})
    for key in ("s", "h", "l", "set", "z"):
        payload = r.dump(key)
        assert payload is not None
        r.restore(f"copy-{key}", 0, payload)
        assert r.type(f"copy-{key}") == r.type(key)
    assert r.get("copy-s") == b"value\x00bin" and r.ttl("copy-s") == -1
    assert r.hgetall("copy-h") == {b"a": b"1", b"b": b"2"}
    assert r.lrange("copy-l", 0, -1) == [b"x", b"y", b"x"]
    assert r.smembers("copy-set") == {b"m1", b"m2"}
    assert r.zrange("copy-z", 0, -1, withscores=True) == [(b"low", -1.5), (b"high", float("inf"))]
    r.lpush("copy-l", "new")  # a restored list works like any other
    assert r.lrange("copy-l", 0, 0) == [b"new"]


def test_ttl_replace_and_busykey(r: redis.Redis) -> None:
    r.set("k", "v")
    payload = r.dump("k")
    try:
        r.restore("k", 0, payload)
        raise AssertionError("expected BUSYKEY")
    except redis.ResponseError as e:
        assert str(e) == "BUSYKEY Target key name already exists."
    r.restore("k", 5000, payload, replace=True)
    assert 0 < r.pttl("k") <= 5000
    r.restore("gone", 1, payload, absttl=True)  # 1 ms after the epoch: already expired
    assert r.exists("gone") == 0
    assert r.dump("missing") is None


def test_bad_payloads_are_refused(r: redis.Redis) -> None:
    r.hset("h", "f", "v")
    good = r.dump("h")
    assert good is not None
    for bad in (good[:-1], good[:-4] + b"\x00\x00\x00\x00", b"garbage", b"", good[:10] + good):
        try:
            r.restore("target", 0, bad)
            raise AssertionError(f"accepted {bad!r}")
        except redis.ResponseError as e:
            assert str(e) == BAD[5:].decode()
        assert r.exists("target") == 0
    try:
        r.restore("target", -1, good)
        raise AssertionError("accepted a negative TTL")
    except redis.ResponseError as e:
        assert str(e) == "Invalid TTL value, must be >= 0"
