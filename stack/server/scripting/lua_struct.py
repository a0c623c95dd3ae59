"""``struct`` as Redis ships it (Roberto Ierusalimschy's lua_struct): pack, unpack, size.

Formats: ``>`` ``<`` byte order (little-endian by default, as on every machine Redis runs on),
``!n`` alignment, ``x`` a zero byte, ``b B h H l L T i I in In`` integers (1, 2, 8, 8,
4 and n bytes, n <= 32), ``f d`` floats, ``s`` a zero-terminated string, ``cn`` n bytes (``c0``:
the whole string in pack, the size unpacked just before in unpack), spaces ignored. Sizes,
alignment and errors as the C library's, on a 64-bit machine.
"""

from __future__ import annotations

import struct
from typing import Any

from .lib_error import ArgError, LibError

MAXINTSIZE = 32
MAXALIGN = 8
MAX_RESULTS = 7990  # values one unpack returns at most (Lua's C stack)
_INT_MAX = 2**31 - 1
_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}
_INTEGERS = frozenset("bBhHlLTiI")


class _Format:
    """A format string read one option at a time (``optsize`` and ``getnum`` of the C code)."""

    def __init__(self, fmt: bytes) -> None:
        self.fmt = fmt.split(b"\0", 1)[0].decode("latin-1")  # C stops at a NUL
        self.pos = 0
        self.little = True
        self.align = 1

    def __iter__(self) -> _Format:
        return self

    def __next__(self) -> tuple[str, int]:
        if self.pos >= len(self.fmt):
            raise StopIteration
        opt = self.fmt[self.pos]
        self.pos += 1
        return opt, self._size(opt)

    def _num(self, default: int) -> int:
        if self.pos >= len(self.fmt) or not _digit(self.fmt[self.pos]):
            return default
        a = 0
        while self.pos < len(self.fmt) and _digit(self.fmt[self.pos]):
            digit = ord(self.fmt[self.pos]) - 48
            if a > _INT_MAX // 10 or a * 10 > _INT_MAX - digit:
                raise LibError("integral size overflow")
            a = a * 10 + digit
            self.pos += 1
        return a

    def _size(self, opt: str) -> int:
        if opt in _SIZES:
            return _SIZES[opt]
        if opt == "c":
            return self._num(1)
        if opt in "iI":
            n = self._num(4)
            if n > MAXINTSIZE:
                raise LibError(f"integral size {n} is larger than limit of {MAXINTSIZE}")
            return n
        return 0

    def padding(self, at: int, opt: str, size: int) -> int:
        """The C code's ``gettoalign``, odd sizes (``i7``) and all."""
        if size == 0 or opt == "c":
            return 0
        size = min(size, self.align)
        return (size - (at & (size - 1))) & (size - 1)

    def control(self, opt: str) -> None:
        if opt == " ":
            return
        if opt == ">":
            self.little = False
        elif opt == "<":
            self.little = True
        elif opt == "!":
            a = self._num(MAXALIGN)
            if a <= 0 or a & (a - 1):
                raise LibError(f"alignment {a} is not a power of 2")
            self.align = a
        else:
            raise ArgError(1, f"invalid format option '{opt}'")


def _digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _number(args: tuple[object, ...], i: int) -> float:
    """``luaL_checknumber`` of argument ``i`` (0-based here, 1-based in the message)."""
    v = args[i] if i < len(args) else None
    if isinstance(v, bytes):
        try:
            return float(v.strip()) if not v.strip().lower().startswith(b"0x") else int(v, 16)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(i + 1, f"number expected, got {_type_name(args, i)}")
    return v


def _string(args: tuple[object, ...], i: int) -> bytes:
    v = args[i] if i < len(args) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return b"%.14g" % v
    if not isinstance(v, bytes):
        raise ArgError(i + 1, f"string expected, got {_type_name(args, i)}")
    return v


def _type_name(args: tuple[object, ...], i: int) -> str:
    if i >= len(args):
        return "no value"
    v = args[i]
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, bytes):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    return "table" if hasattr(v, "items") else "userdata"


