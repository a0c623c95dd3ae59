"""REPLICAOF / SLAVEOF, ROLE, WAIT, and the replica's side of the link (LSYNC, REPLCONF)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import OK, Raw, ReplyError, encode

from ..blocking import Suspend
from ..storage.keyspace import now_ms
from . import handler
from .args import syntax_error, to_int, to_timeout_ms

if TYPE_CHECKING:
    from ..client import Client


@handler("replicaof", "slaveof")
def replicaof(c: Client, args: list[bytes]) -> object:
    repl = c.server.replication
    if args[1].upper() == b"NO" and args[2].upper() == b"ONE":
        repl.promote()
        return OK
    port = to_int(args[2], "ERR Invalid master port")
    if not 0 < port < 65536:
        raise ReplyError("ERR Invalid master port")
    host = args[1].decode("utf-8", "replace")
    if repl.master == (host, port):
        return Raw(b"+OK Already connected to specified master\r\n")
    repl.replicate(host, port)
    return OK


@handler("role")
def role(c: Client, args: list[bytes]) -> object:
    return c.server.replication.role()


@handler("replconf")
def replconf(c: Client, args: list[bytes]) -> object:
    if len(args) == 3 and args[1].lower() == b"ack":
        c.server.replication.acked(c, to_int(args[2]))
        return Raw(b"")  # acknowledgements get no reply
    if len(args) == 3 and args[1].lower() == b"listening-port":
        c.replica_port = to_int(args[2])
        return OK
    if len(args) >= 3 and len(args) % 2 == 1:
        return OK  # capa and other hints are accepted and ignored
    raise syntax_error()


@handler("lsync")
def lsync(c: Client, args: list[bytes]) -> object:
    return Raw(c.server.replication.attach(c, to_int(args[1]), to_int(args[2])))


@handler("wait")
def wait(c: Client, args: list[bytes]) -> object:
    replicas = to_int(args[1])
    now = now_ms()
    until = to_timeout_ms(args[2], now, seconds=False)
    timeout = until - now if until > 0 else 0  # past the int64 range: forever, as Redis
    repl = c.server.replication
    target = c.last_write_log_id
    if c.in_exec or repl.count_acked(target) >= replicas:
        return repl.count_acked(target)
    future = repl.wait_for(target, replicas, timeout / 1000)
    raise Suspend(future, lambda: encode(repl.count_acked(target)))


@handler("nodeepoch")
def nodeepoch(c: Client, args: list[bytes]) -> object:
    fence = c.server.gate.fence
    action = args[1].upper()
    if action == b"GET" and len(args) == 2:
        return [fence.epoch, fence.state.encode()]
    if action != b"SET" or len(args) != 4:
        raise syntax_error()
    epoch = to_int(args[2])
    state = args[3].upper()
    if epoch < 0 or state not in (b"MASTER", b"FENCED"):
        raise syntax_error()
    try:
        fence.set(epoch, state.decode().lower())
    except ValueError as e:
        raise ReplyError(str(e)) from None
    except OSError as e:
        raise ReplyError(errors.epoch_not_stored(e.strerror or str(e))) from None
    return OK
