"""One Lua 5.1 state (lupa's bundled Lua 5.1, as Redis's) with Redis's sandbox loaded
(``prelude.lua``), bounded in memory. SCRIPT FLUSH throws a state away and makes a new one."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import lupa.lua51 as lua

from .convert import ToLua
from .lib_error import LibError, lib_message
from .libs import CJson, bit_functions
from .lua_cmsgpack import CMsgPack
from .lua_struct import Struct

log = logging.getLogger(__name__)

_PRELUDE = files(__package__).joinpath("prelude.lua").read_bytes()
VERSION = b"7.0.15"
VERSION_NUM = 0x07000F
_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.INFO, 3: logging.WARNING}

LuaError = lua.LuaError
LuaMemoryError = lua.LuaMemoryError


class ScriptLibError(Exception):
    """A library function refused its arguments (becomes a Lua error in the script)."""


class CallError(Exception):
    """A command called with ``redis.call`` failed: raised into the script (``.err`` is the
    error text, readable from Lua as a table's field would be)."""

    def __init__(self, err: bytes) -> None:
        super().__init__(err.decode("utf-8", "replace"))
        self.err = err


class LibraryError(Exception):
    """A library's code failed while it loaded (the error's text)."""


def sha1hex(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


class Runtime:
    """A sandboxed Lua state; ``host`` receives the calls scripts make (see Scripts)."""

    def __init__(
        self,
        call: Callable[..., object],
        pcall: Callable[..., object],
        hook: Callable[[], bool],
        setresp: Callable[[object], None],
        max_memory: int,
        load_hook: Callable[[], bool] = lambda: False,
    ) -> None:
        self.lua = lua.LuaRuntime(
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            max_memory=max_memory or None,
        )
        table_from = self.lua.table_from
        self.to_lua = ToLua(table_from)

        def lib_error(message: str) -> None:
            raise LibError(message)

        host = table_from(
            {
                b"call": call,
                b"pcall": pcall,
                b"unwrap": self._unwrap,
                b"hook": hook,
                b"load_hook": load_hook,
                b"setresp": setresp,
                b"set_repl": _set_repl,
                b"sha1hex": _sha1hex,
                b"log": _log,
                b"acl_check_cmd": lambda *a: True,
                b"version": VERSION,
                b"version_num": VERSION_NUM,
                b"bit": table_from(bit_functions()),
                b"cjson": table_from(CJson(table_from, lib_error).functions()),
                b"cmsgpack": table_from(CMsgPack(table_from, lua.lua_type).functions()),
                b"struct": table_from(Struct().functions()),
                b"lib_message": lib_message,
            }
        )
        prelude = self.lua.execute(b"return function(...) " + _PRELUDE + b"\nend")
        self.compile_fn, self.run_fn, self.arm, self.load_fn, self.call_fn = prelude(host)
        globals_ = self.lua.globals()
        for name in (b"python", b"os", b"io", b"package", b"require", b"dofile", b"loadfile"):
            globals_[name] = None

    def _unwrap(self, error: object) -> object:
        """The error table for an exception raised by a Python function called from Lua."""
        if isinstance(error, CallError):
            message = error.err
        elif isinstance(error, ScriptLibError):
            message = b"ERR " + str(error).encode()
        else:
            log.error("script library function failed: %r", error)
            message = b"ERR " + str(error).encode("utf-8", "replace")
        return self.lua.table_from({b"err": message})

    def compile(self, body: bytes) -> Any:
        """The compiled function, or raises ValueError with Lua's message."""
        f, message = self.compile_fn(body)
        if f is None:
            raise ValueError(message.decode("utf-8", "surrogateescape"))
        return f

    def load_library(self, body: bytes, count: int) -> list[Any]:
        """Run a library's code (FUNCTION LOAD): what it registered, each a Lua table of
        name, callback, flags, description. ValueError with Lua's message when it does not
        compile, LibraryError with the error table's text when it fails."""
        ok, result = self.load_fn(body, count)
        if ok:
            return list(result.values())
        if isinstance(result, bytes):
            raise ValueError(result.decode("utf-8", "surrogateescape"))
        message = result[b"err"] if getattr(result, "__getitem__", None) is not None else None
        if not isinstance(message, bytes):
            message = b"ERR unknown error"
        raise LibraryError(message.decode("utf-8", "surrogateescape"))

    def memory_used(self) -> int:
        return self.lua.get_memory_used() or 0


def _sha1hex(s: object) -> bytes:
    if isinstance(s, (int, float)):
        s = (b"%.14g" % s) if isinstance(s, float) else str(s).encode()
    if not isinstance(s, bytes):
        raise ScriptLibError("wrong number of arguments")
    return sha1hex(s)


def _log(level: object, message: bytes) -> None:
    lvl = int(level) if isinstance(level, (int, float)) else 0
    log.log(_LEVELS.get(lvl, logging.INFO), "script: %s", message.decode("utf-8", "replace"))


def _set_repl(n: object) -> None:
    if not isinstance(n, (int, float)) or not 0 <= int(n) <= 3:
        raise ScriptLibError(
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."
        )
