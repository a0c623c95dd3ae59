"""Sorted-set scores on disk: doubles in 8 bytes whose byte order is numeric order."""

from __future__ import annotations

import math
import struct

_DOUBLE = struct.Struct(">d")
_SIGN = 1 << 63
_ALL = (1 << 64) - 1


def encode_score(x: float) -> bytes:
    """A double as 8 bytes whose byte order is numeric order (-0.0 is stored as 0.0)."""
    n = int.from_bytes(_DOUBLE.pack(x + 0.0), "big")
    return (n ^ (_ALL if n & _SIGN else _SIGN)).to_bytes(8, "big")


def decode_score(b: bytes) -> float:
    n = int.from_bytes(b[:8], "big")
    return _DOUBLE.unpack((n ^ (_SIGN if n & _SIGN else _ALL)).to_bytes(8, "big"))[0]  # type: ignore[no-any-return]


def format_score(x: float) -> bytes:
    """As Redis 7.0 replies a score: integers exactly, otherwise %.17g."""
    if math.isinf(x):
        return b"inf" if x > 0 else b"-inf"
    if x == int(x) and abs(x) < 2**52:
        return b"%d" % int(x)
    return b"%.17g" % x
