"""Replies printed exactly as redis-cli prints them: its terminal form and its --raw form, for
RESP2 and RESP3 replies (maps ``1# "a" => "1"``, sets ``1~``, ``(double)``, ``(true)``)."""

from __future__ import annotations

from stack.core.reply_parser import BigNumber, ErrorReply
from stack.core.resp import Map, Push, SetReply, Status, Verbatim

_ESCAPES = {
    0x5C: "\\\\",
    0x22: '\\"',
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x07: "\\a",
    0x08: "\\b",
}


def quote(data: bytes) -> str:
    """redis-cli's ``sdscatrepr``: printable ASCII as is, the rest escaped, in double quotes."""
    out = ['"']
    for byte in data:
        esc = _ESCAPES.get(byte)
        if esc is not None:
            out.append(esc)
        elif 0x20 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def _double_text(value: float) -> str:
    """A RESP3 double as redis-cli shows it: the server's text, which Redis 7.0 and ledis write
    with ``%.17g`` (``1.1000000000000001``, ``3.141``, ``inf``): the same again from the value."""
    return f"{value:.17g}"


def _empty(value: list[object]) -> str:
    if isinstance(value, Map):
        return "(empty hash)\n"
    if isinstance(value, SetReply):
        return "(empty set)\n"
    if isinstance(value, Push):
        return "(empty push)\n"
    return "(empty array)\n"


def format_tty(value: object, prefix: str = "") -> str:
    """The terminal form (``cliFormatReplyTTY``): one line per leaf, numbered nested
    aggregates (``1)`` arrays, ``1~`` sets, ``1# key => value`` maps)."""
    if isinstance(value, ErrorReply):
        return f"(error) {value}\n"
    if isinstance(value, Status):
        return f"{value}\n"
    if isinstance(value, bool):
        return "(true)\n" if value else "(false)\n"
    if isinstance(value, BigNumber):
        return f"(big number) {int(value)}\n"
    if isinstance(value, int):
        return f"(integer) {value}\n"
    if isinstance(value, float):
        return f"(double) {_double_text(value)}\n"
    if value is None:
        return "(nil)\n"
    if isinstance(value, Verbatim):
        return value.decode("utf-8", "replace") + "\n"
    if isinstance(value, bytes):
        return quote(value) + "\n"
    if isinstance(value, list):
        if not value:
            return _empty(value)
        is_map = isinstance(value, Map)
        sep = "#" if is_map else "~" if isinstance(value, SetReply) else ")"
        count = len(value) // 2 if is_map else len(value)
        width = len(str(count))
        child_prefix = prefix + " " * (width + 2)
        parts = []
        step = 2 if is_map else 1
        for n, i in enumerate(range(0, len(value), step)):
            parts.append(f"{'' if i == 0 else prefix}{n + 1:>{width}}{sep} ")
            item = format_tty(value[i], child_prefix)
            if is_map:
                shown = format_tty(value[i + 1], child_prefix)
                if shown.count("\n") > 1:  # a value of several lines starts on its own line
                    shown = "\n" + child_prefix + shown
                item = item[:-1] + " => " + shown
            parts.append(item)
        return "".join(parts)
    return f"{value}\n"


def format_push(value: object) -> str:
    """A push read at the prompt: a tracking invalidation as redis-cli's one line
    (``-> invalidate: 'a', 'b'``), anything else in the terminal form."""
    if (
        isinstance(value, Push)
        and len(value) == 2
        and value[0] == b"invalidate"
        and isinstance(value[1], list)
    ):
        keys = ", ".join(f"'{k.decode('utf-8', 'replace')}'" for k in value[1])
        return f"-> invalidate: {keys}\n"
    return format_tty(value)


def _raw(value: object) -> bytes:
    if isinstance(value, ErrorReply):
        return value.encode() + b"\n"
    if isinstance(value, bool):
        return b"(true)" if value else b"(false)"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return _double_text(value).encode()
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Map):
        return b"\n".join(
            _raw(value[i]) + b" " + _raw(value[i + 1]) for i in range(0, len(value), 2)
        )
    if isinstance(value, list):
        return b"\n".join(_raw(v) for v in value)
    return str(value).encode()


def format_raw(value: object) -> bytes:
    """The ``--raw`` form (``cliFormatReplyRaw`` plus the final newline)."""
    return _raw(value) + b"\n"
