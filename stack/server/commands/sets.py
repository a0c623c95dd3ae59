"""Set commands: one sub-key per member (with an empty value)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import (
    NIL,
    ONE,
    ZERO,
    ReplyError,
    SetChunks,
    SetReply,
    encoded_array,
)

from ..notifications import SET, notify, notify_emptied, notify_stored
from ..storage import keyformat as kf
from ..storage.collections import Collection
from ..storage.keyspace import Database
from ..storage.picks import random_member
from . import handler
from .args import INT64_MAX, syntax_error, to_positive, to_range
from .multikey import NUMKEYS_ERROR, parse_limit
from .sampling import parse_count, random_members, sample_reply
from .scanning import scan_collection

if TYPE_CHECKING:
    from ..client import Client

SET_TYPE = kf.TYPE_SET


def open_set(
    c: Client, key: bytes, for_read: bool = False, db: Database | None = None
) -> Collection:
    return Collection.open(db or c.db, key, SET_TYPE, for_read)


def add_members(s: Collection, members: list[bytes]) -> int:
    meta = s.ensure()
    added = 0
    for m in dict.fromkeys(members):
        if s.get(m) is None:
            s.put(m, b"")
            added += 1
    if added:
        meta.size += added
        s.save()
    return added


def remove_members(s: Collection, members: list[bytes]) -> int:
    return s.remove(members)


@handler("sadd")
def sadd(c: Client, args: list[bytes]) -> object:
    added = add_members(open_set(c, args[1]), args[2:])
    if added:
        notify(c, SET, "sadd", args[1])
    return added


@handler("srem")
def srem(c: Client, args: list[bytes]) -> object:
    s = open_set(c, args[1])
    removed = remove_members(s, args[2:])
    if removed:
        notify_emptied(c, SET, "srem", args[1], not s.exists)
    return removed


@handler("scard")
def scard(c: Client, args: list[bytes]) -> object:
    return open_set(c, args[1], for_read=True).size


@handler("sismember")
def sismember(c: Client, args: list[bytes]) -> object:
    return ONE if open_set(c, args[1], for_read=True).get(args[2]) is not None else ZERO


@handler("smismember")
def smismember(c: Client, args: list[bytes]) -> object:
    s = open_set(c, args[1], for_read=True)
    return [1 if s.get(m) is not None else 0 for m in args[2:]]


@handler("smembers")
def smembers(c: Client, args: list[bytes]) -> object:
    return encoded_array(*open_set(c, args[1], for_read=True).encoded(values=False), SetChunks)


@handler("smove")
def smove(c: Client, args: list[bytes]) -> object:
    if c.db.read(args[1])[1] is None:  # Redis answers 0 before it checks any type
        return ZERO
    src = open_set(c, args[1])
    dst = open_set(c, args[2])
    member = args[3]
    if args[1] == args[2]:
        return ONE if src.get(member) is not None else ZERO
    if src.get(member) is None:
        return ZERO
    remove_members(src, [member])
    notify_emptied(c, SET, "srem", args[1], not src.exists)
    if add_members(dst, [member]):
        notify(c, SET, "sadd", args[2])
    return ONE


@handler("srandmember")
def srandmember(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise syntax_error()
    count = parse_count(args[2], pairs=False) if len(args) == 3 else None
    s = open_set(c, args[1], for_read=True)
    if count is None:
        if not s.exists:
            return NIL
        return random_member(s)[0]
    if count == 0 or not s.exists:
        return []
    return sample_reply(c, s, count)


@handler("spop")
def spop(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise syntax_error()
    count = to_positive(args[2]) if len(args) == 3 else None
    s = open_set(c, args[1])
    if count is not None:
        if not s.exists or count == 0:
            return SetReply()
        picked = [m for m, _v in random_members(s, count)]
        remove_members(s, picked)
        notify_emptied(c, SET, "spop", args[1], not s.exists)
        return SetReply(picked)
    if not s.exists:
        return NIL
    member = random_member(s)[0]
    remove_members(s, [member])
    notify_emptied(c, SET, "spop", args[1], not s.exists)
    return member


def _members(c: Client, key: bytes) -> set[bytes]:
    return set(open_set(c, key, for_read=True).members())


def combine(c: Client, op: str, keys: list[bytes]) -> list[bytes]:
    """SINTER / SUNION / SDIFF over ``keys`` (every key is type-checked first, as Redis)."""
    sets = [_members(c, k) for k in keys]
    if op == "inter":
        result = set.intersection(*sets) if all(sets) else set()
    elif op == "union":
        result = set().union(*sets)
    else:
        result = sets[0].difference(*sets[1:])
    return sorted(result)


_OPS = {b"sinter": "inter", b"sunion": "union", b"sdiff": "diff"}


@handler("sinter", "sunion", "sdiff")
def scombine(c: Client, args: list[bytes]) -> object:
    return SetReply(combine(c, _OPS[args[0].lower()], args[1:]))


@handler("sinterstore", "sunionstore", "sdiffstore")
def scombinestore(c: Client, args: list[bytes]) -> object:
    result = combine(c, _OPS[args[0].lower()[:-5]], args[2:])
    mkey, record = c.db.read(args[1])  # the destination is overwritten whatever its type
    Collection(c.server.keyspace, mkey, record, SET_TYPE).replace_with([(m, b"") for m in result])
    event = args[0].decode("latin-1").lower()
    notify_stored(c, SET, event, args[1], bool(result), record is not None)
    return len(result)


@handler("sintercard")
def sintercard(c: Client, args: list[bytes]) -> object:
    numkeys = to_range(args[1], 1, INT64_MAX, NUMKEYS_ERROR)
    if numkeys > len(args) - 2:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    limit = parse_limit(args[2 + numkeys :])
    size = len(combine(c, "inter", args[2 : 2 + numkeys]))
    return min(size, limit) if limit else size


@handler("sscan")
def sscan(c: Client, args: list[bytes]) -> object:
    return scan_collection(c, lambda: open_set(c, args[1], for_read=True), args, 2, pairs=False)
