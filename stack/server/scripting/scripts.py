"""The scripts of one server: the cache (SCRIPT LOAD/EXISTS/FLUSH, EVALSHA), running one
(EVAL and its forms), ``redis.call``/``redis.pcall`` through the dispatcher, SCRIPT KILL.

A script runs inside its caller's command, on the event loop, like EXEC: every command it
calls goes through ``Dispatcher.execute`` with ``client.in_exec`` set, so its writes land in
the turn's one pending batch (one LevelDB write, one binlog record) and nothing commits until
it has ended. A Lua count hook (``busy.py``) watches the time: past ``busy-reply-threshold``
other clients are read and answered -BUSY, and SCRIPT KILL or SHUTDOWN NOSAVE are served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack.core import errors
from stack.core.commands.keyspec import keys_of
from stack.core.reply_parser import ErrorReply, ReplyParser
from stack.core.resp import Chunks, ReplyError, Status, strict_int
from stack.core.slots import key_slot

from . import shebang
from .busy import Busy
from .convert import to_reply
from .functions import Functions
from .run import Run, numkeys, readonly_by_flags
from .runtime import CallError, LuaError, LuaMemoryError, Runtime, ScriptLibError, sha1hex

if TYPE_CHECKING:
    from ..client import Client
    from ..server import Server

log = logging.getLogger(__name__)

# Lua's memory is bounded: a runaway allocation fails the script, not the server.
LUA_MAX_MEMORY = 256 << 20
HOOK_INSTRUCTIONS = 20_000  # the busy check runs every this many Lua instructions


@dataclass(frozen=True, slots=True)
class Script:
    sha: bytes
    function: Any
    flags: frozenset[bytes] | None  # from the shebang; None without one


_NOT_SIMPLE = object()
_OK_STATUS = Status("OK")


def _simple_reply(data: bytes) -> object:
    """The value of the replies scripts get most (an integer, a bulk string, nil, +OK) read
    without a parser; ``_NOT_SIMPLE`` for anything else (the parser reads it)."""
    kind = data[:1]
    if kind == b"$":
        if data == b"$-1\r\n":
            return None
        head = data.find(b"\r\n")
        n = strict_int(data[1:head])
        if n is not None and n >= 0 and len(data) == head + n + 4:
            return data[head + 2 : head + 2 + n]
    elif kind == b":":
        if data.find(b"\r\n") == len(data) - 2:
            n = strict_int(data[1:-2])
            if n is not None:
                return n
    elif data == b"+OK\r\n":
        return _OK_STATUS
    return _NOT_SIMPLE


class _Failed:
    """A failed call's error text, before it becomes a raise or an ``{err=...}`` table."""

    __slots__ = ("err",)

    def __init__(self, err: bytes) -> None:
        self.err = err


