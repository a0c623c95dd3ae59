"""Blocking commands (BLPOP and friends): clients waiting on keys, served first come first.

A handler that finds nothing to pop raises ``Block``. The client then stops running commands
(later ones wait in its queue) until a write makes one of its keys ready, or its timeout
passes. Inside MULTI/EXEC a blocking command never blocks: it answers its timeout reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core.resp import NIL_ARRAY, Raw

from .commands.args import to_timeout_ms

if TYPE_CHECKING:
    from .client import Client
    from .server import Server


class Block(Exception):
    """Raised by a handler that has to wait for ``keys``."""

    def __init__(
        self, client: Client, keys: list[bytes], timeout: float, in_exec_reply: Raw = NIL_ARRAY
    ) -> None:
        super().__init__("block")
        self.mkeys = [client.db.meta_key(k) for k in keys]
        self.timeout = timeout
        self.timeout_reply = NIL_ARRAY  # what Redis answers when the wait times out
        self.in_exec_reply = in_exec_reply  # and inside MULTI/EXEC, where it cannot wait


class Suspend(Exception):
    """Raised by a handler whose reply comes when ``future`` is done (WAIT)."""

    def __init__(self, future: asyncio.Future[None], reply: Callable[[], bytes]) -> None:
        super().__init__("suspend")
        self.future = future
        self.reply = reply


def suspend(client: Client, suspension: Suspend) -> None:
    """Hold the client's later commands until the suspension ends, then answer."""
    client.blocked = SUSPENDED  # type: ignore[assignment]

    def done(_f: object) -> None:
        if client.blocked is SUSPENDED:
            client.blocked = None
            client.resume_with(suspension.reply())

    suspension.future.add_done_callback(done)


SUSPENDED = object()


def parse_timeout(raw: bytes) -> float:
    """A blocking command's timeout in seconds (0: wait forever), checked as Redis does; Redis
    counts whole milliseconds, so 0.0001 is 0 (forever) there and here, and so is a deadline
    past the int64 range (it wraps to a negative one, which Redis never reaches)."""
    now = int(time.time() * 1000)
    until = to_timeout_ms(raw, now)
    return (until - now) / 1000 if until > 0 else 0.0


@dataclass
class Waiting:
    """A blocked client: the command to run again, and what to answer on timeout."""

    client: Client
    args: list[bytes]
    mkeys: list[bytes]
    timeout_reply: Raw
    timer: asyncio.TimerHandle | None = None


class Waiters:
    """Who waits on which key, in arrival order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.by_key: dict[bytes, deque[Waiting]] = {}
        server.keyspace.waited_keys = self.by_key  # writes to these keys mark them ready

    def __len__(self) -> int:
        return sum(1 for c in self.server.clients.values() if c.blocked is not None)

    def block(self, client: Client, args: list[bytes], block: Block) -> None:
        waiting = Waiting(client, args, block.mkeys, block.timeout_reply)
        for mkey in block.mkeys:
            self.by_key.setdefault(mkey, deque()).append(waiting)
        client.blocked = waiting
        if block.timeout > 0:
            loop = asyncio.get_running_loop()
            waiting.timer = loop.call_later(block.timeout, self.time_out, waiting)

    def _forget(self, waiting: Waiting) -> None:
        for mkey in waiting.mkeys:
            queue = self.by_key.get(mkey)
            if queue is not None:
                with contextlib.suppress(ValueError):
                    queue.remove(waiting)
                if not queue:
                    del self.by_key[mkey]
        if waiting.timer is not None:
            waiting.timer.cancel()
        waiting.client.blocked = None

    def drop(self, client: Client) -> None:
        """The client went away."""
        if client.blocked is not None:
            self._forget(client.blocked)

    def time_out(self, waiting: Waiting) -> None:
        if waiting.client.blocked is not waiting:
            return
        self._forget(waiting)
        waiting.client.resume_with(waiting.timeout_reply)

    def serve_ready(self) -> None:
        """Run again, oldest first, the waiters of every key that a write filled."""
        ks = self.server.keyspace
        execute = self.server.dispatcher.execute
        while ks.ready_keys:
            mkey = ks.ready_keys.pop()
            while (queue := self.by_key.get(mkey)) and ks.engine.get(mkey) is not None:
                waiting = queue[0]
                self._forget(waiting)
                reply = execute(waiting.client, waiting.args)
                if waiting.client.blocked is None:
                    waiting.client.resume_with(reply)
