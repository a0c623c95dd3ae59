from __future__ import annotations

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
