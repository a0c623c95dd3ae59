"""MULTI / EXEC / DISCARD / WATCH / UNWATCH.

Queued commands run back to back inside EXEC; their writes land in the same pending batch and
nothing commits in between (range reads merge the pending batch), so a transaction is applied
as one atomic LevelDB write, together with whatever else the event-loop turn wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL_ARRAY, OK, Chunks, ReplyError

from ..storage.keyspace import WATCHED_MISSING, now_ms, record_expire
from ..transaction import end_transaction, unwatch_all
from . import handler

if TYPE_CHECKING:
    from ..client import Client


@handler("multi")
def multi(c: Client, args: list[bytes]) -> object:
    if c.multi is not None:
        raise ReplyError(errors.MULTI_NESTED)
    c.multi = []
    c.multi_failed = False
    return OK


@handler("discard")
def discard(c: Client, args: list[bytes]) -> object:
    if c.multi is None:
        raise ReplyError(errors.DISCARD_WITHOUT_MULTI)
    end_transaction(c)
    return OK


@handler("exec")
def exec_(c: Client, args: list[bytes]) -> object:
    if c.multi is None:
        raise ReplyError(errors.EXEC_WITHOUT_MULTI)
    queued, failed = c.multi, c.multi_failed
    broken = c.watch_broken or _watched_key_expired(c)
    end_transaction(c)
    if failed:
        raise ReplyError(errors.EXECABORT)
    if broken:
        return NIL_ARRAY
    execute = c.server.dispatcher.execute
    c.in_exec = True
    try:
        replies = [execute(c, cmd) for cmd in queued]
    finally:
        c.in_exec = False
    out = Chunks([b"*%d\r\n" % len(replies)])
    for reply in replies:
        if isinstance(reply, Chunks):
            out.extend(reply)
        else:
            out.append(reply)  # type: ignore[arg-type]
    return out


@handler("watch")
def watch(c: Client, args: list[bytes]) -> object:
    if c.multi is not None:
        raise ReplyError(errors.WATCH_IN_MULTI)
    ks = c.server.keyspace
    now = now_ms()
    for key in args[1:]:
        mkey = c.db.meta_key(key)
        if mkey in c.watched:
            continue
        rec = ks.engine.get(mkey)  # looked at, not touched: an expired key stays as it is
        expire = record_expire(rec) if rec is not None else WATCHED_MISSING
        c.watched[mkey] = WATCHED_MISSING if 0 < expire <= now else expire
        ks.watchers.setdefault(mkey, set()).add(c)
    return OK


@handler("unwatch")
def unwatch(c: Client, args: list[bytes]) -> object:
    unwatch_all(c)
    return OK


def _watched_key_expired(c: Client) -> bool:
    """A watched key whose TTL ran out since WATCH counts as modified (as in Redis 7)."""
    now = now_ms()
    return any(expire > 0 and expire <= now for expire in c.watched.values())
