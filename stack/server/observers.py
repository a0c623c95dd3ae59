"""What watches commands as they run: MONITOR, CLIENT TRACKING and CLIENT REPLY OFF|SKIP.

While none of them is in use (the usual case), the dispatcher pays one attribute test per
command (``Dispatcher.observed``) and the C fast lane runs as before. While any is, every
command goes through ``Observers.execute``, which runs it with the dispatcher and then:

1. remembers the keys a tracking client read (tracking.py),
2. shows the command to monitors (monitor.py),
3. drops the replies CLIENT REPLY says not to send (reply_mode.py),
4. appends the invalidations the command caused for its own client, after its reply.

The C fast lane stands aside meanwhile (it neither times, shows nor filters commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import Chunks

from . import reply_mode
from .monitor import KEYSPACE_REFUSED, Monitors
from .tracking import Tracking, with_pushes

if TYPE_CHECKING:
    from .client import Client
    from .dispatch import Dispatcher
    from .server import Server


class Observers:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.monitors = Monitors(server)
        self.tracking = Tracking(server)
        self.silenced = 0  # clients with CLIENT REPLY OFF or SKIP
        self.active = False
        server.keyspace.on_expire.append(self.tracking.expired)

    def silence_changed(self, c: Client, was: bool) -> None:
        """CLIENT REPLY changed ``c``'s mode (``was``: its replies were off or skipped)."""
        now = reply_mode.silent(c)
        if now != was:
            self.silenced += 1 if now else -1
            self.refresh()

    def refresh(self) -> None:
        """Whether anything is observed; the dispatcher and the fast lane read ``active``."""
        self.active = bool(self.monitors) or bool(self.tracking.clients) or self.silenced > 0
        self.server.dispatcher.observed = self.active

    def forget(self, c: Client) -> None:
        """The client went away (or RESET): it observes nothing any more."""
        if c.monitor:
            self.monitors.stop(c)
        if c.tracking is not None:
            self.tracking.disable(c)
        if reply_mode.silent(c):
            c.reply_off = 0
            if c.skip != 2 or c.closing:  # (a SKIP for RESET itself still applies to it)
                c.skip = 0
            self.silence_changed(c, True)

    def execute(self, dispatcher: Dispatcher, c: Client, args: list[bytes]) -> bytes | Chunks:
        """Run one command as ``Dispatcher.execute`` does, observed."""
        entry = dispatcher.resolve(args)
        spec = entry.spec if entry is not None else None
        if spec is not None and self.monitors.refused(c, spec):
            return dispatcher.refuse(c, entry, KEYSPACE_REFUSED)  # type: ignore[arg-type]
        tracking = self.tracking
        top = not c.in_exec
        if top:
            if c.skip or c.reply_off:
                reply_mode.command_starts(c)
            tracking.current = c
            if tracking.table:
                tracking.limit(self.server.config["tracking-table-max-keys"])
        calls = entry.calls if entry is not None else 0
        try:
            reply = dispatcher.execute(c, args, True)
        finally:
            if top:
                tracking.current = None
        ran = entry is not None and entry.calls > calls
        if c.tracking is not None:
            tracking.after_command(c, spec, args, ran)
        own = b""  # what c sees of its own command as a monitor: after its reply
        if ran and self.monitors:
            own = self.monitors.feed(c, spec, args)  # type: ignore[arg-type]
        if c.reply_off or c.skip:
            name = spec.name if spec is not None else ""
            reply = reply_mode.filter_reply(c, name, reply)
        if top and tracking.pending:
            own += tracking.take_pending(c)
        return with_pushes(reply, own)
