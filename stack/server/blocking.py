"""Blocking commands (BLPOP and friends): clients waiting on keys, served first come first.

A handler that finds nothing to pop raises ``Block``. The client then stops running commands
(later ones wait in its queue) until one of its keys is created with the type it waits for,
or its timeout passes, or CLIENT UNBLOCK releases it. Inside MULTI/EXEC a blocking command
never blocks: it answers its timeout reply at once.

The wake-up rules are Redis 7.0's:

* A key becomes *ready* when it is created (``Keyspace.write`` over no record: a push, a
  *STORE, RENAME, MOVE, COPY, RESTORE, SMOVE...), and when SWAPDB brings a key someone waits
  on into their database. Ready keys are served after the whole command, or the whole
  MULTI/EXEC, that made them ready, in the order they became ready; a key is served only if
  it still exists then with the type its waiters want (a list pushed and deleted, or replaced
  by a string, inside one transaction wakes nobody). The same rule holds for scripts when
  they come: serving happens after the outermost command.
* The waiters of a key are served oldest first, each from *that* key (a client blocked on
  ``a b`` woken by ``b`` pops from ``b``), until the key is gone.
* Clients stay in their logical database: SWAPDB and FLUSHDB move what they wait on along
  (``Keyspace._follow``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL_ARRAY, Raw, encode_error

from .commands.args import to_timeout_ms
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .client import Client
    from .server import Server
    from .storage.keyspace import Database

# How a waiter's command is run again for one ready key: its arguments rewritten to take
# from that key only.
Retry = Callable[[bytes], list[bytes]]


def same_args(args: list[bytes]) -> Retry:
    """BLMOVE, BRPOPLPUSH: one source key, run again as they were."""
    return lambda _key: args


class Block(Exception):
    """Raised by a handler that has to wait for ``keys`` to hold a ``kind`` (list or zset)."""

    def __init__(
        self,
        client: Client,
        keys: list[bytes],
        timeout: float,
        kind: int,
        retry: Retry,
        in_exec_reply: Raw = NIL_ARRAY,
    ) -> None:
        super().__init__("block")
        self.db = client.db
        self.keys = list(dict.fromkeys(keys))
        self.timeout = timeout
        self.kind = kind
        self.retry = retry
        self.timeout_reply = NIL_ARRAY  # what Redis answers when the wait times out
        self.in_exec_reply = in_exec_reply  # and inside MULTI/EXEC, where it cannot wait


class Suspend(Exception):
    """Raised by a handler whose reply comes when ``future`` is done (WAIT)."""

    def __init__(self, future: asyncio.Future[None], reply: Callable[[], bytes]) -> None:
        super().__init__("suspend")
        self.future = future
        self.reply = reply


@dataclass
class Suspended:
    """A client waiting for a future (WAIT): what to answer when it ends."""

    reply: Callable[[], bytes]


def suspend(client: Client, suspension: Suspend) -> None:
    """Hold the client's later commands until the suspension ends, then answer."""
    state = Suspended(suspension.reply)
    client.blocked = state  # type: ignore[assignment]

    def done(_f: object) -> None:
        if client.blocked is state:
            client.blocked = None
            client.resume_with(state.reply())

    suspension.future.add_done_callback(done)


def parse_timeout(raw: bytes) -> float:
    """A blocking command's timeout in seconds (0: wait forever), checked as Redis does; Redis
    counts whole milliseconds, so 0.0001 is 0 (forever) there and here, and so is a deadline
    past the int64 range (it wraps to a negative one, which Redis never reaches)."""
    now = int(time.time() * 1000)
    until = to_timeout_ms(raw, now)
    return (until - now) / 1000 if until > 0 else 0.0


@dataclass
class Waiting:
    """A blocked client: its database and keys, the type that serves it, how to run its
    command again for one key, and what to answer on timeout."""

    client: Client
    db: Database
    keys: list[bytes]
    kind: int
    retry: Retry
    timeout_reply: Raw
    timer: asyncio.TimerHandle | None = None

    def mkeys(self) -> list[bytes]:
        return [self.db.meta_key(k) for k in self.keys]  # where its database points now


UNBLOCKED = encode_error(errors.UNBLOCKED)


class Waiters:
    """Who waits on which key, in arrival order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.by_key: dict[bytes, deque[Waiting]] = {}
        server.keyspace.waited_keys = self.by_key  # keys created here are marked ready
        self.serving = False

    def __len__(self) -> int:
        return sum(1 for c in self.server.clients.values() if c.blocked is not None)

    def block(self, client: Client, args: list[bytes], block: Block) -> None:
        waiting = Waiting(
            client, block.db, block.keys, block.kind, block.retry, block.timeout_reply
        )
        for mkey in waiting.mkeys():
            self.by_key.setdefault(mkey, deque()).append(waiting)
        client.blocked = waiting
        if block.timeout > 0:
            loop = asyncio.get_running_loop()
            waiting.timer = loop.call_later(block.timeout, self.time_out, waiting)

    def _forget(self, waiting: Waiting) -> None:
        for mkey in waiting.mkeys():
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
        if isinstance(client.blocked, Waiting):
            self._forget(client.blocked)
        client.blocked = None

    def time_out(self, waiting: Waiting) -> None:
        if waiting.client.blocked is not waiting:
            return
        self._forget(waiting)
        waiting.client.resume_with(waiting.timeout_reply)

    def unblock(self, client: Client, with_error: bool) -> bool:
        """CLIENT UNBLOCK: end the client's wait as its timeout would, or with -UNBLOCKED."""
        state = client.blocked
        if state is None:
            return False
        if isinstance(state, Waiting):
            self._forget(state)
            reply = state.timeout_reply
        else:  # WAIT: answers what it has so far
            client.blocked = None
            reply = Raw(state.reply())
        if with_error:
            reply = Raw(UNBLOCKED)
            self.server.dispatcher.count_error(UNBLOCKED)
        client.resume_with(reply)
        return True

    def serve_ready(self) -> None:
        """Serve, key by key in the order they became ready, the clients waiting on keys that
        exist with the type they want: each runs its command again for that key, oldest
        first, until the key is gone. Serving may make more keys ready (BLMOVE's push):
        those are served too."""
        if self.serving:
            return
        self.serving = True
        try:
            ks = self.server.keyspace
            ready = ks.ready_keys
            while ready:
                mkey = next(iter(ready))
                del ready[mkey]
                queue = self.by_key.get(mkey)
                if queue:
                    self._serve_key(mkey, list(queue))
        finally:
            self.serving = False

    def _serve_key(self, mkey: bytes, queue: list[Waiting]) -> None:
        ks = self.server.keyspace
        execute = self.server.dispatcher.execute
        key = kf.user_key(mkey)
        for waiting in queue:
            rec = ks.engine.get(mkey)
            if rec is not None and kf.expire_of(rec) and kf.expire_of(rec) <= _now_ms():
                ks.expire_now(mkey, rec)
                rec = None
            if rec is None:
                return
            client = waiting.client
            if client.blocked is not waiting or kf.rtype(rec) != waiting.kind:
                continue  # waits for another type: stays blocked
            self._forget(waiting)
            reply = execute(client, waiting.retry(key))
            if client.blocked is None:
                client.resume_with(reply)


def _now_ms() -> int:
    return int(time.time() * 1000)
