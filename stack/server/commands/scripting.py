"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: thin over ``stack/server/scripting``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import OK, ReplyError, Status

from . import Handler, handler

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
