"""The fast lane: plain GET, SET, INCR, DECR and MSET, HSET, SADD, LPUSH, RPUSH, LPOP, RPOP,
ZADD, ZPOPMIN, ZPOPMAX and SPOP (without a count) on an existing collection, and LRANGE inside a window the Python path kept
(``storage/rangecache.py``), of a pipelined chunk run in C (``_fastlane.c``).

A client's received bytes go through the lane first whenever the gate (``gate.py``: the one
place that decides, for the lane and the Python path alike) lets it: nothing about the client
or the server asks for more than the common case (no transaction, subscription, WATCH,
keyspace notifications, CLIENT PAUSE, slow-log threshold low enough to matter...), and it
stops at a key whose slot needs a look. The lane runs
commands until the first one it does not handle, and that one takes the Python path with all
of its checks; so the handlers in ``commands/`` stay the single reference for what these
commands mean. Statistics (INFO commandstats, keyspace hits and misses, key counts) are updated
from what the lane reports.

Set ``LEDIS_FASTLANE=0`` in the environment to run without it (the tests compare both).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .accel import ext
from .storage.keyformat import STRING_INLINE_MAX
from .storage.picks import spop_pick

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

ALL_RAN = -1  # run(): the lane ran every command received
# The lane's commands, in the order of its op codes and of the calls it reports.
LANE_COMMANDS = (
    b"get", b"set", b"incr", b"decr", b"mset", b"hset", b"sadd", b"lpush", b"rpush", b"lpop",
    b"rpop", b"zadd", b"lrange", b"zpopmin", b"zpopmax", b"spop",
)  # fmt: skip


class FastLane:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.on = ext is not None
        entries = server.dispatcher.entries
        # The commands of the lane, in the order of its op codes (1 = GET ...).
        self._entries = tuple(entries[name] for name in (b"get", *LANE_COMMANDS))
        engine = server.engine
        # What _fastlane.take reads run()'s arguments from (objects kept for the server's life;
        # Client's data_received in C takes it too).
        self.ctx = (
            engine,
            server.keyspace,
            server.gate,
            engine.load,
            self._entries,
            STRING_INLINE_MAX,  # longer values are chunked strings: the Python path's
            server.gate.slots,
            engine.ranges,
            engine.first,  # ZPOPMIN/ZPOPMAX's seek
            partial(spop_pick, engine),  # SPOP's pick
        )

    def run(self, client: Client, deadline: float) -> int:
        """Run what the lane can of the client's unparsed commands, when it may, until
        ``deadline`` (time.monotonic()): ALL_RAN when that was everything received, else
        whether it ran any."""
        parser = client.parser
        view = parser.unparsed()
        if view is None:
            return 0
        buf, pos = view
        if pos >= len(buf):
            return ALL_RAN  # nothing left to run
        if not (self.on and self.server.gate.lane_open(client)):
            return 0
        new_pos = self.take(client, buf, pos, deadline)
        if new_pos == pos:
            return 0
        parser.consumed(new_pos)
        return ALL_RAN if new_pos >= len(buf) else 1

    def take(self, client: Client, buf: bytes, pos: int, deadline: float) -> int:
        """Run the commands of ``buf`` from ``pos`` that the lane can, until ``deadline``,
        for a client the gate lets it serve (``Gate.lane_open``); their replies go to the
        client's output and their statistics where the Python path puts its own (commandstats,
        hits and misses, key counts, the client's last command; all of it in C:
        ``_fastlane.take``). Returns where the lane stopped (``pos`` when it ran nothing)."""
        assert ext is not None  # self.on
        return ext.take(self.ctx, client, buf, pos, deadline)
