"""DUMP / RESTORE round trips for every type; bad payloads change nothing."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.core.resp import encode_command
from stack.server.migrate import restore_request, restore_triple
from stack.server.storage import dump
from stack.server.storage import keyformat as kf

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


# -- the payload's codec, without a server ----------------------------------------------------

_ANY_BYTES = st.binary(max_size=300)


@settings(max_examples=300, deadline=None)
@given(_ANY_BYTES, st.integers(0, 2**40))
def test_string_payloads_fast_paths_match_the_reference(value: bytes, ttl: int) -> None:
    """``encode_string`` and ``decode``'s fast path for strings (a slot migration's small
    keys) agree byte for byte with the generic encoder and the careful decoder, damaged
    payloads included; a SLOTSRESTORE built key by key is the request encode_command makes."""
    payload = dump.encode_string(value)
    parts = [dump.MAGIC, bytes([dump.VERSION, kf.TYPE_STRING]), value]
    body = b"".join(parts)
    assert payload == body + zlib.crc32(body).to_bytes(4, "big")
    assert payload == dump.encode(kf.TYPE_STRING, value, [])
    assert dump.decode(payload) == dump.decode_careful(payload) == (kf.TYPE_STRING, value, [])
    with pytest.raises(dump.BadFormat):  # a part is never a string
        dump.decode(payload, part=True)
    damaged = [payload[:-1], payload + b"x", payload[:6] + b"x" + payload[6:]]
    damaged += [
        payload[:i] + bytes([payload[i] ^ 1]) + payload[i + 1 :] for i in range(len(payload))
    ]
    for bad in damaged:
        assert _outcome(dump.decode, bad) == _outcome(dump.decode_careful, bad)
    key = value[:20] or b"k"
    request = restore_request([restore_triple(key, ttl, payload), restore_triple(b"k2", 0, b"")])
    assert request == encode_command([b"SLOTSRESTORE", key, b"%d" % ttl, payload, b"k2", b"0", b""])


_ENTRY = st.binary(max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([kf.TYPE_HASH, kf.TYPE_LIST, kf.TYPE_SET, kf.TYPE_ZSET]),
    st.lists(st.tuples(_ENTRY, _ENTRY), max_size=20),
)
def test_collection_payloads_decode_as_before(
    kind: int, entries: list[tuple[bytes, bytes]]
) -> None:
    """Collections never take the string fast path: decode is the careful decoder."""
    payload = dump.encode(kind, None, entries)
    for part in (False, True):
        assert _outcome(dump.decode, payload, part) == _outcome(dump.decode_careful, payload, part)


def _outcome(decode: Callable[[bytes, bool], object], payload: bytes, part: bool = False) -> object:
    try:
        return decode(payload, part)
    except dump.BadPayload as e:
        return type(e)
