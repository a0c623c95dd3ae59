"""The fast lane: plain GET, SET, INCR, DECR and MSET, HSET, SADD, LPUSH, RPUSH, LPOP, RPOP
and ZADD on an existing collection, and LRANGE inside a window the Python path kept
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

import time
from typing import TYPE_CHECKING

from .accel import ext
from .storage.keyformat import STRING_INLINE_MAX

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

ALL_RAN = -1  # run(): the lane ran every command received
# The lane's commands, in the order of its op codes and of the calls it reports.
LANE_COMMANDS = (
    b"get", b"set", b"incr", b"decr", b"mset", b"hset", b"sadd", b"lpush", b"rpush", b"lpop",
    b"rpop", b"zadd", b"lrange",
)  # fmt: skip
READS = (LANE_COMMANDS.index(b"get"), LANE_COMMANDS.index(b"lrange"))  # in the calls reported


class FastLane:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.on = ext is not None
        entries = server.dispatcher.entries
        # The commands of the lane, in the order of its op codes (1 = GET ...).
        self._entries = [entries[name] for name in (b"get", *LANE_COMMANDS)]

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
        client's output and their statistics where the Python path puts its own. Returns
        where the lane stopped (``pos`` when it ran nothing)."""
        assert ext is not None  # self.on
        if not ext.leads(buf, pos):  # not one of the lane's commands: no need to ask
            return pos
        server = self.server
        gate = server.gate
        ks = server.keyspace
        engine = server.engine
        db = client.db
        start = time.perf_counter_ns()
        replies, new_pos, calls, hits, misses, new_keys, last, unwritten = ext.run(
            buf,
            pos,
            db.prefix,
            engine.cache,
            engine.cache_old,
            engine.pending,
            ks.access,
            ks.clock,
            ks.waited_keys,
            gate.writes_ok,
            client.resp3,
            STRING_INLINE_MAX,  # longer values are chunked strings: the Python path's
            engine.load,
            deadline,
            gate.slots,
            engine.inflight,
            engine.floors,
            engine.ceilings,
            engine.ranges.entries,
        )
        if len(engine.cache) > engine.cache_entries >> 1:
            engine.rotate_cache()
        if not last:
            return pos
        elapsed_ns = time.perf_counter_ns() - start
        elapsed_us = elapsed_ns // 1000
        client.out.append(replies)
        client.out_bytes += len(replies)
        ran = sum(calls)
        client.held_replies += ran
        client.last_command = self._entries[last].name
        if hits or misses:
            ks.hits += hits
            ks.misses += misses
        bucket = ((elapsed_ns // ran) >> 10).bit_length()  # latency.py: each at the average
        if calls[last - 1] == ran:  # the usual pipeline: one command throughout
            entry = self._entries[last]
            entry.calls += ran
            entry.usec += elapsed_us
            entry.histogram[bucket] += ran
        else:
            for entry, n in zip(self._entries[1:], calls, strict=True):
                if n:
                    entry.calls += n
                    entry.usec += elapsed_us * n // ran
                    entry.histogram[bucket] += n
        if unwritten:
            client.unclean = True  # its GETs read what is not written yet: the reply waits
        if ran != calls[READS[0]] + calls[READS[1]]:  # writes
            client.wrote = True
            if new_keys:
                ks.count(db.phys, new_keys, 0)
        return new_pos
