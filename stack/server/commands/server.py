"""Server commands: COMMAND, CONFIG, INFO, FLUSH*, SWAPDB, SLOWLOG, SHUTDOWN (MONITOR, MEMORY,
LATENCY and DEBUG: diagnostics.py)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE
from stack.core.commands.introspection import command_docs, command_info, keys_and_flags
from stack.core.commands.keyspec import KeyRef, has_keys
from stack.core.keypattern import compile_pattern
from stack.core.resp import OK, Map, Raw, ReplyError, Verbatim

from .. import info as info_mod
from ..config import ConfigError
from ..latency import reset_histograms
from . import handler, help_lines
from .args import syntax_error, to_int, to_int32

if TYPE_CHECKING:
    from ..client import Client


# --- COMMAND ---------------------------------------------------------------------------------


@handler("command")
def command(c: Client, args: list[bytes]) -> object:
    return [command_info(s) for s in TABLE]


@handler("command|count")
def command_count(c: Client, args: list[bytes]) -> object:
    return len(TABLE)


@handler("command|info")
def command_info_(c: Client, args: list[bytes]) -> object:
    if len(args) == 2:
        return [command_info(s) for s in TABLE]
    out: list[object] = []
    for name in args[2:]:
        spec = _spec_by_name(name)
        out.append(None if spec is None else command_info(spec))
    return out


def _spec_by_name(name: bytes):  # type: ignore[no-untyped-def]
    text = name.decode("latin-1").lower()
    if "|" in text:
        parent, _, sub = text.partition("|")
        spec = TABLE.get(parent)
        return spec.subcommand(sub) if spec is not None else None
    return TABLE.get(text)


@handler("command|docs")
def command_docs_(c: Client, args: list[bytes]) -> object:
    specs = list(TABLE) if len(args) == 2 else [_spec_by_name(n) for n in args[2:]]
    out = Map()
    for spec in specs:
        if spec is not None:
            out += [spec.name.encode(), command_docs(spec)]
    return out


@handler("command|list")
def command_list(c: Client, args: list[bytes]) -> object:
    specs = TABLE.all_specs()
    if len(args) == 2:
        return [s.name.encode() for s in specs]
    if len(args) != 5 or args[2].upper() != b"FILTERBY":
        raise syntax_error()
    kind, value = args[3].upper(), args[4]
    if kind == b"MODULE":
        return []
    if kind == b"ACLCAT":
        cat = "@" + value.decode("latin-1").lower()
        return [s.name.encode() for s in specs if cat in s.acl_categories()]
    if kind == b"PATTERN":
        match = compile_pattern(value, nocase=True)
        return [s.name.encode() for s in specs if match(s.name.encode())]
    raise syntax_error()


def _keys_of_call(args: list[bytes]) -> tuple[list[bytes], list[KeyRef]]:
    """COMMAND GETKEYS[ANDFLAGS]: the call after the subcommand and its keys, with Redis's
    errors for an unknown command, one without keys, a wrong arity and unusable arguments."""
    call = args[2:]
    spec = TABLE.resolve(call, strict=True)
    if spec is None:
        raise ReplyError(errors.GETKEYS_INVALID_COMMAND)
    if not has_keys(spec):
        raise ReplyError(errors.GETKEYS_NO_KEYS)
    if not spec.arity_ok(len(call)):
        raise ReplyError(errors.GETKEYS_BAD_ARITY)
    refs = spec.keys(call)
    if not refs and "no_mandatory_keys" not in spec.flags:
        raise ReplyError(errors.GETKEYS_BAD_ARGS)
    return call, refs


@handler("command|getkeys")
def command_getkeys(c: Client, args: list[bytes]) -> object:
    call, refs = _keys_of_call(args)
    return [call[r.pos] for r in refs]


@handler("command|getkeysandflags")
def command_getkeysandflags(c: Client, args: list[bytes]) -> object:
    call, refs = _keys_of_call(args)
    return keys_and_flags(refs, call)


@handler("command|help")
def command_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "COMMAND",
        [
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full command.",
        ],
    )


# --- CONFIG ----------------------------------------------------------------------------------


@handler("config|get")
def config_get(c: Client, args: list[bytes]) -> object:
    """CONFIG GET pattern [pattern ...] as Redis 7: a name without glob characters is looked
    up (any case; the reply uses it as given), a pattern matches the settings' names; each
    setting at most once."""
    config = c.server.config
    found: dict[str, tuple[bytes, str]] = {}  # lower-case name -> (name shown, value)
    for raw in args[2:]:
        if not any(ch in raw for ch in b"[*?"):
            text = raw.decode("utf-8", "surrogateescape")
            name = config.find(text)
            if name is not None and text.lower() not in found:
                found[text.lower()] = (raw, config.shown(name))
            continue
        for name, value in config.matching(compile_pattern(raw, nocase=True)):
            found.setdefault(name, (name.encode(), value))
    out = Map()
    for shown, value in found.values():
        out += [shown, value.encode()]
    return out


@handler("config|set")
def config_set(c: Client, args: list[bytes]) -> object:
    if len(args) % 2:
        raise syntax_error()  # as Redis 7.0: pairs or nothing
    pairs = [
        (args[i].decode("utf-8", "replace"), args[i + 1].decode("utf-8", "replace"))
        for i in range(2, len(args), 2)
    ]
    try:
        c.server.config.set_many(pairs, local=c.local)
    except ConfigError as e:
        raise ReplyError(f"ERR {e}") from None
    return OK


@handler("config|resetstat")
def config_resetstat(c: Client, args: list[bytes]) -> object:
    """What INFO counts starts again, as Redis's (the slow log stays: SLOWLOG RESET)."""
    server = c.server
    server.dispatcher.reset_stats()
    reset_histograms(server.dispatcher, server.config["latency-tracking"] == "yes")
    server.stats.reset(server.clients.values())
    server.output_limit_closed = 0
    server.keyspace.hits = server.keyspace.misses = server.keyspace.expired_keys = 0
    return OK


