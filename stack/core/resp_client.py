"""The asyncio RESP client of the project: ledis-cli's core, the binlog tool, replication links,
and the coming proxy and controller all speak to servers through it (or its protocol core,
``resp_session.Session``).

- ``connect()`` with a timeout, then AUTH (password or user + password), HELLO 2/3, CLIENT
  SETNAME and SELECT; after a reconnect the same, with what the connection changed since
  (SELECT, AUTH, HELLO ...), and the subscriptions again.
- Pipelining: ``submit()`` writes a request and returns a future; any number may be in flight
  (up to ``max_in_flight``: beyond that ``submit`` waits, a bounded queue) and they resolve in
  order. ``execute()`` waits for one reply, with a per-request timeout.
- Pushes (RESP3 ``>``, RESP2 pub/sub messages, a replication stream) go to ``on_push`` or to a
  bounded queue read with ``next_pushes()`` (reading from the socket pauses while it is full).
- Errors are typed: ``ConnectionLost`` (the outcome of requests in flight is unknown),
  ``RequestTimeout``, ``ServerError`` (an error reply), ``HandshakeError`` (refused on connect).
- Reconnects with exponential backoff: a request while disconnected tries once when the backoff
  allows and fails fast otherwise; with subscriptions (or ``keep_connected``) a background task
  reconnects on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .reply_parser import ErrorReply
from .resp import ProtocolError
from .resp_session import (
    PUSH,
    Arg,
    ConnectionLost,
    Endpoint,
    HandshakeError,
    RequestTimeout,
    ServerError,
    Session,
    connect_error_reason,
    handshake_error,
)

log = logging.getLogger(__name__)

__all__ = [
    "Backoff",
    "ConnectionLost",
    "Endpoint",
    "HandshakeError",
    "RequestTimeout",
    "RespClient",
    "RespPool",
    "ServerError",
]


def set_keepalive(sock: socket.socket, seconds: int) -> None:
    """tcp-keepalive as Redis sets it: probes after ``seconds`` idle, then every third of
    that, three unanswered probes closing the connection."""
    with contextlib.suppress(OSError, AttributeError):  # not TCP (a test's socketpair)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, seconds // 3))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


@dataclass(frozen=True)
class Backoff:
    """Delays between connection attempts: ``initial`` doubling (``factor``) up to ``maximum``."""

    initial: float = 0.05
    maximum: float = 2.0
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.maximum, self.initial * self.factor ** (failures - 1))


class _Link(asyncio.Protocol):
    """The asyncio side of one connection: bytes in to the session, futures resolved."""

    def __init__(self, client: RespClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client._link is not self:
            return
        client.last_io = time.monotonic()
        try:
            replies = client.session.receive(data)
        except ProtocolError as e:
            log.warning("%s: %s", client.endpoint.address, e.log)
            client._drop(self, ConnectionLost(f"bad reply from {client.endpoint.address}"))
            return
        for token, value in replies:
            if token is PUSH:
                client._push(value)
            elif not token.done():  # type: ignore[attr-defined]
                token.set_result(value)  # type: ignore[attr-defined]
        if client._room_waiters and client.session.in_flight < client.max_in_flight:
            client._wake_room()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.can_write.set()
        reason = f"{exc}" if exc else "server closed the connection"
        self.client._drop(self, ConnectionLost(reason))

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


class RespClient:
    """One pipelined connection to a RESP server (see the module's description)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float | None = None,
        backoff: Backoff | None = Backoff(),
        keep_connected: bool = False,
        keepalive: int = 0,
        max_in_flight: int = 10_000,
        on_push: Callable[[object], None] | None = None,
        max_pushes: int = 10_000,
        raw: bool = False,
        max_bulk: int = 512 * 1024 * 1024,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.keep_connected = keep_connected
        self.keepalive = keepalive  # TCP keepalive probes after this many idle seconds (0: none)
        self.max_in_flight = max_in_flight
        self.on_push = on_push
        self.max_pushes = max_pushes
        self.session = Session(endpoint, raw=raw, max_bulk=max_bulk)
        self.last_io = 0.0  # monotonic time of the last bytes received
        self.last_error: Exception | None = None
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._closed = False
        self._pushes: deque[object] = deque()
        self._push_ready: asyncio.Event | None = None
        self._reading_paused = False
        self._room_waiters: deque[asyncio.Future[None]] = deque()

    # -- connection -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.transport is not None

    @property
    def in_flight(self) -> int:
        return self.session.in_flight if self.connected else 0

    async def connect(self) -> None:
        """Connect (one attempt, within ``connect_timeout``) and restore the session; raises
        ConnectionLost or HandshakeError. Concurrent callers share the attempt."""
        if self._closed:
            raise ConnectionLost("client closed")
        if self.connected:
            return
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._connect_once())
        try:
            await asyncio.shield(self._connecting)
        except (ConnectionLost, HandshakeError) as e:
            self.last_error = e
            self._failures += 1
            if self.backoff is not None:
                self._next_attempt = time.monotonic() + self.backoff.delay(self._failures)
            raise
        self._failures = 0
        self._next_attempt = 0.0

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        link = _Link(self)
        try:
            async with asyncio.timeout(self.connect_timeout):
                if ep.unix_path:
                    await loop.create_unix_connection(lambda: link, ep.unix_path)
                else:
                    transport, _ = await loop.create_connection(lambda: link, ep.host, ep.port)
                    sock = transport.get_extra_info("socket")
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        if self.keepalive:
                            set_keepalive(sock, self.keepalive)
        except TimeoutError:
            raise ConnectionLost(
                f"Could not connect to {ep.address}: Connection timed out"
            ) from None
        except OSError as e:
            raise ConnectionLost(
                f"Could not connect to {ep.address}: {connect_error_reason(e)}"
            ) from None
        self.session.connection_made()
        self._link = link
        self.last_io = time.monotonic()
        try:
            commands = self.session.handshake()
            futures = [self._write_request(cmd) for cmd in commands]
            async with asyncio.timeout(self.connect_timeout):
                replies = [await f for f in futures]
        except TimeoutError:
            self._drop(link, ConnectionLost(f"{ep.address}: no reply to the handshake"))
            raise ConnectionLost(f"{ep.address}: no reply to the handshake") from None
        except ConnectionLost:
            raise
        for cmd, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ErrorReply) or (self.session.raw and reply[:1] == b"-"):  # type: ignore[index]
                self._drop(link, ConnectionLost("handshake refused"))
                raise handshake_error(reply, cmd)
        for cmd in self.session.resubscribe():
            self._write(self.session.send_no_reply(cmd))

    def _drop(self, link: _Link, error: ConnectionLost) -> None:
        """Forget a connection: its requests fail; a background reconnect may start."""
        if self._link is not link:
            return
        self._link = None
        self.last_error = error
        for token in self.session.connection_lost():
            if not token.done():  # type: ignore[attr-defined]
                token.set_exception(error)  # type: ignore[attr-defined]
        self._wake_room()
        if link.transport is not None:
            link.transport.close()
        if self._push_ready is not None:
            self._push_ready.set()  # a reader of pushes sees the loss
        wanted = self.keep_connected or any(self.session.subscriptions)
        if wanted and not self._closed and (self._reconnector is None or self._reconnector.done()):
            self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self._closed and not self.connected:
            delay = self.backoff.delay(self._failures + 1) if self.backoff else 0.1
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except (ConnectionLost, HandshakeError) as e:
                log.info("reconnecting to %s: %s", self.endpoint.address, e)

    async def _ensure(self) -> _Link:
        link = self._link
        if link is not None:
            return link
        if self._closed:
            raise ConnectionLost("client closed")
        wait = self._next_attempt - time.monotonic()
        if wait > 0 and (self._connecting is None or self._connecting.done()):
            raise ConnectionLost(
                f"not connected to {self.endpoint.address} ({self.last_error}); "
                f"next attempt in {wait:.2f}s"
            )
        await self.connect()
        assert self._link is not None
        return self._link

    async def close(self) -> None:
        """Close now: requests in flight fail with ConnectionLost; no reconnect."""
        self._closed = True
        for task in (self._reconnector, self._connecting):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        link = self._link
        if link is not None:
            self._drop(link, ConnectionLost("client closed"))
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await link.closed

    # -- requests -------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        link = self._link
        if link is None or link.transport is None:
            raise ConnectionLost(f"not connected to {self.endpoint.address}")
        link.transport.write(data)

    def _write_request(self, args: Sequence[Arg]) -> asyncio.Future[object]:
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._write(self.session.send(args, fut))
        return fut

    async def _room(self) -> None:
        """Wait while ``max_in_flight`` requests are in flight or the socket's write buffer
        is full (connected when it returns)."""
        link = await self._ensure()
        while self.session.in_flight >= self.max_in_flight:
            room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room_waiters.append(room)
            await room
            link = await self._ensure()
        if not link.can_write.is_set():
            await link.can_write.wait()
            await self._ensure()

    async def submit(self, args: Sequence[Arg]) -> asyncio.Future[object]:
        """Write one request now (pipelined) and return the future of its reply (an
        ErrorReply value for an error reply). Waits while ``max_in_flight`` requests are
        in flight or the socket's write buffer is full."""
        await self._room()
        if Session.answered_by_pushes(args):
            self._write(self.session.send_no_reply(args))
            done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._write_request(args)

    async def submit_encoded(self, name: bytes, data: bytes) -> asyncio.Future[object]:
        """``submit`` for a request already encoded as RESP (``Session.send_encoded``:
        ``name``, its command in lowercase, one that leaves the session as it is)."""
        await self._room()
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._write(self.session.send_encoded(name, data, fut))
        return fut

    def _wake_room(self) -> None:
        while self._room_waiters:
            fut = self._room_waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def call(self, *args: Arg, timeout: float | None = None) -> object:
        """One request's reply, error replies included as ErrorReply values."""
        fut = await self.submit(args)
        return await self._wait(fut, timeout)

    async def execute(self, *args: Arg, timeout: float | None = None) -> object:
        """One request's reply; an error reply raises ServerError."""
        reply = await self.call(*args, timeout=timeout)
        if isinstance(reply, ErrorReply):
            raise ServerError(reply)
        return reply

    async def pipeline(
        self, commands: Sequence[Sequence[Arg]], timeout: float | None = None
    ) -> list[object]:
        """Send every command before reading any reply; the replies in order (errors as
        ErrorReply values)."""
        futures = [await self.submit(cmd) for cmd in commands]
        deadline = timeout if timeout is not None else self.request_timeout
        try:
            async with asyncio.timeout(deadline):
                return [await f for f in futures]
        except TimeoutError:
            raise RequestTimeout(f"no reply from {self.endpoint.address} in {deadline}s") from None

    async def _wait(self, fut: asyncio.Future[object], timeout: float | None) -> object:
        deadline = timeout if timeout is not None else self.request_timeout
        if deadline is None:
            return await fut
        try:
            async with asyncio.timeout(deadline):
                return await fut
        except TimeoutError:
            raise RequestTimeout(f"no reply from {self.endpoint.address} in {deadline}s") from None

    async def send_no_reply(self, *args: Arg) -> None:
        """A command the server does not answer (REPLCONF ACK); the subscribe family too."""
        await self._ensure()
        self._write(self.session.send_no_reply(args))

    async def subscribe(self, *channels: Arg) -> None:
        await self.send_no_reply("SUBSCRIBE", *channels)

    async def psubscribe(self, *patterns: Arg) -> None:
        await self.send_no_reply("PSUBSCRIBE", *patterns)

    async def unsubscribe(self, *channels: Arg) -> None:
        await self.send_no_reply("UNSUBSCRIBE", *channels)

    async def punsubscribe(self, *patterns: Arg) -> None:
        await self.send_no_reply("PUNSUBSCRIBE", *patterns)

    # -- pushes ---------------------------------------------------------------------------

    def _push(self, value: object) -> None:
        if self.on_push is not None:
            self.on_push(value)
            return
        self._pushes.append(value)
        if self._push_ready is not None:
            self._push_ready.set()
        link = self._link
        if len(self._pushes) >= self.max_pushes and link is not None and link.transport:
            link.transport.pause_reading()
            self._reading_paused = True

    async def next_pushes(self, timeout: float | None = None) -> list[object]:
        """Every push received so far, waiting for at least one; raises ConnectionLost when
        the connection is gone and none is left."""
        if self._push_ready is None:
            self._push_ready = asyncio.Event()
        while not self._pushes:
            if not self.connected:
                raise ConnectionLost(str(self.last_error or "not connected"))
            self._push_ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._push_ready.wait()
            except TimeoutError:
                raise RequestTimeout("no push in time") from None
        out = list(self._pushes)
        self._pushes.clear()
        link = self._link
        if self._reading_paused and link is not None and link.transport is not None:
            link.transport.resume_reading()
            self._reading_paused = False
        return out


class RespPool:
    """A few pipelined connections to one server: each request goes to the connection with the
    fewest in flight (the proxy's per-backend pool)."""

    def __init__(self, endpoint: Endpoint, size: int = 4, **options: object) -> None:
        self.clients = [RespClient(endpoint, **options) for _ in range(size)]  # type: ignore[arg-type]

    def pick(self) -> RespClient:
        return min(self.clients, key=lambda c: c.in_flight)

    async def submit(self, args: Sequence[Arg]) -> asyncio.Future[object]:
        return await self.pick().submit(args)

    async def execute(self, *args: Arg, timeout: float | None = None) -> object:
        return await self.pick().execute(*args, timeout=timeout)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
