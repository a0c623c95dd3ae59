"""Redis's ``long double`` arithmetic (x87 80-bit extended precision), exactly.

INCRBYFLOAT, HINCRBYFLOAT and the blocking commands' timeouts compute in ``long double``: a
64-bit significand and exponents down to 2^-16445 (subnormal) and up to just under 2^16384.
Values are kept here as exact fractions rounded to that format, so sums, the ``%.17Lf`` text
Redis replies with and the range errors all come out as Redis's do. Parsing checks the order
of magnitude first, so no text (however many digits its exponent has) costs more than a few
thousand digits of work.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

SIGNIFICAND_BITS = 64
MIN_EXP = -16382  # the smallest normal exponent
TINY_EXP = MIN_EXP - (SIGNIFICAND_BITS - 1)  # 2^-16445: the smallest subnormal
MAX = Fraction((2**SIGNIFICAND_BITS - 1) * 2 ** (16383 - (SIGNIFICAND_BITS - 1)))
MAX_CHARS = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS: longer text is refused
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# C's strtod/strtold grammar (C locale), as a whole text: decimal or hexadecimal digits, or
# inf/infinity/nan(...). The one copy: args.py reads doubles with it too.
DECIMAL = re.compile(
    rb"[+-]?(?:(?P<whole>\d+)(?:\.(?P<frac>\d*))?|\.(?P<only>\d+))(?:[eE](?P<exp>[+-]?\d+))?"
)
HEX = re.compile(
    rb"(?P<sign>[+-]?)0[xX](?:(?P<whole>[0-9a-fA-F]+)(?:\.(?P<frac>[0-9a-fA-F]*))?"
    rb"|\.(?P<only>[0-9a-fA-F]+))(?:[pP](?P<exp>[+-]?\d+))?"
)
INF = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)
NAN = re.compile(rb"[+-]?nan(?:\([0-9A-Za-z_]*\))?", re.IGNORECASE)


def digits_of(m: re.Match[bytes]) -> bytes:
    """The significand's digits of a DECIMAL or HEX match."""
    return b"".join(d for d in m.group("whole", "frac", "only") if d)


def round_ld(x: Fraction) -> Fraction | float:
    """``x`` rounded to the nearest long double (ties to even); +-inf when it overflows."""
    if x == 0:
        return Fraction(0)
    num, den = abs(x.numerator), x.denominator
    e = num.bit_length() - den.bit_length()
    below = num < (den << e) if e >= 0 else (num << -e) < den
    if below:
        e -= 1  # now 2^e <= |x| < 2^(e+1)
    quantum = max(e - (SIGNIFICAND_BITS - 1), TINY_EXP)
    scaled = x / Fraction(2) ** quantum if quantum >= 0 else x * 2**-quantum
    rounded = Fraction(round(scaled))  # round() on a Fraction is ties-to-even
    value = rounded * Fraction(2) ** quantum
    if abs(value) > MAX:
        return math.inf if x > 0 else -math.inf
    return value


def parse(b: bytes) -> Fraction | float | None:
    """What Redis's ``string2ld`` accepts: an exact long double (a Fraction), +-inf (a float)
    for "inf"/"infinity", or None for anything refused (not a number, NaN, leading space,
    trailing bytes, too long, a finite number that overflows or underflows to zero)."""
    if not b or len(b) >= MAX_CHARS or b[:1].isspace():
        return None
    if (m := DECIMAL.fullmatch(b)) is not None:
        exact = _decimal(b, m)
    elif (m := HEX.fullmatch(b)) is not None:
        exact = _hex(m)
    elif INF.fullmatch(b) is not None:
        return -math.inf if b[:1] == b"-" else math.inf
    else:
        return None  # NaN included
    if exact is None:
        return None
    value = round_ld(exact)
    if isinstance(value, float) or (value == 0 and exact != 0):
        return None  # ERANGE: overflow, or underflow to zero
    return value


def _decimal(b: bytes, m: re.Match[bytes]) -> Fraction | None:
    exponent = m.group("exp")
    mantissa = b[: m.start("exp") - 1] if exponent is not None else b
    if exponent is not None and len(exponent.lstrip(b"+-").lstrip(b"0")) > 15:
        # |exponent| >= 10^15: certainly out of range unless the mantissa is zero.
        if Decimal(mantissa.decode()).is_zero():
            return Fraction(0)
        return None
    d = Decimal(b.decode())
    if d.is_zero():
        return Fraction(0)
    if d.adjusted() > 4933 or d.adjusted() < -4952:
        return None
    return Fraction(d)


def _hex(m: re.Match[bytes]) -> Fraction | None:
    sign, frac, only_frac, exp = m.group("sign", "frac", "only", "exp")
    digits = digits_of(m)
    shift = -4 * len(frac or only_frac or b"")
    if exp is not None:
        if len(exp.lstrip(b"+-").lstrip(b"0")) > 15:
            return Fraction(0) if int(digits, 16) == 0 else None
        shift += int(exp)
    mantissa = int(digits, 16)
    if mantissa == 0:
        return Fraction(0)
    magnitude = mantissa.bit_length() + shift
    if magnitude > 16400 or magnitude < TINY_EXP - 2:
        return None
    value = Fraction(mantissa) * Fraction(2) ** shift
    return -value if sign == b"-" else value


def format_human(x: Fraction) -> bytes:
    """``%.17Lf`` with trailing zeros (and a bare '.') removed, as Redis's LD_STR_HUMAN."""
    scaled = round(x * 10**17)
    sign = "-" if scaled < 0 else ""
    digits = format(Decimal(abs(scaled)), "f").rjust(18, "0")  # no int->str digit limit
    text = f"{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if sign and text == "0":
        sign = ""
    return (sign + text).encode()


def to_int64(x: Fraction | float) -> int:
    """C's conversion of a long double to ``long long`` on x86: truncation toward zero, and
    the "integer indefinite" value (LLONG_MIN) for anything out of range."""
    if isinstance(x, float) and not math.isfinite(x):
        return INT64_MIN
    n = int(x)  # truncates toward zero
    return n if INT64_MIN <= n <= INT64_MAX else INT64_MIN