@handler("config|rewrite")
def config_rewrite(c: Client, args: list[bytes]) -> object:
    try:
        c.server.config.rewrite()
    except ConfigError as e:
        raise ReplyError(f"ERR {e}") from None
    return OK


@handler("config|help")
def config_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "CONFIG",
        [
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )


# --- INFO, TIME, LASTSAVE ----------------------------------------------------------------------


@handler("info")
def info(c: Client, args: list[bytes]) -> object:
    return Verbatim(info_mod.render(c.server, [a.decode("latin-1").lower() for a in args[1:]]))


@handler("time")
def time_(c: Client, args: list[bytes]) -> object:
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


# --- FLUSHDB, FLUSHALL, SWAPDB -----------------------------------------------------------------


def _flush_sync(c: Client, args: list[bytes]) -> bool:
    if len(args) > 2:
        raise syntax_error()
    if len(args) == 2:
        mode = args[1].upper()
        if mode not in (b"ASYNC", b"SYNC"):
            raise syntax_error()
        return mode == b"SYNC"
    return False


def _reclaim_all(c: Client) -> None:
    ks = c.server.keyspace
    while ks.dropped:
        ks.reclaim_step(10_000)


@handler("flushdb")
def flushdb(c: Client, args: list[bytes]) -> object:
    sync = _flush_sync(c, args)
    c.server.keyspace.flush(c.db.index)
    c.server.observers.tracking.flushed()
    if sync:
        _reclaim_all(c)
    return OK


@handler("flushall")
def flushall(c: Client, args: list[bytes]) -> object:
    sync = _flush_sync(c, args)
    ks = c.server.keyspace
    for db in ks.dbs:
        ks.flush(db.index)
    c.server.observers.tracking.flushed()
    if sync:
        _reclaim_all(c)
    return OK


@handler("swapdb")
def swapdb(c: Client, args: list[bytes]) -> object:
    a = to_int32(args[1], "ERR invalid first DB index")
    b = to_int32(args[2], "ERR invalid second DB index")
    n = len(c.server.keyspace.dbs)
    if not (0 <= a < n and 0 <= b < n):
        raise ReplyError(errors.DB_RANGE)
    if a != b:
        c.server.keyspace.swap(a, b)
    return OK


# --- SLOWLOG ---------------------------------------------------------------------------------


@handler("slowlog|get")
def slowlog_get(c: Client, args: list[bytes]) -> object:
    count = 10
    if len(args) == 3:
        count = to_int(args[2], "ERR count should be greater than or equal to -1")
        if count < -1:
            raise ReplyError("ERR count should be greater than or equal to -1")
    elif len(args) > 3:
        raise errors.wrong_arity("slowlog|get")
    entries = list(c.server.slowlog)
    if count != -1:
        entries = entries[:count]
    return [[e.id, e.timestamp, e.usec, e.args, e.addr.encode(), e.name] for e in entries]


@handler("slowlog|len")
def slowlog_len(c: Client, args: list[bytes]) -> object:
    return len(c.server.slowlog)


@handler("slowlog|reset")
def slowlog_reset(c: Client, args: list[bytes]) -> object:
    c.server.slowlog.clear()
    return OK


@handler("slowlog|help")
def slowlog_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "SLOWLOG",
        [
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    )


# --- SHUTDOWN --------------------------------------------------------------------------------


@handler("shutdown")
def shutdown(c: Client, args: list[bytes]) -> object:
    opts = {a.upper() for a in args[1:]}
    if not opts <= {b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"} or len(opts) != len(args) - 1:
        raise syntax_error()
    if {b"NOSAVE", b"SAVE"} <= opts:
        raise syntax_error()
    if b"ABORT" in opts:
        if len(opts) > 1:
            raise syntax_error()
        raise ReplyError("ERR No shutdown in progress.")
    c.server.request_shutdown("SHUTDOWN")
    return Raw(b"")