class Scripts:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.cache: dict[bytes, Script] = {}
        self.runtime = self.new_runtime()
        self.running: Run | None = None
        self.busy = Busy(server, self)
        self.calls = 0
        self.functions = Functions(server, self)  # Redis 7 functions: their own Lua state

    def new_runtime(self, load_hook: Callable[[], bool] | None = None) -> Runtime:
        """A Lua state whose ``redis.call`` and hooks come here (``load_hook``: FUNCTION
        LOAD's time limit)."""
        return Runtime(
            self._raising_call,
            self._pcall,
            self._hook,
            self._setresp,
            LUA_MAX_MEMORY,
            load_hook or (lambda: False),
        )

    # -- the cache ----------------------------------------------------------------------------

    def load(self, body: bytes) -> Script:
        sha = sha1hex(body)
        script = self.cache.get(sha)
        if script is not None:
            return script
        source, flags = shebang.parse(body)
        try:
            function = self.runtime.compile(source)
        except ValueError as e:
            raise ReplyError(f"ERR Error compiling script (new function): {e}") from None
        except LuaMemoryError:
            raise ReplyError(
                "ERR Error compiling script (new function): not enough memory"
            ) from None
        script = Script(sha, function, flags)
        self.cache[sha] = script
        return script

    def exists(self, sha: bytes) -> bool:
        return sha.lower() in self.cache

    def flush(self) -> None:
        self.cache.clear()
        self.runtime = self.new_runtime()

    def memory(self) -> int:
        return self.runtime.memory_used()

    # -- running ------------------------------------------------------------------------------

    def eval(self, c: Client, args: list[bytes], by_sha: bool, readonly: bool) -> object:
        found: Script | None = None
        if by_sha:  # Redis looks the script up before it reads numkeys
            found = self.cache.get(args[1].lower()) if len(args[1]) == 40 else None
            if found is None:
                raise ReplyError(errors.NOSCRIPT)
        n = numkeys(args, errors.NOT_INTEGER)
        script = found if found is not None else self.load(args[1])
        rt = self.runtime
        run = self.prepare(c, rt, script.sha, False, script.flags, readonly, args, n)
        keys = rt.lua.table_from(args[3 : 3 + n])
        argv = rt.lua.table_from(args[3 + n :])
        return self.execute(run, rt.run_fn, script.function, keys, argv)

    def prepare(
        self,
        c: Client,
        rt: Runtime,
        name: bytes,
        is_function: bool,
        flags: Collection[bytes] | None,
        readonly: bool,
        args: list[bytes],
        n: int,
    ) -> Run:
        """A run of a script or function whose ``n`` keys follow numkeys in ``args``, its
        flags checked as Redis checks them before it runs."""
        server = self.server
        cluster = server.slots.map is not None
        readonly = readonly_by_flags(flags, readonly, server.read_only, cluster)
        run = Run(c, rt, name, is_function, readonly, time.monotonic(), args)
        # a script without a shebang may use keys of any slot (as Redis 7 keeps old scripts)
        run.cross_slot = flags is None or b"allow-cross-slot-keys" in flags
        if cluster and n:  # the gate saw its declared keys in one slot served here
            run.slot = key_slot(args[3])
        return run

    def execute(self, run: Run, runner: Any, function: Any, keys: Any, argv: Any) -> object:
        """Run a script or a function (``runner`` is the Lua side that calls it) on its
        caller's connection, as EXEC runs commands: its reply, or raises its error."""
        c = run.client
        saved = (c.db, c.resp3, c.in_exec)
        self.running = run
        c.in_exec = True
        c.resp3 = False
        self.calls += 1
        try:
            ok, result = runner(function, keys, argv, HOOK_INSTRUCTIONS)
        except LuaMemoryError:
            ok, result = False, b"not enough memory"
        except LuaError as e:  # an error while handling an error
            ok, result = False, str(e).encode("utf-8", "replace") or b"error in error handling"
        finally:
            self.running = None
            c.db, c.resp3, c.in_exec = saved
            if run.busy:
                self.busy.ended(run)
        if ok:
            return to_reply(result, run.resp3, c.resp3)
        raise ReplyError(self._error_text(result, run.name))

    def _error_text(self, err: object, name: bytes) -> str:
        text = name.decode("utf-8", "surrogateescape")
        if isinstance(err, bytes):  # not through the handler (out of memory)
            return f"ERR {err.decode('utf-8', 'replace')} script: {text}"
        getter = getattr(err, "__getitem__", None)
        message = err[b"err"] if getter is not None else None  # type: ignore[index]
        if not isinstance(message, bytes):
            return f"ERR unknown error script: {text}"
        msg = message.decode("utf-8", "surrogateescape")
        source, line = err[b"source"], err[b"line"]  # type: ignore[index]
        if isinstance(source, bytes) and line is not None:
            return f"{msg} script: {text}, on {source.decode()}:{int(line)}."
        return f"{msg} script: {text}"

    # -- called from Lua ----------------------------------------------------------------------

    def _raising_call(self, *lua_args: object) -> object:
        """redis.call: a failed command raises its error into the script."""
        result = self._call(*lua_args)
        if type(result) is _Failed:
            raise CallError(result.err)  # type: ignore[attr-defined]
        return result

    def _pcall(self, *lua_args: object) -> object:
        """redis.pcall: a failed command's error is returned as ``{err=...}``."""
        result = self._call(*lua_args)
        if type(result) is _Failed:
            rt = self.running.rt if self.running is not None else self.runtime
            return rt.lua.table_from({b"err": result.err})  # type: ignore[attr-defined]
        return result

    def _fail(self, message: str) -> object:
        return _Failed(message.encode())

    def _call(self, *lua_args: object) -> object:
        """One command from the script, through the dispatcher: its reply as a Lua value, or
        _Failed."""
        run = self.running
        if run is None:
            return self._fail("ERR redis.call() used outside a script")
        if not lua_args:
            return self._fail(errors.SCRIPT_NO_ARGS)
        args: list[bytes] = []
        for a in lua_args:
            if isinstance(a, bytes):
                args.append(a)
            elif isinstance(a, bool) or not isinstance(a, (int, float)):
                return self._fail(errors.SCRIPT_BAD_ARG)
            elif isinstance(a, int):
                args.append(b"%d" % a)
            else:
                args.append(b"%.14g" % a)  # as Lua's tostring
        dispatcher = self.server.dispatcher
        entry = dispatcher.lookup(args)
        if entry is not None and entry.subs:
            entry = entry.subs.get(args[1].lower()) if len(args) >= 2 else None
        if entry is None:
            return self._fail(errors.SCRIPT_UNKNOWN_COMMAND)
        arity, argc = entry.arity, len(args)
        if (argc != arity) if arity > 0 else (argc < -arity):
            return self._fail(errors.SCRIPT_WRONG_ARITY)
        if "noscript" in entry.spec.flags:
            return self._fail(errors.SCRIPT_NOT_ALLOWED)
        if entry.write and run.readonly:
            return self._fail(errors.SCRIPT_WRITE_IN_RO)
        client = run.client
        slots = self.server.slots
        if slots.map is not None or slots.locked:
            keys = [args[r.pos] for r in keys_of(entry.spec, args)]
            if slots.map is not None:
                refusal = self._cluster_refusal(run, keys)
                if refusal is not None:
                    return self._fail(refusal)
            # a key a move holds can only be one the script did not declare (declared keys
            # waited at the gate, and no move starts while a script runs): writing it now
            # would be lost when the move deletes the source's copy
            if slots.locked and any(client.db.meta_key(k) in slots.locked for k in keys):
                return self._fail(errors.SCRIPT_KEY_MOVING)
        if entry.write:
            run.wrote = True
        client.resp3 = run.resp3
        reply = dispatcher.execute(client, args)
        data = b"".join(reply) if isinstance(reply, Chunks) else reply
        value = _simple_reply(data)
        if value is _NOT_SIMPLE:
            parser = ReplyParser()
            parser.feed(data)
            value = parser.get()
        if type(value) is ErrorReply:
            return _Failed(str(value).encode("utf-8", "surrogateescape"))
        return run.rt.to_lua.value(value, run.resp3)

    def _cluster_refusal(self, run: Run, keys: list[bytes]) -> str | None:
        """Redis Cluster's rules for a command a script calls, on a node that knows its slots:
        its ``keys`` in one slot this node serves now, and (unless allow-cross-slot-keys) the
        slot of the script's other keys."""
        if not keys:
            return None
        if self.server.slots.refusal(run.client, keys) is not None:
            return errors.SCRIPT_NON_LOCAL_KEY
        slot = key_slot(keys[0])
        if run.slot < 0:
            run.slot = slot
        elif slot != run.slot and not run.cross_slot:
            return errors.SCRIPT_CROSS_SLOT
        return None

    def _setresp(self, n: object) -> None:
        run = self.running
        if not isinstance(n, (int, float)) or int(n) not in (2, 3):
            raise ScriptLibError("RESP version must be 2 or 3.")
        if run is not None:
            run.resp3 = int(n) == 3

    def _hook(self) -> bool:
        """Every HOOK_INSTRUCTIONS instructions: True when the script must stop (killed)."""
        run = self.running
        if run is None:
            return False
        if not run.busy:
            limit = self.server.config["busy-reply-threshold"]
            if limit <= 0 or (time.monotonic() - run.started) * 1000 < limit:
                return False
            run.busy = True
            log.warning(
                "Slow script detected: still in execution after %d milliseconds. You can try "
                "killing the script using the SCRIPT KILL command. Script SHA1 is: %s",
                int((time.monotonic() - run.started) * 1000),
                run.name.decode("utf-8", "surrogateescape"),
            )
        self.busy.serve(run)
        return run.killed

    def kill(self, is_eval: bool = True) -> None:
        """SCRIPT KILL, or FUNCTION KILL when not ``is_eval`` (served while a script is busy:
        ``busy.py``); each kills only its own kind."""
        run = self.running
        if run is None:
            raise ReplyError(errors.NOTBUSY)
        if run.wrote:
            raise ReplyError(errors.UNKILLABLE)
        if is_eval and run.is_function:
            raise ReplyError(errors.BUSY_FUNCTION)
        if not is_eval and not run.is_function:
            raise ReplyError(errors.BUSY)
        run.killed = True
