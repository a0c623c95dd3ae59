"""Binlog records as readable operations (``HSET k f v``), for the binlog reader and DEBUG."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import keyformat as kf
from .binlog import Record
from .scores import decode_score, format_score

_MEMBER_OPS = {
    kf.TYPE_HASH: ("HSET", "HDEL"),
    kf.TYPE_SET: ("SADD", "SREM"),
    kf.TYPE_LIST: ("LSET", "LREM"),
    kf.TYPE_ZSET: ("ZADD", "ZREM"),
}


SHOW_MAX = 256  # longer values are shown by their start and length


def _show(b: bytes) -> str:
    if len(b) > SHOW_MAX:
        return _show(b[:64]) + f"...(+{len(b) - 64} bytes)"
    text = b.decode("utf-8", "backslashreplace")
    if not text or any(ch.isspace() or ch in "\"'" for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _split_sub(key: bytes) -> tuple[bytes, bytes, bytes]:
    """(metadata key, version bytes, member) of a collection sub-key."""
    klen = kf.U32.unpack_from(key, 7)[0]
    user = key[11 : 11 + klen]
    mkey = kf.NS_META + key[1:7] + user
    return mkey, key[11 + klen : 19 + klen], key[19 + klen :]


def describe(record: Record, type_of: Callable[[bytes], int | None]) -> Iterator[str]:
    """One line per logical change; ``type_of(meta_key)`` tells a key's type when the record
    does not (a field overwritten in place changes no metadata)."""
    types = {k: kf.raw_type(v) for k, v in record.changes if k[:1] == kf.NS_META and v}
    for key, value in record.changes:
        ns = key[:1]
        if ns == kf.NS_META:
            user = _show(kf.user_key(key))
            if value is None:
                yield f"DEL {user}"
            elif kf.raw_type(value) == kf.TYPE_STRING:
                expire = kf.expire_of(value)
                tail = f" PXAT {expire}" if expire else ""
                yield f"SET {user} {_show(kf.body(value))}{tail}"
            else:
                kind_name = kf.TYPE_NAMES[kf.rtype(value)]
                if kf.is_chunked(value):
                    kind_name += " (chunked)"
                size = kf.U64.unpack_from(kf.body(value), 8)[0]
                expire = kf.expire_of(value)
                tail = f" PXAT {expire}" if expire else ""
                yield f"META {user} {kind_name} size={size}{tail}"
        elif ns == kf.NS_SUB:
            mkey, _version, member = _split_sub(key)
            kind = types.get(mkey) or type_of(mkey)
            user = _show(kf.user_key(mkey))
            if kind == kf.TYPE_ZSET:
                if member[:1] != b"m":
                    continue  # the score index mirrors the member entries
                member = member[1:]
                if value is not None and len(value) == 8:
                    score = format_score(decode_score(value)).decode()
                    yield f"ZADD {user} {score} {_show(member)}"
                elif value is None:
                    yield f"ZREM {user} {_show(member)}"
                else:  # the key is a zset now, but this record wrote another type's member
                    yield f"PUT {user} {_show(member)} {_show(value)}"
                continue
            if kind == kf.TYPE_CHUNKED and len(member) == kf.CHUNK_INDEX.size:
                offset = kf.CHUNK_INDEX.unpack(member)[0] * kf.STRING_CHUNK
                if value is None:
                    yield f"ZERO-CHUNK {user} {offset}"
                else:
                    yield f"SETRANGE {user} {offset} {_show(value)}"
                continue
            if kind == kf.TYPE_LIST and len(member) == 8:
                member = str(kf.U64.unpack(member)[0] - (1 << 62)).encode()
            put, remove = _MEMBER_OPS.get(kind or 0, ("PUT", "REMOVE"))
            if value is None:
                yield f"{remove} {user} {_show(member)}"
            elif kind == kf.TYPE_SET:
                yield f"{put} {user} {_show(member)}"
            else:
                yield f"{put} {user} {_show(member)} {_show(value)}"
        elif ns == kf.NS_SYSTEM and key[:2] == kf.SYS_DB_MAP:
            yield "REMAP-DATABASES (FLUSHDB/SWAPDB)"
