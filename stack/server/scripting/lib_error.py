"""Errors of the Lua libraries written in Python (cmsgpack, struct), worded as the C libraries
word them: ``luaL_error`` text, or ``luaL_argerror``'s ``bad argument #n to 'f' (...)``. The
Lua side (``prelude.lua``'s ``wrap``) raises the text at its caller's line, as ``luaL_error``
does, and names the function as the caller called it."""

from __future__ import annotations


class LibError(Exception):
    """``luaL_error(L, message)``; ``at_caller=False``: an error Lua itself raises inside the
    C function (``lua_settable``'s "table index is nil"), which names no line."""

    def __init__(self, message: str, at_caller: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.at_caller = at_caller

    def text(self, function: str) -> str:
        return self.message


class ArgError(LibError):
    """``luaL_argerror(L, n, message)``."""

    def __init__(self, n: int, message: str) -> None:
        super().__init__(message)
        self.n = n

    def text(self, function: str) -> str:
        return f"bad argument #{self.n} to '{function}' ({self.message})"


def lib_message(error: object, function: bytes | None) -> tuple[bytes | None, bool]:
    """The Lua error text for an exception a library function raised (None: not a library
    error, raised on as it is), and whether the caller's line goes before it."""
    if not isinstance(error, LibError):
        return None, False
    name = function.decode("utf-8", "replace") if function else "?"
    return error.text(name).encode("utf-8", "surrogateescape"), error.at_caller
