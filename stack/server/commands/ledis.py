"""LedisDB's own commands (typed clear/expire/ttl/persist/exists, LTRIM_FRONT/BACK, XSCAN).

Replies follow LedisDB's documentation: *MCLEAR answers the number of keys given, *TTL answers
-1 both for a missing key and for a key without expiry, XSCAN cursors are keys, not numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.keypattern import compile_pattern
from stack.core.resp import ReplyError

from ..notifications import GENERIC, LIST, notify, notify_emptied
from ..storage import keyformat as kf
from ..storage.collections import Collection
from ..storage.keyspace import INT64_MAX_MS, now_ms, record_expire
from ..storage.listview import ListView
from ..storage.scores import decode_score, format_score
from ..storage.zset import MEMBER
from . import handler
from .args import syntax_error, to_int

if TYPE_CHECKING:
    from ..client import Client

KINDS = {b"h": kf.TYPE_HASH, b"l": kf.TYPE_LIST, b"s": kf.TYPE_SET, b"z": kf.TYPE_ZSET}
FIELDS_ERROR = (
    "ERR per-field expiry (HEXPIRE key ... FIELDS n field ...) is not supported; "
    "HEXPIRE key seconds sets the expiry of the whole hash"
)


def _kind(args: list[bytes]) -> int:
    return KINDS[args[0][:1].lower()]


def _typed_record(c: Client, key: bytes, kind: int) -> tuple[bytes, bytes | None]:
    """The key's metadata if it holds ``kind`` (LedisDB's per-type keyspaces)."""
    mkey, record = c.db.read(key)
    if record is not None and kf.rtype(record) != kind:
        return mkey, None
    return mkey, record


def _clear(c: Client, key: bytes, kind: int) -> int:
    mkey, record = _typed_record(c, key, kind)
    if record is None:
        return 0
    size = Collection(c.server.keyspace, mkey, record, kind).size
    c.server.keyspace.delete(mkey, record)
    notify(c, GENERIC, "del", key)
    return size


@handler("hclear", "lclear", "sclear", "zclear")
def clear(c: Client, args: list[bytes]) -> object:
    return _clear(c, args[1], _kind(args))


@handler("hmclear", "lmclear", "smclear", "zmclear")
def mclear(c: Client, args: list[bytes]) -> object:
    kind = _kind(args)
    for key in args[1:]:
        _clear(c, key, kind)
    return len(args) - 1


def _no_fields(args: list[bytes]) -> None:
    if any(a.upper() == b"FIELDS" for a in args[3:]):
        raise ReplyError(FIELDS_ERROR)
    if len(args) > 3:
        raise syntax_error()


def _set_expiry(c: Client, args: list[bytes], absolute: bool) -> int:
    _no_fields(args)
    seconds = to_int(args[2])
    when = seconds * 1000 if absolute else now_ms() + seconds * 1000
    if not 0 < when <= INT64_MAX_MS:
        raise ReplyError("ERR invalid expire time")
    mkey, record = _typed_record(c, args[1], _kind(args))
    if record is None:
        return 0
    ks = c.server.keyspace
    if when <= now_ms():
        ks.delete(mkey, record)
        notify(c, GENERIC, "del", args[1])
    else:
        ks.set_expire(mkey, record, when)
        notify(c, GENERIC, "expire", args[1])
    return 1


@handler("hexpire", "lexpire", "sexpire", "zexpire")
def typed_expire(c: Client, args: list[bytes]) -> object:
    return _set_expiry(c, args, absolute=False)


@handler("hexpireat", "lexpireat", "sexpireat", "zexpireat")
def typed_expireat(c: Client, args: list[bytes]) -> object:
    return _set_expiry(c, args, absolute=True)


@handler("httl", "lttl", "sttl", "zttl")
def typed_ttl(c: Client, args: list[bytes]) -> object:
    _no_fields([*args[:2], b"", *args[2:]])
    _mkey, record = _typed_record(c, args[1], _kind(args))
    if record is None or not record_expire(record):
        return -1
    return max(0, (record_expire(record) - now_ms() + 500) // 1000)


@handler("hpersist", "lpersist", "spersist", "zpersist")
def typed_persist(c: Client, args: list[bytes]) -> object:
    _no_fields([*args[:2], b"", *args[2:]])
    mkey, record = _typed_record(c, args[1], _kind(args))
    if record is None or not record_expire(record):
        return 0
    c.server.keyspace.set_expire(mkey, record, 0)
    notify(c, GENERIC, "persist", args[1])
    return 1


@handler("hkeyexists", "lkeyexists", "skeyexists", "zkeyexists")
def keyexists(c: Client, args: list[bytes]) -> object:
    return 0 if _typed_record(c, args[1], _kind(args))[1] is None else 1


def _trim(c: Client, args: list[bytes], left: bool) -> int:
    count = to_int(args[2])
    if count < 0:
        raise ReplyError("ERR count should be greater than or equal to 0")
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        return 0
    popped = len(lst.pop(count, left))
    if popped:
        notify_emptied(c, LIST, "ltrim", args[1], not lst.col.exists)
    return popped


@handler("ltrim_front")
def ltrim_front(c: Client, args: list[bytes]) -> object:
    return _trim(c, args, left=True)


@handler("ltrim_back")
def ltrim_back(c: Client, args: list[bytes]) -> object:
    return _trim(c, args, left=False)


# --- XSCAN family: cursors are keys (or members) ---------------------------------------------

XSCAN_TYPES = {
    b"KV": kf.TYPE_STRING,
    b"HASH": kf.TYPE_HASH,
    b"LIST": kf.TYPE_LIST,
    b"SET": kf.TYPE_SET,
    b"ZSET": kf.TYPE_ZSET,
}


def _xscan_options(args: list[bytes], at: int) -> tuple[object, int, bool]:
    match = None
    count = 10
    desc = False
    i = at
    while i < len(args):
        opt = args[i].upper()
        if opt == b"MATCH" and i + 1 < len(args):
            match = compile_pattern(args[i + 1])
            i += 2
        elif opt == b"COUNT" and i + 1 < len(args):
            count = to_int(args[i + 1])
            if count <= 0:
                raise syntax_error()
            i += 2
        elif opt in (b"ASC", b"DESC"):
            desc = opt == b"DESC"
            i += 1
        else:
            raise syntax_error()
    return match, count, desc


@handler("xscan")
def xscan(c: Client, args: list[bytes]) -> object:
    kind = XSCAN_TYPES.get(args[1].upper())
    if kind is None:
        raise ReplyError(f"ERR invalid data type {errors.echo(args[1])}")
    match, count, desc = _xscan_options(args, 3)
    prefix = c.db.prefix
    cursor = args[2]
    if desc:
        start, stop = prefix, c.db.meta_key(cursor) if cursor else kf.prefix_end(prefix)
    else:
        start = c.db.meta_key(cursor) + b"\x00" if cursor else prefix
        stop = kf.prefix_end(prefix)
    now = now_ms()
    found: list[bytes] = []
    last = b""
    for mkey, record in c.server.keyspace.engine.scan(start, stop, desc):
        if kf.rtype(record) != kind or (record_expire(record) and record_expire(record) <= now):
            continue
        key = kf.user_key(mkey)
        last = key
        if match is None or match(key):  # type: ignore[operator]
            found.append(key)
        if len(found) >= count:
            return [last, found]
    return [b"", found]


def _member_scan(c: Client, args: list[bytes], kind: int) -> object:
    match, count, desc = _xscan_options(args, 3)
    col = Collection.open(c.db, args[1], kind, for_read=True)
    space = MEMBER if kind == kf.TYPE_ZSET else b""
    cursor = args[2]
    out: list[bytes] = []
    seen = 0
    items = col.items(space=space, reverse=desc)
    for member, value in items:
        if cursor and (member >= cursor if desc else member <= cursor):
            continue
        if match is None or match(member):  # type: ignore[operator]
            if kind == kf.TYPE_HASH:
                out += (member, value)
            elif kind == kf.TYPE_ZSET:
                out += (member, format_score(decode_score(value)))
            else:
                out.append(member)
        seen += 1
        if seen >= count:
            return [member, out]
    return [b"", out]


@handler("xhscan")
def xhscan(c: Client, args: list[bytes]) -> object:
    return _member_scan(c, args, kf.TYPE_HASH)


@handler("xsscan")
def xsscan(c: Client, args: list[bytes]) -> object:
    return _member_scan(c, args, kf.TYPE_SET)


@handler("xzscan")
def xzscan(c: Client, args: list[bytes]) -> object:
    return _member_scan(c, args, kf.TYPE_ZSET)
