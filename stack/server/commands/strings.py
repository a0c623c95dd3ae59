"""String commands (Redis 7 semantics)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, OK, ONE, ZERO, Chunks, Map, ReplyError

from ..notifications import GENERIC, STRING, notify
from ..storage import keyformat as kf
from ..storage import longdouble
from ..storage import strings as strstore
from ..storage.keyspace import WrongType, now_ms, record_expire
from ..storage.strings import (
    StoredString,
    clamp_range,
    lookup_record,
    lookup_stored,
    stored_record,
    stored_string,
)
from . import handler
from .args import INT64_MAX, INT64_MIN, max_string, syntax_error, to_int, to_long_double

if TYPE_CHECKING:
    from ..client import Client

_EXPIRE_UNITS = {b"EX": 1000, b"PX": 1, b"EXAT": 1000, b"PXAT": 1}
_RELATIVE = (b"EX", b"PX")


def expire_at(option: bytes, raw: bytes, command: str, now: int) -> int:
    """The absolute expiry (ms) of an EX/PX/EXAT/PXAT option, validated as Redis does."""
    value = to_int(raw)
    unit = _EXPIRE_UNITS[option]
    if value <= 0 or (unit == 1000 and value > INT64_MAX // 1000):
        raise errors.invalid_expire(command)
    value *= unit
    if option in _RELATIVE:
        if value > INT64_MAX - now:
            raise errors.invalid_expire(command)
        value += now
    return value


def value_reply(c: Client, mkey: bytes, rec: bytes) -> object:
    """A string record's value as a reply: the bytes, or for a chunked string its pieces (a
    Chunks reply, written out without being joined)."""
    if rec[0] & kf.TYPE_MASK == kf.TYPE_STRING:
        return kf.body(rec)
    view = stored_string(c.server.keyspace, mkey, rec)
    return Chunks([b"$%d\r\n" % view.length, *view.pieces(), b"\r\n"])


@handler("get")
def get(c: Client, args: list[bytes]) -> object:
    mkey, rec = lookup_record(c.db, args[1])
    if rec is None:
        return NIL
    if rec[0] & kf.TYPE_MASK == kf.TYPE_STRING:
        return kf.body(rec)
    return value_reply(c, mkey, rec)


@dataclass
class StringOptions:
    """SET's and GETEX's options, read as Redis's parseExtendedStringArgumentsOrReply does: an
    option may be repeated (the last expiry counts), only conflicting ones are errors."""

    cond: bytes = b""  # NX or XX
    get: bool = False
    keep_ttl: bool = False
    persist: bool = False
    expire: tuple[bytes, bytes] | None = None  # (EX|PX|EXAT|PXAT, the time as given)

    @classmethod
    def parse(cls, args: list[bytes], start: int, for_set: bool) -> StringOptions:
        o = cls()
        i, n = start, len(args)
        while i < n:
            opt = args[i].upper()
            unit = o.expire[0] if o.expire else b""
            if for_set and opt in (b"NX", b"XX") and o.cond in (b"", opt):
                o.cond = opt
            elif for_set and opt == b"GET":
                o.get = True
            elif for_set and opt == b"KEEPTTL" and not o.expire:
                o.keep_ttl = True
            elif not for_set and opt == b"PERSIST" and not o.expire:
                o.persist = True
            elif opt in _EXPIRE_UNITS and unit in (b"", opt) and i + 1 < n:
                if o.keep_ttl or o.persist:
                    raise syntax_error()
                i += 1
                o.expire = (opt, args[i])
            else:
                raise syntax_error()
            i += 1
        return o


_NO_OPTIONS = StringOptions()


@handler("set")
def set_(c: Client, args: list[bytes]) -> object:
    o = StringOptions.parse(args, 3, for_set=True) if len(args) > 3 else _NO_OPTIONS
    cond, want_old, keep_ttl, expire = o.cond, o.get, o.keep_ttl, o.expire  # syntax first
    expire_ms = expire_at(expire[0], expire[1], "set", now_ms()) if expire else 0
    mkey, old = c.db.read(args[1])
    old_value: object = NIL
    if want_old and old is not None:
        old_value = value_reply(c, mkey, stored_record(old))
    if (cond == b"NX" and old is not None) or (cond == b"XX" and old is None):
        return old_value if want_old else NIL
    if keep_ttl and old is not None:
        expire_ms = record_expire(old)
    strstore.store(c.server.keyspace, mkey, old, args[2], expire_ms)
    notify(c, STRING, "set", args[1])
    if expire is not None:
        notify(c, GENERIC, "expire", args[1])
    return old_value if want_old else OK


@handler("setnx")
def setnx(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    if old is not None:
        return ZERO
    strstore.store(c.server.keyspace, mkey, None, args[2])
    notify(c, STRING, "set", args[1])
    return ONE


def _set_with_ttl(c: Client, args: list[bytes], unit: int, name: str) -> object:
    value = to_int(args[2])
    if value <= 0 or (unit == 1000 and value > INT64_MAX // 1000):
        raise errors.invalid_expire(name)
    now = now_ms()
    if value * unit > INT64_MAX - now:
        raise errors.invalid_expire(name)
    mkey, old = c.db.read(args[1])
    strstore.store(c.server.keyspace, mkey, old, args[3], now + value * unit)
    notify(c, STRING, "set", args[1])
    notify(c, GENERIC, "expire", args[1])
    return OK


@handler("setex")
def setex(c: Client, args: list[bytes]) -> object:
    return _set_with_ttl(c, args, 1000, "setex")


@handler("psetex")
def psetex(c: Client, args: list[bytes]) -> object:
    return _set_with_ttl(c, args, 1, "psetex")


@handler("getset")
def getset(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    old_value = NIL if old is None else value_reply(c, mkey, stored_record(old))
    strstore.store(c.server.keyspace, mkey, old, args[2])
    notify(c, STRING, "set", args[1])
    return old_value


@handler("getdel")
def getdel(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    if old is None:
        return NIL
    value = value_reply(c, mkey, stored_record(old))
    c.server.keyspace.delete(mkey, old)
    notify(c, GENERIC, "del", args[1])
    return value


@handler("getex")
def getex(c: Client, args: list[bytes]) -> object:
    o = StringOptions.parse(args, 2, for_set=False)  # the time only once the key is found
    option, raw = o.expire or (b"", b"")
    persist = o.persist
    mkey, old = c.db.read(args[1])
    if old is None:
        return NIL
    value = value_reply(c, mkey, stored_record(old))
    if option or persist:
        now = now_ms()
        when = expire_at(option, raw, "getex", now) if option else 0
        ks = c.server.keyspace
        if when and when <= now and option in (b"EXAT", b"PXAT"):  # Redis: only these
            ks.delete(mkey, old)
            notify(c, GENERIC, "del", args[1])
        elif when:
            ks.set_expire(mkey, old, when)
            notify(c, GENERIC, "expire", args[1])
        elif record_expire(old):
            ks.set_expire(mkey, old, 0)
            notify(c, GENERIC, "persist", args[1])
    return value


@handler("mget")
def mget(c: Client, args: list[bytes]) -> object:
    out: list[bytes | None] = []
    db = c.db
    for key in args[1:]:
        rec = db.lookup(key)
        if rec is None or kf.rtype(rec) != kf.TYPE_STRING:
            out.append(None)
        elif kf.is_chunked(rec):
            out.append(StoredString(c.server.keyspace, db.meta_key(key), rec).whole())
        else:
            out.append(kf.body(rec))
    return out


def _set_pairs(c: Client, args: list[bytes], name: str, only_new: bool) -> bool:
    """MSET / MSETNX: store every key-value pair (with ``only_new``, all or none)."""
    if len(args) % 2 == 0:
        raise errors.wrong_arity(name)
    db = c.db
    keys = range(1, len(args), 2)
    if only_new and any(db.read(args[i])[1] is not None for i in keys):
        return False
    for i in keys:  # read each just before writing it: a key may appear twice
        mkey, old = db.read(args[i])
        strstore.store(c.server.keyspace, mkey, old, args[i + 1])
        notify(c, STRING, "set", args[i])
    return True


@handler("mset")
def mset(c: Client, args: list[bytes]) -> object:
    _set_pairs(c, args, "mset", only_new=False)
    return OK


@handler("msetnx")
def msetnx(c: Client, args: list[bytes]) -> object:
    return ONE if _set_pairs(c, args, "msetnx", only_new=True) else ZERO


@handler("append")
def append(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    if old is None:
        strstore.store(c.server.keyspace, mkey, None, args[2])
        notify(c, STRING, "append", args[1])
        return len(args[2])
    length = strstore.length_of(stored_record(old))
    if length + len(args[2]) > max_string(c):
        raise ReplyError(errors.STRING_TOO_LONG)
    strstore.write_at(c.server.keyspace, mkey, old, length, args[2], record_expire(old))
    notify(c, STRING, "append", args[1])
    return length + len(args[2])


@handler("strlen")
def strlen(c: Client, args: list[bytes]) -> object:
    rec = c.db.lookup(args[1])
    return 0 if rec is None else strstore.length_of(stored_record(rec))


@handler("getrange", "substr")
def getrange(c: Client, args: list[bytes]) -> object:
    start = to_int(args[2])
    end = to_int(args[3])
    mkey, rec = lookup_record(c.db, args[1])
    if rec is None:
        return b""
    bounds = clamp_range(start, end, strstore.length_of(stored_record(rec)))
    if bounds is None:
        return b""
    return strstore.read_range(c.server.keyspace, mkey, rec, bounds[0], bounds[1] + 1)


@handler("setrange")
def setrange(c: Client, args: list[bytes]) -> object:
    offset = to_int(args[2])
    if offset < 0:
        raise ReplyError(errors.OFFSET_OUT_OF_RANGE)
    patch = args[3]
    mkey, old = c.db.read(args[1])
    length = 0 if old is None else strstore.length_of(stored_record(old))
    if not patch:
        return length
    if offset + len(patch) > max_string(c):
        raise ReplyError(errors.STRING_TOO_LONG)
    expire = record_expire(old) if old is not None else 0
    strstore.write_at(c.server.keyspace, mkey, old, offset, patch, expire)
    notify(c, STRING, "setrange", args[1])
    return max(length, offset + len(patch))


def _incr(c: Client, key: bytes, delta: int) -> object:
    mkey, old = c.db.read(key)
    current = 0
    if old is not None:
        view = stored_string(c.server.keyspace, mkey, old)
        if view.length > 20:  # not read: it cannot be an integer
            raise ReplyError(errors.NOT_INTEGER)
        current = to_int(view.whole())
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise ReplyError(errors.OVERFLOW)
    strstore.store(
        c.server.keyspace, mkey, old, b"%d" % result, record_expire(old) if old is not None else 0
    )
    notify(c, STRING, "incrby", key)
    return result


@handler("incr")
def incr(c: Client, args: list[bytes]) -> object:
    return _incr(c, args[1], 1)


@handler("decr")
def decr(c: Client, args: list[bytes]) -> object:
    return _incr(c, args[1], -1)


@handler("incrby")
def incrby(c: Client, args: list[bytes]) -> object:
    return _incr(c, args[1], to_int(args[2]))


@handler("decrby")
def decrby(c: Client, args: list[bytes]) -> object:
    delta = to_int(args[2])
    if delta == INT64_MIN:
        raise ReplyError("ERR decrement would overflow")
    return _incr(c, args[1], -delta)


# --- INCRBYFLOAT: long double arithmetic as Redis does it (longdouble.py) ---------------------


@handler("incrbyfloat")
def incrbyfloat(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    current: Fraction | float = Fraction(0)
    if old is not None:
        view = stored_string(c.server.keyspace, mkey, old)
        if view.length >= longdouble.MAX_CHARS:  # not read: too long for a long double
            raise ReplyError(errors.NOT_FLOAT)
        current = to_long_double(view.whole())
    delta = to_long_double(args[2])
    if isinstance(current, float) or isinstance(delta, float):
        raise ReplyError(errors.NAN_OR_INFINITY)
    result = longdouble.round_ld(current + delta)
    if isinstance(result, float):
        raise ReplyError(errors.NAN_OR_INFINITY)
    text = longdouble.format_human(result)
    strstore.store(c.server.keyspace, mkey, old, text, record_expire(old) if old is not None else 0)
    notify(c, STRING, "incrbyfloat", args[1])
    return text


# --- LCS ------------------------------------------------------------------------------------------

_BITS01 = bytes.maketrans(b"\x00\x01", b"01")


@handler("lcs")
def lcs(c: Client, args: list[bytes]) -> object:
    views = []
    for key in args[1:3]:
        try:
            views.append(lookup_stored(c.db, key))
        except WrongType:
            raise ReplyError("ERR The specified keys must contain string values") from None
    want_len = want_idx = with_len = False
    min_len = 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"IDX":
            want_idx = True
        elif opt == b"LEN":
            want_len = True
        elif opt == b"WITHMATCHLEN":
            with_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(args):
            i += 1
            min_len = max(0, to_int(args[i]))
        else:
            raise syntax_error()
        i += 1
    if want_len and want_idx:
        raise ReplyError("ERR If you want both the length and indexes, please just use IDX.")
    alen, blen = (v.length if v is not None else 0 for v in views)
    if (alen + 1) * (blen + 1) * 4 > max_string(c):  # Redis's bound, before reading either
        raise ReplyError(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    a, b = (v.whole() if v is not None else b"" for v in views)
    table = LcsTable(a, b)
    total = table.at(len(a), len(b))
    if want_len:
        return total
    matches: list[object] = []
    result = bytearray(total)
    alen, blen = len(a), len(b)
    i, j, idx = alen, blen, total
    a_start = a_end = b_start = b_end = alen
    a_start = alen
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if table.at(i - 1, j) > table.at(i, j - 1):
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if min_len == 0 or match_len >= min_len:
                entry: list[object] = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    if want_idx:
        return Map([b"matches", matches, b"len", total])
    return bytes(result)


class LcsTable:
    """LCS(i, j), the length of the longest common subsequence of a[:i] and b[:j], for every
    i and j, in (len(a) + 1) * len(b) bits: one bit vector per prefix of ``a``, computed with
    a few big-integer operations each (Hyyro's bit-parallel LCS). Bit j of row i is 0 where
    LCS(i, j + 1) = LCS(i, j) + 1, so LCS(i, j) counts the zeros below bit j. (Redis builds
    the table of numbers; this answers the same values, 32 times smaller and in C-speed
    steps, where the Python table took seconds at a few thousand bytes a side.)"""

    def __init__(self, a: bytes, b: bytes) -> None:
        width = len(b)
        full = (1 << width) - 1
        masks: dict[int, int] = {}
        for ch in set(a):  # positions of each byte of a in b, as bits
            positions = b.translate(bytes(1 if x == ch else 0 for x in range(256)))
            masks[ch] = int(positions.translate(_BITS01)[::-1] or b"0", 2)
        row = full
        rows = [row]
        for ch in a:
            u = row & masks[ch]
            row = ((row + u) | (row - u)) & full
            rows.append(row)
        self.rows = rows

    def at(self, i: int, j: int) -> int:
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()
