"""MULTI / EXEC / DISCARD / WATCH / UNWATCH through the proxy: one slot per transaction.

MULTI is answered by the proxy, and so is each queued command (``+QUEUED``, or the error the
node would give: unknown command, wrong arity, not allowed in a transaction, and
``-CROSSSLOT`` for a key outside the transaction's slot, which then fails the EXEC with
``-EXECABORT`` as Redis Cluster does). EXEC sends ``MULTI``, the queued commands and ``EXEC``
together to the slot's master, on the client's link to it (one write: nothing of another
client comes between them on that connection) and answers with the node's EXEC reply.

WATCH pins the client to a dedicated connection to the watched slot's master (the keys of
one slot); commands for that master then use it, and the EXEC goes there. EXEC, DISCARD,
UNWATCH and RESET unpin it. A transaction or WATCH on a slot that is migrating waits
(bounded, ``transaction-wait``) until the slot is online again, then runs on its owner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import encode_error
from stack.core.slots import key_slot

from .backend import Backend, Batch, Link, call, call_many, encode_requests
from .migration import is_redirect, new_master
from .replies import CLUSTERDOWN, NOT_IN_CLUSTER, SUBSCRIBE_IN_MULTI, transaction_waited
from .rules import DENY, KEYED, NOT_IN_TRANSACTION, SPLIT

if TYPE_CHECKING:
    from .client import Client
    from .rules import Rule

QUEUED = b"+QUEUED\r\n"
OK = b"+OK\r\n"
_NOT_QUEUEABLE = frozenset({"auth", "hello", "client|setname", "client|kill"})


@dataclass
class Pinned:
    backend: Backend
    link: Link
    slot: int


def drop_pin(c: Client) -> None:
    """Forget the client's WATCH connection (closed: its state is unknown)."""
    pinned = c.pinned
    c.pinned = None
    if pinned is not None:
        pinned.link.close()


def _release(c: Client) -> None:
    pinned = c.pinned
    c.pinned = None
    if pinned is not None:
        pinned.backend.release(pinned.link)