def _put_integer(n: float, size: int, little: bool) -> bytes:
    value = int(n) % (1 << 64)  # C: (Uinttype)(Inttype)n, or (Uinttype)n
    raw = bytes((value >> (8 * i)) & 0xFF if i < 8 else 0 for i in range(size))
    return raw if little else raw[::-1]


def _get_integer(data: bytes, little: bool, signed: bool, size: int) -> float:
    raw = data if little else data[::-1]
    value = 0
    for i in range(size - 1, -1, -1):
        value = ((value << 8) | raw[i]) & 0xFFFFFFFFFFFFFFFF
    if signed:
        bits = min(size * 8, 64)
        if value & (1 << (bits - 1)):
            value -= 1 << bits
    return value if -(1 << 53) <= value <= 1 << 53 else float(value)


def _float_bytes(fmt: str, little: bool, x: float) -> bytes:
    try:
        return struct.pack(("<" if little else ">") + fmt, x)
    except OverflowError:  # C converts to an infinity
        return struct.pack(("<" if little else ">") + fmt, x * float("inf"))


class Struct:
    def functions(self) -> dict[bytes, Any]:
        return {b"pack": self.pack, b"unpack": self.unpack, b"size": self.size}

    def pack(self, *args: object) -> bytes:
        fmt = _Format(_string(args, 0))
        args = (*args, None)  # the C code pushes a nil after its arguments: a missing one is nil
        out = bytearray()
        arg = 1
        for opt, size in fmt:
            pad = fmt.padding(len(out), opt, size)
            out += b"\0" * pad
            if opt in _INTEGERS:
                out += _put_integer(_number(args, arg), size, fmt.little)
                arg += 1
            elif opt == "x":
                out += b"\0"
            elif opt in "fd":
                out += _float_bytes(opt, fmt.little, _number(args, arg))
                arg += 1
            elif opt in "cs":
                s = _string(args, arg)
                arg += 1
                n = size or len(s)
                if len(s) < n:
                    raise ArgError(arg + 1, "string too short")  # the C code's next argument
                out += s[:n]
                if opt == "s":
                    out += b"\0"
            else:
                fmt.control(opt)
        return bytes(out)

    def unpack(self, *args: object) -> tuple[object, ...]:
        fmt = _Format(_string(args, 0))
        data = _string(args, 1)
        init = 1 if len(args) < 3 or args[2] is None else int(_number(args, 2))
        if init < 1:
            raise ArgError(3, "offset must be 1 or greater")
        pos = init - 1
        out: list[object] = []
        for opt, size in fmt:
            pos += fmt.padding(pos, opt, size)
            if size > len(data) or pos > len(data) - size:
                raise ArgError(2, "data string too short")
            if len(out) >= MAX_RESULTS:
                raise LibError("stack overflow (too many results)")
            if opt in _INTEGERS:
                out.append(_get_integer(data[pos : pos + size], fmt.little, opt.islower(), size))
            elif opt in "fd":
                chunk = data[pos : pos + size]
                out.append(struct.unpack(("<" if fmt.little else ">") + opt, chunk)[0])
            elif opt == "c":
                if size == 0:
                    prev = out[-1] if out else None
                    if isinstance(prev, bytes):
                        try:
                            prev = float(prev)
                        except ValueError:
                            prev = None
                    if isinstance(prev, bool) or not isinstance(prev, (int, float)):
                        raise LibError("format 'c0' needs a previous size")
                    out.pop()
                    size = int(prev)
                    if size > len(data) or pos > len(data) - size:
                        raise ArgError(2, "data string too short")
                out.append(data[pos : pos + size])
            elif opt == "s":
                end = data.find(b"\0", pos)
                if end < 0:
                    raise LibError("unfinished string in data")
                size = end - pos + 1
                out.append(data[pos:end])
            elif opt != "x":
                fmt.control(opt)
            pos += size
        return (*out, pos + 1)

    def size(self, *args: object) -> int:
        fmt = _Format(_string(args, 0))
        pos = 0
        for opt, size in fmt:
            pos += fmt.padding(pos, opt, size)
            if opt == "s":
                raise ArgError(1, "option 's' has no fixed size")
            if opt == "c" and size == 0:
                raise ArgError(1, "option 'c0' has no fixed size")
            if not (opt.isascii() and opt.isalnum()):
                fmt.control(opt)
            pos += size
        return pos
