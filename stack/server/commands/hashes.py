"""Hash commands: one sub-key per field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import (
    NIL,
    OK,
    ONE,
    ZERO,
    MapChunks,
    ReplyError,
    encoded_array,
)

from ..notifications import HASH, notify, notify_emptied
from ..storage import keyformat as kf
from ..storage import longdouble
from ..storage.collections import Collection
from ..storage.picks import random_member
from . import handler
from .args import INT64_MAX, INT64_MIN, syntax_error, to_int, to_long_double
from .sampling import parse_count, sample_reply
from .scanning import scan_collection

if TYPE_CHECKING:
    from ..client import Client

HASH_TYPE = kf.TYPE_HASH


def open_hash(c: Client, key: bytes, for_read: bool = False) -> Collection:
    return Collection.open(c.db, key, HASH_TYPE, for_read)


def set_fields(h: Collection, pairs: list[bytes], only_new: bool = False) -> int:
    """Store field/value pairs; returns how many fields are new."""
    meta = h.ensure()
    added = 0
    for i in range(0, len(pairs), 2):
        field, value = pairs[i], pairs[i + 1]
        exists = h.get(field) is not None
        if exists and only_new:
            continue
        h.put(field, value)
        if not exists:
            added += 1
    meta.size += added
    if added:
        h.save()
    elif not only_new:  # values replaced (HSETNX that set nothing changed nothing)
        h.touch()
    return added


@handler("hset", "hmset")
def hset(c: Client, args: list[bytes]) -> object:
    if len(args) % 2:
        raise errors.wrong_arity(args[0].decode("latin-1").lower())
    added = set_fields(open_hash(c, args[1]), args[2:])
    notify(c, HASH, "hset", args[1])
    return OK if args[0].lower() == b"hmset" else added


@handler("hsetnx")
def hsetnx(c: Client, args: list[bytes]) -> object:
    if not set_fields(open_hash(c, args[1]), args[2:4], only_new=True):
        return ZERO
    notify(c, HASH, "hset", args[1])
    return ONE


@handler("hget")
def hget(c: Client, args: list[bytes]) -> object:
    value = open_hash(c, args[1], for_read=True).get(args[2])
    return NIL if value is None else value


@handler("hmget")
def hmget(c: Client, args: list[bytes]) -> object:
    h = open_hash(c, args[1], for_read=True)
    return [h.get(f) for f in args[2:]]


@handler("hdel")
def hdel(c: Client, args: list[bytes]) -> object:
    h = open_hash(c, args[1])
    removed = h.remove(args[2:])
    if removed:
        notify_emptied(c, HASH, "hdel", args[1], not h.exists)
    return removed


@handler("hexists")
def hexists(c: Client, args: list[bytes]) -> object:
    return ONE if open_hash(c, args[1], for_read=True).get(args[2]) is not None else ZERO


@handler("hlen")
def hlen(c: Client, args: list[bytes]) -> object:
    return open_hash(c, args[1], for_read=True).size


@handler("hstrlen")
def hstrlen(c: Client, args: list[bytes]) -> object:
    value = open_hash(c, args[1], for_read=True).get(args[2])
    return 0 if value is None else len(value)


@handler("hgetall")
def hgetall(c: Client, args: list[bytes]) -> object:
    return encoded_array(*open_hash(c, args[1], for_read=True).encoded(), MapChunks)


@handler("hkeys")
def hkeys(c: Client, args: list[bytes]) -> object:
    return encoded_array(*open_hash(c, args[1], for_read=True).encoded(values=False))


@handler("hvals")
def hvals(c: Client, args: list[bytes]) -> object:
    return encoded_array(*open_hash(c, args[1], for_read=True).encoded(keys=False))


@handler("hincrby")
def hincrby(c: Client, args: list[bytes]) -> object:
    delta = to_int(args[3])
    h = open_hash(c, args[1])
    current = h.get(args[2])
    value = 0
    if current is not None:
        try:
            value = to_int(current) if len(current) <= 20 else None  # type: ignore[assignment]
        except ReplyError:
            value = None  # type: ignore[assignment]
        if value is None:
            raise ReplyError("ERR hash value is not an integer")
    result = value + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise ReplyError(errors.OVERFLOW)
    set_fields(h, [args[2], b"%d" % result])
    notify(c, HASH, "hincrby", args[1])
    return result


@handler("hincrbyfloat")
def hincrbyfloat(c: Client, args: list[bytes]) -> object:
    delta = to_long_double(args[3])
    if isinstance(delta, float):
        raise ReplyError(errors.VALUE_NAN_OR_INFINITY)
    h = open_hash(c, args[1])
    current = h.get(args[2])
    value = to_long_double(current, "ERR hash value is not a float") if current is not None else 0
    if isinstance(value, float):
        raise ReplyError(errors.NAN_OR_INFINITY)
    result = longdouble.round_ld(value + delta)
    if isinstance(result, float):
        raise ReplyError(errors.NAN_OR_INFINITY)
    text = longdouble.format_human(result)
    set_fields(h, [args[2], text])
    notify(c, HASH, "hincrbyfloat", args[1])
    return text


@handler("hrandfield")
def hrandfield(c: Client, args: list[bytes]) -> object:
    count = parse_count(args[2], pairs=False) if len(args) >= 3 else None
    if len(args) > 4 or (len(args) == 4 and args[3].upper() != b"WITHVALUES"):
        raise syntax_error()
    with_values = len(args) == 4
    if with_values:
        count = parse_count(args[2], pairs=True)
    h = open_hash(c, args[1], for_read=True)
    if count is None:
        if not h.exists:
            return NIL
        return random_member(h)[0]
    if count == 0 or not h.exists:
        return []
    return sample_reply(c, h, count, with_values)


@handler("hscan")
def hscan(c: Client, args: list[bytes]) -> object:
    return scan_collection(c, lambda: open_hash(c, args[1], for_read=True), args, 2, pairs=True)