def multi(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.multi is not None:
        return _error(c, errors.MULTI_NESTED)
    c.multi = []
    c.multi_failed = False
    c.multi_slot = c.pinned.slot if c.pinned is not None else None
    c.reply(OK)
    return True


def _error(c: Client, message: str) -> bool:
    """An error that does not fail the transaction (as Redis: nested MULTI, WATCH in MULTI)."""
    c.proxy.stats.errors += 1
    c.reply(encode_error(message))
    return True


def _slot_of(c: Client, rule: Rule, args: list[bytes]) -> int | bool | None:
    """The slot of a queued command's keys: None (no keys), or False when they span slots."""
    if rule.kind not in (KEYED, SPLIT):
        return None
    keys = [args[r.pos] for r in rule.spec.keys(args) if "NOT_KEY" not in r.flags]
    slots = {key_slot(k) for k in keys}
    if len(slots) > 1:
        return False
    return slots.pop() if slots else None


def queue(c: Client, rule: Rule, args: list[bytes]) -> None:
    """A command inside MULTI: checked, then queued for the EXEC."""
    if rule.no_multi:
        c.fail(errors.NOT_IN_MULTI)
        return
    if rule.kind == DENY:
        c.fail(_deny(rule))
        return
    if rule.name in NOT_IN_TRANSACTION:
        c.fail(SUBSCRIBE_IN_MULTI)
        return
    if rule.name in _NOT_QUEUEABLE:
        c.fail(errors.NOT_IN_MULTI)
        return
    if rule.name == "select" and args[1] != b"0":
        c.fail(NOT_IN_CLUSTER)
        return
    slot = _slot_of(c, rule, args)
    if slot is False:
        c.fail(errors.CROSSSLOT)
        return
    if slot is not None:
        if c.multi_slot is None:
            c.multi_slot = slot  # type: ignore[assignment]
        elif c.multi_slot != slot:
            c.fail(errors.CROSSSLOT)
            return
    assert c.multi is not None
    c.multi.append(args)
    c.reply(QUEUED)


def _deny(rule: Rule) -> str:
    from .replies import unsupported

    return unsupported(rule.name)


def discard(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.multi is None:
        return c.fail(errors.DISCARD_WITHOUT_MULTI)
    c.multi = None
    c.multi_failed = False
    if c.pinned is not None:  # DISCARD unwatches
        pinned = c.pinned
        c.pinned = None
        pinned.link.send(encode_requests([[b"UNWATCH"]]), Batch(_release_after(pinned), [[]]))
    c.reply(OK)
    return True


def _release_after(pinned: Pinned):  # type: ignore[no-untyped-def]
    def done(batch: Batch) -> None:
        pinned.backend.release(pinned.link)

    return done


def exec_(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.multi is None:
        return c.fail(errors.EXEC_WITHOUT_MULTI)
    if c.multi_failed:
        c.multi = None
        c.multi_failed = False
        _release(c)
        return c.fail(errors.EXECABORT)
    slot = c.multi_slot
    route = c.proxy.routes.routes[slot] if slot is not None else None
    if route is not None and route.target is not None:
        return c.exclusive(lambda: _exec_later(c))
    backend = route.backend if route is not None else c.proxy.routes.default
    if backend is None:
        c.multi = None
        _release(c)
        return c.fail(CLUSTERDOWN)
    cmds = [[b"MULTI"], *c.multi, [b"EXEC"]]
    c.multi = None
    pinned = c.pinned
    if pinned is not None and pinned.backend is not backend:
        _release(c)  # the watched slot moved away: its keys may have changed
        c.reply(b"*-1\r\n" if c.protocol == 2 else b"_\r\n")
        return True
    link = pinned.link if pinned is not None else c.link_to(backend)
    c.close_batch()
    watched = pinned is not None
    batch = Batch(lambda b: _exec_done(c, b, backend, watched), cmds, c.t0)
    c.queue.append(batch)
    link.send(encode_requests(cmds), batch)
    return True


def _exec_done(c: Client, batch: Batch, sent_to: Backend, watched: bool) -> None:
    _release(c)
    if any(is_redirect(p) for p in batch.parts):
        if watched and _refused(batch.parts):
            # its master was fenced: the watched keys' node is gone; fail it as a changed key
            batch.data = b"*-1\r\n" if c.protocol == 2 else b"_\r\n"
            c.slot_ready(batch)
            return
        c.spawn(_exec_again(c, batch, sent_to))
        return
    batch.data = batch.parts[-1]
    c.slot_ready(batch)


def _refused(parts: list[bytes]) -> bool:
    """Did the node refuse the transaction with READONLY (it is no longer the master)?"""
    return any(p.startswith(b"-READONLY ") for p in parts)


async def _exec_again(c: Client, batch: Batch, sent_to: Backend) -> None:
    """The node did not own the slot (a stale map) or was no longer its master (READONLY):
    refresh (or wait for another master, ``migration.new_master``) and run it on the owner."""
    parts = batch.parts
    for _ in range(c.proxy.config.redirect_retries):
        c.proxy.stats.redirects += 1
        slot = _txn_slot(batch.cmds[1:-1])
        if slot is not None and _refused(parts):
            if not await new_master(c, slot, sent_to):
                batch.data = parts[-1]
                break
        else:
            await c.proxy.refresh()
        backend = _owner(c, slot)
        if backend is None:
            batch.data = encode_error(CLUSTERDOWN)
            break
        parts = await call_many(c.link_to(backend), batch.cmds)
        sent_to = backend
        if not any(is_redirect(p) for p in parts):
            batch.data = parts[-1]
            break
    else:
        batch.data = encode_error("ERR ledis-proxy: the transaction's slot kept moving; not run")
    c.slot_ready(batch)


def _txn_slot(cmds: list[list[bytes]]) -> int | None:
    from .rules import lookup

    for args in cmds:
        rule = lookup(args[0])
        if rule is None:
            continue
        if rule.container and len(args) > 1:
            rule = rule.subs.get(args[1].lower(), rule)
        if rule.kind in (KEYED, SPLIT):
            keys = [args[r.pos] for r in rule.spec.keys(args)]
            if keys:
                return key_slot(keys[0])
    return None


def _owner(c: Client, slot: int | None) -> Backend | None:
    routes = c.proxy.routes
    return routes.routes[slot].backend if slot is not None else routes.default


async def _wait_online(c: Client, slot: int) -> Backend | None:
    """The slot's owner once it is not migrating (None: still migrating after the wait)."""
    deadline = time.monotonic() + c.proxy.config.transaction_wait
    while True:
        route = c.proxy.routes.routes[slot]
        if route.target is None:
            return route.backend
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await c.proxy.map_changed(left)


async def _exec_later(c: Client) -> bytes:
    slot = c.multi_slot
    assert slot is not None and c.multi is not None
    cmds = [[b"MULTI"], *c.multi, [b"EXEC"]]
    c.multi = None
    backend = await _wait_online(c, slot)
    if backend is None:
        _release(c)
        return transaction_waited(slot, c.proxy.config.transaction_wait)
    pinned = c.pinned
    if pinned is not None and pinned.backend is not backend:
        _release(c)
        return b"*-1\r\n" if c.protocol == 2 else b"_\r\n"
    link = pinned.link if pinned is not None else c.link_to(backend)
    parts = await call_many(link, cmds)
    _release(c)
    return parts[-1]


def watch(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.multi is not None:
        return _error(c, errors.WATCH_IN_MULTI)
    slots = {key_slot(k) for k in args[1:]}
    if len(slots) > 1 or (c.pinned is not None and c.pinned.slot not in slots):
        return c.fail(errors.CROSSSLOT)
    slot = slots.pop()
    return c.exclusive(lambda: _watch(c, slot, args))


async def _watch(c: Client, slot: int, args: list[bytes]) -> bytes:
    backend = await _wait_online(c, slot)
    if backend is None:
        return transaction_waited(slot, c.proxy.config.transaction_wait)
    pinned = c.pinned
    if pinned is None or pinned.link.state == 2:
        link = backend.dedicated_link(c.protocol)
        pinned = c.pinned = Pinned(backend, link, slot)
    reply = await call(pinned.link, args)
    if reply[:1] == b"-":
        _release(c)
    return reply


def unwatch(c: Client, rule: Rule, args: list[bytes]) -> bool:
    pinned = c.pinned
    if pinned is None:
        c.reply(OK)
        return True

    async def step() -> bytes:
        reply = await call(pinned.link, args)
        _release(c)
        return reply

    return c.exclusive(step)
