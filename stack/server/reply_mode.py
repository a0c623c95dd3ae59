"""CLIENT REPLY ON|OFF|SKIP: which command replies a client is sent, as Redis 7.0 decides.

- ``OFF``: no reply is sent from this command on (CLIENT REPLY OFF itself has none); ``ON``
  ends it and is answered ``+OK``.
- ``SKIP``: the reply of the next command is not sent (nor is SKIP's own). A SKIP inside
  MULTI/EXEC skips the command after EXEC; a SKIP while OFF does nothing.
- Pushes are sent all the same: pub/sub messages, (un)subscribe confirmations, tracking
  invalidations (Redis's ``CLIENT_PUSHING``).
- A reply is dropped when it is produced: inside EXEC, the replies of the commands after a
  CLIENT REPLY OFF are missing from the EXEC array whose length was already announced, exactly
  as Redis sends it (the client reads the replies that come later as the rest of the array).

A client's state is two fields of ``Client``: ``reply_off`` and ``skip`` (0; 1 when the command
running set it; 2 for the command after). ``filter_reply`` runs after each command of a client
with either set (``observers.after_command``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import Chunks, Raw

if TYPE_CHECKING:
    from .client import Client

NO_REPLY = Raw(b"")
# Replies that are pushes in Redis: sent whatever the mode.
_PUSHED = frozenset({"subscribe", "psubscribe", "unsubscribe", "punsubscribe"})
# ``Client.reply_off``: replies on, off, or turned off inside the EXEC running now (whose
# array header and earlier replies are then sent: Redis had written them already).
ON, OFF, OFF_IN_EXEC = 0, 1, 2


def silent(c: Client) -> bool:
    return bool(c.reply_off or c.skip)


def set_mode(c: Client, mode: bytes) -> bool:
    """Apply CLIENT REPLY ``mode`` (upper case); False for an unknown mode. The caller answers
    ``+OK`` for ON and nothing otherwise."""
    was = silent(c)
    if mode == b"ON":
        c.reply_off = ON
        if c.skip == 2:
            c.skip = 0
    elif mode == b"OFF":
        if not c.reply_off:
            c.reply_off = OFF_IN_EXEC if c.in_exec else OFF
    elif mode == b"SKIP":
        if not c.reply_off:
            c.skip = 1
    else:
        return False
    c.server.observers.silence_changed(c, was)
    return True


def command_starts(c: Client) -> None:
    """A command of ``c`` begins. A SKIP (or an OFF inside EXEC) set by the command before it
    whose own reply was not filtered (it turned observing on: observers.py) takes effect now,
    as it would have at the end of that command."""
    if c.skip == 1:
        c.skip = 2
    if c.reply_off == OFF_IN_EXEC:
        c.reply_off = OFF


def filter_reply(c: Client, name: str, reply: bytes | Chunks) -> bytes | Chunks:
    """The part of ``reply`` (of command ``name``) that is sent; advances SKIP."""
    if c.in_exec:  # a command inside EXEC: dropped while OFF or while the EXEC is skipped
        if (c.reply_off or c.skip == 2) and name not in _PUSHED:
            return NO_REPLY
        return reply
    skip = c.skip
    if skip == 1:  # SKIP ran in this command (or inside this EXEC): the next one is skipped
        c.skip = 2
        return reply
    if skip == 2:
        c.skip = 0
        c.server.observers.silence_changed(c, True)
        return reply if name in _PUSHED else NO_REPLY
    if c.reply_off == OFF_IN_EXEC:  # this EXEC's array had begun before
        c.reply_off = OFF
        return reply
    if not c.reply_off or name in _PUSHED:
        return reply
    return NO_REPLY
