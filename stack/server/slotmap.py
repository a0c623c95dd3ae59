"""What a node knows of the cluster, and the one check that applies it to every command.

Whoever changes the topology pushes each master its slot map (``SLOTSMAP SET <epoch> <json>``,
docs/cluster.md "What a node knows"). The map is kept on disk (the system record ``0x00 'P'``,
docs/storage-format.md), written through the normal batch and binlog, so a restart keeps it
and the replicas get it from their master with everything else. An older epoch is refused.

``Slots.check`` is the gate's ``key_check`` (gate.py, the one place that decides for the C
lane and the Python path). The gate's slot bytes say which slots need it: every slot the map
does not give this node as plain "online", and every slot with a key held by a migration;
the others are served by the lane and the Python path without a look (with a map, the lane
still stops at an MSET across slots, and the gate calls the check for keys of several
slots). When called, it decides as Redis Cluster's ``getNodeByQuery`` does:

- keys of several slots: ``-CROSSSLOT``;
- a slot the node does not serve: ``-MOVED <slot> <host>:<port>`` (the owner's master), or
  ``-CLUSTERDOWN Hash slot not served`` for an unassigned slot;
- a slot migrating out: a command whose keys are all here runs; one missing a key gets
  ``-ASK <slot> <target>`` (new keys are created at the target);
- a slot migrating in: served only right after ``ASKING``; several keys with one missing get
  ``-TRYAGAIN``;
- a key on its way to another node (a migration holds it, ``lock``): the command waits until
  the move ends, then runs again (and so meets the rules above: the key is gone, -ASK).

Inside MULTI each command is checked as it is queued, and EXEC checks them all together (one
slot, every key where it must be), waiting for held keys before any of them runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import encode_error
from stack.core.slots import SLOT_COUNT, key_slot

from .blocking import Waiting
from .gate import CHECK, ONE_SLOT, SERVED, Verdict
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .client import Client
    from .dispatch import Entry
    from .server import Server

log = logging.getLogger(__name__)

MAX_MAP_BYTES = 4 * 1024 * 1024  # 16384 one-slot ranges take about 1 MB
MAP_VERSION = 1
_STATES = ("online", "migrating", "unassigned")
_KEEP_ASKING = frozenset({"asking", "multi"})


class MapError(ValueError):
    """A slot map that does not fit the layout; the message says where."""


@dataclass(frozen=True)
class NodeMap:
    """One node's slot map: who owns each slot, where it migrates, and the masters'
    addresses. ``group`` is the group this node belongs to."""

    epoch: int
    group: int
    owners: array[int]  # slot -> owning group (0: unassigned)
    targets: array[int]  # slot -> the group it migrates to (0: none)
    addrs: Mapping[int, str]
    raw: bytes  # the document as stored (canonical JSON)
    plain: bytes  # slot -> ONE_SLOT where this node serves it with no look, else CHECK

    @classmethod
    def parse(cls, epoch: int, raw: bytes) -> NodeMap:
        """The map in ``raw`` (docs/cluster.md), checked field by field; MapError says why."""
        if len(raw) > MAX_MAP_BYTES:
            raise MapError(f"the document is larger than {MAX_MAP_BYTES} bytes")
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise MapError(f"not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise MapError("expected a JSON object")
        version = doc.get("v", MAP_VERSION)
        if version != MAP_VERSION:
            raise MapError(f"field 'v': version {version!r} is not {MAP_VERSION}")
        if doc.get("epoch", epoch) != epoch:
            raise MapError(f"field 'epoch': {doc.get('epoch')!r} is not the epoch given ({epoch})")
        group = _int(doc, "group", 1)
        raw_groups = doc.get("groups")
        if not isinstance(raw_groups, dict) or not raw_groups:
            raise MapError("field 'groups': expected an object of group id -> 'host:port'")
        addrs: dict[int, str] = {}
        for gid, addr in raw_groups.items():
            if not (isinstance(gid, str) and gid.isdigit() and int(gid) >= 1):
                raise MapError(f"field 'groups': {gid!r} is not a group id")
            if not _is_addr(addr):
                raise MapError(f"field 'groups': group {gid}: expected 'host:port', got {addr!r}")
            addrs[int(gid)] = addr
        if group not in addrs:
            raise MapError(f"field 'group': group {group} is not in 'groups'")
        ranges = doc.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise MapError("field 'ranges': expected a non-empty list")
        owners = array("i", [0]) * SLOT_COUNT
        targets = array("i", [0]) * SLOT_COUNT
        plain = bytearray(SLOT_COUNT)  # CHECK (0) throughout
        expect = 0
        for i, r in enumerate(ranges):
            where = f"ranges[{i}]"
            if not isinstance(r, dict):
                raise MapError(f"{where}: expected an object")
            lo, hi = _int(r, "from", 0, where), _int(r, "to", 0, where)
            if lo != expect or hi < lo or hi >= SLOT_COUNT:
                raise MapError(f"{where}: {lo}-{hi} does not continue from slot {expect}")
            state = r.get("state")
            if state not in _STATES:
                raise MapError(f"{where}: state {state!r} is not one of {', '.join(_STATES)}")
            owner = r.get("group")
            target = r.get("target")
            if state == "unassigned":
                if owner is not None or target is not None:
                    raise MapError(f"{where}: an unassigned range names a group")
            else:
                owner = _int(r, "group", 1, where)
                if owner not in addrs:
                    raise MapError(f"{where}: group {owner} is not in 'groups'")
                if state == "migrating":
                    target = _int(r, "target", 1, where)
                    if target not in addrs or target == owner:
                        raise MapError(f"{where}: target {target} is not another known group")
                elif target is not None:
                    raise MapError(f"{where}: only a migrating range has a target")
                n = hi - lo + 1
                owners[lo : hi + 1] = array("i", [owner]) * n
                if target:
                    targets[lo : hi + 1] = array("i", [target]) * n
                elif owner == group:
                    plain[lo : hi + 1] = bytes([ONE_SLOT]) * n
            expect = hi + 1
        if expect != SLOT_COUNT:
            raise MapError(f"field 'ranges': slots {expect}-{SLOT_COUNT - 1} are not covered")
        canonical = json.dumps(
            {"v": MAP_VERSION, "epoch": epoch, **{k: v for k, v in doc.items() if k != "v"}},
            separators=(",", ":"),
        ).encode()
        return cls(epoch, group, owners, targets, addrs, canonical, bytes(plain))

    def serves(self, slot: int) -> bool:
        return self.owners[slot] == self.group


def _int(doc: dict[str, object], name: str, low: int, where: str = "") -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        prefix = f"{where}: " if where else ""
        raise MapError(f"{prefix}field {name!r}: expected an integer >= {low}, got {value!r}")
    return value


def _is_addr(text: object) -> bool:
    if not isinstance(text, str) or len(text) > 300:
        return False
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def encode_stored(epoch: int, raw: bytes) -> bytes:
    """The system record: the epoch (u64) then the document."""
    return kf.U64.pack(epoch) + raw


class Slots:
    """The node's slot map and the keys migrations hold (see the module's description)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.map: NodeMap | None = None
        # metadata key -> a future done when the migration moving it ends (moved or not),
        # made when a command first waits for it
        self.locked: dict[bytes, asyncio.Future[None] | None] = {}
        self._held_in: dict[int, int] = {}  # slot -> how many of its keys are held
        self.redirects = 0  # MOVED / ASK / TRYAGAIN / CLUSTERDOWN / CROSSSLOT answered
        self.waits = 0  # commands that waited for a key on its way
        server.gate.key_check = self.check
        self.load()
        server.keyspace.on_reload.append(self.load)

    # -- the map --------------------------------------------------------------------------

    def load(self) -> None:
        """Read the map from the store (at start, and when a replica applied its master's)."""
        raw = self.server.engine.get(kf.SYS_SLOT_MAP)
        if raw is None:
            self.map = None
        elif self.map is None or raw[8:] != self.map.raw:
            try:
                self.map = NodeMap.parse(kf.U64.unpack_from(raw, 0)[0], raw[8:])
            except MapError as e:  # written by a server that checked it: not expected
                log.error("the stored slot map cannot be read (%s); serving without one", e)
                self.map = None
        self._update()

    def set(self, epoch: int, raw: bytes) -> None:
        """SLOTSMAP SET: MapError for a bad document, ValueError for a stale epoch."""
        new = NodeMap.parse(epoch, raw)
        if self.map is not None and epoch < self.map.epoch:
            raise ValueError(errors.stale_slot_map(epoch, self.map.epoch))
        self.server.engine.put(kf.SYS_SLOT_MAP, encode_stored(epoch, new.raw))
        self.map = new
        self._update()
        self._redirect_blocked()
        log.info("slot map of epoch %d: group %d serves %d slots", epoch, new.group,
                 new.owners.count(new.group))  # fmt: skip

    def reset(self) -> None:
        if self.map is not None:
            self.server.engine.delete(kf.SYS_SLOT_MAP)
            self.map = None
            log.info("slot map forgotten: serving every key")
        self._update()

    def _plain(self, slot: int) -> bool:
        """Whether the map lets this node serve ``slot`` with no look (or there is no map)."""
        m = self.map
        return m is None or (m.owners[slot] == m.group and not m.targets[slot])

    def _update(self) -> None:
        """The gate's slot bytes from the map and the held keys."""
        m = self.map
        table = bytearray([SERVED]) * SLOT_COUNT if m is None else bytearray(m.plain)
        for slot in self._held_in:
            table[slot] = CHECK
        self.server.gate.set_all(table, one_slot=m is not None)

    # -- keys held by migrations ----------------------------------------------------------

    def lock(self, mkey: bytes) -> None:
        self.locked[mkey] = None
        slot = kf.slot_of_meta_key(mkey)
        n = self._held_in.get(slot, 0)
        self._held_in[slot] = n + 1
        if not n:
            self.server.gate.set_slots([slot], False)

    def unlock(self, mkey: bytes) -> None:
        if mkey not in self.locked:
            return
        fut = self.locked.pop(mkey)
        if fut is not None and not fut.done():
            fut.set_result(None)
        slot = kf.slot_of_meta_key(mkey)
        n = self._held_in.pop(slot, 1) - 1
        if n:
            self._held_in[slot] = n
        elif self._plain(slot):
            self.server.gate.set_slots([slot], True)

    def released(self, mkey: bytes) -> asyncio.Future[None] | None:
        """A future done when the held key ``mkey`` is released (None: it is not held)."""
        if mkey not in self.locked:
            return None
        fut = self.locked[mkey]
        if fut is None:
            fut = self.locked[mkey] = asyncio.get_running_loop().create_future()
        return fut

    # -- the gate -------------------------------------------------------------------------

    def check(self, client: Client, entry: Entry, keys: list[bytes]) -> Verdict:
        """May this command run now (see the module's description)? The gate calls it with
        the command's keys (EXEC: those of the queued commands)."""
        name = entry.name
        asking = client.asking
        if asking and (name == "exec" or (client.multi is None and name not in _KEEP_ASKING)):
            client.asking = False  # ASKING lasts one command (or one transaction)
        if client.in_exec:
            return None  # EXEC checked its commands together
        queueing = client.multi is not None and name != "exec"
        if not keys:
            return None
        m = self.map
        if m is not None:
            verdict = self._route(client, m, keys, asking or "asking" in entry.spec.flags)
            if verdict is not None:
                self.redirects += 1
                return verdict
        if self.locked and not queueing:
            meta_key = client.db.meta_key
            for key in keys:
                fut = self.released(meta_key(key))
                if fut is not None:
                    self.waits += 1
                    return fut
        return None

    def refusal(self, client: Client, keys: list[bytes]) -> str | None:
        """What the map says of ``keys`` used now (a command a script calls): None when this
        node serves them, else the redirection a client would get."""
        m = self.map
        return None if m is None else self._route(client, m, keys, client.asking)

    def _route(self, client: Client, m: NodeMap, keys: list[bytes], asking: bool) -> str | None:
        """The rules of a map for a command's keys (``asking``: it may use a slot migrating
        here)."""
        slot = key_slot(keys[0])
        owner = m.owners[slot]
        if not owner:  # Redis Cluster looks at the first key's slot before the others'
            return errors.SLOT_UNASSIGNED
        for key in keys[1:]:
            if key_slot(key) != slot:
                return errors.CROSSSLOT
        if owner == m.group:
            target = m.targets[slot]
            if target and any(client.db.read(k)[1] is None for k in keys):
                return errors.ask(slot, m.addrs[target])
            return None
        if m.targets[slot] == m.group and asking:
            if len(keys) > 1 and any(client.db.read(k)[1] is None for k in keys):
                return errors.TRYAGAIN
            return None
        return errors.moved(slot, m.addrs[owner])

    def _redirect_blocked(self) -> None:
        """After a map change, clients blocked on keys the node no longer serves (or that
        migrate away) get the redirection now, as Redis Cluster unblocks them, instead of
        waiting for a push that will happen elsewhere."""
        server = self.server
        m = self.map
        if m is None:
            return
        for c in list(server.clients.values()):
            waiting = c.blocked
            if not isinstance(waiting, Waiting) or c.multi is not None or not waiting.keys:
                continue
            verdict = self._route(c, m, waiting.keys, False)
            if verdict is not None:
                server.waiters.drop(c)
                c.resume_with(encode_error(verdict))

    # -- introspection --------------------------------------------------------------------

    def info(self) -> list[tuple[str, object]]:
        m = self.map
        served = migrating_out = migrating_in = 0
        if m is not None:
            for owner, target in zip(m.owners, m.targets, strict=True):
                if owner == m.group:
                    served += 1
                    migrating_out += bool(target)
                elif target == m.group:
                    migrating_in += 1
        return [
            ("ledis_slot_map_epoch", m.epoch if m else 0),
            ("ledis_slot_map_group", m.group if m else 0),
            ("ledis_slots_served", served),
            ("ledis_slots_migrating_out", migrating_out),
            ("ledis_slots_migrating_in", migrating_in),
            ("ledis_slot_redirects", self.redirects),
            ("ledis_keys_held_by_migrations", len(self.locked)),
            ("ledis_commands_waited_for_migrations", self.waits),
        ]
