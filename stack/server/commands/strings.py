"""String commands (Redis 7 semantics)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, OK, ONE, ZERO, Map, ReplyError

from ..storage import keyformat as kf
from ..storage.keyspace import WrongType, now_ms, record_expire
from . import handler
from .args import INT64_MAX, INT64_MIN, syntax_error, to_int

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


def max_string(c: Client) -> int:
    return int(c.server.config["proto-max-bulk-len"])


def string_of(rec: bytes | None) -> bytes | None:
    if rec is None:
        return None
    if rec[0] & kf.TYPE_MASK != kf.TYPE_STRING:
        raise WrongType()
    return kf.body(rec)


def store(c: Client, mkey: bytes, old: bytes | None, value: bytes, expire_ms: int = 0) -> None:
    """Write a string over ``old``; an expiry already in the past deletes the key instead."""
    ks = c.server.keyspace
    if expire_ms and expire_ms <= now_ms():
        if old is not None:
            ks.delete(mkey, old)
        return
    ks.write(mkey, kf.string_value(value, expire_ms), old)


@handler("get")
def get(c: Client, args: list[bytes]) -> object:
    value = c.db.lookup_string(args[1])
    return NIL if value is None else value


@handler("set")
def set_(c: Client, args: list[bytes]) -> object:
    cond = b""
    want_old = False
    keep_ttl = False
    expire_ms = 0
    expire_given = False
    i = 3
    n = len(args)
    now = 0
    while i < n:
        opt = args[i].upper()
        if opt in (b"NX", b"XX") and not cond:
            cond = opt
        elif opt == b"GET" and not want_old:
            want_old = True
        elif opt == b"KEEPTTL" and not expire_given and not keep_ttl:
            keep_ttl = True
        elif opt in _EXPIRE_UNITS and not expire_given and not keep_ttl and i + 1 < n:
            now = now or now_ms()
            expire_given = True
            i += 1
            expire_ms = expire_at(opt, args[i], "set", now)
        else:
            raise syntax_error()
        i += 1
    mkey, old = c.db.read(args[1])
    old_value = string_of(old) if want_old else None
    if (cond == b"NX" and old is not None) or (cond == b"XX" and old is None):
        return NIL if old_value is None else old_value
    if keep_ttl and old is not None:
        expire_ms = record_expire(old)
    store(c, mkey, old, args[2], expire_ms)
    if want_old:
        return NIL if old_value is None else old_value
    return OK


@handler("setnx")
def setnx(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    if old is not None:
        return ZERO
    store(c, mkey, None, args[2])
    return ONE


def _set_with_ttl(c: Client, args: list[bytes], unit: int, name: str) -> object:
    value = to_int(args[2])
    if value <= 0 or (unit == 1000 and value > INT64_MAX // 1000):
        raise errors.invalid_expire(name)
    now = now_ms()
    if value * unit > INT64_MAX - now:
        raise errors.invalid_expire(name)
    mkey, old = c.db.read(args[1])
    store(c, mkey, old, args[3], now + value * unit)
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
    old_value = string_of(old)
    store(c, mkey, old, args[2])
    return NIL if old_value is None else old_value


@handler("getdel")
def getdel(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    value = string_of(old)
    if old is None or value is None:
        return NIL
    c.server.keyspace.delete(mkey, old)
    return value


@handler("getex")
def getex(c: Client, args: list[bytes]) -> object:
    expire_ms = -1  # -1: leave as is, 0: persist
    i = 2
    n = len(args)
    now = now_ms()
    while i < n:
        opt = args[i].upper()
        if opt in _EXPIRE_UNITS and expire_ms == -1 and i + 1 < n:
            i += 1
            expire_ms = expire_at(opt, args[i], "getex", now)
        elif opt == b"PERSIST" and expire_ms == -1:
            expire_ms = 0
        else:
            raise syntax_error()
        i += 1
    mkey, old = c.db.read(args[1])
    value = string_of(old)
    if old is None or value is None:
        return NIL
    if expire_ms != -1:
        store(c, mkey, old, value, expire_ms)
    return value


@handler("mget")
def mget(c: Client, args: list[bytes]) -> object:
    out: list[bytes | None] = []
    db = c.db
    for key in args[1:]:
        rec = db.lookup(key)
        out.append(kf.body(rec) if rec is not None and kf.rtype(rec) == kf.TYPE_STRING else None)
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
        store(c, mkey, old, args[i + 1])
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
    value = string_of(old)
    if old is None or value is None:
        store(c, mkey, None, args[2])
        return len(args[2])
    if len(value) + len(args[2]) > max_string(c):
        raise ReplyError(errors.STRING_TOO_LONG)
    new = value + args[2]
    store(c, mkey, old, new, record_expire(old))
    return len(new)


@handler("strlen")
def strlen(c: Client, args: list[bytes]) -> object:
    value = c.db.lookup_string(args[1])
    return 0 if value is None else len(value)


def clamp_range(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's string range arithmetic (GETRANGE, BITCOUNT, ...): inclusive, or None if empty."""
    if start < 0 and end < 0 and start > end:
        return None
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    end = max(end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return None
    return start, end


@handler("getrange", "substr")
def getrange(c: Client, args: list[bytes]) -> object:
    start = to_int(args[2])
    end = to_int(args[3])
    value = c.db.lookup_string(args[1])
    if value is None:
        return b""
    bounds = clamp_range(start, end, len(value))
    return b"" if bounds is None else value[bounds[0] : bounds[1] + 1]


@handler("setrange")
def setrange(c: Client, args: list[bytes]) -> object:
    offset = to_int(args[2])
    if offset < 0:
        raise ReplyError("ERR offset is out of range")
    patch = args[3]
    mkey, old = c.db.read(args[1])
    value = string_of(old)
    if old is None or value is None:
        if not patch:
            return 0
        value = b""
    elif not patch:
        return len(value)
    if offset + len(patch) > max_string(c):
        raise ReplyError(errors.STRING_TOO_LONG)
    buf = bytearray(value)
    if len(buf) < offset + len(patch):
        buf.extend(bytes(offset + len(patch) - len(buf)))
    buf[offset : offset + len(patch)] = patch
    store(c, mkey, old, bytes(buf), record_expire(old) if old is not None else 0)
    return len(buf)


def _incr(c: Client, key: bytes, delta: int) -> object:
    mkey, old = c.db.read(key)
    value = string_of(old)
    current = 0
    if value is not None:
        parsed = to_int(value) if len(value) <= 20 else None
        if parsed is None:
            raise ReplyError(errors.NOT_INTEGER)
        current = parsed
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise ReplyError(errors.OVERFLOW)
    store(c, mkey, old, b"%d" % result, record_expire(old) if old is not None else 0)
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


# --- INCRBYFLOAT: long double arithmetic as Redis does it ---------------------------------------

_LD_BITS = 64  # x87 extended precision: 64-bit significand
_LD_MAX = Fraction(2**64 - 1) * Fraction(2) ** (16384 - 64)


def _to_long_double(x: Fraction) -> Fraction:
    """Round an exact rational to the nearest x87 long double (ties to even)."""
    if x == 0:
        return x
    e = abs(x.numerator).bit_length() - abs(x.denominator).bit_length()
    if abs(x) < Fraction(2) ** e:
        e -= 1
    scale = Fraction(2) ** (_LD_BITS - 1 - e)
    return Fraction(round(x * scale)) / scale


def parse_long_double(b: bytes, message: str = errors.NOT_FLOAT) -> Fraction | float:
    """Parse as Redis's ``string2ld``; returns an exact value, or +-inf as a float."""
    text = b.decode("latin-1")
    if not text or len(text) >= 5 * 1024 or text[0].isspace() or text != text.strip():
        raise ReplyError(message)
    if "_" in text:
        raise ReplyError(message)
    try:
        as_float = float(text)
    except ValueError:
        raise ReplyError(message) from None
    if math.isnan(as_float):
        raise ReplyError(message)
    if math.isinf(as_float):
        low = text.lower().lstrip("+-")
        if low in ("inf", "infinity"):
            return as_float
        raise ReplyError(message)  # a finite literal out of range (ERANGE)
    return _to_long_double(Fraction(text))


def format_long_double(x: Fraction) -> bytes:
    """``%.17Lf`` with trailing zeros (and a bare '.') removed, as Redis's LD_STR_HUMAN."""
    scaled = round(x * 10**17)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(18, "0")
    text = f"{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if sign and text == "0":
        sign = ""
    return (sign + text).encode()


@handler("incrbyfloat")
def incrbyfloat(c: Client, args: list[bytes]) -> object:
    mkey, old = c.db.read(args[1])
    value = string_of(old)
    current: Fraction | float = Fraction(0)
    if value is not None:
        current = parse_long_double(value)
    delta = parse_long_double(args[2])
    if isinstance(current, float) or isinstance(delta, float):
        raise ReplyError("ERR increment would produce NaN or Infinity")
    result = _to_long_double(current + delta)
    if abs(result) > _LD_MAX:
        raise ReplyError("ERR increment would produce NaN or Infinity")
    text = format_long_double(result)
    store(c, mkey, old, text, record_expire(old) if old is not None else 0)
    return text


# --- LCS ------------------------------------------------------------------------------------------

LCS_MAX_CELLS = 25_000_000


@handler("lcs")
def lcs(c: Client, args: list[bytes]) -> object:
    db = c.db
    ra, rb = db.lookup(args[1]), db.lookup(args[2])
    if any(r is not None and kf.rtype(r) != kf.TYPE_STRING for r in (ra, rb)):
        raise ReplyError("ERR The specified keys must contain string values")
    a = kf.body(ra) if ra is not None else b""
    b = kf.body(rb) if rb is not None else b""
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
    if (len(a) + 1) * (len(b) + 1) > LCS_MAX_CELLS:
        raise ReplyError(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        )
    table = _lcs_table(a, b)
    total = table[len(a)][len(b)]
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
            if table[i - 1][j] > table[i][j - 1]:
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


def _lcs_table(a: bytes, b: bytes) -> list[list[int]]:
    prev = [0] * (len(b) + 1)
    rows = [prev]
    for ai in a:
        cur = [0] * (len(b) + 1)
        for j, bj in enumerate(b, 1):
            if ai == bj:
                cur[j] = prev[j - 1] + 1
            else:
                up = prev[j]
                left = cur[j - 1]
                cur[j] = up if up > left else left
        rows.append(cur)
        prev = cur
    return rows
