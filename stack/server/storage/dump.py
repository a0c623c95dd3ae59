"""The DUMP / RESTORE payload: versioned and checksummed (docs/dump-format.md).

    magic "LDMP" | format version u8 | type u8 | body | CRC-32 of everything before (u32 BE)

The body of a string is its value; of a collection, ``count u64`` then ``count`` entries of
``u32 length + bytes`` for the member and, for hashes and sorted sets, for its value (a sorted
set's value is its 8-byte order-preserving score). Lists keep element order.

A *part* (``decode(..., part=True)``) is the same frame holding some of a collection's entries,
or some chunks of a chunked string (type 6: entries of a 4-byte chunk index and at most one
chunk of bytes); a slot migration sends a big key in parts (migrate.py). RESTORE never
accepts type 6.
"""

from __future__ import annotations

import struct
import zlib

from . import keyformat as kf
from .scores import decode_score, encode_score

MAGIC = b"LDMP"
VERSION = 1
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HAS_VALUES = {kf.TYPE_HASH, kf.TYPE_ZSET, kf.TYPE_CHUNKED}
PART_KINDS = (kf.TYPE_HASH, kf.TYPE_LIST, kf.TYPE_SET, kf.TYPE_ZSET, kf.TYPE_CHUNKED)
MAX_PAYLOAD = 512 * 1024 * 1024


class BadPayload(ValueError):
    """A payload RESTORE refuses; changes nothing."""


class BadChecksum(BadPayload):
    """Wrong magic, version or checksum: ``-ERR DUMP payload version or checksum are wrong``."""


class BadFormat(BadPayload):
    """The checksum holds but the content is not a valid object (Redis's deep sanitization,
    ``sanitize-dump-payload yes``, always on here): ``-ERR Bad data format``."""


_STRING_HEAD = MAGIC + bytes([VERSION, kf.TYPE_STRING])
_STRING_HEAD_CRC = zlib.crc32(_STRING_HEAD)


def encode_string(value: bytes) -> bytes:
    """The payload of a string: ``encode(TYPE_STRING, value, [])`` in one step (a slot
    migration encodes many small ones)."""
    return _STRING_HEAD + value + _U32.pack(zlib.crc32(value, _STRING_HEAD_CRC))


def encode(kind: int, value: bytes | None, entries: list[tuple[bytes, bytes]]) -> bytes:
    if kind == kf.TYPE_STRING:
        return encode_string(value or b"")
    parts = [MAGIC, bytes([VERSION, kind]), _U64.pack(len(entries))]
    for member, val in entries:
        parts += (_U32.pack(len(member)), member)
        if kind in _HAS_VALUES:
            parts += (_U32.pack(len(val)), val)
    body = b"".join(parts)
    return body + _U32.pack(zlib.crc32(body))


def decode(
    payload: bytes, part: bool = False
) -> tuple[int, bytes | None, list[tuple[bytes, bytes]]]:
    """(type, string value, collection entries), every byte checked before anything is used.

    BadChecksum for a payload that is not ours or was damaged in transit; BadFormat for one
    whose checksum holds but whose object is not valid: an unknown type, a truncated entry,
    trailing bytes, a count that disagrees with the entries, an empty collection, a member
    twice in a hash, set or sorted set, a score that is not 8 bytes in canonical encoding or is
    NaN."""
    if not part and 10 <= len(payload) <= MAX_PAYLOAD and payload.startswith(_STRING_HEAD):
        # a string (a slot migration's small keys): checked in one step; anything else, or
        # a checksum that does not hold, goes the careful way, which decides (a part is
        # never a string)
        value = payload[6:-4]
        if zlib.crc32(value, _STRING_HEAD_CRC).to_bytes(4, "big") == payload[-4:]:
            return kf.TYPE_STRING, value, []
    return decode_careful(payload, part)


def decode_careful(
    payload: bytes, part: bool = False
) -> tuple[int, bytes | None, list[tuple[bytes, bytes]]]:
    """``decode`` without its fast path for strings (the reference the tests hold it to)."""
    if len(payload) < 10 or len(payload) > MAX_PAYLOAD or payload[:4] != MAGIC:
        raise BadChecksum("magic")
    body, crc = payload[:-4], _U32.unpack(payload[-4:])[0]
    if zlib.crc32(body) != crc or body[4] != VERSION:
        raise BadChecksum("checksum or version")
    kind = body[5]
    if kind not in (PART_KINDS if part else kf.TYPE_NAMES):
        raise BadFormat("unknown type")
    if kind == kf.TYPE_STRING:
        return kind, body[6:], []
    if len(body) < 14:
        raise BadFormat("truncated count")
    count = _U64.unpack_from(body, 6)[0]
    with_values = kind in _HAS_VALUES
    # Each entry takes at least 4 bytes (8 with a value): a claimed count past what the body
    # can hold is refused before any work, whatever it claims.
    if count == 0 or count > (len(body) - 14) // (8 if with_values else 4):
        raise BadFormat("count")
    pos = 14
    entries: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        member, pos = _chunk(body, pos)
        value = b""
        if with_values:
            value, pos = _chunk(body, pos)
        entries.append((member, value))
    if pos != len(body):
        raise BadFormat("trailing bytes")
    if kind != kf.TYPE_LIST and len({member for member, _ in entries}) != len(entries):
        raise BadFormat("duplicate member")
    if kind == kf.TYPE_ZSET:
        for _member, score in entries:
            _check_score(score)
    if kind == kf.TYPE_CHUNKED:
        for index, data in entries:
            if len(index) != 4 or not 0 < len(data) <= kf.STRING_CHUNK:
                raise BadFormat("chunk")
    return kind, None, entries


def _check_score(score: bytes) -> None:
    if len(score) != 8:
        raise BadFormat("score size")
    value = decode_score(score)
    if value != value:
        raise BadFormat("NaN score")
    if encode_score(value) != score:  # -0.0 and other non-canonical encodings
        raise BadFormat("score encoding")


def _chunk(body: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(body):
        raise BadFormat("truncated")
    n = _U32.unpack_from(body, pos)[0]
    end = pos + 4 + n
    if end > len(body):
        raise BadFormat("truncated")
    return body[pos + 4 : end], end
