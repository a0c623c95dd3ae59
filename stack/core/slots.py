"""Redis Cluster key slots: CRC16-XMODEM of the key (or of its ``{hash tag}``) modulo 16384.

This is the one slot function of the project; server, proxy and console all import it.
"""

from __future__ import annotations

from binascii import crc_hqx

SLOT_COUNT = 16384


def crc16(data: bytes) -> int:
    """CRC16-CCITT in its XMODEM form (polynomial 0x1021, initial value 0)."""
    return crc_hqx(data, 0)


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that decides its slot: the first non-empty ``{...}`` or the whole key."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def key_slot(key: bytes) -> int:
    """The slot of ``key``, exactly as Redis Cluster computes it. This is on the path of every
    command (the keyspace calls it for each key it reads or writes), so it stays this short;
    the C fast lane has a copy that tests/test_slots.py holds to it with shared vectors."""
    if 123 in key:  # "{": a hash tag may decide
        key = hash_tag(key)
    return crc_hqx(key, 0) & 0x3FFF
