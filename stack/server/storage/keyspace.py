"""Logical databases over the engine: metadata records, expiry, counters, flush and reclaim.

A ``Database`` is one logical database (SELECT n). It points at a physical database id, so
SWAPDB swaps two pointers and FLUSHDB points at a fresh id while the old one is reclaimed in the
background. All mutations go through ``Keyspace`` so that the key counters, the expiry index and
the queue of stale collection members stay consistent with the metadata, in the same batch.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from stack.core.slots import SLOT_COUNT, key_slot

from ..accel import ext
from . import keyformat as kf
from .engine import Engine

log = logging.getLogger(__name__)

SLOT_BYTES = kf.SLOT_BYTES
U32 = kf.U32
U64 = kf.U64
TTL = kf.TTL_FLAG
TYPE_MASK = kf.TYPE_MASK
_ACCESS_CAP = 100_000
_CURSOR_CAP = 10_000
RECLAIM_CHUNK = 1000
READ_MANY_MIN = 8  # keys from which Database.read_many looks them up by one range scan
READ_MANY_SPAN = 2  # records per key that scan examines before it gives up


INT64_MAX_MS = 2**63 - 1


def now_ms() -> int:
    return int(time.time() * 1000)


# WATCH records each key's expiry time as it saw it (0: none), or this when there was no key.
WATCHED_MISSING = -1


class Watcher(Protocol):
    """What WATCH needs of a client: its watched metadata keys (with the key's expiry when it
    was watched, or WATCHED_MISSING) and whether one of them has changed since."""

    watched: dict[bytes, int]
    watch_broken: bool


class WrongType(Exception):
    """The key holds another type (``-WRONGTYPE``)."""


record_expire = kf.expire_of


class Database:
    """One logical database."""

    __slots__ = ("index", "ks", "phys", "prefix")

    def __init__(self, ks: Keyspace, index: int, phys: int) -> None:
        self.ks = ks
        self.index = index
        self.phys = phys
        self.prefix = kf.meta_prefix(phys)

    def repoint(self, phys: int) -> None:
        self.phys = phys
        self.prefix = kf.meta_prefix(phys)

    def meta_key(self, key: bytes) -> bytes:
        return self.prefix + kf.SLOT_BYTES[key_slot(key)] + key

    def read(self, key: bytes) -> tuple[bytes, bytes | None]:
        """The metadata key and live record of ``key`` (None if missing or expired).

        This is the hot path of every command: the access time is the keyspace's coarse clock
        (set once per received chunk).
        """
        mkey = self.prefix + SLOT_BYTES[key_slot(key)] + key
        ks = self.ks
        rec = ks.engine.get(mkey)
        if rec is not None:
            if rec[0] & TTL and U64.unpack_from(rec, 1)[0] <= now_ms():
                if not ks.replica:  # a replica hides it; the master's delete will come
                    ks.expire_now(mkey, rec)
                return mkey, None
            ks.access[mkey] = ks.clock
        return mkey, rec

    def read_many(self, keys: list[bytes]) -> list[tuple[bytes, bytes | None]]:
        """``read`` of each of ``keys``, for a command that then writes each of them once
        (SLOTSRESTORE). Distinct keys whose metadata keys come in increasing order (what a
        slot migration sends: keys of one slot, in key order) are looked up together, by
        one range scan over them, instead of one point read each, which for keys not there
        (the usual case on a migration's target) goes down every level of LevelDB; the scan
        stops after READ_MANY_SPAN records per key (a range with other keys between them),
        and those keys are read one by one."""
        mkeys = [self.meta_key(k) for k in keys]
        if len(mkeys) < READ_MANY_MIN or any(a >= b for a, b in itertools.pairwise(mkeys)):
            return [self.read(k) for k in keys]
        budget = READ_MANY_SPAN * len(mkeys)
        there: set[bytes] = set()
        for n, mkey in enumerate(self.ks.engine.scan_keys(mkeys[0], mkeys[-1] + b"\x00"), 1):
            if n > budget:
                return [self.read(k) for k in keys]
            there.add(mkey)
        # a key there is read as ``read`` reads it (its expiry, its access time)
        return [self.read(k) if m in there else (m, None) for k, m in zip(keys, mkeys, strict=True)]

    def lookup(self, key: bytes) -> bytes | None:
        """The live record of ``key`` for a read command (counts keyspace hits and misses)."""
        mkey, rec = self.read(key)
        if rec is None:
            self.ks.miss(mkey)
        else:
            self.ks.hits += 1
        return rec

    def lookup_string(self, key: bytes) -> bytes | None:
        """The value of a string key for a read command; WrongType for other types. (A
        chunked string is read whole: commands that need only a part use StoredString.)"""
        mkey, rec = self.read(key)
        ks = self.ks
        if rec is None:
            ks.miss(mkey)
            return None
        ks.hits += 1
        if rec[0] & TYPE_MASK != kf.TYPE_STRING:
            if rec[0] & TYPE_MASK == kf.TYPE_CHUNKED:
                from .strings import StoredString

                return StoredString(ks, mkey, rec).whole()
            raise WrongType()
        return rec[9:] if rec[0] & TTL else rec[1:]

    def size(self) -> int:
        return self.ks.counts[self.phys][0]

    def expires(self) -> int:
        return self.ks.counts[self.phys][1]


class AccessMap(Protocol):
    """What OBJECT IDLETIME's bookkeeping needs: a dict, or the C extension's AccessTimes."""

    def __setitem__(self, key: bytes, value: float) -> None: ...
    def __len__(self) -> int: ...
    def get(self, key: bytes, default: float | None = None, /) -> float | None: ...
    def pop(self, key: bytes, default: float | None = None, /) -> float | None: ...


class Keyspace:
    """All logical databases of one server, and the bookkeeping shared by them."""

    def __init__(self, engine: Engine, databases: int) -> None:
        self.engine = engine
        # Last access time (monotonic) per metadata key, for OBJECT IDLETIME: the C table
        # (bounded, keeps the most recently used ~1M keys) or a dict trimmed by the cron.
        self.access: AccessMap = ext.AccessTimes() if ext is not None else {}
        self.expired_keys = 0
        self.hits = 0
        self.clock = time.monotonic()  # coarse access clock, updated per received chunk
        self.misses = 0
        # Inline strings last written in place (APPEND, SETRANGE, SETBIT, BITFIELD; see
        # ``strings.write_at``): metadata key -> hash of the record so written. Redis keeps such
        # a value "raw" (OBJECT ENCODING) until another replaces it; in memory only, as Redis's
        # encoding is (a restart or reload reports int/embstr again). A write through ``write``
        # drops the mark; the C lane's SET/INCR never come here but change the record, so a
        # mark counts only while the record is still the one it was made for.
        self.raw_strings: dict[bytes, int] = {}
        self.on_expire: list[Callable[[bytes], None]] = []
        # Keyspace notifications (notifications.py): whether any class is on (the fast lane
        # then stays off), and the hooks announcing a key created and a read that missed.
        self.track_changes = False
        self.on_new: Callable[[bytes], None] | None = None
        self.on_miss: Callable[[bytes], None] | None = None
        # Called after ``reload`` (a replica applied system records, a batch failed): what is
        # kept in memory from system records (the slot map) is read again.
        self.on_reload: list[Callable[[], None]] = []
        # WATCH: metadata key -> the clients watching it (see ``touch``).
        self.watchers: dict[bytes, set[Watcher]] = {}
        # Blocking pops: keys clients wait on (owned by server.Waiters), and those created
        # since they were last served, in the order they were created (Redis's ready list).
        self.waited_keys: dict[bytes, Any] = {}
        self.ready_keys: dict[bytes, None] = {}
        # CLIENT TRACKING (tracking.py): told of every key written or deleted, while set.
        self.on_modified: Callable[[bytes], None] | None = None
        self.replica = False  # replicas change nothing themselves: expiry comes from the master
        self._cursors: dict[int, tuple[bytes, bytes]] = {}
        self._cursor_seq = 0
        self._reclaim_from: dict[bytes, bytes] = {}  # range being reclaimed -> resume key
        self._expire_from = kf.NS_EXPIRE  # expiry index entries before this are done
        self._dirty_counts: set[int] = set()
        self.counts: dict[int, list[int]] = {}
        self.dropped: list[int] = []
        self.dbs: list[Database] = []
        self._version = 0
        self._version_dirty = False
        engine.before_commit.append(self._write_counts)
        engine.on_failure.append(lambda _error: self.reload())
        self._load(databases)

    # -- the db map ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the bookkeeping kept in memory from the store (after a replica applied
        master batches, or a batch could not be written: key counts, the database map, what
        waits to be reclaimed, where the sweeps stand)."""
        self._expire_from = kf.NS_EXPIRE
        self._reclaim_from.clear()
        self.counts.clear()
        self._dirty_counts.clear()
        self.raw_strings.clear()
        self._load(len(self.dbs), persist=False)
        for hook in self.on_reload:
            hook()

    def become_primary(self) -> None:
        """A replica promoted: it expires keys itself from now on, from the start of the index
        (its entries came in the master's batches, not through ``write``)."""
        self.replica = False
        self._expire_from = kf.NS_EXPIRE

    def _load(self, databases: int, persist: bool = True) -> None:
        eng = self.engine
        raw_map = eng.get(kf.SYS_DB_MAP) or b""
        phys_ids = [U32.unpack_from(raw_map, i)[0] for i in range(0, len(raw_map), 4)]
        raw_next = eng.get(kf.SYS_NEXT_DB)
        self._next_phys = U32.unpack(raw_next)[0] if raw_next else 0
        raw_version = eng.get(kf.SYS_VERSION_COUNTER)
        self._version = max(self._version, kf.U64.unpack(raw_version)[0] if raw_version else 0)
        for k, v in eng.scan(kf.SYS_COUNTS, kf.prefix_end(kf.SYS_COUNTS)):
            keys, expires = kf.COUNTS.unpack(v)
            self.counts[U32.unpack_from(k, 2)[0]] = [keys, expires]
        self.dropped = [
            U32.unpack_from(k, 2)[0]
            for k in eng.scan_keys(kf.SYS_DROPPED, kf.prefix_end(kf.SYS_DROPPED))
        ]
        if len(phys_ids) > databases:
            extra = phys_ids[databases:]
            if any(self.counts.get(p, [0])[0] for p in extra):
                log.warning(
                    "data dir has %d databases with keys beyond the configured %d; they are "
                    "kept on disk but not reachable until 'databases' is raised",
                    len(extra),
                    databases,
                )
        grew = len(phys_ids) < databases
        while len(phys_ids) < databases:
            phys_ids.append(self._allocate_phys())
        if self.dbs and len(self.dbs) == databases:  # keep the objects clients point at
            for db, phys in zip(self.dbs, phys_ids, strict=False):
                db.repoint(phys)
        else:
            self.dbs = [Database(self, i, p) for i, p in enumerate(phys_ids[:databases])]
        self._all_phys = phys_ids
        for p in phys_ids:
            self.counts.setdefault(p, [0, 0])
        if grew and persist:  # a new data dir, or more databases than before: record the map
            self._write_map()
            eng.commit()
        self._dirty_counts.clear()

    def _allocate_phys(self) -> int:
        phys = self._next_phys
        self._next_phys += 1
        self.engine.put(kf.SYS_NEXT_DB, U32.pack(self._next_phys))
        self.counts[phys] = [0, 0]
        self._dirty_counts.add(phys)
        return phys

    def _write_map(self) -> None:
        for db in self.dbs:
            self._all_phys[db.index] = db.phys
        self.engine.put(kf.SYS_DB_MAP, b"".join(U32.pack(p) for p in self._all_phys))

    def new_version(self) -> int:
        """A collection version never used before (time-based, monotonic, persisted)."""
        self._version = max(self._version + 1, time.time_ns() // 1000)
        self._version_dirty = True
        return self._version

    def _write_counts(self) -> None:
        if self._version_dirty:
            self.engine.put(kf.SYS_VERSION_COUNTER, kf.U64.pack(self._version))
            self._version_dirty = False
        if self._dirty_counts:
            put = self.engine.put
            for phys in self._dirty_counts:
                c = self.counts.get(phys)
                if c is not None:
                    put(kf.counts_key(phys), kf.COUNTS.pack(c[0], c[1]))
            self._dirty_counts.clear()

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: two logical databases exchange their data. Clients stay in their logical
        database: what they watch or wait on is the key of that name in the data it now has.
        As Redis 7.0 does, a watched key that exists (live) on either side counts as changed,
        and a key someone waits on that exists after the swap is ready."""
        da, db = self.dbs[a], self.dbs[b]
        pa, pb = da.phys, db.phys
        self._touch_swapped(pa, pb)
        self._touch_swapped(pb, pa)
        da.repoint(pb)
        db.repoint(pa)
        self._write_map()
        self._follow(
            {kf.meta_prefix(pa): kf.meta_prefix(pb), kf.meta_prefix(pb): kf.meta_prefix(pa)}
        )
        for mkey in list(self.waited_keys):
            if mkey.startswith((da.prefix, db.prefix)) and self.engine.get(mkey) is not None:
                self.ready_keys[mkey] = None

    def flush(self, index: int) -> None:
        """Empty one logical database at once; the old data is reclaimed in the background.
        A watched key counts as changed only if it was there (as Redis 7.0)."""
        db = self.dbs[index]
        old = db.phys
        self._touch_swapped(old, None)
        if self.counts.get(old, [0])[0] == 0 and not self._has_any(old):
            return
        db.repoint(self._allocate_phys())
        if self.raw_strings:
            gone = kf.meta_prefix(old)
            self.raw_strings = {k: v for k, v in self.raw_strings.items() if k[:5] != gone}
        self._write_map()
        self.engine.put(kf.dropped_key(old), b"")
        self.dropped.append(old)
        self._follow({kf.meta_prefix(old): db.prefix})

    def _live_record(self, mkey: bytes) -> bool:
        rec = self.engine.get(mkey)
        return rec is not None and self._live(mkey, rec, now_ms())

    def _touch_swapped(self, phys: int, replaced_with: int | None) -> None:
        """Break the WATCH of every watched key of ``phys`` that exists there, or in the data
        that replaces it (SWAPDB; None for a flush)."""
        if not self.watchers:
            return
        prefix = kf.meta_prefix(phys)
        other = kf.meta_prefix(replaced_with) if replaced_with is not None else None
        for mkey, watching in self.watchers.items():
            if not mkey.startswith(prefix):
                continue
            if self._live_record(mkey) or (
                other is not None and self._live_record(other + mkey[len(prefix) :])
            ):
                for w in watching:
                    w.watch_broken = True

    def _follow(self, moves: dict[bytes, bytes]) -> None:
        """Clients watching or waiting on keys follow their logical database when its data is
        replaced (SWAPDB, FLUSHDB): metadata keys under an old prefix move to the new one."""
        size = len(next(iter(moves)))

        def moved(mkey: bytes) -> bytes:
            new = moves.get(mkey[:size])
            return mkey if new is None else new + mkey[size:]

        if self.watchers:
            clients = {id(w): w for watching in self.watchers.values() for w in watching}
            self.watchers = {moved(m): w for m, w in self.watchers.items()}
            for w in clients.values():  # each once: a swap applied twice would undo itself
                w.watched = {moved(m): e for m, e in w.watched.items()}
        for table in (self.waited_keys, self.ready_keys):
            if table:
                items = [(moved(m), v) for m, v in table.items()]
                table.clear()
                table.update(items)

    def _has_any(self, phys: int) -> bool:
        prefix = kf.meta_prefix(phys)
        return self.engine.first_key(prefix, kf.prefix_end(prefix)) is not None

    # -- mutations ----------------------------------------------------------------------------

    def _count(self, mkey: bytes, keys: int, expires: int) -> None:
        self.count(U32.unpack_from(mkey, 1)[0], keys, expires)

    def count(self, phys: int, keys: int, expires: int) -> None:
        """Keys (and keys with a TTL) added to a physical database, negative when removed."""
        c = self.counts[phys]
        c[0] += keys
        c[1] += expires
        self._dirty_counts.add(phys)

    def touch(self, mkey: bytes, expired: bool = False) -> None:
        """A key changed: transactions watching it must not run. (``expired``: an expired
        key was deleted, which changes nothing for those who saw no key when they watched.)"""
        watching = self.watchers.get(mkey)
        if watching:
            for w in watching:
                if not expired or w.watched.get(mkey) != WATCHED_MISSING:
                    w.watch_broken = True

    def miss(self, mkey: bytes) -> None:
        """A read command found no key (INFO keyspace_misses, the ``keymiss`` event)."""
        self.misses += 1
        if self.on_miss is not None:
            self.on_miss(mkey)

    def write(self, mkey: bytes, record: bytes, old: bytes | None) -> None:
        """Store a metadata record over ``old`` (the live record, or None: then the key is
        created, which announces ``new`` and makes it ready for clients blocked on it)."""
        if self.watchers:
            self.touch(mkey)
        if self.on_modified is not None:
            self.on_modified(mkey)
        self.access[mkey] = self.clock  # a write is an access (OBJECT IDLETIME)
        if self.raw_strings:
            self.raw_strings.pop(mkey, None)
        eng = self.engine
        new_exp = record[0] & TTL
        if old is None:
            if mkey in self.waited_keys:
                self.ready_keys[mkey] = None
            if self.on_new is not None:
                self.on_new(mkey)
            self._count(mkey, 1, 1 if new_exp else 0)
        else:
            old_exp = old[0] & TTL
            if old_exp:
                eng.delete(kf.expire_key(record_expire(old), mkey))
            if old_exp != new_exp:
                self._count(mkey, 0, 1 if new_exp else -1)
            if old[0] & TYPE_MASK != kf.TYPE_STRING and (
                record[0] & TYPE_MASK == kf.TYPE_STRING or kf.body(old)[:8] != kf.body(record)[:8]
            ):
                self._retire_members(mkey, old)  # another value replaces the collection
        if new_exp:
            ekey = kf.expire_key(record_expire(record), mkey)
            eng.put(ekey, b"")
            if ekey < self._expire_from:  # due before where the sweep stands: it goes back
                self._expire_from = ekey
        eng.put(mkey, record)

    def delete(
        self, mkey: bytes, old: bytes, members_gone: bool = False, expired: bool = False
    ) -> None:
        """Delete a key whose live record is ``old`` (``members_gone``: a collection whose
        members were all removed already, so there is nothing to reclaim; ``expired``: its
        time ran out)."""
        if self.watchers:
            self.touch(mkey, expired)
        if self.on_modified is not None:
            self.on_modified(mkey)
        eng = self.engine
        if old[0] & TTL:
            eng.delete(kf.expire_key(record_expire(old), mkey))
            self._count(mkey, -1, -1)
        else:
            self._count(mkey, -1, 0)
        if old[0] & TYPE_MASK != kf.TYPE_STRING and not members_gone:
            self._retire_members(mkey, old)
        eng.delete(mkey)
        self.access.pop(mkey, None)
        if self.raw_strings:
            self.raw_strings.pop(mkey, None)

    def set_expire(self, mkey: bytes, old: bytes, expire_ms: int) -> None:
        record = kf.with_expire(old, expire_ms)
        raw = self.is_raw_string(mkey, old)
        self.write(mkey, record, old)
        if raw:  # a TTL leaves the value (and its encoding) as it is
            self.raw_strings[mkey] = hash(record)

    def is_raw_string(self, mkey: bytes, record: bytes) -> bool:
        """Whether ``record`` (``mkey``'s live one) was last written in place (see
        ``raw_strings``)."""
        return bool(self.raw_strings) and self.raw_strings.get(mkey) == hash(record)

    def clone(self, src_mkey: bytes, record: bytes, dst_mkey: bytes) -> bytes:
        """The record for a copy of a key at ``dst_mkey`` (RENAME, COPY, MOVE)."""
        if record[0] & TYPE_MASK == kf.TYPE_STRING:
            return record
        from .collections import copy_members

        return copy_members(self, src_mkey, record, dst_mkey)

    def expire_now(self, mkey: bytes, old: bytes) -> None:
        self.delete(mkey, old, expired=True)
        self.expired_keys += 1
        for hook in self.on_expire:
            hook(mkey)

    def _retire_members(self, mkey: bytes, old: bytes) -> None:
        """Queue the sub-keys of an overwritten or deleted collection for reclaim."""
        version = kf.body(old)[:8]
        key = kf.user_key(mkey)
        self.engine.put(kf.SYS_STALE + mkey[1:7] + U32.pack(len(key)) + key + version, b"")

    # -- reads over ranges --------------------------------------------------------------------

    def _live(self, mkey: bytes, rec: bytes, now: int) -> bool:
        return not rec[0] & TTL or record_expire(rec) > now

    def iter_keys(self, db: Database) -> Iterator[tuple[bytes, bytes]]:
        """(user key, record) of every live key in a database."""
        now = now_ms()
        prefix = db.prefix
        for mkey, rec in self.engine.scan(prefix, kf.prefix_end(prefix)):
            if self._live(mkey, rec, now):
                yield mkey[7:], rec

    def iter_slot(self, db: Database, slot: int) -> Iterator[bytes]:
        """The live keys of one slot (see also slotkeys.py, which reads slots in steps)."""
        now = now_ms()
        prefix = kf.slot_prefix(db.phys, slot)
        for mkey, rec in self.engine.scan(prefix, kf.prefix_end(prefix)):
            if self._live(mkey, rec, now):
                yield mkey[7:]

    def scan(self, db: Database, cursor: int, count: int) -> tuple[int, list[tuple[bytes, bytes]]]:
        """One SCAN step: up to ``count`` records after ``cursor``; (next cursor, keys)."""
        prefix = db.prefix
        start = prefix
        if cursor:
            last = self.load_cursor(cursor, prefix)
            if last is not None:
                start = last + b"\x00"
            else:  # unknown or stale cursor: resume at its slot (duplicates are allowed)
                start = prefix + kf.SLOT_BYTES[cursor % SLOT_COUNT]
        now = now_ms()
        out: list[tuple[bytes, bytes]] = []
        last = b""
        for examined, (mkey, rec) in enumerate(self.engine.scan(start, kf.prefix_end(prefix)), 1):
            last = mkey
            if self._live(mkey, rec, now):
                out.append((mkey[7:], rec))
            if examined >= count:
                break
        else:
            return 0, out
        return self.save_cursor(prefix, last, kf.slot_of_meta_key(last)), out

    def save_cursor(self, scope: bytes, last: bytes, low_bits: int = 0) -> int:
        """A SCAN-family cursor remembering where an iteration over ``scope`` stopped.

        The low 14 bits carry ``low_bits`` (the slot for SCAN) so that a cursor this server
        no longer remembers still resumes close to where it was."""
        self._cursor_seq += 1
        cursor = (self._cursor_seq << 14) | low_bits
        self._cursors[cursor] = (scope, last)
        if len(self._cursors) > _CURSOR_CAP:
            del self._cursors[next(iter(self._cursors))]
        return cursor

    def load_cursor(self, cursor: int, scope: bytes) -> bytes | None:
        saved = self._cursors.pop(cursor, None)
        if saved is None or saved[0] != scope:
            return None
        return saved[1]

    def random_key(self, db: Database) -> bytes | None:
        prefix = db.prefix
        end = kf.prefix_end(prefix)
        now = now_ms()
        for _ in range(16):
            start = prefix + kf.SLOT_BYTES[random.randrange(16384)]
            found = None
            for mkey, rec in self.engine.scan(start, end):
                found = (mkey, rec)
                break
            if found is None:
                for mkey, rec in self.engine.scan(prefix, end):
                    found = (mkey, rec)
                    break
            if found is None:
                return None
            mkey, rec = found
            if self._live(mkey, rec, now):
                return mkey[7:]
            self.expire_now(mkey, rec)
        return None

    def trim_access(self) -> None:
        if isinstance(self.access, dict) and len(self.access) > _ACCESS_CAP:
            for k in list(self.access)[: len(self.access) // 2]:
                del self.access[k]

    # -- background work ----------------------------------------------------------------------

    def expire_step(self, budget: int, deadline: float) -> bool:
        """Expire keys whose time has come through the expiry index, resuming where the last
        step stopped, until ``budget`` entries are done or ``deadline`` (time.monotonic())
        passes; True when due entries may be left.

        The step resumes at ``_expire_from`` (every entry before it was done), so it never
        walks again over the tombstones of the entries it removed; an entry written before
        that point (a TTL already due) moves it back (``write``). Entries of databases that
        were flushed are dropped without looking at their keys, which are reclaimed with their
        database."""
        stop = kf.NS_EXPIRE + U64.pack(now_ms() + 1)
        start = self._expire_from
        if start >= stop:
            return False
        live = {U32.pack(db.phys) for db in self.dbs}
        eng = self.engine
        get, delete = eng.get, eng.delete
        forget = self.access.pop
        hooks = self.on_expire
        clock = time.monotonic
        expired: dict[bytes, int] = {}  # physical db -> keys expired (counted once, below)
        last = b""
        more = False
        for done, ekey in enumerate(eng.scan_keys(start, stop)):
            if done >= budget or (done & 63 == 63 and clock() >= deadline):
                more = True
                break
            last = ekey
            phys = ekey[9:13]
            if phys in live:
                mkey = kf.NS_META + ekey[9:]
                rec = get(mkey)
                if rec is not None and rec[0] & TTL and rec[1:9] == ekey[1:9]:
                    # What expire_now does, with the index entry at hand and counts summed.
                    if self.watchers:
                        self.touch(mkey, expired=True)
                    if rec[0] & TYPE_MASK != kf.TYPE_STRING:
                        self._retire_members(mkey, rec)
                    delete(mkey)
                    forget(mkey, None)
                    expired[phys] = expired.get(phys, 0) + 1
                    for hook in hooks:
                        hook(mkey)
            delete(ekey)  # done, or stale: the key changed, or its database was flushed
        for phys, n in expired.items():
            self.count(U32.unpack(phys)[0], -n, -n)
            self.expired_keys += n
        if last:
            self._expire_from = last + b"\x00"
        return more

    def reclaim_step(self, budget: int) -> int:
        """Reclaim up to ``budget`` records of dropped databases and retired collections."""
        eng = self.engine
        done = 0
        while self.dropped and done < budget:
            phys = self.dropped[0]
            for prefix in (kf.meta_prefix(phys), kf.sub_prefix(phys)):
                deleted, finished = self._delete_range(prefix, budget - done)
                done += deleted
                if not finished:
                    return done
            eng.delete(kf.dropped_key(phys))
            eng.delete(kf.counts_key(phys))
            self.counts.pop(phys, None)
            self.dropped.pop(0)
            eng.commit()
        for entry in list(eng.scan_keys(kf.SYS_STALE, kf.prefix_end(kf.SYS_STALE))):
            if done >= budget:
                break
            deleted, finished = self._delete_range(kf.NS_SUB + entry[2:], budget - done)
            done += deleted
            if finished:
                eng.delete(entry)
                eng.commit()
        return done

    def _delete_range(self, prefix: bytes, budget: int) -> tuple[int, bool]:
        """Delete up to ``budget`` keys under ``prefix``, resuming where the last call stopped
        (so LevelDB never re-walks the tombstones it just left); (deleted, all done).

        The resume key stays inside ``prefix``'s range, also when no budget is left (a dropped
        database's metadata used up the step's, its members come next): an empty ``last + 0``
        there once sent the next step from the start of the store, deleting the system records
        and the metadata of every database, live ones too."""
        eng = self.engine
        resume = self._reclaim_from.pop(prefix, prefix)
        deleted = 0
        for k in eng.scan_keys(resume, kf.prefix_end(prefix)):
            if deleted >= budget:
                self._reclaim_from[prefix] = resume
                eng.commit()
                return deleted, False
            eng.delete(k)
            resume = k + b"\x00"
            deleted += 1
        eng.commit()
        return deleted, True

    def reclaim_pending(self) -> tuple[int, int]:
        """(dropped databases, retired collections) still waiting to be reclaimed."""
        stale = sum(1 for _ in self.engine.scan_keys(kf.SYS_STALE, kf.prefix_end(kf.SYS_STALE)))
        return len(self.dropped), stale

    def reclaim_pending_bytes(self, sample: int = 1000) -> int:
        """LevelDB's estimate of the disk space still held by what waits to be reclaimed
        (looks at no more than ``sample`` retired collections)."""
        eng = self.engine
        total = 0
        for phys in self.dropped:
            for prefix in (kf.meta_prefix(phys), kf.sub_prefix(phys)):
                total += eng.approximate_size(prefix, kf.prefix_end(prefix))
        for n, entry in enumerate(eng.scan_keys(kf.SYS_STALE, kf.prefix_end(kf.SYS_STALE))):
            if n >= sample:
                break
            members = kf.NS_SUB + entry[2:]
            total += eng.approximate_size(members, kf.prefix_end(members))
        return total
