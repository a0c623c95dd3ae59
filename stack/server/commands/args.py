"""Argument conversions that raise Redis's exact errors, and bound every number before use.

Each converter is the counterpart of one of Redis 7.0's (``object.c``, ``util.c``): the same
grammar, the same range, the same error text, so that handlers never parse numbers themselves:

    to_int            getLongLongFromObjectOrReply   (string2ll: no spaces, '+', leading 0s)
    to_range          getRangeLongFromObjectOrReply  ("value is out of range, value must ...")
    to_int32          getIntFromObjectOrReply
    to_positive       getPositiveLongFromObjectOrReply
    to_float          getDoubleFromObjectOrReply     (strtod, hex floats included)
    to_long_double    getLongDoubleFromObjectOrReply (strtold; see longdouble.py)
    to_cursor         parseScanCursorOrReply         (strtoul)
    to_timeout_ms     getTimeoutFromObjectOrReply    (blocking commands)
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import ReplyError, strict_int

from ..storage import longdouble
from ..storage.numbers import parse_double

if TYPE_CHECKING:
    from ..client import Client
    from ..storage.keyspace import Database

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
UINT64_MAX = 2**64 - 1


_SMALL_INTS = {b"%d" % i: float(i) for i in range(-1000, 1001)}
_PLAIN = re.compile(rb"-?\d{1,20}(?:\.\d{1,20})?")


def to_int(b: bytes, message: str = errors.NOT_INTEGER) -> int:
    """A signed 64-bit integer, as Redis's ``string2ll`` reads it."""
    n = strict_int(b)
    if n is None:
        raise ReplyError(message)
    return n


def to_range(b: bytes, low: int, high: int, message: str | None = None) -> int:
    """An integer within [low, high]; ``message`` (when given) replaces both Redis errors."""
    n = strict_int(b)
    if n is None:
        raise ReplyError(message or errors.NOT_INTEGER)
    if not low <= n <= high:
        raise ReplyError(message or errors.out_of_range(low, high))
    return n


def to_int32(b: bytes, message: str | None = None) -> int:
    return to_range(b, INT32_MIN, INT32_MAX, message)


def to_positive(b: bytes, message: str | None = None) -> int:
    """0 .. LONG_MAX, "value is out of range, must be positive" unless told otherwise."""
    return to_range(b, 0, INT64_MAX, message or errors.MUST_BE_POSITIVE)


def to_float(b: bytes, message: str = errors.NOT_FLOAT) -> float:
    """A double as Redis's ``getDoubleFromObject`` accepts it: the whole text read by strtod,
    no leading space, no NaN, no overflow or underflow to zero ("inf" itself is fine)."""
    n = _SMALL_INTS.get(b)
    if n is not None:  # the common case: a small integer
        return n
    try:  # the next most common: a plain finite non-zero number Python and C read alike
        value = float(b)
    except ValueError:
        value = 0.0
    if value and value - value == 0 and _PLAIN.fullmatch(b) is not None:
        return value
    parsed = parse_double(b)
    if parsed is None or not b or b[:1].isspace():
        raise ReplyError(message)
    value, out_of_range = parsed
    if math.isnan(value) or (out_of_range and (math.isinf(value) or value == 0)):
        raise ReplyError(message)
    return value


def to_long_double(b: bytes, message: str = errors.NOT_FLOAT) -> Fraction | float:
    """A long double as Redis's ``string2ld`` reads it: an exact value, or +-inf as a float."""
    value = longdouble.parse(b)
    if value is None:
        raise ReplyError(message)
    return value


def to_cursor(b: bytes) -> int:
    """A SCAN cursor as ``strtoul`` reads it: an optional sign ("-1" is 2^64-1), and "" is 0."""
    if b[:1].isspace():
        raise ReplyError(errors.INVALID_CURSOR)
    sign = b[:1]
    digits = b[1:] if sign in (b"+", b"-") else b
    if digits and not (digits.isdigit() and digits.isascii()):
        raise ReplyError(errors.INVALID_CURSOR)
    if not digits:
        if sign in (b"+", b"-"):
            raise ReplyError(errors.INVALID_CURSOR)  # no digits: strtoul stops at the sign
        return 0
    if len(digits) > 20 or int(digits) > UINT64_MAX:
        raise ReplyError(errors.INVALID_CURSOR)
    n = int(digits)
    return (-n) & UINT64_MAX if sign == b"-" else n


def to_timeout_ms(b: bytes, now_ms: int, seconds: bool = True) -> int:
    """A timeout (in seconds, a long double; or in whole milliseconds) as the absolute time in
    ms to give up at, 0 for never: Redis 7.0's getTimeoutFromObjectOrReply, with its checks
    and errors, including C's conversion of a huge number of seconds to a negative count of
    ms ("timeout is negative"), and its addition of the time, which wraps past the int64 range
    to a negative deadline (Redis then waits forever: its timeout table reads it unsigned)."""
    if seconds:
        value = longdouble.parse(b)
        if value is None:
            raise ReplyError(errors.TIMEOUT_NOT_FLOAT)
        ms = longdouble.to_int64(
            value * 1000 if isinstance(value, float) else longdouble.round_ld(value * 1000)
        )
    else:
        ms = to_int(b, errors.TIMEOUT_NOT_INTEGER)
    if ms < 0:
        raise ReplyError(errors.TIMEOUT_NEGATIVE)
    return wrap_int64(ms + now_ms) if ms > 0 else 0


def wrap_int64(n: int) -> int:
    """``n`` as a C ``long long`` holds it after an overflow (two's complement)."""
    return ((n + 2**63) & UINT64_MAX) - 2**63


def upper(b: bytes) -> bytes:
    return b.upper()


def syntax_error() -> ReplyError:
    return ReplyError(errors.SYNTAX)


def max_string(c: Client) -> int:
    """The longest string a command may make (proto-max-bulk-len)."""
    return int(c.server.config["proto-max-bulk-len"])


def select_db(c: Client, raw: bytes) -> Database:
    """A database index (SELECT, MOVE, COPY ... DB, DEBUG DIGEST DB) as the database it names."""
    index = to_int32(raw)
    dbs = c.server.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise ReplyError(errors.DB_RANGE)
    return dbs[index]
