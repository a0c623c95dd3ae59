"""Redis 7 functions: libraries (FUNCTION LOAD, DELETE, FLUSH, DUMP, RESTORE, LIST, STATS) and
calling their functions (FCALL, FCALL_RO).

A library is its code, ``#!lua name=<lib>`` on the first line; loading runs the code once in
a Lua state of its own (``prelude.lua``'s ``load_library``: only ``redis.register_function``,
``redis.log`` and the version in sight, half a second at most), and what it registered is
callable by name. The code is kept in the store under ``SYS_FUNCTIONS`` + the library's name,
written in the command's batch: so it is in the binlog (replicas hold the same libraries), in
backups and full syncs, and read back at start. When a replica applies its master's batches
(or a batch could not be written) ``reload`` compares the store with what is loaded and
rebuilds on a difference.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack.core import errors
from stack.core.keypattern import matches
from stack.core.resp import (
    Map,
    ReplyError,
    SetReply,
    Status,
    UnbalancedQuotes,
    split_args,
)

from ..storage import dump as key_dump
from ..storage import keyformat as kf
from . import function_dump
from .run import numkeys
from .runtime import LibraryError, LuaMemoryError

if TYPE_CHECKING:
    from ..client import Client
    from ..server import Server
    from .scripts import Scripts

log = logging.getLogger(__name__)

ENGINE = b"LUA"
LOAD_TIMEOUT = 0.5  # seconds a library's code may run at FUNCTION LOAD (Redis's limit)
HOOK_INSTRUCTIONS = 20_000
RESTORE_POLICIES = (b"flush", b"append", b"replace")


@dataclass(frozen=True, slots=True)
class Function:
    name: bytes
    library: bytes
    callback: Any  # the Lua function
    flags: tuple[bytes, ...]  # in Redis's order (no-writes, allow-oom, ...)
    description: bytes | None


@dataclass(frozen=True, slots=True)
class Library:
    name: bytes
    code: bytes
    functions: tuple[Function, ...]


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(ch == 95 or 48 <= ch <= 57 or 65 <= ch <= 90 or 97 <= ch <= 122
                              for ch in name)  # fmt: skip


def parse_metadata(code: bytes) -> tuple[bytes, bytes]:
    """The library's name and the code to compile (the shebang line left out, its newline
    kept so line numbers hold), or Redis's error for the shebang."""
    if not code.startswith(b"#!"):
        raise ReplyError(errors.LIBRARY_MISSING_METADATA)
    end = code.find(b"\n")
    if end < 0:
        raise ReplyError(errors.LIBRARY_INVALID_METADATA)
    try:
        parts = split_args(code[:end])
    except UnbalancedQuotes:
        parts = []
    if not parts:
        raise ReplyError(errors.LIBRARY_INVALID_METADATA)
    engine, name = parts[0][2:], None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise ReplyError(errors.LIBRARY_NAME_TWICE)
            name = part[5:]
            continue
        raise ReplyError(errors.library_invalid_metadata(part))
    if name is None:
        raise ReplyError(errors.LIBRARY_NO_NAME)
    if not _valid_name(name):
        raise ReplyError(errors.LIBRARY_BAD_NAME)
    if engine.upper() != ENGINE:
        raise ReplyError(errors.library_engine_not_found(engine))
    return name, code[end:]


