"""The gate: the one place that decides whether a command may run on this node, and whether
the C fast lane may run it.

Both paths consult it, so a rule is written once:

* ``lane_open(client)``: whether the lane may run commands for this client at all (a
  transaction, a subscription, WATCH, keyspace notifications, CLIENT PAUSE, a slow-log
  threshold the lane could not honour, not authenticated, a user not allowed everything, a
  MONITOR, CLIENT TRACKING or CLIENT REPLY in use ...); otherwise everything takes the
  Python path, which applies every rule itself.
* ``plain(client)``: whether a read from the client may go straight to the lane as it came
  (``Client.data_received``: no copy into the parser, no turn loop in Python): the lane may
  run (``lane_open``) and the client is in its plain state (nothing unparsed, queued, held
  for a later turn, held for its output or waiting for replicas; not blocked, paused or
  closing). Whatever the lane does not take goes on down the Python path.
* ``writes_ok``: whether writes may run without a look at the replicas or the role (not a
  replica, no semi-sync): the lane runs writes only then, and the Python path refuses them
  with ``write_refusal`` when not.
* Per key: ``slots`` is a map of 16384 bytes, one per Redis Cluster slot; a non-zero byte
  means the node serves that slot without a further look (``ONE_SLOT``: and a command's keys
  must all be in one slot, as on a node with a slot map). The lane stops at a key whose slot
  byte is 0 (it computes the slot of every key anyway), and at an MSET whose keys span slots
  one of which says ONE_SLOT; the Python path then asks ``key_refusal``, which calls
  ``key_check`` (the cluster's rules: slot ownership, ASK/ASKING, a key locked by a migration;
  ``slotmap.Slots.check``) with the command's keys when one of them is in a slot that needs a
  look, when they span slots and ``one_slot`` is set, for EXEC (the keys of the queued
  commands), and for any command of a client that sent ASKING. Until a check is installed
  every slot is served, and the Python path does no per-key work at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE
from stack.core.commands.keyspec import keys_of
from stack.core.slots import SLOT_COUNT, key_slot

from .fencing import Fence

if TYPE_CHECKING:
    from .client import Client
    from .dispatch import Entry
    from .server import Server

# A slow-log or latency threshold below this (µs) could be crossed by a command in the lane,
# which does not time commands one by one: then everything takes the Python path.
MIN_WATCH_US = 1000

# What key_check says: None (run it), the error refusing it, or a future to wait for (a key
# on its way to another node: the command runs again once it is done).
Verdict = str | asyncio.Future[None] | None
# key_check(client, entry, keys): the command's keys (EXEC: those of the queued commands).
KeyCheck = Callable[["Client", "Entry", list[bytes]], Verdict]

SERVED = 1  # a slot byte: served here, no further look
ONE_SLOT = 2  # a slot byte: served here, and a command's keys must all be in one slot
CHECK = 0  # a slot byte: a command with a key in it goes through key_check (not the lane)


class Gate:
    def __init__(self, server: Server) -> None:
        self.server = server
        # One byte per slot, shared with the lane (passed to it as it is; never replaced).
        self.slots = bytearray([SERVED]) * SLOT_COUNT
        self.key_check: KeyCheck | None = None
        self.one_slot = False  # keys of several slots go through key_check (-CROSSSLOT)
        # the epoch the node serves under (NODEEPOCH, fencing.py), as stored in the data dir
        self.fence = Fence(Path(server.config["dir"]))
        self._checked = 0  # slots whose byte is CHECK

    # -- client-wide ----------------------------------------------------------------------------

    def lane_open(self, client: Client) -> bool:
        """Whether the lane may run this client's next commands (it stops at anything else)."""
        server = self.server
        ks = server.keyspace
        return (
            client.authenticated
            and client.user.open  # ACL: a restricted user's commands are checked one by one
            and client.multi is None
            and not client.channels
            and not client.patterns
            and not server.paused
            and not ks.watchers
            and not ks.track_changes
            and server.watch_us >= MIN_WATCH_US
            and not client.asking  # its next command goes through key_check
            and not server.dispatcher.observed  # MONITOR, CLIENT TRACKING / REPLY (observers.py)
        )

    def plain(self, client: Client) -> bool:
        """Whether a read from this client may go straight to the lane (see the module's
        description); the lane's own rules (``lane_open``) included."""
        return (
            self.server.lane.on
            and not client.out  # replies wait for a batch or for the socket: keep the turns
            and not client.backlogged
            and not client.queue
            and not client.held
            and client.blocked is None
            and not client.write_paused
            and not client.awaiting_acks
            and not client.close_after_reply
            and not self.server.writes_full()
            and client.parser.empty()
            and self.lane_open(client)
        )

    @property
    def writes_ok(self) -> bool:
        """Writes may run with no look at the role or the replicas (the lane's writes)."""
        server = self.server
        return not server.read_only and not server.semi_sync and not self.fence.fenced

    def write_refusal(self, client: Client, entry: Entry) -> str | None:
        """Why a write (or EXEC) may not run now, as Redis words it; None when it may. Only
        called for writes and EXEC when ``writes_ok`` is false."""
        server = self.server
        if self.fence.fenced and (entry.name != "exec" or self._queued_writes(client)):
            self.fence.refused += 1
            return errors.READONLY
        if server.semi_sync and self._unreplicated(client, entry):
            server.replication.refused_writes += 1
            return errors.NOREPLICAS
        return None

    def _unreplicated(self, client: Client, entry: Entry) -> bool:
        """Semi-sync (DESIGN.md decision 5): whether this write (or EXEC of queued writes)
        arrives while fewer good replicas are connected than ``min-replicas-to-write``: then
        it is refused before it runs, with Redis's -NOREPLICAS."""
        server = self.server
        if server.replication.enough_good_replicas():
            return False
        return entry.name != "exec" or self._queued_writes(client)

    def _queued_writes(self, client: Client) -> bool:
        lookup = self.server.dispatcher.lookup
        return any((e := lookup(a)) is not None and e.write for a in client.multi or [])

    # -- per key --------------------------------------------------------------------------------

    @property
    def checks_keys(self) -> bool:
        """Whether any command may need key_check (the Python path skips the gate otherwise)."""
        return self.key_check is not None and (self._checked > 0 or self.one_slot)

    def set_slots(self, slots: range | list[int], served: bool) -> None:
        """Mark slots as served here without a look, or as needing ``key_check``."""
        value = (ONE_SLOT if self.one_slot else SERVED) if served else CHECK
        table = self.slots
        checked = self._checked
        for s in slots:
            old = table[s]
            if old != value:
                checked += (value == CHECK) - (old == CHECK)
                table[s] = value
        self._checked = checked

    def set_all(self, table: bytes | bytearray, one_slot: bool) -> None:
        """Every slot's byte at once (SERVED, ONE_SLOT or CHECK), and whether a command's keys
        must share a slot."""
        if len(table) != SLOT_COUNT:
            raise ValueError(f"a slot table has {SLOT_COUNT} bytes, not {len(table)}")
        self.one_slot = one_slot
        self.slots[:] = table  # the same object: the lane is handed it as it is
        self._checked = table.count(CHECK)

    def key_refusal(self, client: Client, entry: Entry, args: list[bytes]) -> Verdict:
        """What ``key_check`` says of this command, when one of its keys is in a slot that
        needs a look (see the module's description); None when it may run here."""
        check = self.key_check
        if check is None:
            return None
        if entry.name == "exec":
            if client.multi is None:
                return None
            keys = [call[r.pos] for call in client.multi for r in TABLE.keys(call)]
            return check(client, entry, keys) if keys or client.asking else None
        keys = [args[r.pos] for r in keys_of(entry.spec, args)]
        if client.asking:
            return check(client, entry, keys)
        if not keys:
            return None
        slots = self.slots
        first = key_slot(keys[0])
        look = slots[first] == CHECK
        for key in keys[1:]:
            slot = key_slot(key)
            if slot != first and (self.one_slot or slots[slot] == CHECK):
                look = True
                break
        return check(client, entry, keys) if look else None
