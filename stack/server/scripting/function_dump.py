"""FUNCTION DUMP's payload: the libraries' code, versioned and checksummed.

    magic "LFUN" | version u8 | count u32 | count x (u32 length + code) | CRC-32 of all before

Not Redis's RDB blob (a payload goes between ledis-servers); FUNCTION RESTORE refuses anything
whose magic, version, lengths or checksum do not hold, with Redis's error, before it changes
anything.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"LFUN"
VERSION = 1
_HEAD = struct.Struct(">4sBI")
_U32 = struct.Struct(">I")


class BadPayload(ValueError):
    pass


def encode(codes: list[bytes]) -> bytes:
    parts = [_HEAD.pack(MAGIC, VERSION, len(codes))]
    for code in codes:
        parts += (_U32.pack(len(code)), code)
    body = b"".join(parts)
    return body + _U32.pack(zlib.crc32(body))


def decode(payload: bytes) -> list[bytes]:
    """The libraries' code in a payload, or BadPayload."""
    if len(payload) < _HEAD.size + _U32.size:
        raise BadPayload("too short")
    body, (crc,) = payload[:-4], _U32.unpack_from(payload, len(payload) - 4)
    if zlib.crc32(body) != crc:
        raise BadPayload("checksum")
    magic, version, count = _HEAD.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise BadPayload("magic or version")
    pos = _HEAD.size
    codes: list[bytes] = []
    if count > len(body):  # each library takes at least its 4-byte length
        raise BadPayload("count")
    for _ in range(count):
        if pos + 4 > len(body):
            raise BadPayload("truncated")
        (n,) = _U32.unpack_from(body, pos)
        pos += 4
        if pos + n > len(body):
            raise BadPayload("truncated")
        codes.append(body[pos : pos + n])
        pos += n
    if pos != len(body):
        raise BadPayload("trailing bytes")
    return codes
