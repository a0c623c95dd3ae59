"""A client whose reply comes later because of a migration.

Two cases, both "blocked" as Redis counts clients blocked: a command whose work is spread
over loop turns (SLOTSMGRT*, SLOTSINFO, SLOTSDEL: ``defer``), and a command on a key that a
migration holds (``wait_and_rerun``: it runs again once the key's move ended, and so meets
the slot rules afresh). Later commands of the client wait in its queue meanwhile; a client
that disconnects is forgotten (its work goes on, its reply is dropped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from stack.core import errors
from stack.core.resp import Raw, ReplyError, encode, encode_error

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)

LATER = Raw(b"")  # what a handler returns when its reply comes later


class Deferred:
    """``client.blocked`` while it waits: shaped like a blocked client's entry (no keys to
    wait on, no timer) so the server forgets it like one when it disconnects."""

    __slots__ = ("args", "client", "mkeys", "timer")

    def __init__(self, client: Client, args: list[bytes] | None = None) -> None:
        self.client = client
        self.args = args  # the command to run again (None: a reply to deliver)
        self.mkeys: tuple[bytes, ...] = ()
        self.timer = None

    def reply(self) -> bytes:
        """What the client gets when its wait is ended from outside (CLIENT UNBLOCK)."""
        if self.args is not None:
            return encode_error(errors.UNBLOCKED_BEFORE_MOVE)
        return encode_error(errors.UNBLOCKED_MOVE_GOES_ON)


def defer(
    c: Client,
    work: Coroutine[Any, Any, object],
    failures: tuple[type[Exception], ...] = (),
    reply: Callable[[object], object] = lambda result: result,
) -> Raw:
    """Run ``work`` as a task and answer the client with its result (``reply`` shapes it);
    an exception of ``failures`` (or ReplyError) becomes an error reply with its message."""
    marker = Deferred(c)
    c.blocked = marker  # type: ignore[assignment]
    task = asyncio.get_running_loop().create_task(work)

    def done(t: asyncio.Task[object]) -> None:
        try:
            out = encode(reply(t.result()), resp3=c.resp3)
        except ReplyError as e:
            out = encode_error(e.message)
        except failures as e:
            out = encode_error(str(e))
        except Exception:
            log.exception("a deferred command of client %s failed", c.addr)
            out = encode_error("ERR internal error; see the server log")
        if c.blocked is marker:
            c.blocked = None
            c.resume_with(out)

    task.add_done_callback(done)
    return LATER


def wait_and_rerun(c: Client, args: list[bytes], fut: asyncio.Future[None]) -> Raw:
    """Hold the command until ``fut`` is done, then run it again."""
    marker = Deferred(c, args)
    c.blocked = marker  # type: ignore[assignment]

    def done(_f: asyncio.Future[None]) -> None:
        if c.blocked is not marker or c.closing:
            return
        c.blocked = None
        out = c.server.dispatcher.execute(c, args)
        if c.blocked is None:
            c.resume_with(out)

    fut.add_done_callback(done)
    return LATER
