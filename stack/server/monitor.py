"""MONITOR: every command the server runs, as one line per command to each monitoring client.

The line is Redis's (``replicationFeedMonitors``), so redis-cli's and redis-py's monitors read
it::

    +1700000000.123456 [0 127.0.0.1:5555] "SET" "k" "v"

- After the command ran (refused commands are not shown): a transaction shows as ``MULTI``,
  the commands it ran, then ``EXEC``, as Redis 7.0 shows it.
- Administrative commands (CONFIG, DEBUG, MONITOR, CLIENT LIST ...) are never shown, as in
  Redis; secret arguments read ``(redacted)`` by the command spec's rule, the slow log's
  (``AUTH "(redacted)"``, ``HELLO 3 AUTH "(redacted)" "(redacted)"``).
- Arguments are quoted as Redis's ``sdscatrepr``: ``\\`` and ``"`` escaped, ``\\n \\r \\t \\a
  \\b`` by name, other bytes outside printable ASCII as ``\\xHH``.
- A monitor is a normal client (CLIENT LIST type ``normal``, flag ``O``); it may PING, QUIT and
  RESET (which ends monitoring) but not touch keys. Its output is bounded by its class's
  output limits; while the ``normal`` class has none (the default), by the ``pubsub`` class's:
  a monitor that does not read is closed instead of growing without bound.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stack.core.resp import ReplyError

if TYPE_CHECKING:
    from stack.core.commands import CommandSpec

    from .client import Client
    from .server import Server

KEYSPACE_REFUSED = "ERR Replica can't interact with the keyspace"
_TOUCHES_KEYS = frozenset({"readonly", "write", "may_replicate"})
_NAMED = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    7: b"\\a",
    8: b"\\b",
}
# How each byte is written inside the quotes.
_REPR = [_NAMED.get(b, bytes([b]) if 32 <= b < 127 else b"\\x%02x" % b) for b in range(256)]
_PLAIN = bytes(b for b in range(32, 127) if b not in _NAMED)


def quoted(arg: bytes) -> bytes:
    """``arg`` as Redis's sdscatrepr writes it."""
    if not arg.translate(None, _PLAIN):  # nothing to escape (the usual case)
        return b'"' + arg + b'"'
    return b'"' + b"".join(_REPR[b] for b in arg) + b'"'


def line(db: int, addr: str, args: list[bytes], now: float | None = None) -> bytes:
    """One MONITOR line (a status reply) for a command with these (already redacted) args."""
    now = time.time() if now is None else now
    usec = int(now * 1_000_000)
    head = b"+%d.%06d [%d %s] " % (usec // 1_000_000, usec % 1_000_000, db, addr.encode())
    return head + b" ".join(quoted(a) for a in args) + b"\r\n"


class Monitors:
    """The clients in MONITOR mode."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.clients: dict[Client, None] = {}

    def __bool__(self) -> bool:
        return bool(self.clients)

    def start(self, c: Client) -> bool:
        """MONITOR: False when ``c`` already monitors (Redis then answers nothing)."""
        if c.monitor:
            return False
        if c.in_exec:
            raise ReplyError("ERR MONITOR isn't allowed for DENY BLOCKING client")
        c.monitor = True
        self.clients[c] = None
        self.server.observers.refresh()
        return True

    def stop(self, c: Client) -> None:
        """RESET, or the client went away."""
        if c.monitor:
            c.monitor = False
            self.clients.pop(c, None)
            self.server.observers.refresh()

    @staticmethod
    def refused(c: Client, spec: CommandSpec) -> bool:
        """A monitoring client may not run commands that touch keys (Redis treats it as a
        replica)."""
        return c.monitor and not _TOUCHES_KEYS.isdisjoint(spec.flags)

    def feed(self, c: Client, spec: CommandSpec, args: list[bytes]) -> bytes:
        """Show a command ``c`` ran to every monitor; what ``c`` itself is to be sent when it
        monitors (after its own reply)."""
        if "admin" in spec.flags or "skip_monitor" in spec.flags:
            return b""
        data = line(c.db.index, c.addr, spec.shown(args))
        deliver = self.server.deliver
        for monitor in list(self.clients):
            if monitor is not c:
                deliver(monitor, data)
        return data if c.monitor else b""
