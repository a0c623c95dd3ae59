"""Connections from the proxy to the ledis-servers it routes to.

A ``Backend`` is one server (a group's master). It keeps, per client protocol (RESP2 or RESP3),
a few shared ``Link``s, each carrying many clients' requests pipelined, and a pool of
dedicated links for what must own a connection for a while (a blocked BLPOP, a WATCH ...
EXEC, a pub/sub subscriber).

A request is written with the ``Batch`` that waits for its replies: a batch is ``n``
requests written together, answered by the next ``n`` replies on that link, in order. Writes
of one event-loop turn are joined and written once per link; replies are cut by the
``ReplySplitter`` and handed to their batches as raw bytes.

Bounds: a link holds at most ``max_in_flight`` requests before its clients are told to wait
(``congested``); a request older than ``timeout`` makes the link give up (its batches get an
error naming the backend) and reconnect. A backend that cannot be reached fails requests at
once with ``-ERR backend HOST:PORT unavailable (...)`` until its backoff allows a new attempt;
a background task keeps trying while the backend is in the map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from stack.core.resp import Limits, ProtocolError, RequestParser, encode_command
from stack.core.resp_client import Backoff
from stack.core.resp_session import connect_error_reason

from .replies import ReplySplitter, backend_down

log = logging.getLogger(__name__)

CONNECTING, UP, CLOSED = 0, 1, 2
RECONNECT_BACKOFF = Backoff(initial=0.1, maximum=2.0)
IDLE_DEDICATED = 8  # idle dedicated links kept per backend and protocol
_CHECKED = Limits(max_bulk=2**62, max_query_buffer=2**62)


class Deferred:
    """A client's reply slot filled later (by an exclusive step or a merge)."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: bytes | None = None


class Batch:
    """``n`` requests written together to one link, and their raw replies as they come.

    ``done(batch)`` is called once all ``n`` replies are in (``parts``); ``data`` is then set
    by whoever assembles the client's reply. ``errors`` is True when some reply is an error
    (the client side looks for MOVED/ASK/TRYAGAIN only then). A batch the C router made
    carries the requests' bytes (``raw``) and parses them into ``cmds`` only when asked (a
    redirect, a retry)."""

    __slots__ = ("_cmds", "data", "done", "errors", "n", "parts", "raw", "started")

    def __init__(
        self,
        done: Callable[[Batch], None],
        cmds: list[list[bytes]] | None,
        started: float = 0.0,
        raw: bytes = b"",
        n: int = 0,
    ) -> None:
        self.done = done
        self._cmds = cmds
        self.raw = raw
        self.n = len(cmds) if cmds is not None else n
        self.parts: list[bytes] = []
        self.data: bytes | None = None
        self.errors = False
        self.started = started

    @property
    def cmds(self) -> list[list[bytes]]:
        if self._cmds is None:
            parser = RequestParser(_CHECKED)  # the router checked them against the limits
            parser.feed(self.raw)
            self._cmds = parser.parse()
        return self._cmds

    def fail(self, reply: bytes) -> None:
        """Every reply still missing is ``reply`` (the link is gone)."""
        missing = self.n - len(self.parts)
        if missing > 0:
            self.parts.extend([reply] * missing)
            self.errors = True
            self.done(self)


def encode_requests(cmds: Sequence[list[bytes]]) -> bytes:
    """Commands as multibulk requests, one buffer."""
    out = []
    for args in cmds:
        out.append(b"*%d\r\n" % len(args))
        out.extend([b"$%d\r\n%b\r\n" % (len(a), a) for a in args])
    return b"".join(out)