class Functions:
    def __init__(self, server: Server, scripts: Scripts) -> None:
        self.server = server
        self.scripts = scripts
        self._load_started = 0.0
        self.runtime = scripts.new_runtime(self._load_hook)
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}  # by lower-cased name (FCALL ignores case)
        self.reload()
        server.keyspace.on_reload.append(self.reload)

    # -- building a library -------------------------------------------------------------------

    def _load_hook(self) -> bool:
        return time.monotonic() - self._load_started > LOAD_TIMEOUT

    def _build(self, name: bytes, code: bytes, body: bytes) -> Library:
        """Compile and run a library's code: the library, or Redis's error."""
        self._load_started = time.monotonic()
        try:
            regs = self.runtime.load_library(body, HOOK_INSTRUCTIONS)
        except ValueError as e:
            raise ReplyError(errors.function_compile_error(str(e))) from None
        except LibraryError as e:
            raise ReplyError(errors.function_register_error(str(e))) from None
        except LuaMemoryError:
            raise ReplyError(errors.function_register_error("ERR not enough memory")) from None
        if not regs:
            raise ReplyError(errors.LIBRARY_NO_FUNCTIONS)
        functions = tuple(
            Function(
                r[b"name"],
                name,
                r[b"callback"],
                tuple(r[b"flags"].values()),
                r[b"description"],
            )
            for r in regs
        )
        return Library(name, code, functions)

    def _link(self, added: list[Library], removed: list[Library]) -> None:
        for lib in removed:
            del self.libraries[lib.name]
            for f in lib.functions:
                self.functions.pop(f.name.lower(), None)
        for lib in added:
            self.libraries[lib.name] = lib
            for f in lib.functions:
                self.functions[f.name.lower()] = f

    def _collision(self, lib: Library, removed: set[bytes]) -> None:
        for f in lib.functions:
            other = self.functions.get(f.name.lower())
            if other is not None and other.library not in removed:
                raise ReplyError(errors.function_exists(f.name))

    def _store(self, lib: Library) -> None:
        self.server.engine.put(kf.SYS_FUNCTIONS + lib.name, lib.code)

    def _unstore(self, name: bytes) -> None:
        self.server.engine.delete(kf.SYS_FUNCTIONS + name)

    # -- FUNCTION -----------------------------------------------------------------------------

    def load(self, code: bytes, replace: bool) -> bytes:
        name, body = parse_metadata(code)
        old = self.libraries.get(name)
        if old is not None and not replace:
            raise ReplyError(errors.library_exists(name))
        lib = self._build(name, code, body)
        self._collision(lib, {name})
        self._link([lib], [old] if old is not None else [])
        self._store(lib)
        return name

    def delete(self, name: bytes) -> None:
        lib = self.libraries.get(name)
        if lib is None:
            raise ReplyError(errors.LIBRARY_NOT_FOUND)
        self._link([], [lib])
        self._unstore(name)

    def flush(self) -> None:
        for name in self.libraries:
            self._unstore(name)
        self._reset()

    def _reset(self) -> None:
        self.libraries.clear()
        self.functions.clear()
        self.runtime = self.scripts.new_runtime(self._load_hook)

    def dump(self) -> bytes:
        return function_dump.encode([lib.code for lib in self.libraries.values()])

    def restore(self, payload: bytes, policy: bytes) -> None:
        """FUNCTION RESTORE: every library of the payload built first, then all linked or none
        (``policy`` is flush, append or replace)."""
        try:
            codes = function_dump.decode(payload)
        except function_dump.BadPayload:
            try:  # a key's DUMP passes the checks but holds no libraries (Redis's answer)
                key_dump.decode(payload)
            except key_dump.BadChecksum:
                raise ReplyError(errors.FUNCTION_BAD_PAYLOAD) from None
            except key_dump.BadPayload:
                pass
            raise ReplyError(errors.FUNCTION_RESTORE_NOT_FUNCTIONS) from None
        new: dict[bytes, Library] = {}
        names: set[bytes] = set()
        for code in codes:
            name, body = parse_metadata(code)
            if name in new:
                raise ReplyError(errors.library_exists(name))
            lib = self._build(name, code, body)
            for f in lib.functions:
                if f.name.lower() in names:
                    raise ReplyError(errors.function_exists(f.name))
                names.add(f.name.lower())
            new[name] = lib
        if policy == b"flush":
            for name in self.libraries:
                if name not in new:
                    self._unstore(name)
            self.libraries.clear()
            self.functions.clear()
        else:
            replaced = [self.libraries[n] for n in new if n in self.libraries]
            if replaced and policy != b"replace":
                raise ReplyError(errors.library_exists(replaced[0].name, quoted=False))
            gone = {lib.name for lib in replaced}
            for lib in new.values():
                self._collision(lib, gone)
            self._link([], replaced)
        self._link(list(new.values()), [])
        for lib in new.values():
            self._store(lib)

    def list_reply(self, args: list[bytes]) -> list[Map]:
        pattern: bytes | None = None
        withcode = False
        i = 2
        while i < len(args):
            arg = args[i].lower()
            if not withcode and arg == b"withcode":
                withcode = True
            elif pattern is None and arg == b"libraryname":
                if i == len(args) - 1:
                    raise ReplyError(errors.FUNCTION_LIST_NO_PATTERN)
                i += 1
                pattern = args[i]
            else:
                raise ReplyError(errors.function_unknown_list_argument(args[i]))
            i += 1
        out = []
        for lib in self.libraries.values():
            if pattern is not None and not matches(pattern, lib.name, nocase=True):
                continue
            entry = Map([b"library_name", lib.name, b"engine", ENGINE, b"functions", [
                Map([b"name", f.name, b"description", f.description, b"flags",
                     SetReply([Status(x.decode()) for x in f.flags])])
                for f in lib.functions
            ]])  # fmt: skip
            if withcode:
                entry += [b"library_code", lib.code]
            out.append(entry)
        return out

    def stats(self) -> Map:
        run = self.scripts.running
        running = None
        if run is not None:
            ms = int((time.monotonic() - run.started) * 1000)
            running = Map([b"name", run.name, b"command", run.command, b"duration_ms", ms])
        functions = sum(len(lib.functions) for lib in self.libraries.values())
        counts = Map([b"libraries_count", len(self.libraries), b"functions_count", functions])
        return Map([b"running_script", running, b"engines", Map([ENGINE, counts])])

    # -- FCALL --------------------------------------------------------------------------------

    def call(self, c: Client, args: list[bytes], readonly: bool) -> object:
        f = self.functions.get(args[1].lower())
        if f is None:
            raise ReplyError(errors.FUNCTION_NOT_FOUND)
        n = numkeys(args, errors.FUNCTION_BAD_NUMKEYS)
        rt = self.runtime
        run = self.scripts.prepare(c, rt, f.name, True, f.flags, readonly, args, n)
        keys = rt.lua.table_from(args[3 : 3 + n])
        argv = rt.lua.table_from(args[3 + n :])
        return self.scripts.execute(run, rt.call_fn, f.callback, keys, argv)

    # -- the store ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Load the libraries the store holds, when they differ from those loaded (at start,
        and after a replica applied its master's batches)."""
        prefix = kf.SYS_FUNCTIONS
        stored = {
            k[len(prefix) :]: v for k, v in self.server.engine.scan(prefix, kf.prefix_end(prefix))
        }
        if stored == {name: lib.code for name, lib in self.libraries.items()}:
            return
        self._reset()
        for name, code in stored.items():
            try:
                parsed, body = parse_metadata(code)
                lib = self._build(parsed, code, body)
                self._collision(lib, set())
            except ReplyError as e:  # written by a server that checked it: not expected
                log.error("function library %r cannot be loaded: %s", name, e.message)
                continue
            self._link([lib], [])
