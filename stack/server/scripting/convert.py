"""Redis's conversion rules between Lua values and replies, both ways.

Reply -> Lua (what ``redis.call`` returns): integer -> number, bulk -> string, null -> false
(RESP2) or nil (RESP3), array -> table, status -> ``{ok=...}``, error -> ``{err=...}``; with
``redis.setresp(3)`` also map -> ``{map=...}``, set -> ``{set=...}``, double ->
``{double=...}``, boolean -> boolean, big number -> ``{big_number=...}``, verbatim ->
``{verbatim_string={format=..., string=...}}``.

Lua -> reply (what a script returns): number -> integer (truncated), string -> bulk, true ->
1, false -> null (``#t``/``#f`` once the script chose RESP3), nil -> null, a table with ``err``
-> error, ``ok`` -> status, ``double``/``big_number``/``map``/``set`` (RESP3 forms), other
tables -> arrays up to the first nil.
"""

from __future__ import annotations

from typing import Any

from stack.core.reply_parser import BigNumber, ErrorReply
from stack.core.resp import Double, Map, Raw, ReplyError, SetReply, Status, Verbatim

LLONG_MIN = -(2**63)
_TRUE3, _FALSE3 = Raw(b"#t\r\n"), Raw(b"#f\r\n")


def lua_number(x: float) -> int:
    """A Lua number as Redis's ``(long long)`` cast leaves it."""
    if isinstance(x, int):
        return x
    if x != x or not (-(2.0**63) <= x < 2.0**63):
        return LLONG_MIN
    return int(x)


class ToLua:
    """Builds Lua values from parsed replies in one Lua state."""

    def __init__(self, table_from: Any) -> None:
        self.table_from = table_from

    def value(self, v: object, resp3: bool) -> object:
        t = type(v)
        if t is bytes or t is int:
            return v
        if v is None:
            return None if resp3 else False
        if t is Status:
            return self.table_from({b"ok": str(v).encode("utf-8", "surrogateescape")})
        if t is ErrorReply:
            return self.table_from({b"err": str(v).encode("utf-8", "surrogateescape")})
        if t is list:
            return self.table_from([self.value(x, resp3) for x in v])  # type: ignore[attr-defined]
        if t is bool:
            return v
        if t is Map:
            items: list[object] = v  # type: ignore[assignment]
            inner = self.table_from(
                {
                    self.value(items[i], resp3): self.value(items[i + 1], resp3)
                    for i in range(0, len(items), 2)
                }
            )
            return self.table_from({b"map": inner})
        if t is SetReply:
            members: list[object] = v  # type: ignore[assignment]
            inner = self.table_from({self.value(m, resp3): True for m in members})
            return self.table_from({b"set": inner})
        if t is Double:
            return self.table_from({b"double": float(v)})  # type: ignore[arg-type]
        if t is BigNumber:
            return self.table_from({b"big_number": str(v).encode()})
        if t is Verbatim:
            string = self.table_from({b"format": b"txt", b"string": bytes(v)})  # type: ignore[call-overload]
            return self.table_from({b"verbatim_string": string})
        return v


def to_reply(v: object, script_resp3: bool, client_resp3: bool, depth: int = 0) -> object:
    """A script's result as a reply value for ``stack.core.resp.encode`` (``script_resp3``:
    the script called ``redis.setresp(3)``; ``client_resp3``: the caller speaks RESP3)."""
    t = type(v)
    if t is bytes:
        return v
    if t is int or t is float:
        return lua_number(v)  # type: ignore[arg-type]
    if v is None:
        return None
    if t is bool:
        if script_resp3:
            if client_resp3:
                return _TRUE3 if v else _FALSE3
            return 1 if v else 0
        return 1 if v else None
    if depth > 1000:
        raise ReplyError("ERR reached lua stack limit")
    get = getattr(v, "__getitem__", None)
    if get is None:  # a function, userdata or thread
        return None
    err = v[b"err"]  # type: ignore[index]
    if isinstance(err, bytes):
        raise ReplyError(err.decode("utf-8", "surrogateescape"))
    ok = v[b"ok"]  # type: ignore[index]
    if isinstance(ok, bytes):
        return Status(ok.decode("utf-8", "surrogateescape").replace("\r", " ").replace("\n", " "))
    double = v[b"double"]  # type: ignore[index]
    if isinstance(double, (int, float)) and not isinstance(double, bool):
        return Double(float(double))
    big = v[b"big_number"]  # type: ignore[index]
    if isinstance(big, bytes):
        big = big.replace(b"\r", b" ").replace(b"\n", b" ")
        return Raw(b"(%b\r\n" % big) if client_resp3 else big
    mapping = v[b"map"]  # type: ignore[index]
    if mapping is not None and hasattr(mapping, "items"):
        flat: list[object] = []
        for k, x in mapping.items():
            flat.append(to_reply(k, script_resp3, client_resp3, depth + 1))
            flat.append(to_reply(x, script_resp3, client_resp3, depth + 1))
        return Map(flat)
    members = v[b"set"]  # type: ignore[index]
    if members is not None and hasattr(members, "keys"):
        return SetReply([to_reply(k, script_resp3, client_resp3, depth + 1) for k in members])
    out: list[object] = []
    i = 1
    while True:
        item = v[i]  # type: ignore[index]
        if item is None:
            break
        out.append(to_reply(item, script_resp3, client_resp3, depth + 1))
        i += 1
    return out
