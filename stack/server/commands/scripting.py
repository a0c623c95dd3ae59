"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL, FCALL_RO and FUNCTION: thin over
``stack/server/scripting``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import OK, ReplyError, Status

from ..scripting.functions import RESTORE_POLICIES
from . import Handler, handler, help_lines

if TYPE_CHECKING:
    from ..client import Client

_HELP = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
]


def _runner(by_sha: bool, readonly: bool) -> Handler:
    def run(c: Client, args: list[bytes]) -> object:
        return c.server.scripts.eval(c, args, by_sha=by_sha, readonly=readonly)

    return run


for _name, _by_sha, _readonly in (
    ("eval", False, False),
    ("evalsha", True, False),
    ("eval_ro", False, True),
    ("evalsha_ro", True, True),
):
    handler(_name)(_runner(_by_sha, _readonly))


@handler("script|load")
def script_load(c: Client, args: list[bytes]) -> object:
    return c.server.scripts.load(args[2]).sha


@handler("script|exists")
def script_exists(c: Client, args: list[bytes]) -> object:
    scripts = c.server.scripts
    return [1 if scripts.exists(sha) else 0 for sha in args[2:]]


@handler("script|flush")
def script_flush(c: Client, args: list[bytes]) -> object:
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"async", b"sync")):
        raise ReplyError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    c.server.scripts.flush()
    return OK


@handler("script|kill")
def script_kill(c: Client, args: list[bytes]) -> object:
    c.server.scripts.kill()  # a script never runs while a command is dispatched: NOTBUSY
    return OK


@handler("script|help")
def script_help(c: Client, args: list[bytes]) -> object:
    return [Status(line) for line in _HELP]


# --- Redis 7 functions -------------------------------------------------------------------------

_FUNCTION_HELP = [
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using "
    "FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a "
    "restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
    "replace the old",
    "      libraries with the new libraries (notice that even on this option there is a "
    "chance of failure",
    "      in case of functions name collision with another library).",
]


def _function_runner(readonly: bool) -> Handler:
    def run(c: Client, args: list[bytes]) -> object:
        return c.server.scripts.functions.call(c, args, readonly)

    return run


handler("fcall")(_function_runner(False))
handler("fcall_ro")(_function_runner(True))


@handler("function|load")
def function_load(c: Client, args: list[bytes]) -> object:
    replace = False
    for option in args[2:-1]:
        if option.lower() != b"replace":
            raise ReplyError(errors.function_unknown_option(option))
        replace = True
    return c.server.scripts.functions.load(args[-1], replace)


@handler("function|delete")
def function_delete(c: Client, args: list[bytes]) -> object:
    c.server.scripts.functions.delete(args[2])
    return OK


@handler("function|flush")
def function_flush(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise errors.subcommand_syntax(args)
    if len(args) == 3 and args[2].lower() not in (b"async", b"sync"):
        raise ReplyError(errors.FUNCTION_FLUSH_OPTION)
    c.server.scripts.functions.flush()
    return OK


@handler("function|dump")
def function_dump(c: Client, args: list[bytes]) -> object:
    return c.server.scripts.functions.dump()


@handler("function|restore")
def function_restore(c: Client, args: list[bytes]) -> object:
    if len(args) > 4:
        raise errors.subcommand_syntax(args)
    policy = args[3].lower() if len(args) == 4 else b"append"
    if policy not in RESTORE_POLICIES:
        raise ReplyError(errors.FUNCTION_RESTORE_POLICY)
    c.server.scripts.functions.restore(args[2], policy)
    return OK


@handler("function|list")
def function_list(c: Client, args: list[bytes]) -> object:
    return c.server.scripts.functions.list_reply(args)


@handler("function|stats")
def function_stats(c: Client, args: list[bytes]) -> object:
    return c.server.scripts.functions.stats()


@handler("function|kill")
def function_kill(c: Client, args: list[bytes]) -> object:
    c.server.scripts.kill(is_eval=False)  # served while a function is busy: busy.py
    return OK


@handler("function|help")
def function_help(c: Client, args: list[bytes]) -> object:
    return help_lines("FUNCTION", _FUNCTION_HELP)
