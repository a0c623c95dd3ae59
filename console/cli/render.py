"""Replies printed exactly as redis-cli prints them: its terminal form and its --raw form."""

from __future__ import annotations

from stack.core.reply_parser import ErrorReply
from stack.core.resp import Status

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


def format_tty(value: object, prefix: str = "") -> str:
    """The terminal form (``cliFormatReplyTTY``): one line per leaf, numbered nested arrays."""
    if isinstance(value, ErrorReply):
        return f"(error) {value}\n"
    if isinstance(value, Status):
        return f"{value}\n"
    if isinstance(value, bool):  # pragma: no cover - RESP2 has no booleans
        return f"(integer) {int(value)}\n"
    if isinstance(value, int):
        return f"(integer) {value}\n"
    if value is None:
        return "(nil)\n"
    if isinstance(value, bytes):
        return quote(value) + "\n"
    if isinstance(value, list):
        if not value:
            return "(empty array)\n"
        width = len(str(len(value)))
        child_prefix = prefix + " " * (width + 2)
        parts = []
        for i, item in enumerate(value):
            parts.append(f"{'' if i == 0 else prefix}{i + 1:>{width}}) ")
            parts.append(format_tty(item, child_prefix))
        return "".join(parts)
    return f"{value}\n"


def _raw(value: object) -> bytes:
    if isinstance(value, ErrorReply):
        return value.encode() + b"\n"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, list):
        return b"\n".join(_raw(v) for v in value)
    return str(value).encode()


def format_raw(value: object) -> bytes:
    """The ``--raw`` form (``cliFormatReplyRaw`` plus the final newline)."""
    return _raw(value) + b"\n"
