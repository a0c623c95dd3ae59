"""The DUMP / RESTORE payload: versioned and checksummed (docs/dump-format.md).

    magic "LDMP" | format version u8 | type u8 | body | CRC-32 of everything before (u32 BE)

The body of a string is its value; of a collection, ``count u64`` then ``count`` entries of
``u32 length + bytes`` for the member and, for hashes and sorted sets, for its value (a sorted
set's value is its 8-byte order-preserving score). Lists keep element order.
"""

from __future__ import annotations

import struct
import zlib

from . import keyformat as kf

MAGIC = b"LDMP"
VERSION = 1
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HAS_VALUES = {kf.TYPE_HASH, kf.TYPE_ZSET}
MAX_PAYLOAD = 512 * 1024 * 1024


class BadPayload(ValueError):
    pass


def encode(kind: int, value: bytes | None, entries: list[tuple[bytes, bytes]]) -> bytes:
    parts = [MAGIC, bytes([VERSION, kind])]
    if kind == kf.TYPE_STRING:
        parts.append(value or b"")
    else:
        parts.append(_U64.pack(len(entries)))
        for member, val in entries:
            parts += (_U32.pack(len(member)), member)
            if kind in _HAS_VALUES:
                parts += (_U32.pack(len(val)), val)
    body = b"".join(parts)
    return body + _U32.pack(zlib.crc32(body))


def decode(payload: bytes) -> tuple[int, bytes | None, list[tuple[bytes, bytes]]]:
    """(type, string value, collection entries); BadPayload unless every byte checks out."""
    if len(payload) < 10 or len(payload) > MAX_PAYLOAD or payload[:4] != MAGIC:
        raise BadPayload("magic")
    body, crc = payload[:-4], _U32.unpack(payload[-4:])[0]
    if zlib.crc32(body) != crc or body[4] != VERSION:
        raise BadPayload("checksum or version")
    kind = body[5]
    if kind not in kf.TYPE_NAMES:
        raise BadPayload("type")
    if kind == kf.TYPE_STRING:
        return kind, body[6:], []
    if len(body) < 14:
        raise BadPayload("truncated")
    count = _U64.unpack_from(body, 6)[0]
    pos = 14
    entries: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        member, pos = _chunk(body, pos)
        value = b""
        if kind in _HAS_VALUES:
            value, pos = _chunk(body, pos)
        entries.append((member, value))
    if pos != len(body):
        raise BadPayload("trailing bytes")
    return kind, None, entries


def _chunk(body: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(body):
        raise BadPayload("truncated")
    n = _U32.unpack_from(body, pos)[0]
    end = pos + 4 + n
    if end > len(body):
        raise BadPayload("truncated")
    return body[pos + 4 : end], end
