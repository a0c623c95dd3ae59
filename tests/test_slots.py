from __future__ import annotations

import pytest

from stack.core.slots import crc16, hash_tag, key_slot

from .respclient import RawClient
from .servers import LedisServer


def test_crc16_xmodem_vector() -> None:
    assert crc16(b"123456789") == 0x31C3


def test_hash_tags() -> None:
    assert key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert hash_tag(b"foo{}{bar}") == b"foo{}{bar}"
    assert hash_tag(b"foo{{bar}}zap") == b"{bar"
    assert hash_tag(b"foo{bar}{zap}") == b"bar"
    assert key_slot(b"foo") == 12182
    assert key_slot(b"") == 0


def test_cluster_keyslot_matches(ledis_server: LedisServer) -> None:
    # Reference slots as Redis Cluster documents and computes them.
    c = RawClient(ledis_server.port)
    for key, slot in [(b"foo", 12182), (b"bar", 5061), (b"{user1000}.following", 3443),
                      (b"somekey", 11058), (b"123456789", 12739)]:
        assert c.call("CLUSTER", "KEYSLOT", key) == b":%d\r\n" % slot
        assert key_slot(key) == slot
    c.close()


# Shared vectors for every copy of the slot function: (key, slot) as Redis Cluster computes it
# (the reference values of its documentation and of CLUSTER KEYSLOT), hash tags included.
VECTORS = [
    (b"", 0),
    (b"foo", 12182),
    (b"bar", 5061),
    (b"somekey", 11058),
    (b"123456789", 12739),
    (b"{user1000}.following", 3443),
    (b"{user1000}.followers", 3443),
    (b"user1000", 3443),
    (b"foo{}{bar}", key_slot(b"foo{}{bar}")),  # an empty tag: the whole key
    (b"foo{{bar}}zap", key_slot(b"{bar")),  # the tag is "{bar"
    (b"foo{bar}{zap}", key_slot(b"bar")),  # the first tag only
    (b"{", key_slot(b"{")),
    (b"}{", key_slot(b"}{")),
    (b"a{b", key_slot(b"a{b")),  # no closing brace: the whole key
    (b"{}", key_slot(b"{}")),
    (b"\x00\xff{\x00}", key_slot(b"\x00")),
]


def test_vectors_of_the_python_function() -> None:
    assert key_slot(b"user1000") == 3443
    for key, slot in VECTORS:
        assert key_slot(key) == slot, key
        assert key_slot(key) == crc16(hash_tag(key)) % 16384, key


def test_the_c_lane_computes_the_same_slots() -> None:
    """_fastlane.c keeps its own copy of the slot function (it builds metadata keys without
    calling Python): it must agree with stack.core.slots on the shared vectors and on many
    generated keys, braces included."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from stack.server.accel import ext

    if ext is None:
        pytest.skip("the C fast lane is not built")
    for key, slot in VECTORS:
        assert ext.slot(key) == slot, key

    @settings(max_examples=2000, deadline=None)
    @given(st.binary(max_size=40) | st.text("{}ab", max_size=12).map(str.encode))
    def same(key: bytes) -> None:
        assert ext.slot(key) == key_slot(key)

    same()
