"""Numbers as C reads them: ``strtod`` over the whole text, and where Redis calls it bare.

The grammar itself (decimal, hexadecimal, inf, nan) is ``longdouble.py``'s, the one copy.
The argument converters in ``commands/args.py`` and the score bounds in ``zset.py`` read
doubles through these.
"""

from __future__ import annotations

import math

from . import longdouble


def parse_double(b: bytes) -> tuple[float, bool] | None:
    """What C's ``strtod`` makes of the whole of ``b``: (value, out of range), or None when
    it does not read every byte. Out of range (ERANGE) is a finite number too big for a double
    (the value is then +-inf) or a non-zero one too small (the value is then 0)."""
    m = longdouble.DECIMAL.fullmatch(b)
    if m is not None:
        value = float(b)
        if math.isinf(value):
            return value, True
        return value, value == 0 and longdouble.digits_of(m).strip(b"0") != b""
    m = longdouble.HEX.fullmatch(b)
    if m is not None:
        try:
            value = float.fromhex(b.decode("ascii"))
        except OverflowError:
            return (-math.inf if b[:1] == b"-" else math.inf), True
        return value, value == 0 and longdouble.digits_of(m).strip(b"0") != b""
    if longdouble.INF.fullmatch(b) is not None:
        return (-math.inf if b[:1] == b"-" else math.inf), False
    if longdouble.NAN.fullmatch(b) is not None:
        return math.nan, False
    return None


def c_strtod(b: bytes) -> tuple[float, bool] | None:
    """C's ``strtod`` where Redis calls it directly and only checks that it stopped at the end
    of the C string (score ranges, SORT weights): leading white space is skipped, an inner NUL
    ends the text, and "" is 0. (value, out of range), or None when bytes are left over."""
    b = b.split(b"\0", 1)[0]
    rest = b.lstrip(b" \t\n\v\f\r")
    if not rest:
        return (0.0, False) if not b else None  # no conversion: strtod stops at the start
    return parse_double(rest)
