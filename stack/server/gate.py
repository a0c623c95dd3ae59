"""The gate: the one place that decides whether a command may run on this node, and whether
the C fast lane may run it.

Both paths consult it, so a rule is written once:

* ``lane_open(client)``: whether the lane may run commands for this client at all (a
  transaction, a subscription, WATCH, keyspace notifications, CLIENT PAUSE, a slow-log
  threshold the lane could not honour, not authenticated, a user not allowed everything
  ...); otherwise everything takes the
  Python path, which applies every rule itself.
* ``writes_ok``: whether writes may run without a look at the replicas or the role (not a
  replica, no semi-sync): the lane runs writes only then, and the Python path refuses them
  with ``write_refusal`` when not.
* Per key: ``slots`` is a map of 16384 bytes, one per Redis Cluster slot; a non-zero byte
  means the node serves that slot without a further look. The lane stops at a key whose slot
  byte is 0 (it computes the slot of every key anyway), and the Python path then asks
  ``key_refusal``, which calls ``key_check`` (slot ownership, epoch fencing, a key locked by a
  migration: the cluster's rules plug in there) for each key of the command whose slot needs
  it. Until a check is installed every slot is served, and the Python path does no per-key
  work at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands.keyspec import keys_of
from stack.core.slots import SLOT_COUNT, key_slot

if TYPE_CHECKING:
    from .client import Client
    from .dispatch import Entry
    from .server import Server

# A slow-log or latency threshold below this (µs) could be crossed by a command in the lane,
# which does not time commands one by one: then everything takes the Python path.
MIN_WATCH_US = 1000

# key_check(client, entry, key, slot): the error message refusing the command, or None.
KeyCheck = Callable[["Client", "Entry", bytes, int], "str | None"]

SERVED = 1  # a slot byte: served here, no further look
CHECK = 0  # a slot byte: each key of it goes through key_check (the lane leaves it alone)


class Gate:
    def __init__(self, server: Server) -> None:
        self.server = server
        # One byte per slot, shared with the lane (passed to it as it is; never replaced).
        self.slots = bytearray([SERVED]) * SLOT_COUNT
        self.key_check: KeyCheck | None = None
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
        )

    @property
    def writes_ok(self) -> bool:
        """Writes may run with no look at the role or the replicas (the lane's writes)."""
        server = self.server
        return not server.read_only and not server.semi_sync

    def write_refusal(self, client: Client, entry: Entry) -> str | None:
        """Why a write (or EXEC) may not run now, as Redis words it; None when it may. Only
        called for writes and EXEC when ``writes_ok`` is false."""
        server = self.server
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
        if entry.name != "exec":
            return True
        lookup = server.dispatcher.lookup
        return any((e := lookup(a)) is not None and e.write for a in client.multi or [])

    # -- per key --------------------------------------------------------------------------------

    @property
    def checks_keys(self) -> bool:
        """Whether any slot needs a per-key look (the Python path skips it otherwise)."""
        return self._checked > 0 and self.key_check is not None

    def set_slots(self, slots: range | list[int], served: bool) -> None:
        """Mark slots as served here without a look, or as needing ``key_check``."""
        value = SERVED if served else CHECK
        for s in slots:
            self.slots[s] = value
        self._checked = SLOT_COUNT - sum(self.slots)

    def key_refusal(self, client: Client, entry: Entry, args: list[bytes]) -> str | None:
        """The first refusal ``key_check`` gives for a key of this command in a slot that
        needs a look; None when every key may be used here."""
        check = self.key_check
        if check is None:
            return None
        slots = self.slots
        for ref in keys_of(entry.spec, args):
            key = args[ref.pos]
            slot = key_slot(key)
            if slots[slot] == CHECK:
                refusal = check(client, entry, key, slot)
                if refusal is not None:
                    return refusal
        return None
