"""The receiving side of a big key's move: parts staged under a version no metadata points to.

A key too big for one ``SLOTSRESTORE`` arrives as ``SLOTSSTAGE key token seq payload`` parts
(migrate.py sends them), each a bounded DUMP-format frame of some of its entries (or chunks).
Part 0 starts a *staging*: a fresh collection version, recorded under ``0x00 'I'`` (the same
layout as a retired version's ``0x00 'S'`` entry, docs/storage-format.md), whose members are
written as the parts come, each part one batch through the normal commit and binlog. The
last part carries ``COMMIT ttl size``: only then is the metadata record written, in that
part's batch, so the key appears whole or not at all, on this node and on its replicas.

A staging that is not finished is *retired* (its entry moves to ``0x00 'S'``, and the
background reclaimer deletes its members like any overwritten collection's): when the same
key starts again (the source retried), when no part came for ``STAGING_IDLE`` seconds (the
source is gone), and, for entries nobody in memory owns, after a restart or a promotion.

Parts are checked before anything is written: in order (``seq``), of one type, members in
strictly increasing order across all parts (so none is written twice), and the size the
COMMIT names equal to what arrived.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from stack.core import errors
from stack.core.resp import ReplyError

from .storage import dump
from .storage import keyformat as kf
from .storage.collections import LIST_ORIGIN, Meta, member_prefix, member_records
from .storage.keyspace import Database, Keyspace, now_ms
from .storage.strings import chunked_record

log = logging.getLogger(__name__)

STAGING_IDLE = 120.0  # seconds without a part before a staging is given up
MAX_TOKEN = 128
COMMITTED_KEEP = 4096  # big keys made whole remembered by token (SLOTSFORGET)


@dataclass
class Staging:
    token: bytes
    mkey: bytes
    phys: int
    version: int
    kind: int = 0  # set by the first part with entries
    seq: int = 0  # the next part expected
    count: int = 0  # entries received
    last: bytes = b""  # the last member received (hashes, sets, sorted sets, chunks)
    touched: float = 0.0

    @property
    def tail(self) -> bytes:
        return kf.version_tail(self.mkey, self.version)


class Stagings:
    """Keys arriving in parts on this node (see the module's description)."""

    def __init__(self, ks: Keyspace) -> None:
        self.ks = ks
        self.by_token: dict[bytes, Staging] = {}
        self.by_key: dict[bytes, bytes] = {}  # metadata key -> token
        # token -> (metadata key, record) of the last COMMITTED_KEEP keys made whole: what
        # SLOTSFORGET compares a big key's ``commit:<token>`` with
        self.committed: dict[bytes, tuple[bytes, bytes]] = {}
        self.parts = 0  # parts received
        self.part_entries_max = 0  # the most entries one part held
        self.keys = 0  # keys made whole
        self.given_up = 0  # stagings retired unfinished

    def receive(
        self,
        db: Database,
        key: bytes,
        token: bytes,
        seq: int,
        payload: bytes,
        commit: tuple[int, int] | None,
    ) -> None:
        """One SLOTSSTAGE part; ReplyError (nothing written) when it does not fit."""
        if not 0 < len(token) <= MAX_TOKEN:
            raise ReplyError(errors.staging_refused(key, f"a token is 1 to {MAX_TOKEN} bytes"))
        mkey = db.meta_key(key)
        if seq == 0:
            st = self._begin(db, mkey, token)
        else:
            found = self.by_token.get(token)
            if found is None or found.mkey != mkey or found.phys != db.phys:
                raise ReplyError(
                    errors.staging_refused(key, "no such transfer here (restarted or given up)")
                )
            st = found
            if seq != st.seq:
                raise ReplyError(
                    errors.staging_refused(key, f"part {seq} out of order (expected {st.seq})")
                )
        try:
            kind, entries = self._decode(st, payload, commit is not None and seq > 0)
        except ReplyError:
            self._retire(st)
            raise
        if entries:
            self._write(st, kind, entries)
        st.seq += 1
        st.touched = time.monotonic()
        self.parts += 1
        self.part_entries_max = max(self.part_entries_max, len(entries))
        if commit is not None:
            self._commit(db, key, st, *commit)

    # -- steps ----------------------------------------------------------------------------

    def _begin(self, db: Database, mkey: bytes, token: bytes) -> Staging:
        for old_token in {self.by_key.get(mkey), token if token in self.by_token else None}:
            if old_token is not None:  # an earlier attempt at this key, or this token
                self._retire(self.by_token[old_token])
        st = Staging(token, mkey, db.phys, self.ks.new_version(), touched=time.monotonic())
        self.ks.engine.put(kf.SYS_STAGING + st.tail, b"")
        self.by_token[token] = st
        self.by_key[mkey] = token
        return st

    def _decode(
        self, st: Staging, payload: bytes, may_be_empty: bool
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        key = st.mkey[7:]
        if not payload and may_be_empty:
            return st.kind, []
        try:
            kind, _value, entries = dump.decode(payload, part=True)
        except dump.BadChecksum:
            raise ReplyError(errors.SLOTSRESTORE_BAD_PAYLOAD) from None
        except dump.BadFormat:
            raise ReplyError(errors.SLOTSRESTORE_BAD_FORMAT) from None
        if st.kind and kind != st.kind:
            raise ReplyError(errors.staging_refused(key, "a part of another type"))
        if kind != kf.TYPE_LIST:
            previous, have = st.last, st.count > 0
            for member, _v in entries:
                if have and member <= previous:
                    raise ReplyError(errors.staging_refused(key, "members out of order"))
                previous, have = member, True
        return kind, entries

    def _write(self, st: Staging, kind: int, entries: list[tuple[bytes, bytes]]) -> None:
        st.kind = kind
        prefix = member_prefix(st.mkey, st.version)
        put = self.ks.engine.put
        if kind == kf.TYPE_CHUNKED:
            records = entries
        else:
            records = member_records(kind, entries, first=st.count)
        for sub, value in records:
            put(prefix + sub, value)
        st.count += len(entries)
        if kind != kf.TYPE_LIST:
            st.last = entries[-1][0]

    def _commit(self, db: Database, key: bytes, st: Staging, ttl: int, size: int) -> None:
        if not st.kind:
            self._retire(st)
            raise ReplyError(errors.staging_refused(key, "nothing arrived"))
        if st.kind == kf.TYPE_CHUNKED:
            last_chunk = kf.CHUNK_INDEX.unpack(st.last)[0]
            ok = size > kf.STRING_CHUNK and last_chunk * kf.STRING_CHUNK < size < 2**63
        else:
            ok = size == st.count
        if not ok or ttl < 0:
            self._retire(st)
            raise ReplyError(
                errors.staging_refused(key, f"size {size} or ttl {ttl} does not fit what arrived")
            )
        expire = now_ms() + ttl if ttl else 0
        if st.kind == kf.TYPE_CHUNKED:
            record = chunked_record(st.version, size, expire)
        else:
            meta = Meta(st.kind, expire, st.version, size)
            if st.kind == kf.TYPE_LIST:
                meta.head, meta.tail = LIST_ORIGIN, LIST_ORIGIN + size
            record = meta.encode()
        old = db.read(key)[1]
        self.ks.write(st.mkey, record, old)
        self.ks.engine.delete(kf.SYS_STAGING + st.tail)
        self._forget(st)
        self.committed[st.token] = (st.mkey, record)
        if len(self.committed) > COMMITTED_KEEP:
            del self.committed[next(iter(self.committed))]
        self.keys += 1

    # -- giving up ------------------------------------------------------------------------

    def _forget(self, st: Staging) -> None:
        self.by_token.pop(st.token, None)
        if self.by_key.get(st.mkey) == st.token:
            del self.by_key[st.mkey]

    def forget_token(self, db: Database, token: bytes) -> None:
        """Give up the staging of ``token`` in progress, if any (SLOTSFORGET)."""
        st = self.by_token.get(token)
        if st is not None and st.phys == db.phys:
            self._retire(st)

    def _retire(self, st: Staging) -> None:
        """Give a staging up: its members are reclaimed like a retired version's."""
        self._forget(st)
        self._retire_tail(st.tail)

    def _retire_tail(self, tail: bytes) -> None:
        eng = self.ks.engine
        eng.delete(kf.SYS_STAGING + tail)
        eng.put(kf.SYS_STALE + tail, b"")
        self.given_up += 1

    def sweep(self, idle: float = STAGING_IDLE) -> int:
        """Retire stagings idle for ``idle`` seconds and stored ones no transfer in memory
        owns (left by a restart, or on a replica promoted since); how many (primary only)."""
        now = time.monotonic()
        gone = [st for st in self.by_token.values() if now - st.touched > idle]
        for st in gone:
            log.warning("giving up the transfer of %r: no part for %.0f s", st.mkey[7:], idle)
            self._retire(st)
        owned = {st.tail for st in self.by_token.values()}
        n = len(gone)
        eng = self.ks.engine
        for entry in list(eng.scan_keys(kf.SYS_STAGING, kf.prefix_end(kf.SYS_STAGING))):
            if entry[2:] not in owned:
                self._retire_tail(entry[2:])
                n += 1
        return n

    def info(self) -> list[tuple[str, object]]:
        return [
            ("ledis_stage_transfers", len(self.by_token)),
            ("ledis_stage_parts_received", self.parts),
            ("ledis_stage_part_entries_max", self.part_entries_max),
            ("ledis_stage_keys_completed", self.keys),
            ("ledis_stage_transfers_given_up", self.given_up),
        ]
