"""Argument conversions that raise Redis's exact errors."""

from __future__ import annotations

import math

from stack.core import errors
from stack.core.resp import ReplyError, strict_int

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def to_int(b: bytes, message: str = errors.NOT_INTEGER) -> int:
    n = strict_int(b)
    if n is None:
        raise ReplyError(message)
    return n


def to_float(b: bytes, message: str = errors.NOT_FLOAT) -> float:
    """A double as Redis's ``strtold``-based parser accepts it (no NaN, no trailing junk)."""
    text = b.decode("latin-1")
    if not text or text != text.strip() or len(text) > 5000:
        raise ReplyError(message)
    try:
        value = float(text)
    except ValueError:
        raise ReplyError(message) from None
    if math.isnan(value) or "_" in text:
        raise ReplyError(message)
    return value


def upper(b: bytes) -> bytes:
    return b.upper()


def syntax_error() -> ReplyError:
    return ReplyError(errors.SYNTAX)
