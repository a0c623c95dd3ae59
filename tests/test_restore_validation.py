"""RESTORE validates the whole object before writing anything (Redis's sanitize-dump-payload).

Corrupt payloads whose checksum holds answer Redis's ``-ERR Bad data format`` and leave the
keyspace as it was; the order of RESTORE's checks and its error texts are held to the real
redis-server.
"""

from __future__ import annotations

import pytest
import redis

from fuzz.seeds import dump_payloads
from stack.core import errors

from .respclient import RawClient
from .servers import LedisServer, RedisServer

BAD_FORMAT = b"-" + errors.BAD_DATA_FORMAT.encode() + b"\r\n"
PAYLOADS = dump_payloads()
CORRUPT = [
    name
    for name in PAYLOADS
    if name not in ("string", "hash", "list", "set", "zset")
]


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_payload_is_refused_and_changes_nothing(r: redis.Redis, ledis_server: LedisServer, name: str) -> None:
    c = RawClient(ledis_server.port)
    payload = PAYLOADS[name]
    assert c.call("RESTORE", "fresh", "0", payload) == BAD_FORMAT
    assert c.call("EXISTS", "fresh") == b":0\r\n"
    assert c.call("SET", "old", "value") == b"+OK\r\n"
    assert c.call("RESTORE", "old", "0", payload, "REPLACE") == BAD_FORMAT
    assert c.call("GET", "old") == b"$5\r\nvalue\r\n"
    assert c.call("DBSIZE") == b":1\r\n"


def test_duplicated_hash_field_from_the_issue(r: redis.Redis, ledis_server: LedisServer) -> None:
    """Before: HLEN 2 with one field, and EXISTS 1 on an empty hash after HDEL."""
    c = RawClient(ledis_server.port)
    assert c.call("RESTORE", "h", "0", PAYLOADS["hash-duplicate-field"]) == BAD_FORMAT
    assert c.call("HLEN", "h") == b":0\r\n"
    assert c.call("EXISTS", "h") == b":0\r\n"


@pytest.mark.parametrize("name", ["string", "hash", "list", "set", "zset"])
def test_valid_payloads_round_trip(r: redis.Redis, ledis_server: LedisServer, name: str) -> None:
    c = RawClient(ledis_server.port)
    assert c.call("RESTORE", "k", "0", PAYLOADS[name]) == b"+OK\r\n"
    dumped = c.call("DUMP", "k")
    assert dumped == b"$%d\r\n%b\r\n" % (len(PAYLOADS[name]), PAYLOADS[name])


def test_bad_checksum(r: redis.Redis, ledis_server: LedisServer) -> None:
    payload = bytearray(PAYLOADS["hash"])
    payload[8] ^= 1
    c = RawClient(ledis_server.port)
    assert c.call("RESTORE", "k", "0", bytes(payload)) == (
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    )


def test_restore_checks_and_texts_as_redis(
    r: redis.Redis, real: redis.Redis, ledis_server: LedisServer, redis_server: RedisServer
) -> None:
    ours, theirs = RawClient(ledis_server.port), RawClient(unix=str(redis_server.socket))
    garbage = b"\xff" + b"\x0a\x00" + b"\x00" * 8  # no object, an RDB-like footer
    for c in (ours, theirs):
        c.call("SET", "taken", "v")
    calls = [
        ("RESTORE", "taken", "0", garbage),  # BUSYKEY comes before the payload
        ("RESTORE", "taken", "-1", garbage, "REPLACE"),  # then the TTL
        ("RESTORE", "new", "-1", garbage),
        ("RESTORE", "new", "0", b"short"),  # then the checksum
        ("RESTORE", "new", "0", garbage),
    ]
    for call in calls:
        assert ours.call(*call) == theirs.call(*call), call
    # With its checksum check off, Redis reaches the object and gives the text we give.
    assert theirs.call("DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1") == b"+OK\r\n"
    try:
        assert theirs.call("RESTORE", "new", "0", garbage) == BAD_FORMAT
    finally:
        theirs.call("DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0")
