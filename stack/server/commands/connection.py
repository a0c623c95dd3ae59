"""Connection commands: AUTH, HELLO, PING, SELECT, CLIENT, QUIT, RESET."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stack import REDIS_VERSION
from stack.core import errors
from stack.core.hello import valid_client_name
from stack.core.resp import NIL, OK, PONG, Map, Raw, ReplyError, SetReply, Verbatim

from .. import reply_mode
from ..client_info import CLIENT_TYPES, describe
from ..storage.keyspace import now_ms
from ..tracking import parse_request
from ..transaction import end_transaction
from . import handler, help_lines
from .args import select_db, syntax_error, to_int, to_timeout_ms

if TYPE_CHECKING:
    from ..client import Client


@handler("auth")
def auth(c: Client, args: list[bytes]) -> object:
    """AUTH password (the default user) or AUTH username password."""
    if len(args) > 3:
        raise syntax_error()
    acl = c.server.acl
    if len(args) == 2:
        if acl.default.nopass:
            raise ReplyError(errors.NO_PASSWORD)
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not acl.authenticate(c, user, password, args[0]):
        raise ReplyError(errors.WRONGPASS)
    return OK


def set_name(c: Client, name: bytes) -> None:
    if not valid_client_name(name):
        raise ReplyError(errors.BAD_CLIENT_NAME)
    c.name = name


@handler("hello")
def hello(c: Client, args: list[bytes]) -> object:
    if len(args) >= 2:
        try:
            version = to_int(args[1])
        except ReplyError:
            raise ReplyError(errors.BAD_PROTOVER) from None
        if version not in (2, 3):
            raise ReplyError(errors.NOPROTO)
    # Options act in order, as in Redis: a SETNAME or an AUTH before a bad option is done
    # (so the server does not use core.hello.parse_hello, which checks them all first).
    i = 2
    while i < len(args):
        opt = args[i].upper()
        left = len(args) - i - 1
        if opt == b"AUTH" and left >= 2:
            if not c.server.acl.authenticate(c, args[i + 1], args[i + 2], args[0]):
                raise ReplyError(errors.WRONGPASS)
            i += 3
        elif opt == b"SETNAME" and left >= 1:
            set_name(c, args[i + 1])
            i += 2
        else:
            raise ReplyError(errors.hello_syntax(args[i]))
    if not c.logged_in:
        raise ReplyError(errors.HELLO_NOAUTH)
    if len(args) >= 2:
        c.resp3 = version == 3
    return Map(
        [
            b"server",
            b"redis",
            b"version",
            REDIS_VERSION.encode(),
            b"proto",
            3 if c.resp3 else 2,
            b"id",
            c.id,
            b"mode",
            b"standalone",
            b"role",
            b"slave" if c.server.replication.master else b"master",
            b"modules",
            [],
        ]
    )


@handler("ping")
def ping(c: Client, args: list[bytes]) -> object:
    if len(args) > 2:
        raise errors.wrong_arity("ping")
    if (c.channels or c.patterns) and not c.resp3:  # subscribed RESP2: PING as a message
        return [b"pong", args[1] if len(args) == 2 else b""]
    return PONG if len(args) == 1 else args[1]


@handler("echo")
def echo(c: Client, args: list[bytes]) -> object:
    return args[1]


@handler("quit")
def quit_(c: Client, args: list[bytes]) -> object:
    c.close_after_reply = True
    return OK


@handler("reset")
def reset(c: Client, args: list[bytes]) -> object:
    end_transaction(c)
    c.server.pubsub.drop(c)
    c.server.observers.forget(c)  # no MONITOR, CLIENT TRACKING or CLIENT REPLY OFF any more
    c.db = c.server.keyspace.dbs[0]
    c.name = b""
    c.resp3 = False  # back to RESP2, as Redis's RESET
    c.no_evict = False
    c.server.acl.start_client(c)  # the default user, logged in only if it needs no password
    return Raw(b"+RESET\r\n")


@handler("select")
def select(c: Client, args: list[bytes]) -> object:
    c.db = select_db(c, args[1])
    return OK


# --- CLIENT ----------------------------------------------------------------------------------


@handler("client|id")
def client_id(c: Client, args: list[bytes]) -> object:
    return c.id


@handler("client|getname")
def client_getname(c: Client, args: list[bytes]) -> object:
    return c.name or NIL


@handler("client|setname")
def client_setname(c: Client, args: list[bytes]) -> object:
    set_name(c, args[2])
    return OK


@handler("client|info")
def client_info(c: Client, args: list[bytes]) -> object:
    return Verbatim((describe(c) + "\n").encode())


@handler("client|list")
def client_list(c: Client, args: list[bytes]) -> object:
    """CLIENT LIST [TYPE type | ID id [id ...]] (one filter, as Redis 7.0)."""
    clients = list(c.server.clients.values())
    if len(args) == 4 and args[2].upper() == b"TYPE":
        kind = args[3].lower()
        if kind not in CLIENT_TYPES:
            raise ReplyError(f"ERR Unknown client type '{errors.echo(args[3])}'")
        clients = [x for x in clients if x.kind == CLIENT_TYPES[kind]]
    elif len(args) >= 4 and args[2].upper() == b"ID":
        ids = set()
        for raw in args[3:]:
            n = to_int(raw, "ERR Invalid client ID")
            if n > 0:  # Redis 7.0: 0 or -1 match none
                ids.add(n)
        clients = [x for x in clients if x.id in ids]
    elif len(args) != 2:
        raise syntax_error()
    return Verbatim("".join(describe(x) + "\n" for x in clients).encode())


@handler("client|kill")
def client_kill(c: Client, args: list[bytes]) -> object:
    """CLIENT KILL ip:port, or CLIENT KILL with filters (ID, TYPE, USER, ADDR, LADDR, SKIPME
    and 7.4's MAXAGE), all of which a client must match."""
    server = c.server
    if len(args) == 3:  # old form: CLIENT KILL ip:port (which may be the caller itself)
        addr = args[2].decode("utf-8", "replace")
        found = [x for x in server.clients.values() if x.addr == addr]
        if not found:
            raise ReplyError("ERR No such client")
        for other in found:
            _kill(c, other)
        return OK
    targets = list(server.clients.values())
    skipme = True
    i = 2
    while i < len(args):
        if i + 1 >= len(args):
            raise syntax_error()
        opt, value = args[i].upper(), args[i + 1]
        text = value.decode("utf-8", "replace")
        if opt == b"ID":
            n = to_int(value, "ERR client-id should be greater than 0")
            if n <= 0:
                raise ReplyError("ERR client-id should be greater than 0")
            targets = [x for x in targets if x.id == n]
        elif opt == b"ADDR":
            targets = [x for x in targets if x.addr == text]
        elif opt == b"LADDR":
            targets = [x for x in targets if x.laddr == text]
        elif opt == b"USER":
            user = server.acl.users.get(value)
            if user is None:
                raise ReplyError(f"ERR No such user '{errors.echo(value)}'")
            targets = [x for x in targets if x.user is user]
        elif opt == b"TYPE":
            kind = value.lower()
            if kind not in CLIENT_TYPES:
                raise ReplyError(f"ERR Unknown client type '{errors.echo(value)}'")
            targets = [x for x in targets if x.kind == CLIENT_TYPES[kind]]
        elif opt == b"SKIPME":
            if value.lower() not in (b"yes", b"no"):
                raise syntax_error()
            skipme = value.lower() == b"yes"
        elif opt == b"MAXAGE":  # Redis 7.4: connected longer than this many seconds
            age = to_int(value)
            now = time.monotonic()
            targets = [x for x in targets if now - x.created > age]
        else:
            raise syntax_error()
        i += 2
    killed = 0
    for other in targets:
        if other is c and skipme:
            continue
        _kill(c, other)
        killed += 1
    return killed


def _kill(c: Client, other: Client) -> None:
    if other is c:
        c.close_after_reply = True
    else:
        other.close_now()


@handler("client|pause")
def client_pause(c: Client, args: list[bytes]) -> object:
    now = now_ms()
    until = to_timeout_ms(args[2], now, seconds=False)
    ms = max(until - now, 0) if until else 0  # past the int64 range: ends at once, as Redis
    everything = True
    if len(args) == 4:
        mode = args[3].upper()
        if mode not in (b"WRITE", b"ALL"):
            raise ReplyError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        everything = mode == b"ALL"
    elif len(args) > 4:
        raise syntax_error()
    c.server.pause(ms, everything)
    return OK


@handler("client|unpause")
def client_unpause(c: Client, args: list[bytes]) -> object:
    c.server.unpause()
    return OK


@handler("client|unblock")
def client_unblock(c: Client, args: list[bytes]) -> object:
    if len(args) > 4:
        raise errors.subcommand_syntax(args)
    with_error = False
    if len(args) == 4:
        reason = args[3].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            raise ReplyError(errors.UNBLOCK_REASON)
        with_error = reason == b"ERROR"
    target = c.server.clients.get(to_int(args[2]))
    if target is None or target is c:
        return 0
    return 1 if c.server.waiters.unblock(target, with_error) else 0


@handler("client|no-evict")
def client_no_evict(c: Client, args: list[bytes]) -> object:
    mode = args[2].upper()
    if mode not in (b"ON", b"OFF"):
        raise syntax_error()
    c.no_evict = mode == b"ON"
    return OK


@handler("client|reply")
def client_reply(c: Client, args: list[bytes]) -> object:
    mode = args[2].upper()
    if not reply_mode.set_mode(c, mode):
        raise syntax_error()
    return OK if mode == b"ON" else reply_mode.NO_REPLY


@handler("client|tracking")
def client_tracking(c: Client, args: list[bytes]) -> object:
    server = c.server
    request = parse_request(args, lambda cid: cid in server.clients)
    server.observers.tracking.apply(c, request)
    return OK


@handler("client|caching")
def client_caching(c: Client, args: list[bytes]) -> object:
    state = c.tracking
    if state is None:
        raise ReplyError(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
            "OPTIN or OPTOUT mode enabled"
        )
    mode = args[2].upper()
    if mode == b"YES":
        if not state.optin:
            raise ReplyError(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
            )
    elif mode == b"NO":
        if not state.optout:
            raise ReplyError(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
            )
    else:
        raise syntax_error()
    state.caching = True
    return OK


@handler("client|getredir")
def client_getredir(c: Client, args: list[bytes]) -> object:
    return -1 if c.tracking is None else c.tracking.redirect


@handler("client|trackinginfo")
def client_trackinginfo(c: Client, args: list[bytes]) -> object:
    state = c.tracking
    return Map(
        [
            b"flags",
            SetReply([b"off"] if state is None else state.flags()),
            b"redirect",
            -1 if state is None else state.redirect,
            b"prefixes",
            [] if state is None else list(state.prefixes),
        ]
    )


@handler("client|help")
def client_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "CLIENT",
        [
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * MAXAGE <maxage>",
            "      Kill connections older than the specified age.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    )
