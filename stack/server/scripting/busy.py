"""Other clients while a script runs past ``busy-reply-threshold``.

The script runs inside the event loop's callback, so the loop cannot serve anyone until it
ends. The Lua count hook calls ``Busy.serve`` instead: it polls the other clients' sockets
without waiting, reads what arrived, and answers each command as Redis does meanwhile:
SCRIPT KILL (FUNCTION KILL for a function) stops a script that has not written (UNKILLABLE
otherwise), FUNCTION STATS tells what runs, SHUTDOWN NOSAVE ends
the process without writing the script's pending batch (nothing of it reaches the store or the
replicas), anything else gets -BUSY. The script's writes stay in the pending batch, which
nobody reads meanwhile, so no one sees half of them.

Connections that arrive meanwhile are accepted here too (the loop cannot accept them): each
becomes a ``Client`` at once (maxclients, protected mode and the default user apply as on any
connection), served as above, with AUTH for a client that must log in first (a client that has
not logged in gets -NOAUTH, as always). When the script ends, each is handed to the loop with
``connect_accepted_socket``, whatever it sent and nothing more lost. Kills and SHUTDOWN obey
the client's ACL permissions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE
from stack.core.resp import OK, ProtocolError, ReplyError, encode, encode_error

from ..client import Client
from ..commands import HANDLERS

if TYPE_CHECKING:
    from ..server import Server
    from .run import Run
    from .scripts import Scripts

log = logging.getLogger(__name__)

_READ = 64 * 1024
_BUSY = encode_error(errors.BUSY)
_BUSY_FUNCTION = encode_error(errors.BUSY_FUNCTION)
_HANDSHAKE = (b"auth", b"hello")


class _SocketTransport(asyncio.Transport):
    """What a connection accepted during a busy script writes through until the loop takes
    it: plain sends on its socket (replies here are a few bytes)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.closed = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "peername":
            with contextlib.suppress(OSError):
                return self.sock.getpeername()
        if name == "sockname":
            return self.sock.getsockname()
        if name == "socket":
            return self.sock
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self.sock.sendall(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


class Busy:
    def __init__(self, server: Server, scripts: Scripts) -> None:
        self.server = server
        self.scripts = scripts
        self.poller = select.poll()
        self.polled: dict[int, Client] = {}
        self.listeners: dict[int, socket.socket] = {}  # dups of the server's listening sockets
        self.adopted: dict[int, tuple[Client, socket.socket]] = {}
        self.handovers: set[asyncio.Task[None]] = set()

    def _accept(self) -> None:
        if not self.listeners:
            for s in self.server.listening_sockets():
                dup = socket.socket(fileno=os.dup(s.fileno()))
                self.listeners[dup.fileno()] = dup
                self.poller.register(dup.fileno(), select.POLLIN)
        for fd, _ in self.poller.poll(0):
            listener = self.listeners.get(fd)
            if listener is None:
                continue
            while True:
                try:
                    sock, _addr = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:  # out of descriptors: the loop retries once free
                    log.warning("accepting a connection while a script runs: %s", e)
                    break
                sock.settimeout(1.0)
                c = Client(self.server)
                c.connection_made(_SocketTransport(sock))
                c.adopted = True
                if c.closing:  # refused (maxclients, protected mode): told and closed
                    sock.close()
                    continue
                self.adopted[c.id] = (c, sock)

    def serve(self, run: Run) -> None:
        """Accept new connections and answer what other clients sent since the last look
        (never waits)."""
        self._accept()
        wanted = {
            c.fd: c
            for c in self.server.clients.values()
            if c is not run.client and c.fd >= 0 and not c.closing and c.id not in run.seen
        }
        for fd in self.polled.keys() - wanted.keys():
            self.poller.unregister(fd)
        for fd in wanted.keys() - self.polled.keys():
            self.poller.register(fd, select.POLLIN)
        self.polled = wanted
        for fd, _ in self.poller.poll(0):
            c = wanted.get(fd)
            if c is None:
                continue
            try:
                data = os.read(fd, _READ)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # gone: the loop notices once the script ended
                run.seen.add(c.id)
                continue
            self._answer(run, c, data)

    def _answer(self, run: Run, c: Client, data: bytes) -> None:
        c.parser.feed(data)
        try:
            commands = c.parser.parse(1 << 30)
        except ProtocolError:
            run.seen.add(c.id)
            return
        busy = _BUSY_FUNCTION if run.is_function else _BUSY
        for args in commands:
            name = args[0].lower()
            sub = args[1].lower() if len(args) == 2 else b""
            reply: bytes = busy
            if name in _HANDSHAKE:  # allowed while busy, as in Redis (no_auth allow_busy)
                reply = self._handshake(c, args)
            elif name == b"quit":
                self._send(c, OK)
                run.seen.add(c.id)
                if c.transport is not None:
                    c.transport.close()
                continue
            elif not c.authenticated:
                reply = encode_error(errors.NOAUTH)
            elif (refusal := self._refusal(c, args)) is not None:
                reply = encode_error(refusal)
            elif name in (b"script", b"function") and sub == b"kill":
                try:
                    self.scripts.kill(is_eval=name == b"script")
                    reply = OK
                except ReplyError as e:
                    reply = encode_error(e.message)
            elif name == b"function" and sub == b"stats":
                reply = encode(self.scripts.functions.stats(), c.resp3)
            elif name == b"shutdown" and len(args) == 2 and args[1].lower() == b"nosave":
                log.warning(
                    "SHUTDOWN NOSAVE while a script runs: exiting without writing its changes"
                )
                logging.shutdown()
                os._exit(0)
            if reply is busy:
                self.server.dispatcher.count_error(reply)
            self._send(c, reply)

    def _handshake(self, c: Client, args: list[bytes]) -> bytes:
        """AUTH or HELLO through their own handlers (they touch only the client and the ACL
        log); their errors as replies."""
        spec = TABLE.resolve(args)
        assert spec is not None  # auth or hello
        try:
            if not spec.arity_ok(len(args)):
                raise errors.wrong_arity(spec.name)
            return encode(HANDLERS[spec.name](c, args), c.resp3)
        except ReplyError as e:
            return encode_error(e.message)

    def _refusal(self, c: Client, args: list[bytes]) -> str | None:
        """NOPERM for a kill, FUNCTION STATS or SHUTDOWN the client's user may not run."""
        spec = TABLE.resolve(args)
        if spec is None or args[0].lower() not in (b"script", b"function", b"shutdown"):
            return None
        return self.server.acl.check(c, spec, args)

    def _send(self, c: Client, reply: bytes) -> None:
        if c.out:  # replies held for a batch go first (they keep their order)
            c.out.append(reply)
        elif c.transport is not None:
            c.transport.write(reply)

    def ended(self, run: Run) -> None:
        for fd in self.polled:
            self.poller.unregister(fd)
        self.polled = {}
        for fd, listener in self.listeners.items():
            self.poller.unregister(fd)
            listener.close()  # the dup only: the loop's listening socket stays open
        self.listeners = {}
        adopted, self.adopted = self.adopted, {}
        loop = asyncio.get_running_loop()
        for c, sock in adopted.values():
            if c.id in run.seen or c.closing:  # gone meanwhile, or closed by a protocol error
                self.server.clients.pop(c.id, None)
                sock.close()
                continue
            sock.setblocking(False)
            task = loop.create_task(self._hand_over(c, sock))
            self.handovers.add(task)
            task.add_done_callback(self.handovers.discard)

    async def _hand_over(self, c: Client, sock: socket.socket) -> None:
        """The loop takes a connection accepted during the script: the same Client, now on
        a real transport (``connection_made`` sees it is adopted)."""
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: c, sock)
        except OSError as e:
            log.info("a connection accepted while a script ran is gone: %s", e)
            self.server.clients.pop(c.id, None)
            sock.close()
