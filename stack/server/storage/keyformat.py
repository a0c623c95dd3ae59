"""The binary layout of everything ledis-server keeps in LevelDB (see docs/storage-format.md).

Every LevelDB key starts with a one-byte namespace:

    0x00 system     0x00 'V'                         -> format version (u32)
                    0x00 'M'                         -> logical db -> physical db map
                    0x00 'N'                         -> next physical db id (u32)
                    0x00 'C' phys(4)                 -> key count, expiring-key count (u64, u64)
                    0x00 'D' phys(4)                 -> a dropped physical db being reclaimed
                    0x00 'G'                         -> last collection version (u64)
                    0x00 'S' phys(4) slot(2) klen(4) key version(8)
                                                     -> stale sub-keys waiting to be reclaimed
                    0x00 'I' phys(4) slot(2) klen(4) key version(8)
                                                     -> a key arriving in parts (staging)
                    0x00 'P'                         -> the node's slot map (JSON)
                    0x00 'F' name                    -> a function library's code
    0x01 metadata   phys(4) slot(2) key              -> one record per key (below)
    0x02 sub-keys   phys(4) slot(2) klen(4) key version(8) member -> collection members
    0x03 expiry     expire_ms(8) phys(4) slot(2) key -> time-ordered expiry index (empty value)

All integers are big-endian so byte order is numeric order. ``phys`` is a physical database id:
a logical database (SELECT n) maps to one, so SWAPDB and FLUSHDB only rewrite the map, and a
flushed physical database is reclaimed in the background.

A metadata value starts with a type byte whose high bit says whether an ``expire_ms(8)`` field
follows; then, for strings, the value itself, and for collections ``version(8) size(8)`` and
type-specific fields. So a string without TTL is one byte plus its value, and whether a record
can expire is known from its first byte.

A string written whole longer than ``STRING_INLINE_MAX``, or grown by partial writes past
``STRING_EDIT_MAX``, is a *chunked string* (type 6, reported as a string; never shorter than
``STRING_CHUNK`` + 1):
its record holds ``version(8) length(8)`` like a collection's, and its bytes live in sub-keys
``... version chunk-index(4)`` of ``STRING_CHUNK`` bytes each; a chunk may be shorter or missing,
and what it lacks reads as zeros (see ``strings.py``).
"""

from __future__ import annotations

import struct

from stack.core.slots import SLOT_COUNT, key_slot

FORMAT_VERSION = 2
# Formats this server opens: format 1 is format 2 without chunked strings, so its data dirs are
# used as they are (the version record is rewritten on open).
READABLE_FORMATS = (1, 2)

NS_SYSTEM = b"\x00"
NS_META = b"\x01"
NS_SUB = b"\x02"
NS_EXPIRE = b"\x03"

SYS_VERSION = b"\x00V"
SYS_DB_MAP = b"\x00M"
SYS_NEXT_DB = b"\x00N"
SYS_COUNTS = b"\x00C"
SYS_DROPPED = b"\x00D"
SYS_STALE = b"\x00S"
SYS_VERSION_COUNTER = b"\x00G"
SYS_LAST_LOG = b"\x00L"
SYS_STAGING = b"\x00I"  # + the tail of a SYS_STALE entry: a version being filled by a move
SYS_SLOT_MAP = b"\x00P"
SYS_FUNCTIONS = b"\x00F"  # + library name -> its code (Redis 7 functions)

TYPE_STRING = 1
TYPE_HASH = 2
TYPE_LIST = 3
TYPE_SET = 4
TYPE_ZSET = 5
TYPE_CHUNKED = 6  # a string kept in chunks: a string to every command

TYPE_NAMES = {
    TYPE_STRING: "string",
    TYPE_HASH: "hash",
    TYPE_LIST: "list",
    TYPE_SET: "set",
    TYPE_ZSET: "zset",
}
TYPE_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}

STRING_CHUNK = 4096  # bytes per chunk of a chunked string
# A value written whole (SET, MSET, GETSET, RESTORE, BITOP ...) of at most this many bytes stays
# in its record: one LevelDB read and write, and the C lane's. Longer ones are chunked.
STRING_INLINE_MAX = 16 * STRING_CHUNK
# A write into part of a value (APPEND, SETRANGE, SETBIT, BITFIELD) keeps it in its record only
# while it stays within this; past it the value becomes chunked, so that each later partial write
# costs the chunks it touches, not the whole value (a value built by APPENDs stays linear).
STRING_EDIT_MAX = STRING_CHUNK
CHUNK_INDEX = struct.Struct(">I")

