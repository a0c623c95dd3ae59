"""One client connection to the proxy: parse, route, forward, and answer in the client's order.

The data path (docs/proxy.md, "The data path"):

1. The C router (``route_run``) takes the run of plain one-key commands at the head of the
   buffer in one call: it counts them and says which backend each goes to, and stops at
   anything else. What follows is parsed by the core's ``RequestParser`` (its limits, its
   errors: the same as a ledis-server), many commands per read.
2. Each command's rule (``rules.py``) says where it goes. A keyed command's slot comes from
   its key (argument 1 for the plain one-key commands, the core's key specs otherwise); the
   commands of one read for one backend form one ``Batch``, written once per event-loop turn
   on the link this client always uses for that backend (so its requests to one backend stay
   in order); a read spanning backends gets one batch per backend and an ``Interleave`` that
   puts the replies back in order. When a whole read went into one batch it is forwarded as
   the bytes that came (no re-encoding).
3. Replies come back raw, batch by batch; ``queue`` holds this client's pending replies in
   request order and ``flush`` writes every reply that is ready at its head, in one write.
4. Whatever needs a backend connection of its own or several round trips (blocking
   commands, keys of a migrating slot, fan-out commands, WATCH, SCAN) runs ``exclusive``:
   after the replies before it are out, and holding later commands until it is done, as a
   server runs one client's commands one after the other.

Back pressure: a congested backend link pauses reading from the clients that wait for it; a
client that does not read its replies stops being read (``pause_writing``) and is closed
when what waits for it passes ``client-output-limit``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import ProtocolError, RequestParser, encode_error
from stack.core.slots import key_slot

from . import fanout, local, pubsub, transactions
from .accel import router as _router
from .backend import CLOSED, Backend, Batch, Deferred, Link, encode_requests
from .migration import is_redirect, retry_batch, run_on_slot
from .replies import CLUSTERDOWN
from .rules import ALL, DEFAULT, DENY, FAST, KEYED, LOCAL, RULES, SPLIT, Rule, lookup

if TYPE_CHECKING:
    from .server import ProxyServer
    from .transactions import Pinned

log = logging.getLogger(__name__)

_ALL = 1 << 30
DRAIN, BUSY = 1, 2  # stall reasons: waiting for earlier replies; an exclusive step runs
_SECURITY = (b"post", b"host:")
_IMMEDIATE = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
_CROSSSLOT = encode_error(errors.CROSSSLOT)
_CLUSTERDOWN = encode_error(CLUSTERDOWN)
_NOAUTH = encode_error(errors.NOAUTH)
_RULES = RULES
_FAST = FAST
_MAX_ARGC = 2**31 - 1


class Client(asyncio.Protocol):
    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy
        self.id = proxy.next_client_id()
        self.parser = RequestParser(proxy.limits)
        self.authenticated = not proxy.config.requirepass
        self.parser.authenticated = self.authenticated
        self.protocol = 2
        self.name = b""
        self.addr = "?:0"
        self.laddr = "?:0"
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.transport: asyncio.Transport | None = None
        self.queue: deque[object] = deque()  # reply slots in request order
        self.held: deque[list[bytes]] = deque()  # parsed commands waiting their turn
        self.stall = 0
        self.closing = False
        self.close_after_reply = False
        self.paused = False  # reading paused (back pressure)
        self.write_paused = False
        self.waiting_backend = False
        # the batch being built in this turn
        self.batch_link: Link | None = None
        self.batch_cmds: list[list[bytes]] = []
        self.order: list[Link] | None = None  # this read's links, one per command (2+ links)
        self.others: dict[Link, list[list[bytes]]] = {}
        self.batches = 0  # batches closed in this read
        self.raw_chunk: bytes | None = None  # the read, when it may be forwarded as it is
        self.raw_n = 0
        self.t0 = 0.0
        # transaction, WATCH, pub/sub
        self.multi: list[list[bytes]] | None = None
        self.multi_failed = False
        self.multi_slot: int | None = None
        self.pinned: Pinned | None = None
        self.sub: pubsub.Subscription | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.flush_pending = False
        self.links: dict[Backend, Link] = {}  # this client's shared link per backend
        self.links_protocol = 2
        self.net_in = 0
        self.net_out = 0
        self._done = self._batch_done

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.addr = _fmt_addr(transport.get_extra_info("peername"))
        self.laddr = _fmt_addr(transport.get_extra_info("sockname"))
        proxy = self.proxy
        if len(proxy.clients) >= proxy.config.maxclients:
            proxy.stats.rejected += 1
            transport.write(encode_error(errors.MAX_CLIENTS))  # type: ignore[attr-defined]
            transport.close()
            self.closing = True
            return
        proxy.clients[self.id] = self
        proxy.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.proxy.clients.pop(self.id, None)
        for task in self.tasks:
            task.cancel()
        self.tasks.clear()
        transactions.drop_pin(self)
        pubsub.drop(self)
        self.queue.clear()
        self.held.clear()
        self.parser.reset()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.t0 = self.last_interaction = time.monotonic()
        self.net_in += len(data)
        parser = self.parser
        fresh = not parser.buffered() and not self.held and not self.stall
        parser.feed(data)
        if parser.buffered() > parser.limits.max_query_buffer:
            log.warning("closing client %s: query buffer over its limit", self.addr)
            self.close_now()
            return
        self.raw_chunk = data if fresh and self.authenticated else None
        self.process()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._reading(False)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._reading(True)

    def eof_received(self) -> bool | None:
        return None

    # -- the loop ----------------------------------------------------------------------------

    def process(self) -> None:
        """Dispatch every complete command that may run now.

        The plain one-key commands (GET, SET, HSET ...) to an online slot take the inline
        path: rule, arity, slot, link, batch; anything else goes through ``dispatch``."""
        parser = self.parser
        self.batches = 0
        slot_ops = self.proxy.stats.slot_ops
        links = self.links
        try:
            while not self.stall and not self.closing and not self.close_after_reply:
                if self.held:
                    cmds = list(self.held)
                    self.held.clear()
                    self.raw_chunk = None
                else:
                    if _router is not None and self.plain and self.route_run():
                        continue
                    cmds = parser.parse(_ALL if self.authenticated else 1)
                    if not cmds:
                        break
                    if self.raw_chunk is not None:
                        if parser.buffered():
                            self.raw_chunk = None
                        else:
                            self.raw_n = len(cmds)
                routes = self.proxy.routes.routes
                plain = self.plain
                for i, args in enumerate(cmds):
                    if plain:
                        rule = _RULES.get(args[0])
                        if rule is not None and rule.fast:
                            argc = len(args)
                            arity = rule.arity
                            if argc == arity if arity > 0 else argc >= -arity:
                                slot = key_slot(args[1])
                                route = routes[slot]
                                link = links.get(route.backend)  # type: ignore[arg-type]
                                if (
                                    link is not None
                                    and route.target is None
                                    and link.state != CLOSED
                                ):
                                    rule.calls += 1
                                    slot_ops[slot] += 1
                                    if link is self.batch_link and self.order is None:
                                        self.batch_cmds.append(args)
                                    else:
                                        self.add(link, args)
                                    continue
                    if not self.dispatch(args):  # not now: it and the rest wait
                        self.held.extend(cmds[i:])
                        break
                    if self.stall or self.close_after_reply or self.closing:
                        self.held.extend(cmds[i + 1 :])
                        break
                    plain = self.plain
        except ProtocolError as e:
            self.close_batch()
            if e.reply:
                self.queue.append(encode_error("ERR " + e.reply))
            log.info("closing client %s: %s", self.addr, e.log)
            self.close_after_reply = True
        self.close_batch()
        self.raw_chunk = None
        self.flush()

    def route_run(self) -> bool:
        """The C router: send the run of plain one-key commands at the parser's position
        (one batch, or one per backend and an ``Interleave``); False when there is none."""
        assert _router is not None
        head = self.parser.unparsed()
        if head is None:
            return False
        buf, pos = head
        proxy = self.proxy
        table = proxy.routes
        stats = proxy.stats
        end, n, idx, order, parts, last = _router.route(
            buf, pos, _FAST.names, _FAST.arities, table.slot_backends, stats.fast_calls,
            stats.slot_ops, proxy.limits.max_bulk, _MAX_ARGC,
        )  # fmt: skip
        if not n:
            return False
        self.parser.consumed(end)
        self.last_command = _FAST.rules[last].name
        self.close_batch()  # what this read batched before goes first
        self.raw_chunk = None
        backends = table.backend_list
        if order is None:
            link = self.link_to(backends[idx])
            data = buf if pos == 0 and end == len(buf) else buf[pos:end]
            batch = Batch(self._done, None, self.t0, data, n)
            self.queue.append(batch)
            link.send(data, batch)
            if link.congested:
                self.wait_for(link)
            return True
        assert parts is not None
        links = {i: self.link_to(backends[i]) for i in parts}
        merged = Interleave(self, [links[i] for i in order], len(parts))
        self.queue.append(merged)
        for i, data in parts.items():
            link = links[i]
            batch = Batch(merged.part, None, self.t0, data, order.count(i))
            merged.batches[link] = batch
            link.send(data, batch)
            if link.congested:
                self.wait_for(link)
        return True

    @property
    def plain(self) -> bool:
        """No state that changes where commands go (the inline path may run)."""
        return (
            self.authenticated
            and self.multi is None
            and self.sub is None
            and self.pinned is None
            and self.protocol == self.links_protocol
        )

    def dispatch(self, args: list[bytes]) -> bool:
        """Route one command; False when it must wait for earlier replies (run it again)."""
        rule = lookup(args[0])
        if rule is None:
            return self.unknown(args)
        if rule.container:
            if len(args) < 2:
                return self.fail(errors.wrong_arity(rule.name).message)
            sub = rule.subs.get(args[1].lower())
            if sub is None:
                return self.fail(errors.unknown_subcommand(args[1], rule.name).message)
            rule = sub
        if not rule.arity_ok(len(args)):
            return self.fail(errors.wrong_arity(rule.name).message)
        if not self.authenticated and not rule.no_auth:
            self.reply(_NOAUTH)
            if self.multi is not None:
                self.multi_failed = True
            return True
        self.last_command = rule.name
        if self.multi is not None and rule.name not in _IMMEDIATE:
            rule.calls += 1
            transactions.queue(self, rule, args)
            return True
        if self.sub is not None and pubsub.captures(self, rule):
            rule.calls += 1
            return pubsub.forward(self, rule, args)
        now = self.route(rule, args)
        if now:
            rule.calls += 1
        return now

    def route(self, rule: Rule, args: list[bytes]) -> bool:
        kind = rule.kind
        if kind == KEYED:
            return self.keyed(rule, args)
        if kind == LOCAL:
            return local.HANDLERS[rule.handler](self, rule, args)
        if kind == SPLIT:
            return fanout.split(self, rule, args)
        if kind == DEFAULT:
            backend = self.proxy.routes.default
            if backend is None:
                return self.fail(CLUSTERDOWN)
            self.add(self.link_to(backend), args)
            return True
        if kind == ALL:
            return self.exclusive(lambda: fanout.to_all(self, rule, args))
        assert kind == DENY
        return self.fail(_deny_message(rule))

    def keyed(self, rule: Rule, args: list[bytes]) -> bool:
        if rule.single:
            slot = key_slot(args[1])
            keys = [args[1]]
        else:
            keys = [args[r.pos] for r in rule.spec.keys(args) if "NOT_KEY" not in r.flags]
            if not keys:  # the arguments do not hold their keys: the node names the error
                backend = self.proxy.routes.default
                if backend is None:
                    return self.fail(CLUSTERDOWN)
                self.add(self.link_to(backend), args)
                return True
            slot = key_slot(keys[0])
            for k in keys[1:]:
                if key_slot(k) != slot:
                    self.proxy.stats.errors += 1
                    self.reply(_CROSSSLOT)
                    return True
        return self.to_slot(slot, args, keys, rule.blocking)

    def to_slot(self, slot: int, args: list[bytes], keys: list[bytes], blocking: bool) -> bool:
        proxy = self.proxy
        proxy.stats.slot_ops[slot] += 1
        route = proxy.routes.routes[slot]
        backend = route.backend
        if backend is None:
            proxy.stats.errors += 1
            self.reply(_CLUSTERDOWN)
            return True
        if blocking or route.target is not None:
            return self.exclusive(lambda: run_on_slot(self, slot, args, keys, blocking))
        pinned = self.pinned
        if pinned is not None and pinned.backend is backend:
            self.close_batch()
            batch = Batch(self._done, [args], self.t0)
            self.queue.append(batch)
            pinned.link.send(encode_requests([args]), batch)
            return True
        self.add(self.link_to(backend), args)
        return True

    # -- batches -----------------------------------------------------------------------------

    def link_to(self, backend: Backend) -> Link:
        """This client's shared link to ``backend`` (always the same one while it lives)."""
        if self.links_protocol != self.protocol:
            self.links.clear()
            self.links_protocol = self.protocol
        link = self.links.get(backend)
        if link is None or link.state == CLOSED:
            link = backend.link(self.protocol, self.id)
            self.links[backend] = link
        return link

    def add(self, link: Link, args: list[bytes]) -> None:
        """``args`` goes to ``link`` with this read's other commands (sent by close_batch)."""
        if self.batch_link is None:
            self.batch_link = link
            self.batch_cmds = [args]
            return
        order = self.order
        if order is None:
            if link is self.batch_link:
                self.batch_cmds.append(args)
                return
            # a second backend in this read: its commands and the first's go out as one
            # batch per backend, and one reply slot puts the replies back in order
            order = self.order = [self.batch_link] * len(self.batch_cmds)
            self.others = {}
        order.append(link)
        if link is self.batch_link:
            self.batch_cmds.append(args)
        else:
            cmds = self.others.get(link)
            if cmds is None:
                self.others[link] = [args]
            else:
                cmds.append(args)

    def close_batch(self) -> None:
        link = self.batch_link
        if link is None:
            return
        cmds = self.batch_cmds
        self.batch_link = None
        self.raw_chunk, raw = None, self.raw_chunk
        self.batches += 1
        order = self.order
        if order is not None:
            self.order = None
            merged = Interleave(self, order, 1 + len(self.others))
            self.queue.append(merged)
            for target, target_cmds in [(link, cmds), *self.others.items()]:
                batch = Batch(merged.part, target_cmds, self.t0)
                merged.batches[target] = batch
                target.send(encode_requests(target_cmds), batch)
                if target.congested:
                    self.wait_for(target)
            return
        batch = Batch(self._done, cmds, self.t0)
        self.queue.append(batch)
        if raw is not None and self.batches == 1 and len(cmds) == self.raw_n:
            data = raw
        else:
            data = encode_requests(cmds)
        link.send(data, batch)
        if link.congested:
            self.wait_for(link)

    def _batch_done(self, batch: Batch) -> None:
        if self.closing:
            return
        if _redirected(batch):
            self.spawn(retry_batch(self, batch, self._batch_ready))
            return
        self._batch_ready(batch)

    def _batch_ready(self, batch: Batch) -> None:
        parts = batch.parts
        batch.data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.proxy.stats.latency(int((time.monotonic() - batch.started) * 1e6), batch.n)
        self.head_ready(batch)

    def head_ready(self, slot: object) -> None:
        """``slot`` got its data: if it is first in line, write (at the end of this loop turn,
        so replies of other backends that arrive in the same turn go out in the same write)."""
        if self.queue and self.queue[0] is slot and not self.flush_pending:
            self.flush_pending = True
            self.proxy.flush_later(self)

    def slot_ready(self, slot: object) -> None:
        """A Deferred or Batch at some place in the queue got its data."""
        if not self.closing and self.queue and self.queue[0] is slot:
            self.flush()

    # -- replies -----------------------------------------------------------------------------

    def reply(self, data: bytes) -> None:
        """A reply the proxy makes itself, in its place in the order."""
        self.close_batch()
        self.raw_chunk = None
        self.queue.append(data)

    def fail(self, message: str) -> bool:
        self.proxy.stats.errors += 1
        if self.multi is not None:
            self.multi_failed = True
        self.reply(encode_error(message))
        return True

    def unknown(self, args: list[bytes]) -> bool:
        if args[0].lower() in _SECURITY:
            log.warning(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or "
                "Host: commands to ledis-proxy (client %s). This is likely due to an attacker "
                "attempting to use Cross Protocol Scripting. Connection aborted.",
                self.addr,
            )
            self.close_now()
            return True
        return self.fail(errors.unknown_command(args[0], args[1:]).message)

    def flush(self) -> None:
        q = self.queue
        out: list[bytes] = []
        while q:
            item = q[0]
            if isinstance(item, bytes):  # the proxy's own replies (Raw constants among them)
                out.append(item)
            else:
                data = item.data  # type: ignore[attr-defined]
                if data is None:
                    break
                out.append(data)
            q.popleft()
        transport = self.transport
        if out and transport is not None and not self.closing:
            data = out[0] if len(out) == 1 else b"".join(out)
            self.net_out += len(data)
            transport.write(data)
            self.check_output()
        if q:
            return
        if self.close_after_reply:
            self.close()
        elif self.stall == DRAIN:
            self.stall = 0
            asyncio.get_running_loop().call_soon(self.process)

    def write_raw(self, data: bytes) -> None:
        """Bytes outside the request order (pub/sub messages)."""
        if self.transport is not None and not self.closing:
            self.net_out += len(data)
            self.transport.write(data)
            self.check_output()

    def check_output(self) -> None:
        transport = self.transport
        if transport is None:
            return
        limit = self.proxy.output_limit(self)
        if limit and transport.get_write_buffer_size() > limit:
            log.warning("closing client %s: output buffer over its limit", self.addr)
            self.close_now()

    # -- exclusive steps ---------------------------------------------------------------------

    def exclusive(self, make: Callable[[], Awaitable[bytes]]) -> bool:
        """Run ``make()`` once every earlier reply is out, holding later commands until it is
        done; its result is this command's reply. False: not yet (earlier replies pending)."""
        self.close_batch()
        self.raw_chunk = None
        if self.queue:
            self.stall = DRAIN
            return False
        slot = Deferred()
        self.queue.append(slot)
        self.stall = BUSY
        self.spawn(self._exclusive(slot, make()))
        return True

    async def _exclusive(self, slot: Deferred, step: Awaitable[bytes]) -> None:
        try:
            data = await step
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must cost one reply, never the connection
            log.exception("client %s: command failed", self.addr)
            data = encode_error(f"ERR ledis-proxy internal error: {e}")
        slot.data = data
        if self.stall == BUSY:
            self.stall = 0
        if not self.closing:
            self.flush()
            asyncio.get_running_loop().call_soon(self.process)

    def spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- flow control ------------------------------------------------------------------------

    def wait_for(self, link: Link) -> None:
        """The backend has too much in flight: stop reading this client until it drains."""
        if not self.waiting_backend:
            self.waiting_backend = True
            link.backend.wait_for_room(self)
            self._reading(False)

    def resume_from_backend(self) -> None:
        self.waiting_backend = False
        self._reading(True)

    def _reading(self, on: bool) -> None:
        t = self.transport
        if t is None or self.closing:
            return
        want_paused = not on or self.write_paused or self.waiting_backend
        if want_paused and not self.paused:
            t.pause_reading()
            self.paused = True
        elif not want_paused and self.paused:
            t.resume_reading()
            self.paused = False

    def close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()

    def close_now(self) -> None:
        self.closing = True
        self.queue.clear()
        if self.transport is not None:
            self.transport.abort()

    # -- introspection -----------------------------------------------------------------------

    def info_line(self) -> str:
        now = time.monotonic()
        t = self.transport
        obl = t.get_write_buffer_size() if t is not None else 0
        qbuf = self.parser.buffered()
        flags = "P" if self.sub is not None else ("b" if self.stall == BUSY else "N")
        if self.multi is not None:
            flags = "x"
        return (
            f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 "
            f"name={self.name.decode('utf-8', 'replace')} age={int(now - self.created)} "
            f"idle={int(now - self.last_interaction)} flags={flags} db=0 sub=0 psub=0 ssub=0 "
            f"multi={len(self.multi) if self.multi is not None else -1} qbuf={qbuf} "
            f"qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl={obl} oll={len(self.queue)} "
            f"omem={obl} tot-mem={qbuf + obl} events=r cmd={self.last_command} user=default "
            f"redir=-1 resp={self.protocol}"
        )