class Link(asyncio.Protocol):
    """One connection to a backend (see the module's description)."""

    def __init__(self, backend: Backend, protocol: int, dedicated: bool = False) -> None:
        self.backend = backend
        self.protocol = protocol
        self.dedicated = dedicated
        self.state = CONNECTING
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Batch] = deque()
        self.in_flight = 0
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.splitter = ReplySplitter(backend.max_bulk)
        self.write_paused = False
        self.stream: Callable[[list[bytes]], None] | None = None  # pub/sub: every reply here
        self.on_close: Callable[[Link], None] | None = None
        self.last_reply = time.monotonic()
        self._loop = asyncio.get_running_loop()

    # -- connecting --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and introduce ourselves (AUTH / HELLO 3); requests sent meanwhile wait."""
        b = self.backend
        try:
            async with asyncio.timeout(b.connect_timeout):
                await self._loop.create_connection(lambda: self, b.host, b.port)
        except TimeoutError:
            self._failed("connect timed out")
            return
        except OSError as e:
            self._failed(connect_error_reason(e))
            return
        if self.state == CLOSED:  # closed while connecting
            return
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = self._handshake()
        if hello:  # requests queued meanwhile go out only once the node accepted us
            waiter: asyncio.Future[Batch] = self._loop.create_future()

            def answered(batch: Batch) -> None:
                if not waiter.done():
                    waiter.set_result(batch)

            check = Batch(answered, hello)
            self.pending.appendleft(check)
            self.in_flight += check.n
            assert self.transport is not None
            self.transport.write(encode_requests(hello))
            try:
                async with asyncio.timeout(b.connect_timeout):
                    result = await waiter
            except TimeoutError:
                self.close(f"no reply to {hello[0][0].decode()} in {b.connect_timeout:g} s")
                return
            if self.state == CLOSED:
                return
            refused = [p for p in result.parts if p[:1] in (b"-", b"!")]
            if refused:
                why = refused[0][1:].strip().decode("utf-8", "replace")
                self.close(f"{hello[0][0].decode()} refused: {why}")
                return
        self.state = UP
        if self.out:
            self._flush()
        b.link_up(self)

    def _handshake(self) -> list[list[bytes]]:
        pw = self.backend.password
        if self.protocol == 3:
            hello = [b"HELLO", b"3"]
            if pw:
                hello += [b"AUTH", b"default", pw.encode()]
            return [hello]
        return [[b"AUTH", pw.encode()]] if pw else []

    def set_closed(self) -> None:
        if self.state != CLOSED:
            self.state = CLOSED
            self.backend.link_closed(self)
            if self.on_close is not None:
                self.on_close(self)

    def _failed(self, why: str) -> None:
        self.set_closed()
        self._fail_pending(why)
        self.backend.link_failed(self, why)

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            replies = self.splitter.feed(data)
        except ProtocolError as e:
            log.warning("backend %s: %s; dropping the connection", self.backend.addr, e.log)
            self.close("bad reply")
            return
        if not replies:
            return
        self.last_reply = time.monotonic()
        pending = self.pending
        if self.stream is not None and not pending:
            self.stream(replies)
            return
        total = len(replies)
        errors = self.splitter.errors
        i = 0
        while i < total:
            if not pending:
                if self.stream is not None:  # pub/sub: what follows the handshake
                    self.stream(replies[i:])
                else:
                    log.warning(
                        "backend %s: a reply nobody asked for: %r",
                        self.backend.addr,
                        replies[i][:60],
                    )
                break
            batch = pending[0]
            if errors:
                batch.errors = True
            parts = batch.parts
            need = batch.n - len(parts)
            if not parts and need == total and not i:
                batch.parts = replies  # the common case: this read answers one whole batch
            else:
                parts.extend(replies[i : i + need])
            i += need
            if len(batch.parts) == batch.n:
                pending.popleft()
                batch.done(batch)
        self.in_flight -= len(replies)
        if self.in_flight < 0:  # the link was failed while its replies were handed out
            self.in_flight = 0
        if self.backend.waiters and self.in_flight < self.backend.low_water:
            self.backend.wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state != CLOSED:
            why = f"connection lost: {exc}" if exc else "connection closed by the server"
            self.set_closed()
            self._fail_pending(why)
            self.backend.link_failed(self, why)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.backend.waiters:
            self.backend.wake()

    # -- requests ----------------------------------------------------------------------------

    def send(self, data: bytes, batch: Batch | None) -> None:
        """Write ``data`` (this turn, joined with the link's other writes); ``batch`` waits
        for its replies (None for commands answered by pushes only)."""
        if self.state == CLOSED:
            if batch is not None:
                batch.fail(backend_down(self.backend.addr, self.backend.last_error))
            return
        if batch is not None:
            self.pending.append(batch)
            self.in_flight += batch.n
            self.backend.requests += batch.n
        self.out.append(data)
        if self.state == UP and not self.flush_scheduled:
            self.flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if not out or self.transport is None or self.state != UP:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.transport.write(data)

    @property
    def congested(self) -> bool:
        return self.write_paused or self.in_flight >= self.backend.max_in_flight

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unanswered request has waited (0 when none waits)."""
        if not self.pending or self.stream is not None:
            return 0.0
        return now - max(self.pending[0].started, self.last_reply)

    def close(self, why: str = "closed by the proxy") -> None:
        if self.state == CLOSED:
            return
        self.set_closed()
        self._fail_pending(why)
        if self.transport is not None:
            self.transport.abort()
        self.backend.link_failed(self, why, broken=why != "closed by the proxy")

    def _fail_pending(self, why: str) -> None:
        reply = backend_down(self.backend.addr, why)
        pending = list(self.pending)
        self.pending.clear()
        self.in_flight = 0
        self.out.clear()
        for batch in pending:
            batch.fail(reply)


class Backend:
    """One ledis-server the proxy routes to (see the module's description)."""

    def __init__(
        self,
        addr: str,
        *,
        password: str | None = None,
        connections: int = 2,
        max_in_flight: int = 20_000,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_bulk: int = 512 * 1024 * 1024,
    ) -> None:
        self.addr = addr
        host, _, port = addr.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.password = password
        self.connections = connections
        self.max_in_flight = max_in_flight
        self.low_water = max_in_flight // 2
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_bulk = max_bulk
        self.shared: dict[int, list[Link | None]] = {
            2: [None] * connections,
            3: [None] * connections,
        }
        self.idle: dict[int, list[Link]] = {2: [], 3: []}
        self.dedicated = 0  # dedicated links open now
        self.up = False
        self.ever_up = False
        self.last_error = "not connected yet"
        self.failures = 0
        self.next_attempt = 0.0
        self.waiters: list[Any] = []  # clients paused until the backend has room again
        self.retired = False
        self.requests = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"Backend({self.addr})"

    # -- links -------------------------------------------------------------------------------

    def link(self, protocol: int, affinity: int) -> Link:
        """The shared link a client with this ``affinity`` uses (the same one every time, so
        one client's requests to this backend stay in order)."""
        links = self.shared[protocol]
        i = affinity % self.connections
        link = links[i]
        if link is None or link.state == CLOSED:
            link = Link(self, protocol)
            links[i] = link
            self._start(link)
        return link

    def dedicated_link(self, protocol: int) -> Link:
        """A link of its own for one client (blocking commands, WATCH, pub/sub)."""
        idle = self.idle[protocol]
        while idle:
            link = idle.pop()
            if link.state != CLOSED:
                return link
        link = Link(self, protocol, dedicated=True)
        self.dedicated += 1
        self._start(link)
        return link

    def release(self, link: Link) -> None:
        """A dedicated link is free again (idle, nothing in flight)."""
        if link.state == CLOSED:
            return
        idle = self.idle[link.protocol]
        if link.stream is None and not link.pending and len(idle) < IDLE_DEDICATED:
            idle.append(link)
        else:
            link.close()

    def link_closed(self, link: Link) -> None:
        """A link is closed for good (called once per link)."""
        if link.dedicated:
            self.dedicated -= 1
            with contextlib.suppress(ValueError):
                self.idle[link.protocol].remove(link)

    def _start(self, link: Link) -> None:
        if time.monotonic() < self.next_attempt:
            # still backing off: requests fail at once instead of queueing behind a dead server
            link.set_closed()
            return
        asyncio.get_running_loop().create_task(link.open())

    def link_up(self, link: Link) -> None:
        if self._warned:
            log.warning("backend %s is reachable again", self.addr)
        self.up = True
        self.ever_up = True
        self.failures = 0
        self.next_attempt = 0.0
        self._warned = False

    def link_failed(self, link: Link, why: str, broken: bool = True) -> None:
        if broken:
            self.last_error = why
            self.up = False
            self.failures += 1
            self.next_attempt = time.monotonic() + RECONNECT_BACKOFF.delay(self.failures)
            if not self._warned:
                log.warning("backend %s unavailable (%s); retrying", self.addr, why)
                self._warned = True
        if self.waiters:
            self.wake()

    # -- back pressure -----------------------------------------------------------------------

    def wait_for_room(self, client: Any) -> None:
        if client not in self.waiters:
            self.waiters.append(client)

    def wake(self) -> None:
        waiters = self.waiters
        self.waiters = []
        for client in waiters:
            client.resume_from_backend()

    # -- health ------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Once a second: give up on links whose oldest request waited too long; reconnect
        while down."""
        for links in self.shared.values():
            for link in links:
                if link is not None and link.state == UP and link.oldest_age(now) > self.timeout:
                    link.close(f"no reply in {self.timeout:g} s")
        if not self.up and not self.retired and now >= self.next_attempt:
            self.link(2, 0)

    def in_flight(self) -> int:
        return sum(lk.in_flight for links in self.shared.values() for lk in links if lk is not None)

    def close(self) -> None:
        self.retired = True
        for links in self.shared.values():
            for link in links:
                if link is not None:
                    link.close()
        for idle in self.idle.values():
            for link in list(idle):
                link.close()


async def call(link: Link, args: Sequence[bytes | str | int], now: float = 0.0) -> bytes:
    """One request on ``link``, its raw reply (an error reply is returned, not raised)."""
    fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def done(batch: Batch) -> None:
        if not fut.done():
            fut.set_result(batch.parts[0])

    link.send(encode_command(args), Batch(done, [[]], now or time.monotonic()))
    return await fut


async def call_many(link: Link, cmds: list[list[bytes]]) -> list[bytes]:
    """Several requests written together on ``link``, their raw replies."""
    fut: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()

    def done(batch: Batch) -> None:
        if not fut.done():
            fut.set_result(batch.parts)

    link.send(encode_requests(cmds), Batch(done, cmds, time.monotonic()))
    return await fut
