"""The libraries Redis scripts rely on, besides Lua's own: ``bit`` (LuaJIT's BitOp, on 32-bit
signed integers) and ``cjson`` (encode/decode, ``cjson.null``). ``cmsgpack`` and ``struct`` are
in ``lua_cmsgpack.py`` and ``lua_struct.py``."""

from __future__ import annotations

import json
import math
from typing import Any

from lupa.lua51 import lua_type

_SPECIAL = {"inf": math.inf, "-inf": -math.inf}


class Null:
    """``cjson.null``: JSON's null, distinct from Lua's nil."""

    def __repr__(self) -> str:
        return "cjson.null"


NULL = Null()


def tobit(x: float) -> int:
    n = int(math.fmod(x, 2**32)) if isinstance(x, float) else x
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def _u(x: float) -> int:
    return tobit(x) & 0xFFFFFFFF


def bit_functions() -> dict[bytes, Any]:
    def band(*xs: float) -> int:
        r = -1
        for x in xs:
            r &= tobit(x)
        return tobit(r)

    def bor(*xs: float) -> int:
        r = 0
        for x in xs:
            r |= tobit(x)
        return tobit(r)

    def bxor(*xs: float) -> int:
        r = 0
        for x in xs:
            r ^= tobit(x)
        return tobit(r)

    def tohex(x: float, n: float = 8) -> bytes:
        digits = int(n)
        upper = digits < 0
        digits = min(abs(digits), 8)
        text = b"%08x" % _u(x)
        text = text[8 - digits :] if digits else b""
        return text.upper() if upper else text

    def rol(x: float, n: float) -> int:
        s = int(n) & 31
        u = _u(x)
        return tobit((u << s | u >> (32 - s)) & 0xFFFFFFFF)

    def ror(x: float, n: float) -> int:
        s = int(n) & 31
        u = _u(x)
        return tobit((u >> s | u << (32 - s)) & 0xFFFFFFFF)

    return {
        b"tobit": tobit,
        b"tohex": tohex,
        b"bnot": lambda x: tobit(~tobit(x)),
        b"band": band,
        b"bor": bor,
        b"bxor": bxor,
        b"lshift": lambda x, n: tobit((_u(x) << (int(n) & 31)) & 0xFFFFFFFF),
        b"rshift": lambda x, n: tobit(_u(x) >> (int(n) & 31)),
        b"arshift": lambda x, n: tobit(tobit(x) >> (int(n) & 31)),
        b"rol": rol,
        b"ror": ror,
        b"bswap": lambda x: tobit(int.from_bytes(_u(x).to_bytes(4, "little"), "big")),
    }


class CJson:
    """cjson.encode / cjson.decode over one Lua state's tables."""

    def __init__(self, table_from: Any, raise_error: Any) -> None:
        self.table_from = table_from
        self.raise_error = raise_error

    def functions(self) -> dict[bytes, Any]:
        return {b"encode": self.encode, b"decode": self.decode, b"null": NULL}

    def encode(self, value: object) -> bytes:
        out: list[str] = []
        self._encode(value, out, 0)
        return "".join(out).encode("utf-8", "surrogateescape")

    def _encode(self, v: object, out: list[str], depth: int) -> None:
        if depth > 1000:
            self.raise_error("Cannot serialise, excessive nesting (1001)")
        if v is None or v is NULL:
            out.append("null")
        elif v is True or v is False:
            out.append("true" if v else "false")
        elif isinstance(v, (int, float)):
            if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
                self.raise_error("Cannot serialise number: must not be NaN or Inf")
            out.append(f"{v:.14g}")
        elif isinstance(v, bytes):
            text = json.dumps(v.decode("utf-8", "surrogateescape"), ensure_ascii=False)
            out.append(text.replace("/", "\\/"))
        elif hasattr(v, "items"):
            items = list(v.items())  # type: ignore[attr-defined]
            n = len(items)
            if n and all(isinstance(k, (int, float)) and k == int(k) and k >= 1 for k, _ in items):
                top = int(max(k for k, _ in items))
                if top <= max(10, 2 * n):  # cjson's sparse-array rule
                    byk = {int(k): x for k, x in items}
                    out.append("[")
                    for i in range(1, top + 1):
                        if i > 1:
                            out.append(",")
                        self._encode(byk.get(i), out, depth + 1)
                    out.append("]")
                    return
            if n == 0:
                out.append("{}")
                return
            out.append("{")
            for i, (k, x) in enumerate(items):
                if i:
                    out.append(",")
                if isinstance(k, bytes):
                    key = k
                elif isinstance(k, (int, float)):
                    key = f"{k:.14g}".encode()
                else:
                    self.raise_error("Cannot serialise table: table key must be a number or string")
                self._encode(key, out, depth + 1)
                out.append(":")
                self._encode(x, out, depth + 1)
            out.append("}")
        else:
            kind = lua_type(v) or "userdata"
            self.raise_error(f"Cannot serialise {kind}: type not supported")

    def decode(self, text: object) -> object:
        if not isinstance(text, bytes):
            self.raise_error("bad argument #1 to 'decode' (string expected)")
        try:
            data = json.loads(
                text.decode("utf-8", "surrogateescape"),  # type: ignore[attr-defined]
                parse_constant=lambda c: _SPECIAL.get(c, math.nan),
            )
        except (ValueError, RecursionError) as e:
            self.raise_error(
                f"Expected value but found invalid token at character {getattr(e, 'pos', 0) + 1}"
            )
        return self._to_lua(data)

    def _to_lua(self, d: object) -> object:
        if d is None:
            return NULL
        if isinstance(d, str):
            return d.encode("utf-8", "surrogateescape")
        if isinstance(d, list):
            return self.table_from({i + 1: self._to_lua(x) for i, x in enumerate(d)})
        if isinstance(d, dict):
            return self.table_from(
                {k.encode("utf-8", "surrogateescape"): self._to_lua(x) for k, x in d.items()}
            )
        return d
