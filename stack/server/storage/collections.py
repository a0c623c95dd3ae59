"""Collections on disk: a metadata record (type, expiry, version, size) plus one sub-key per
member, tagged with the version (docs/storage-format.md).

Deleting or overwriting a collection rewrites only its metadata; the members of the old version
are queued and reclaimed in the background, so it costs the same for one member or a million.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from . import keyformat as kf
from .engine import Engine
from .hints import remember
from .keyspace import Database, Keyspace, WrongType

TAIL_WALK = 64  # members read forwards from a remembered last member before starting at the end
MAX_TAILS = 4096  # remembered last members (Engine.tails) before they are forgotten at once

VERSION_SIZE = struct.Struct(">QQ")
LIST_ENDS = struct.Struct(">QQ")
LIST_ORIGIN = 1 << 62  # list indexes start here, so pushes can grow both ways


@dataclass
class Meta:
    kind: int
    expire: int
    version: int
    size: int
    head: int = LIST_ORIGIN  # lists: index of the first element
    tail: int = LIST_ORIGIN  # lists: one past the last element

    @classmethod
    def decode(cls, record: bytes) -> Meta:
        kind = kf.raw_type(record)
        body = kf.body(record)
        version, size = VERSION_SIZE.unpack_from(body, 0)
        meta = cls(kind, kf.expire_of(record), version, size)
        if kind == kf.TYPE_LIST:
            meta.head, meta.tail = LIST_ENDS.unpack_from(body, 16)
        return meta

    def encode(self) -> bytes:
        body = VERSION_SIZE.pack(self.version, self.size)
        if self.kind == kf.TYPE_LIST:
            body += LIST_ENDS.pack(self.head, self.tail)
        if self.expire:
            return bytes([self.kind | kf.TTL_FLAG]) + kf.U64.pack(self.expire) + body
        return bytes([self.kind]) + body


def member_prefix(mkey: bytes, version: int) -> bytes:
    """Where the members of one version of a key live."""
    key = kf.user_key(mkey)
    return kf.NS_SUB + mkey[1:7] + kf.U32.pack(len(key)) + key + kf.U64.pack(version)


class Members:
    """The sub-keys of one collection version that start with ``base`` (its member prefix,
    and for a sorted set a space such as ``m``), read as (member, value) with ``base`` cut:
    what random picks read (sampling.py), for a Collection or for the C lane's SPOP, which
    knows only the prefix and the size."""

    __slots__ = ("base", "engine", "size")

    def __init__(self, engine: Engine, base: bytes, size: int) -> None:
        self.engine = engine
        self.base = base
        self.size = size

    def items(self, start: bytes = b"", reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """(member, value) in member byte order (or reversed), from ``start``."""
        base = self.base
        cut = len(base)
        for k, v in self.engine.scan(base + start, kf.prefix_end(base), reverse):
            yield k[cut:], v

    def first(self, start: bytes = b"") -> tuple[bytes, bytes] | None:
        """The first (member, value) at or after ``start``, in one seek (``Engine.first``);
        None past the end."""
        base = self.base
        found = self.engine.first(base + start, kf.prefix_end(base))
        return None if found is None else (found[0][len(base) :], found[1])

    def last(self) -> tuple[bytes, bytes] | None:
        """The last (member, value), found from where the previous call found it
        (``Engine.tails``).

        A walk backwards from the end of the collection steps over every tombstone deletions
        left there (LevelDB keeps them until a compaction, and a step backwards in its memtable
        is a seek): SPOP, which found the last member so, took 20 ms a call on a set being
        emptied from its end. Forwards from the remembered member (a few members added since),
        or backwards from it when nothing is left after it, each tombstone is passed about
        once; far behind (``TAIL_WALK`` members or more added after it), the walk starts from
        the end again."""
        base = self.base
        end = kf.prefix_end(base)
        engine = self.engine
        tails = engine.tails
        known = tails.get(base)
        found: tuple[bytes, bytes] | None = None
        if known is not None:
            at = engine.first(known, end)
            after = None
            if at is not None and at[0] == known:  # the usual case: two seeks forwards (a
                after = engine.first(known + b"\0", end)  # seek backwards costs several)
                if after is None:
                    found = at
            elif at is None:  # it went, and nothing after it: the one before it
                found = engine.first(base, known, reverse=True)
            else:
                after = at
            if after is not None:
                walked = list(islice(engine.scan(after[0], end), TAIL_WALK))
                if len(walked) < TAIL_WALK:
                    found = walked[-1]
        if found is None:
            found = engine.first(base, end, reverse=True)
        if found is None:
            tails.pop(base, None)
            return None
        remember(tails, base, found[0], MAX_TAILS)
        return found[0][len(base) :], found[1]


class Collection:
    """One collection key being read or changed by a command.

    ``meta`` is None when the key does not exist; ``create`` makes a new, empty version.
    Changes to members are written at once; ``save`` writes the metadata (or deletes the key
    when it became empty).
    """

    def __init__(self, ks: Keyspace, mkey: bytes, record: bytes | None, kind: int) -> None:
        self.ks = ks
        self.mkey = mkey
        self.record = record
        self.kind = kind
        # A record of another type (a *STORE destination) is only replaced, never read.
        self.meta = Meta.decode(record) if record is not None and kf.rtype(record) == kind else None
        self.prefix = member_prefix(mkey, self.meta.version) if self.meta else b""

    @classmethod
    def open(cls, db: Database, key: bytes, kind: int, for_read: bool = False) -> Collection:
        """The collection at ``key``; WrongType if the key holds another type."""
        if for_read:
            record = db.lookup(key)
            mkey = db.meta_key(key)
        else:
            mkey, record = db.read(key)
        if record is not None and kf.rtype(record) != kind:
            raise WrongType()
        return cls(db.ks, mkey, record, kind)

    @property
    def exists(self) -> bool:
        return self.meta is not None

    @property
    def size(self) -> int:
        return self.meta.size if self.meta else 0

    def create(self, expire: int = 0) -> Meta:
        """Start a new, empty version at this key (used when it does not exist yet)."""
        self.meta = Meta(self.kind, expire, self.ks.new_version(), 0)
        self.prefix = member_prefix(self.mkey, self.meta.version)
        return self.meta

    def ensure(self) -> Meta:
        return self.meta if self.meta is not None else self.create()

    # -- members ------------------------------------------------------------------------------

    def get(self, member: bytes) -> bytes | None:
        if self.meta is None:
            return None
        return self.ks.engine.get(self.prefix + member)

    def put(self, member: bytes, value: bytes) -> None:
        self.ks.engine.put(self.prefix + member, value)

    def delete(self, member: bytes) -> None:
        self.ks.engine.delete(self.prefix + member)

    def remove(self, members: list[bytes]) -> int:
        """Delete the members that exist (duplicates count once); save; how many went."""
        if self.meta is None:
            return 0
        removed = 0
        for member in dict.fromkeys(members):
            if self.get(member) is not None:
                self.delete(member)
                removed += 1
        if removed:
            self.meta.size -= removed
            self.ks.engine.note_deletes(self.prefix, removed, self.meta.size)
            self.save()
        return removed

    def items(
        self, start: bytes = b"", reverse: bool = False, space: bytes = b""
    ) -> Iterator[tuple[bytes, bytes]]:
        """(member, value) in member byte order (or reversed), streamed from LevelDB.

        ``space`` narrows to sub-keys starting with it (a sorted set's ``m`` members), and is
        cut from the members returned."""
        if self.meta is None:
            return iter(())
        return Members(self.ks.engine, self.prefix + space, self.meta.size).items(start, reverse)

    def first(self, start: bytes = b"", space: bytes = b"") -> tuple[bytes, bytes] | None:
        """The first (member, value) at or after ``start`` (see ``Members.first``)."""
        if self.meta is None:
            return None
        return Members(self.ks.engine, self.prefix + space, self.meta.size).first(start)

    def last(self, space: bytes = b"") -> tuple[bytes, bytes] | None:
        """The last (member, value) (see ``Members.last``)."""
        if self.meta is None:
            return None
        return Members(self.ks.engine, self.prefix + space, self.meta.size).last()

    def encoded(self, keys: bool = True, values: bool = True) -> tuple[bytes, int]:
        """Members, values or both (member, value ...), as RESP bulk strings in one bytes
        object, and how many (the whole collection, in member order)."""
        if self.meta is None:
            return b"", 0
        base = self.prefix
        return self.ks.engine.encoded_range(base, kf.prefix_end(base), len(base), keys, values)

    def members(self) -> Iterator[bytes]:
        for member, _value in self.items():
            yield member

    # -- metadata -----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the metadata after member changes; an empty collection stops existing."""
        meta = self.meta
        if meta is None:
            return
        if meta.size <= 0:
            if self.record is not None:
                self.ks.delete(self.mkey, self.record, members_gone=True)
            self.meta = None
            self.record = None
            return
        record = meta.encode()
        self.ks.write(self.mkey, record, self.record)
        self.record = record

    def touch(self) -> None:
        """Members changed but the size did not: still a change (for WATCH and CLIENT
        TRACKING)."""
        ks = self.ks
        ks.touch(self.mkey)
        if ks.on_modified is not None:
            ks.on_modified(self.mkey)

    def replace_with(
        self, members: list[tuple[bytes, bytes]], expire: int = 0, size: int | None = None
    ) -> None:
        """Overwrite the key with a new version holding ``members`` (the *STORE commands);
        ``size`` when members are not one sub-key each (sorted sets have two)."""
        old = self.record
        self.meta = None
        self.create(expire)
        for member, value in members:
            self.put(member, value)
        assert self.meta is not None
        self.meta.size = len(members) if size is None else size
        if self.kind == kf.TYPE_LIST:  # members are positions LIST_ORIGIN, LIST_ORIGIN + 1, ...
            self.meta.tail = self.meta.head + len(members)
        if not members:
            if old is not None:
                self.ks.delete(self.mkey, old)
            self.record = None
            self.meta = None
            return
        record = self.meta.encode()
        self.ks.write(self.mkey, record, old)
        self.record = record


ZSET_MEMBER, ZSET_SCORE = b"m", b"s"  # a sorted set's two sub-key spaces


def member_records(
    kind: int, entries: list[tuple[bytes, bytes]], first: int = 0
) -> list[tuple[bytes, bytes]]:
    """The sub-keys (after the version) and values that hold ``entries`` of a collection of
    type ``kind``, as the DUMP format lists them: a hash's (field, value), a set's (member, _),
    a sorted set's (member, score) and a list's (element, _), the list's ``first`` one at
    position LIST_ORIGIN + ``first``."""
    if kind == kf.TYPE_LIST:
        base = LIST_ORIGIN + first
        return [(kf.U64.pack(base + n), element) for n, (element, _v) in enumerate(entries)]
    if kind == kf.TYPE_ZSET:
        out = []
        for member, score in entries:
            out += [(ZSET_MEMBER + member, score), (ZSET_SCORE + score + member, b"")]
        return out
    return entries


def copy_members(ks: Keyspace, src_mkey: bytes, record: bytes, dst_mkey: bytes) -> bytes:
    """Copy a collection's members to a new version at ``dst_mkey``; its new record."""
    meta = Meta.decode(record)
    src_prefix = member_prefix(src_mkey, meta.version)
    meta.version = ks.new_version()
    dst_prefix = member_prefix(dst_mkey, meta.version)
    cut = len(src_prefix)
    for k, v in ks.engine.scan(src_prefix, kf.prefix_end(src_prefix)):
        ks.engine.put(dst_prefix + k[cut:], v)
    return meta.encode()
