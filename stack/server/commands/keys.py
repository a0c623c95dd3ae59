"""Generic keyspace commands: existence, deletion, renaming, expiry, iteration, introspection."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.keypattern import compile_pattern
from stack.core.resp import NIL, OK, ONE, ZERO, ReplyError, Status

from ..notifications import GENERIC, notify
from ..storage import keyformat as kf
from ..storage.keyspace import Database, now_ms, record_expire
from ..storage.strings import string_encoding
from . import handler, help_lines
from .args import INT64_MAX, INT64_MIN, select_db, syntax_error, to_int
from .scanning import parse_scan

if TYPE_CHECKING:
    from ..client import Client


def _delete_keys(c: Client, keys: list[bytes]) -> int:
    ks = c.server.keyspace
    deleted = 0
    for key in keys:
        mkey, old = c.db.read(key)
        if old is not None:
            ks.delete(mkey, old)
            notify(c, GENERIC, "del", key)
            deleted += 1
    return deleted


@handler("del", "unlink")
def delete(c: Client, args: list[bytes]) -> object:
    return _delete_keys(c, args[1:])


@handler("exists")
def exists(c: Client, args: list[bytes]) -> object:
    db = c.db
    return sum(1 for key in args[1:] if db.lookup(key) is not None)


@handler("touch")
def touch(c: Client, args: list[bytes]) -> object:
    db = c.db
    return sum(1 for key in args[1:] if db.lookup(key) is not None)


@handler("type")
def type_(c: Client, args: list[bytes]) -> object:
    rec = c.db.lookup(args[1])
    return Status("none" if rec is None else kf.TYPE_NAMES[kf.rtype(rec)])


def _move_record(
    c: Client,
    src: Database,
    key: bytes,
    dst: Database,
    newkey: bytes,
    replace: bool,
    remove_source: bool,
) -> int:
    """Copy (or move) ``key`` to ``newkey`` in ``dst``; 1 if done, 0 if blocked by dst, -1
    if there is no ``key``. As in Redis, a destination that is there is deleted and the key
    created anew (so it is announced ``new`` and wakes clients blocked on it)."""
    ks = c.server.keyspace
    src_mkey, rec = src.read(key) if remove_source else (src.meta_key(key), src.lookup(key))
    if rec is None:
        return -1
    dst_mkey, dst_old = dst.read(newkey)
    if dst_mkey == src_mkey:
        return 1
    if dst_old is not None:
        if not replace:
            return 0
        ks.delete(dst_mkey, dst_old)
    raw = ks.is_raw_string(src_mkey, rec)  # the copy keeps the encoding, as Redis's object
    record = ks.clone(src_mkey, rec, dst_mkey)
    ks.write(dst_mkey, record, None)
    if remove_source:
        ks.delete(src_mkey, rec)
    if raw:
        ks.raw_strings[dst_mkey] = hash(record)
    return 1


@handler("rename")
def rename(c: Client, args: list[bytes]) -> object:
    if _move_record(c, c.db, args[1], c.db, args[2], True, True) < 0:
        raise ReplyError(errors.NO_SUCH_KEY)
    _renamed(c, args)
    return OK


def _renamed(c: Client, args: list[bytes]) -> None:
    if args[1] != args[2]:
        notify(c, GENERIC, "rename_from", args[1])
        notify(c, GENERIC, "rename_to", args[2])


@handler("renamenx")
def renamenx(c: Client, args: list[bytes]) -> object:
    if args[1] == args[2]:
        if c.db.read(args[1])[1] is None:
            raise ReplyError(errors.NO_SUCH_KEY)
        return ZERO
    done = _move_record(c, c.db, args[1], c.db, args[2], False, True)
    if done < 0:
        raise ReplyError(errors.NO_SUCH_KEY)
    if done:
        _renamed(c, args)
    return done


@handler("copy")
def copy(c: Client, args: list[bytes]) -> object:
    dst = c.db
    replace = False
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(args):
            i += 1
            dst = select_db(c, args[i])
        else:
            raise syntax_error()
        i += 1
    if dst is c.db and args[1] == args[2]:
        raise ReplyError(errors.SAME_OBJECT)
    done = max(0, _move_record(c, c.db, args[1], dst, args[2], replace, False))
    if done:
        notify(c, GENERIC, "copy_to", args[2], dst.index)
    return done


@handler("move")
def move(c: Client, args: list[bytes]) -> object:
    dst = select_db(c, args[2])
    if dst is c.db:
        raise ReplyError(errors.SAME_OBJECT)
    done = max(0, _move_record(c, c.db, args[1], dst, args[1], False, True))
    if done:
        notify(c, GENERIC, "move_from", args[1])
        notify(c, GENERIC, "move_to", args[1], dst.index)
    return done


# --- expiry ----------------------------------------------------------------------------------


def _expire_flags(args: list[bytes]) -> frozenset[bytes]:
    flags: set[bytes] = set()
    for raw in args[3:]:
        opt = raw.upper()
        if opt not in (b"NX", b"XX", b"GT", b"LT"):
            raise ReplyError(f"ERR Unsupported option {errors.echo(raw)}")
        flags.add(opt)
    if b"NX" in flags and len(flags) > 1:
        raise ReplyError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"GT" in flags and b"LT" in flags:
        raise ReplyError("ERR GT and LT options at the same time are not compatible")
    return frozenset(flags)


def _expire(c: Client, args: list[bytes], unit: int, relative: bool) -> object:
    flags = _expire_flags(args)
    name = args[0].decode("latin-1").lower()
    when = to_int(args[2])
    if unit == 1000:
        if when > INT64_MAX // 1000 or when < INT64_MIN // 1000:
            raise errors.invalid_expire(name)
        when *= 1000
    now = now_ms()
    base = now if relative else 0
    if when > INT64_MAX - base:
        raise errors.invalid_expire(name)
    when += base
    mkey, rec = c.db.read(args[1])
    if rec is None:
        return ZERO
    current = record_expire(rec) or -1  # -1: no expiry (an infinite TTL)
    if (
        (b"NX" in flags and current != -1)
        or (b"XX" in flags and current == -1)
        or (b"GT" in flags and (current == -1 or when <= current))
        or (b"LT" in flags and current != -1 and when >= current)
    ):
        return ZERO
    ks = c.server.keyspace
    if when <= now:
        ks.delete(mkey, rec)
        notify(c, GENERIC, "del", args[1])
    else:
        ks.set_expire(mkey, rec, when)
        notify(c, GENERIC, "expire", args[1])
    return ONE


# name -> (unit in ms, relative to now)
_EXPIRE_FORMS = {
    b"expire": (1000, True),
    b"pexpire": (1, True),
    b"expireat": (1000, False),
    b"pexpireat": (1, False),
}


@handler("expire", "pexpire", "expireat", "pexpireat")
def expire(c: Client, args: list[bytes]) -> object:
    unit, relative = _EXPIRE_FORMS[args[0].lower()]
    return _expire(c, args, unit, relative)


def _ttl(c: Client, key: bytes) -> int | None:
    """Remaining ms: None if missing, -1 if no expiry."""
    rec = c.db.lookup(key)
    if rec is None:
        return None
    exp = record_expire(rec)
    return -1 if not exp else max(0, exp - now_ms())


@handler("ttl")
def ttl(c: Client, args: list[bytes]) -> object:
    ms = _ttl(c, args[1])
    if ms is None:
        return -2
    return -1 if ms == -1 else (ms + 500) // 1000


@handler("pttl")
def pttl(c: Client, args: list[bytes]) -> object:
    ms = _ttl(c, args[1])
    return -2 if ms is None else ms


def _expiretime(c: Client, key: bytes) -> int:
    rec = c.db.lookup(key)
    if rec is None:
        return -2
    return record_expire(rec) or -1


@handler("expiretime")
def expiretime(c: Client, args: list[bytes]) -> object:
    t = _expiretime(c, args[1])
    return t if t < 0 else (t + 500) // 1000  # rounded, as Redis replies it


@handler("pexpiretime")
def pexpiretime(c: Client, args: list[bytes]) -> object:
    return _expiretime(c, args[1])


@handler("persist")
def persist(c: Client, args: list[bytes]) -> object:
    mkey, rec = c.db.read(args[1])
    if rec is None or not record_expire(rec):
        return ZERO
    c.server.keyspace.set_expire(mkey, rec, 0)
    notify(c, GENERIC, "persist", args[1])
    return ONE


# --- iteration -------------------------------------------------------------------------------


@handler("keys")
def keys(c: Client, args: list[bytes]) -> object:
    match = compile_pattern(args[1])
    pattern = args[1]
    if b"*" not in pattern and b"?" not in pattern and b"[" not in pattern and b"\\" not in pattern:
        return [pattern] if c.db.read(pattern)[1] is not None else []
    return [k for k, _rec in c.server.keyspace.iter_keys(c.db) if match(k)]


@handler("scan")
def scan(c: Client, args: list[bytes]) -> object:
    opts = parse_scan(args, 1, allow_type=True)
    next_cursor, found = c.server.keyspace.scan(c.db, opts.cursor, min(opts.count, 100_000))
    out = [
        k
        for k, rec in found
        if (opts.match is None or opts.match(k))
        and (opts.type_code is None or kf.rtype(rec) == opts.type_code)
    ]
    return [b"%d" % next_cursor, out]


@handler("randomkey")
def randomkey(c: Client, args: list[bytes]) -> object:
    key = c.server.keyspace.random_key(c.db)
    return NIL if key is None else key


@handler("dbsize")
def dbsize(c: Client, args: list[bytes]) -> object:
    return c.db.size()


# --- OBJECT ----------------------------------------------------------------------------------

LFU_ERROR = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
    "that when switching between policies at runtime LRU and LFU data will take some time to "
    "adjust."
)


def to_int_or_none(value: bytes) -> int | None:
    try:
        return to_int(value)
    except ReplyError:
        return None


@handler("object|encoding")
def object_encoding(c: Client, args: list[bytes]) -> object:
    mkey, rec = c.db.read(args[2])
    if rec is None:
        return NIL
    kind = kf.rtype(rec)
    if kind == kf.TYPE_STRING:
        if kf.is_chunked(rec) or c.server.keyspace.is_raw_string(mkey, rec):
            return "raw"
        return string_encoding(kf.body(rec))
    return collection_encoding(c, mkey, rec)


def collection_encoding(c: Client, mkey: bytes, rec: bytes) -> str:
    """The encoding Redis 7.0 would use, by its default size thresholds."""
    from ..storage.collections import Collection

    kind = kf.rtype(rec)
    col = Collection(c.server.keyspace, mkey, rec, kind)
    if kind == kf.TYPE_LIST:
        return "quicklist"
    if kind == kf.TYPE_SET:
        if col.size <= 512 and all(to_int_or_none(m) is not None for m in col.members()):
            return "intset"
        return "hashtable"
    space = b"m" if kind == kf.TYPE_ZSET else b""  # a sorted set's members (see sortedsets)
    small = col.size <= 128 and all(
        len(m) <= 64 and (len(v) <= 64 or bool(space)) for m, v in col.items(space=space)
    )
    if kind == kf.TYPE_HASH:
        return "listpack" if small else "hashtable"
    return "listpack" if small else "skiplist"


@handler("object|freq")
def object_freq(c: Client, args: list[bytes]) -> object:
    if c.db.read(args[2])[1] is None:
        return NIL
    raise ReplyError(LFU_ERROR)


@handler("object|idletime")
def object_idletime(c: Client, args: list[bytes]) -> object:
    mkey = c.db.meta_key(args[2])
    last = c.server.keyspace.access.get(mkey)
    if c.db.read(args[2])[1] is None:
        return NIL
    if last is None:
        return int(time.monotonic() - c.server.started_mono)
    return int(time.monotonic() - last)


@handler("object|refcount")
def object_refcount(c: Client, args: list[bytes]) -> object:
    rec = c.db.read(args[2])[1]
    if rec is None:
        return NIL
    if kf.raw_type(rec) == kf.TYPE_STRING:
        n = to_int_or_none(kf.body(rec))
        if n is not None and 0 <= n < 10000:
            return 2147483647  # Redis shares small integers
    return 1


@handler("object|help")
def object_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "OBJECT",
        [
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