TTL_FLAG = 0x80
TYPE_MASK = 0x7F
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
COUNTS = struct.Struct(">QQ")

SLOT_BYTES = tuple(s.to_bytes(2, "big") for s in range(SLOT_COUNT))
_KIND = tuple(TYPE_STRING if b & TYPE_MASK == TYPE_CHUNKED else b & TYPE_MASK for b in range(256))
_STRING = bytes([TYPE_STRING])
_STRING_TTL = bytes([TYPE_STRING | TTL_FLAG])


def phys_bytes(phys: int) -> bytes:
    return U32.pack(phys)


def meta_prefix(phys: int) -> bytes:
    """The prefix of every metadata key of a physical database."""
    return NS_META + U32.pack(phys)


def sub_prefix(phys: int) -> bytes:
    return NS_SUB + U32.pack(phys)


def meta_key(prefix: bytes, key: bytes) -> bytes:
    """``prefix`` is ``meta_prefix(phys)``."""
    return prefix + SLOT_BYTES[key_slot(key)] + key


def user_key(mkey: bytes) -> bytes:
    """The user's key from a metadata key."""
    return mkey[7:]


def slot_of_meta_key(mkey: bytes) -> int:
    return (mkey[5] << 8) | mkey[6]


def string_value(value: bytes, expire_ms: int = 0) -> bytes:
    """The metadata record of a string."""
    if not expire_ms:
        return _STRING + value
    return _STRING_TTL + U64.pack(expire_ms) + value


def rtype(record: bytes) -> int:
    """The type of a metadata record as commands see it (a chunked string is a string)."""
    return _KIND[record[0]]


def raw_type(record: bytes) -> int:
    """The type code stored in a metadata record (TYPE_CHUNKED for a chunked string)."""
    return record[0] & TYPE_MASK


def is_chunked(record: bytes) -> bool:
    return record[0] & TYPE_MASK == TYPE_CHUNKED


def has_members(record: bytes) -> bool:
    """Whether the record's data lives in versioned sub-keys (collections, chunked strings)."""
    return record[0] & TYPE_MASK != TYPE_STRING


def expire_of(record: bytes) -> int:
    """The expiry time (unix ms) of a metadata record, 0 if none."""
    return U64.unpack_from(record, 1)[0] if record[0] & TTL_FLAG else 0  # type: ignore[no-any-return]


def body(record: bytes) -> bytes:
    """What follows the header: a string's value, or a collection's version and size."""
    return record[9:] if record[0] & TTL_FLAG else record[1:]


def with_expire(record: bytes, expire_ms: int) -> bytes:
    """The same metadata record with another expiry time (0 removes it)."""
    kind = record[0] & TYPE_MASK
    if expire_ms:
        return bytes([kind | TTL_FLAG]) + U64.pack(expire_ms) + body(record)
    return bytes([kind]) + body(record)


def expire_key(expire_ms: int, mkey: bytes) -> bytes:
    """The expiry-index entry of a key (``mkey`` is its metadata key)."""
    return NS_EXPIRE + U64.pack(expire_ms) + mkey[1:]


def meta_key_from_expire_key(ekey: bytes) -> tuple[int, bytes]:
    return U64.unpack_from(ekey, 1)[0], NS_META + ekey[9:]


def slot_prefix(phys: int, slot: int) -> bytes:
    """The prefix of every metadata key of one slot of a physical database."""
    return NS_META + U32.pack(phys) + SLOT_BYTES[slot]


def version_tail(mkey: bytes, version: int) -> bytes:
    """``phys slot klen key version``: what a SYS_STALE or SYS_STAGING entry carries after its
    tag, and what the members of that version of the key start with after NS_SUB."""
    key = mkey[7:]
    return mkey[1:7] + U32.pack(len(key)) + key + U64.pack(version)


def counts_key(phys: int) -> bytes:
    return SYS_COUNTS + U32.pack(phys)


def dropped_key(phys: int) -> bytes:
    return SYS_DROPPED + U32.pack(phys)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("prefix has no upper bound")
    return stripped[:-1] + bytes([stripped[-1] + 1])
