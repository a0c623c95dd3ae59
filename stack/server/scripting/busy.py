"""Other clients while a script runs past ``busy-reply-threshold``.

The script runs inside the event loop's callback, so the loop cannot serve anyone until it
ends. The Lua count hook calls ``Busy.serve`` instead: it polls the other clients' sockets
without waiting, reads what arrived, and answers each command as Redis does meanwhile:
SCRIPT KILL (FUNCTION KILL for a function) stops a script that has not written (UNKILLABLE
otherwise), FUNCTION STATS tells what runs, SHUTDOWN NOSAVE ends
the process without writing the script's pending batch (nothing of it reaches the store or the
replicas), anything else gets -BUSY. The script's writes stay in the pending batch, which
nobody reads meanwhile, so no one sees half of them.
"""

from __future__ import annotations

import logging
import os
import select
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import OK, ProtocolError, ReplyError, encode, encode_error

if TYPE_CHECKING:
    from ..client import Client
    from ..server import Server
    from .run import Run
    from .scripts import Scripts

log = logging.getLogger(__name__)

_READ = 64 * 1024
_BUSY = encode_error(errors.BUSY)
_BUSY_FUNCTION = encode_error(errors.BUSY_FUNCTION)


class Busy:
    def __init__(self, server: Server, scripts: Scripts) -> None:
        self.server = server
        self.scripts = scripts
        self.poller = select.poll()
        self.polled: dict[int, Client] = {}

    def serve(self, run: Run) -> None:
        """Answer what other clients sent since the last look (never waits)."""
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
            if name in (b"script", b"function") and sub == b"kill":
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

    def _send(self, c: Client, reply: bytes) -> None:
        if c.out:  # replies held for a batch go first (they keep their order)
            c.out.append(reply)
        elif c.transport is not None:
            c.transport.write(reply)

    def ended(self, run: Run) -> None:
        for fd in self.polled:
            self.poller.unregister(fd)
        self.polled = {}
