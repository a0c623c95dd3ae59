"""Commands the proxy answers itself (the ``local`` rules of ``rules.py``).

Each handler takes the client, the command's rule and its arguments, queues the reply in
the client's order (``client.reply``) or starts an exclusive step, and returns what
``Client.dispatch`` returns (False: run it again once earlier replies are out).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack import REDIS_VERSION
from stack.core import errors
from stack.core.hello import parse_hello, valid_client_name
from stack.core.resp import Map, ReplyError, Status, Verbatim, encode, strict_int
from stack.core.slots import SLOT_COUNT, key_slot

from . import fanout, pubsub, transactions
from .commands import HELP
from .info import info_text
from .replies import NOT_IN_CLUSTER, unsupported

if TYPE_CHECKING:
    from .client import Client
    from .rules import Rule

Handler = Callable[["Client", "Rule", list[bytes]], bool]

OK = b"+OK\r\n"


def _encode(c: Client, value: object) -> bytes:
    return encode(value, resp3=c.protocol == 3)


def ping(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if len(args) > 2:
        return c.fail(errors.wrong_arity("ping").message)
    c.reply(b"+PONG\r\n" if len(args) == 1 else _encode(c, args[1]))
    return True


def echo(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(_encode(c, args[1]))
    return True


def quit_(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(OK)
    c.close_after_reply = True
    return True


def reset(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.queue or c.batch_link is not None:
        c.close_batch()
        c.stall = 1  # DRAIN: the connection's state changes under later commands
        return False
    c.multi = None
    c.multi_failed = False
    transactions.drop_pin(c)
    pubsub.drop(c)
    c.protocol = 2
    c.name = b""
    if c.proxy.config.requirepass:
        c.authenticated = False
        c.parser.authenticated = False
    c.reply(b"+RESET\r\n")
    return True


def _check_password(c: Client, user: bytes | None, password: bytes) -> str | None:
    """Authenticate ``c``; the error message when it cannot be done."""
    required = c.proxy.config.requirepass.encode()
    if user is not None and user != b"default":
        return errors.WRONGPASS
    if not required:
        if user is None:
            return errors.NO_PASSWORD
    elif not hmac.compare_digest(password, required):
        return errors.WRONGPASS
    c.authenticated = True
    c.parser.authenticated = True
    return None


def auth(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if len(args) > 3:
        return c.fail(errors.SYNTAX)
    problem = _check_password(c, args[1] if len(args) == 3 else None, args[-1])
    if problem:
        return c.fail(problem)
    c.reply(OK)
    return True


def hello(c: Client, rule: Rule, args: list[bytes]) -> bool:
    try:
        asked = parse_hello(args)
    except ReplyError as e:
        return c.fail(e.message)
    version = asked.protocol or c.protocol
    creds = (asked.user, asked.password) if asked.password is not None else None
    name = asked.name
    if version != c.protocol and (c.queue or c.batch_link is not None):
        c.close_batch()
        c.stall = 1  # later commands go to links of the other protocol: let these finish
        return False
    if creds is not None:
        problem = _check_password(c, *creds)
        if problem:
            return c.fail(problem)
    elif not c.authenticated:
        return c.fail(errors.HELLO_NOAUTH)
    if name is not None:
        if not valid_client_name(name):
            return c.fail(errors.BAD_CLIENT_NAME)
        c.name = name
    c.protocol = version
    c.reply(
        _encode(
            c,
            Map(
                [
                    b"server",
                    b"redis",
                    b"version",
                    REDIS_VERSION.encode(),
                    b"proto",
                    version,
                    b"id",
                    c.id,
                    b"mode",
                    b"standalone",
                    b"role",
                    b"master",
                    b"modules",
                    [],
                ]
            ),
        )
    )
    return True


def select(c: Client, rule: Rule, args: list[bytes]) -> bool:
    n = strict_int(args[1])
    if n is None:
        return c.fail(errors.NOT_INTEGER)
    if n != 0:
        return c.fail(NOT_IN_CLUSTER)
    c.reply(OK)
    return True


def time_(c: Client, rule: Rule, args: list[bytes]) -> bool:
    now = time.time()
    sec = int(now)
    c.reply(_encode(c, [b"%d" % sec, b"%d" % int((now - sec) * 1e6)]))
    return True


def info(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(_encode(c, Verbatim(info_text(c.proxy, args[1:]).encode())))
    return True


def role(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(_encode(c, [b"master", 0, []]))
    return True


def ok(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(OK)
    return True


# -- CLIENT ------------------------------------------------------------------------------------


def client_id(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(b":%d\r\n" % c.id)
    return True


def client_getname(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(_encode(c, c.name or None))
    return True


def client_setname(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if not valid_client_name(args[2]):
        return c.fail(errors.BAD_CLIENT_NAME)
    c.name = args[2]
    c.reply(OK)
    return True


def client_info(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(_encode(c, Verbatim((c.info_line() + "\n").encode())))
    return True


def client_list(c: Client, rule: Rule, args: list[bytes]) -> bool:
    clients = list(c.proxy.clients.values())
    if len(args) > 2:
        if args[2].upper() != b"ID" or len(args) < 4:
            return c.fail(errors.SYNTAX)
        ids = {strict_int(a) for a in args[3:]}
        if None in ids or any(i is not None and i <= 0 for i in ids):
            return c.fail("ERR Invalid client ID")
        clients = [x for x in clients if x.id in ids]
    c.reply(_encode(c, Verbatim("".join(x.info_line() + "\n" for x in clients).encode())))
    return True


def client_kill(c: Client, rule: Rule, args: list[bytes]) -> bool:
    others = list(c.proxy.clients.values())
    if len(args) == 3:  # old form: CLIENT KILL ip:port
        addr = args[2].decode("utf-8", "replace")
        for other in others:
            if other.addr == addr:
                _kill(c, other)
                c.reply(OK)
                return True
        return c.fail("ERR No such client")
    if len(args) % 2:
        return c.fail(errors.SYNTAX)
    skipme = True
    for i in range(2, len(args), 2):
        opt, value = args[i].upper(), args[i + 1]
        if opt == b"ID":
            n = strict_int(value)
            if n is None or n <= 0:
                return c.fail("ERR client-id should be greater than 0")
            others = [x for x in others if x.id == n]
        elif opt == b"ADDR":
            others = [x for x in others if x.addr == value.decode("utf-8", "replace")]
        elif opt == b"SKIPME" and value.lower() in (b"yes", b"no"):
            skipme = value.lower() == b"yes"
        else:
            return c.fail(errors.SYNTAX)
    killed = 0
    for other in others:
        if other is c and skipme:
            continue
        _kill(c, other)
        killed += 1
    c.reply(b":%d\r\n" % killed)
    return True


def _kill(c: Client, other: Client) -> None:
    if other is c:
        c.close_after_reply = True
    else:
        other.close_now()


# -- CONFIG, CLUSTER, PROXY --------------------------------------------------------------------


def config_get(c: Client, rule: Rule, args: list[bytes]) -> bool:
    from stack.core.keypattern import compile_pattern

    settings = c.proxy.config.settings()
    found: list[bytes] = []
    for pattern in args[2:]:
        match = compile_pattern(pattern.lower())
        for name, value in settings.items():
            if match(name.encode()) and name.encode() not in found[::2]:
                found += [name.encode(), value.encode()]
    c.reply(_encode(c, Map(found)))
    return True


def config_resetstat(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.proxy.stats.reset()
    c.reply(OK)
    return True


def cluster_keyslot(c: Client, rule: Rule, args: list[bytes]) -> bool:
    c.reply(b":%d\r\n" % key_slot(args[2]))
    return True


def by_slot_argument(c: Client, rule: Rule, args: list[bytes]) -> bool:
    """CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT: to the owner of the slot named."""
    slot = strict_int(args[2])
    if slot is None or not 0 <= slot < SLOT_COUNT:
        backend = c.proxy.routes.default  # the node names the error
        if backend is None:
            return c.fail(unsupported(rule.name))
        c.add(c.link_to(backend), args)
        return True
    return c.to_slot(slot, args, [], False)


def proxy_slotstats(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if len(args) == 3 or len(args) > 4:
        return c.fail(errors.SYNTAX)
    start, end = 0, SLOT_COUNT - 1
    if len(args) == 4:
        a, b = strict_int(args[2]), strict_int(args[3])
        if a is None or b is None:
            return c.fail(errors.NOT_INTEGER)
        if not (0 <= a <= b < SLOT_COUNT):
            return c.fail(f"ERR slot range must be within 0-{SLOT_COUNT - 1}, start <= end")
        start, end = a, b
    ops = c.proxy.stats.slot_ops
    rows = [[s, ops[s]] for s in range(start, end + 1) if ops[s]]
    c.reply(_encode(c, rows))
    return True


def proxy_route(c: Client, rule: Rule, args: list[bytes]) -> bool:
    slot = key_slot(args[2])
    route = c.proxy.routes.routes[slot]
    state = "unassigned" if route.backend is None else ("migrating" if route.target else "online")
    c.reply(
        _encode(
            c,
            [
                slot,
                route.group,
                route.backend.addr.encode() if route.backend else None,
                state.encode(),
                route.target.addr.encode() if route.target else None,
            ],
        )
    )
    return True


def help_(c: Client, rule: Rule, args: list[bytes]) -> bool:
    lines = HELP.get(rule.spec.parent or rule.name, [])
    c.reply(_encode(c, [Status(line) for line in lines]))
    return True


def scan(c: Client, rule: Rule, args: list[bytes]) -> bool:
    at = 2 if rule.name == "xscan" else 1
    cursor = strict_int(args[at])
    if cursor is None or cursor < 0:
        return c.fail(errors.INVALID_CURSOR)
    return c.exclusive(lambda: fanout.scan(c, args, at, cursor))


def randomkey(c: Client, rule: Rule, args: list[bytes]) -> bool:
    return c.exclusive(lambda: fanout.randomkey(c, args))


HANDLERS: dict[str, Handler] = {
    "ping": ping,
    "echo": echo,
    "quit": quit_,
    "reset": reset,
    "auth": auth,
    "hello": hello,
    "select": select,
    "time": time_,
    "info": info,
    "role": role,
    "ok": ok,
    "multi": transactions.multi,
    "exec": transactions.exec_,
    "discard": transactions.discard,
    "watch": transactions.watch,
    "unwatch": transactions.unwatch,
    "scan": scan,
    "randomkey": randomkey,
    "subscribe": pubsub.subscribe,
    "unsubscribe": pubsub.unsubscribe,
    "client_id": client_id,
    "client_getname": client_getname,
    "client_setname": client_setname,
    "client_info": client_info,
    "client_list": client_list,
    "client_kill": client_kill,
    "config_get": config_get,
    "config_resetstat": config_resetstat,
    "cluster_keyslot": cluster_keyslot,
    "by_slot_argument": by_slot_argument,
    "proxy_slotstats": proxy_slotstats,
    "proxy_route": proxy_route,
    "help": help_,
}
