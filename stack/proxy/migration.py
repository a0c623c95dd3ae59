"""Commands on a slot that migrates, and replies that say the map was stale.

While slot S migrates from A to B (docs/cluster.md, "ledis-proxy"), a command with keys in S
is sent this way: for each key, ``SLOTSMGRTTAGONE <B host> <B port> <timeout> <key>`` to A
(A moves the key and its hash-tag siblings to B, or answers 0 when it has none of them), and
only once A answered for every key, ``ASKING`` and the command to B, in one write. So a
command never reaches B before its keys did.

A ``-MOVED``, ``-ASK`` or ``-TRYAGAIN`` from a backend means the proxy's map is stale or a
key is in flight: MOVED refreshes the map from etcd and sends the command again (to the
address MOVED names when the fresh map still disagrees), ASK sends ``ASKING`` and the command
to the address it names, TRYAGAIN waits a little and tries again; at most
``redirect-retries`` times, after which the client gets a plain ``-ERR`` saying so. Clients
never see MOVED, ASK or TRYAGAIN.

A ``-READONLY`` from the master a slot is routed to means that node lost its mastership (a
failover fenced it, docs/failover.md): the command was refused before it ran, so it is sent
again once the map names another master for the slot, which it waits for (reloading the map
from etcd first, then following its watch) at most ``failover-wait`` seconds; the client gets
the READONLY only when the map still names that node after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.core.resp import encode_error

from .backend import Backend, Batch, call, call_many
from .replies import CLUSTERDOWN, migrate_failed, slot_moving

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)

_REDIRECTS = (b"-MOVED ", b"-ASK ", b"-TRYAGAIN", b"-READONLY ")
TRYAGAIN_PAUSE = 0.05


def is_redirect(raw: bytes) -> bool:
    return raw[:1] == b"-" and raw.startswith(_REDIRECTS)


def _target_of(raw: bytes) -> str | None:
    """The host:port a MOVED or ASK reply names."""
    words = raw[1:].split()
    return words[2].decode("latin-1") if len(words) >= 3 else None


async def move_keys(c: Client, source: Backend, target: Backend, keys: list[bytes]) -> bytes | None:
    """Ask ``source`` to move ``keys`` (and their tag siblings) to ``target``; the error
    reply when it could not."""
    link = source.link(c.protocol, c.id)
    timeout = b"%d" % c.proxy.config.migrate_timeout
    host, port = target.host.encode(), b"%d" % target.port
    done: set[bytes] = set()
    for key in keys:
        if key in done:
            continue
        done.add(key)
        reply = await call(link, [b"SLOTSMGRTTAGONE", host, port, timeout, key])
        c.proxy.stats.migrated_keys += 1
        if reply[:1] in (b"-", b"!"):
            return reply
    return None


async def run_on_slot(
    c: Client, slot: int, args: list[bytes], keys: list[bytes], dedicated: bool = False
) -> bytes:
    """One command on ``slot``, wherever its keys are now (see the module's description);
    ``dedicated``: on a link of its own (a blocking command)."""
    proxy = c.proxy
    ask: str | None = None
    for attempt in range(proxy.config.redirect_retries + 1):
        route = proxy.routes.routes[slot]
        if route.backend is None:
            return encode_error(CLUSTERDOWN)
        owner = None
        if ask is not None:
            reply = await _send(c, proxy.backend_for(ask), [[b"ASKING"], args], dedicated)
        elif route.target is not None:
            failed = await move_keys(c, route.backend, route.target, keys)
            if failed is not None:
                if is_redirect(failed):
                    reply = failed
                else:
                    return migrate_failed(slot, failed)
            else:
                reply = await _send(c, route.target, [[b"ASKING"], args], dedicated)
        else:
            reply = await _send(c, route.backend, [args], dedicated)
            owner = route.backend  # only the slot's master is waited out when it says READONLY
        ask = None
        if not is_redirect(reply):
            return reply
        proxy.stats.redirects += 1
        log.debug("slot %d: %r (attempt %d)", slot, reply[:60], attempt + 1)
        if reply.startswith(b"-READONLY "):
            if owner is None or not await new_master(c, slot, owner):
                return reply
        elif reply.startswith(b"-ASK "):
            ask = _target_of(reply)
        elif reply.startswith(b"-MOVED "):
            before = proxy.routes.routes[slot].backend
            await proxy.refresh()
            if proxy.routes.routes[slot].backend is before:
                ask = None
                where = _target_of(reply)
                if where is not None and before is not None and where != before.addr:
                    reply = await _send(c, proxy.backend_for(where), [args], dedicated)
                    if not is_redirect(reply):
                        return reply
        else:  # TRYAGAIN: a key of the command is on its way
            await asyncio.sleep(TRYAGAIN_PAUSE * (attempt + 1))
    return slot_moving(slot, reply[1:].split(b"\r\n")[0].decode("utf-8", "replace"))


async def new_master(c: Client, slot: int, fenced: Backend | None) -> bool:
    """Wait until the map routes ``slot`` to another node than ``fenced`` (at most
    ``failover-wait`` seconds): True when it does."""
    proxy = c.proxy
    deadline = asyncio.get_running_loop().time() + proxy.config.failover_wait
    await proxy.refresh()
    while proxy.routes.routes[slot].backend is fenced:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        await proxy.map_changed(left)
    return True


async def _send(c: Client, backend: Backend, cmds: list[list[bytes]], dedicated: bool) -> bytes:
    """Commands written together; the reply of the last one."""
    if not dedicated:
        parts = await call_many(backend.link(c.protocol, c.id), cmds)
        return parts[-1]
    pinned = c.pinned
    if pinned is not None and pinned.backend is backend:
        return (await call_many(pinned.link, cmds))[-1]
    link = backend.dedicated_link(c.protocol)
    try:
        parts = await call_many(link, cmds)
    except asyncio.CancelledError:
        link.close()  # the client left while blocked: the command cannot be taken back
        raise
    backend.release(link)
    return parts[-1]


async def retry_batch(c: Client, batch: Batch, then: Callable[[Batch], None]) -> None:
    """Some replies of a batch were MOVED/ASK/TRYAGAIN: run those commands again, patch their
    replies in place, then ``then(batch)``."""
    from stack.core.slots import key_slot

    from .rules import lookup

    parts = batch.parts
    for i, raw in enumerate(parts):
        if not is_redirect(raw):
            continue
        args = batch.cmds[i]
        rule = lookup(args[0])
        keys: list[bytes] = []
        if rule is not None:
            if rule.container and len(args) > 1:
                rule = rule.subs.get(args[1].lower(), rule)
            keys = [args[r.pos] for r in rule.spec.keys(args) if "NOT_KEY" not in r.flags]
        if not keys:
            continue
        parts[i] = await run_on_slot(c, key_slot(keys[0]), args, keys)
    then(batch)