class Interleave(Deferred):
    """The replies of one read whose commands went to several backends: one batch per
    backend, put back in the order of the commands once all are in."""

    __slots__ = ("batches", "client", "left", "order")

    def __init__(self, client: Client, order: list[Link], count: int) -> None:
        super().__init__()
        self.client = client
        self.order = order
        self.left = count
        self.batches: dict[Link, Batch] = {}

    def part(self, batch: Batch) -> None:
        c = self.client
        if c.closing:
            return
        if _redirected(batch):
            c.spawn(retry_batch(c, batch, self._part_ready))
            return
        self._part_ready(batch)

    def _part_ready(self, batch: Batch) -> None:
        self.left -= 1
        if self.left:
            return
        replies = {link: iter(b.parts) for link, b in self.batches.items()}
        self.data = b"".join([next(replies[link]) for link in self.order])
        c = self.client
        c.proxy.stats.latency(int((time.monotonic() - batch.started) * 1e6), len(self.order))
        c.head_ready(self)


def _redirected(batch: Batch) -> bool:
    """Is some reply of the batch a MOVED, ASK, TRYAGAIN or READONLY (only a batch that got
    an error reply may; then one scan of the joined bytes first)?"""
    if not batch.errors:
        return False
    parts = batch.parts
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    return (
        b"MOVED " in data or b"ASK " in data or b"TRYAGAIN" in data or b"READONLY " in data
    ) and any(is_redirect(p) for p in parts)


def _deny_message(rule: Rule) -> str:
    from .replies import unsupported

    return unsupported(rule.spec.display_name.lower() if rule.spec.parent else rule.name)


def _fmt_addr(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return "?:0"
