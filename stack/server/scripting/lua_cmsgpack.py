"""``cmsgpack`` as Redis ships it (lua_cmsgpack 0.4.0): pack, unpack, unpack_one, unpack_limit.

Packing picks the smallest MessagePack form, as that library does: integral numbers as ints,
others as float32 when that holds the value exactly, else float64; strings as str (fixstr, str8,
str16, str32); a table as an array when its keys are exactly 1..n, else as a map in Lua's
``next`` order; a table nested 16 deep, functions and other values as nil. Unpacking reads every
MessagePack type but ext, and refuses short or unknown input with the library's errors.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from .lib_error import ArgError, LibError

MAX_NESTING = 16  # deeper tables pack as nil (LUACMSGPACK_MAX_NESTING)
MAX_DECODE_DEPTH = 200  # deeper input is refused rather than recursed into
MAX_RESULTS = 7990  # values one call returns at most (Lua's C stack, LUAI_MAXCSTACK 8000)
_INT64 = 1 << 63
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


class _Short(Exception):
    pass


class _BadFormat(Exception):
    pass


class CMsgPack:
    def __init__(self, table_from: Any, lua_type: Any) -> None:
        self.table_from = table_from
        self.lua_type = lua_type

    def functions(self) -> dict[bytes, Any]:
        return {
            b"pack": self.pack,
            b"unpack": self.unpack,
            b"unpack_one": self.unpack_one,
            b"unpack_limit": self.unpack_limit,
        }

    # -- pack -----------------------------------------------------------------------------------

    def pack(self, *values: object) -> bytes:
        if not values:
            raise ArgError(0, "MessagePack pack needs input.")
        out: list[bytes] = []
        for v in values:
            self._pack(v, out, 0)
        return b"".join(out)

    def _pack(self, v: object, out: list[bytes], level: int) -> None:
        if v is True:
            out.append(b"\xc3")
        elif v is False:
            out.append(b"\xc2")
        elif isinstance(v, int) and -_INT64 <= v < _INT64:
            out.append(_pack_int(v))
        elif isinstance(v, (int, float)):
            out.append(_pack_float(float(v)))
        elif isinstance(v, bytes):
            out.append(_pack_str(v))
        elif v is not None and self.lua_type(v) == "table" and level < MAX_NESTING:
            self._pack_table(v, out, level)
        else:
            out.append(b"\xc0")

    def _pack_table(self, t: Any, out: list[bytes], level: int) -> None:
        items = list(t.items())
        count, top = len(items), 0
        array = True
        for k, _ in items:
            if isinstance(k, bool) or not isinstance(k, (int, float)) or k != int(k) or k < 1:
                array = False
                break
            top = max(top, int(k))
        if array and top == count:
            out.append(_length(count, 0x90, 15, b"\xdc", b"\xdd"))
            for i in range(1, count + 1):
                self._pack(t[i], out, level + 1)
            return
        out.append(_length(count, 0x80, 15, b"\xde", b"\xdf"))
        for k, x in items:
            self._pack(k, out, level + 1)
            self._pack(x, out, level + 1)

    # -- unpack ---------------------------------------------------------------------------------

    def unpack(self, *args: object) -> tuple[object, ...]:
        return self._unpack(args, "unpack", 0, 0)

    def unpack_one(self, *args: object) -> tuple[object, ...]:
        return self._unpack(args, "unpack_one", 1, _opt_int(args, 1, "unpack_one"))

    def unpack_limit(self, *args: object) -> tuple[object, ...]:
        limit = _check_int(args, 1, "unpack_limit")
        return self._unpack(args, "unpack_limit", limit, _opt_int(args, 2, "unpack_limit"))

    def _unpack(self, args: tuple[object, ...], name: str, limit: int, offset: int) -> tuple:  # type: ignore[type-arg]
        data = args[0] if args else None
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            data = _number_text(data)
        if not isinstance(data, bytes):
            raise ArgError(1, f"string expected, got {_type_name(data, self.lua_type)}")
        decode_all = limit == 0 and name == "unpack"
        if offset < 0 or limit < 0:
            raise LibError(
                f"Invalid request to unpack with offset of {offset} and limit of {len(data)}."
            )
        if offset > len(data):
            raise LibError(f"Start offset {offset} greater than input length {len(data)}.")
        if decode_all:
            limit = 1 << 62
        pos, values = offset, list[object]()
        try:
            while pos < len(data) and len(values) < limit:
                if len(values) >= MAX_RESULTS:
                    raise LibError(
                        "stack overflow (too many return values at once; use unpack_one or "
                        "unpack_limit instead.)"
                    )
                value, pos = self._decode(data, pos, 0)
                values.append(value)
        except _Short:
            raise LibError("Missing bytes in input.") from None
        except _BadFormat:
            raise LibError("Bad data format in input.") from None
        if decode_all:
            return tuple(values)
        return (-1 if pos == len(data) else pos, *values)

    def _decode(self, d: bytes, pos: int, depth: int) -> tuple[object, int]:
        if depth > MAX_DECODE_DEPTH:
            raise LibError("stack overflow (in function mp_decode_to_lua_array)")
        if pos >= len(d):
            raise _Short
        b = d[pos]
        pos += 1
        if b <= 0x7F:
            return b, pos
        if b >= 0xE0:
            return b - 0x100, pos
        if 0xA0 <= b <= 0xBF:
            return _take(d, pos, b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self._array(d, pos, b & 0x0F, depth)
        if 0x80 <= b <= 0x8F:
            return self._map(d, pos, b & 0x0F, depth)
        fixed = _FIXED.get(b)
        if fixed is not None:
            fmt = fixed
            if pos + fmt.size > len(d):
                raise _Short
            (n,) = fmt.unpack_from(d, pos)
            pos += fmt.size
            if isinstance(n, int) and not -(1 << 53) <= n <= 1 << 53:
                n = float(n)  # a Lua number
            return n, pos
        if b == 0xC0:
            return None, pos
        if b == 0xC2 or b == 0xC3:
            return b == 0xC3, pos
        sized = _SIZED.get(b)
        if sized is None:
            raise _BadFormat
        kind, fmt = sized
        if pos + fmt.size > len(d):
            raise _Short
        (n,) = fmt.unpack_from(d, pos)
        pos += fmt.size
        if kind == "str":
            return _take(d, pos, n)
        if kind == "array":
            return self._array(d, pos, n, depth)
        return self._map(d, pos, n, depth)

    def _array(self, d: bytes, pos: int, n: int, depth: int) -> tuple[object, int]:
        if n > len(d) - pos:  # every element takes a byte at least
            raise _Short
        items = {}
        for i in range(1, n + 1):
            v, pos = self._decode(d, pos, depth + 1)
            if v is not None:
                items[i] = v
        return self.table_from(items), pos

    def _map(self, d: bytes, pos: int, n: int, depth: int) -> tuple[object, int]:
        if 2 * n > len(d) - pos:
            raise _Short
        items: dict[object, object] = {}
        for _ in range(n):
            k, pos = self._decode(d, pos, depth + 1)
            v, pos = self._decode(d, pos, depth + 1)
            if k is None:
                raise LibError("table index is nil", at_caller=False)
            if isinstance(k, float) and math.isnan(k):
                raise LibError("table index is NaN", at_caller=False)
            if v is None:
                items.pop(k, None)
            else:
                items[k] = v
        return self.table_from(items), pos


_FIXED = {
    0xCC: struct.Struct(">B"),
    0xCD: struct.Struct(">H"),
    0xCE: struct.Struct(">I"),
    0xCF: struct.Struct(">Q"),
    0xD0: struct.Struct(">b"),
    0xD1: struct.Struct(">h"),
    0xD2: struct.Struct(">i"),
    0xD3: struct.Struct(">q"),
    0xCA: _F32,
    0xCB: _F64,
}
_SIZED = {
    0xD9: ("str", struct.Struct(">B")),
    0xDA: ("str", struct.Struct(">H")),
    0xDB: ("str", struct.Struct(">I")),
    0xDC: ("array", struct.Struct(">H")),
    0xDD: ("array", struct.Struct(">I")),
    0xDE: ("map", struct.Struct(">H")),
    0xDF: ("map", struct.Struct(">I")),
}


def _take(d: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(d):
        raise _Short
    return d[pos : pos + n], pos + n


def _pack_int(n: int) -> bytes:
    if n >= 0:
        if n <= 0x7F:
            return bytes((n,))
        if n <= 0xFF:
            return b"\xcc" + bytes((n,))
        if n <= 0xFFFF:
            return b"\xcd" + n.to_bytes(2, "big")
        if n <= 0xFFFFFFFF:
            return b"\xce" + n.to_bytes(4, "big")
        return b"\xcf" + n.to_bytes(8, "big")
    if n >= -32:
        return bytes((n & 0xFF,))
    if n >= -128:
        return b"\xd0" + n.to_bytes(1, "big", signed=True)
    if n >= -32768:
        return b"\xd1" + n.to_bytes(2, "big", signed=True)
    if n >= -2147483648:
        return b"\xd2" + n.to_bytes(4, "big", signed=True)
    return b"\xd3" + n.to_bytes(8, "big", signed=True)


def _pack_float(x: float) -> bytes:
    try:
        f32 = _F32.pack(x)
    except OverflowError:
        f32 = b""
    if f32 and (_F32.unpack(f32)[0] == x):
        return b"\xca" + f32
    return b"\xcb" + _F64.pack(x)


def _pack_str(s: bytes) -> bytes:
    n = len(s)
    if n < 32:
        return bytes((0xA0 | n,)) + s
    if n <= 0xFF:
        return b"\xd9" + bytes((n,)) + s
    if n <= 0xFFFF:
        return b"\xda" + n.to_bytes(2, "big") + s
    return b"\xdb" + n.to_bytes(4, "big") + s


def _length(n: int, fix: int, fix_max: int, mark16: bytes, mark32: bytes) -> bytes:
    if n <= fix_max:
        return bytes((fix | n,))
    if n <= 0xFFFF:
        return mark16 + n.to_bytes(2, "big")
    return mark32 + n.to_bytes(4, "big")


def _number_text(n: float) -> bytes:
    return b"%.14g" % n


def _type_name(v: object, lua_type: Any) -> str:
    if v is None:
        return "no value"
    if isinstance(v, bool):
        return "boolean"
    return str(lua_type(v) or "userdata")


def _check_int(args: tuple[object, ...], i: int, name: str) -> int:
    v = args[i] if len(args) > i else None
    if isinstance(v, bytes):
        try:
            return int(float(v))
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        got = "no value" if len(args) <= i else ("nil" if v is None else "string")
        raise ArgError(i + 1, f"number expected, got {got}")
    return int(v)


def _opt_int(args: tuple[object, ...], i: int, name: str) -> int:
    if len(args) <= i or args[i] is None:
        return 0
    return _check_int(args, i, name)
