"""Strings on disk: short ones in their metadata record, long ones in fixed-size chunks.

A value written whole of at most ``INLINE_MAX`` bytes is stored in the key's metadata record
(type 1; the C fast lane reads and writes only these), and so is one grown by partial writes
while it stays within ``EDIT_MAX``. Any other is a *chunked string* (type 6, a string to
every command): its metadata record holds ``version(8) length(8)`` like a collection's, and its
bytes live in the sub-keys ``0x02 phys slot klen key version chunk-index(u32)``, ``CHUNK`` bytes
each. A chunk may be stored shorter than ``CHUNK`` (trailing zeros are cut) or not at all:
whatever is not stored reads as zeros. So:

* a write at any offset (SETRANGE, SETBIT, BITFIELD, APPEND) reads and writes the chunks it
  touches plus the metadata record, whatever the length of the string: ``SETBIT k 4294967295 1``
  stores one chunk, and the binlog carries that chunk, not half a gigabyte of zeros;
* a read (GETRANGE, GETBIT, BITFIELD GET, BITCOUNT, BITPOS) reads the chunks in its range, and
  the sparse ones (BITCOUNT, BITPOS) skip what is not stored;
* GET of a long value answers in pieces (a ``Chunks`` reply) and a missing stretch costs
  nothing but the bytes sent;
* deleting or overwriting one retires its version like a collection's (reclaimed in the
  background, so O(1) for the client); RENAME, COPY and MOVE copy its chunks under a new
  version; replication, full syncs and backups carry the chunks as the records they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from stack.core.resp import strict_int

from . import keyformat as kf
from .collections import Meta, member_prefix
from .keyspace import Database, Keyspace, WrongType

CHUNK = kf.STRING_CHUNK
INLINE_MAX = kf.STRING_INLINE_MAX
EDIT_MAX = kf.STRING_EDIT_MAX
PIECE = 256 * CHUNK  # 1 MiB: a long value is read and sent in pieces of this size
_INDEX = kf.CHUNK_INDEX
_TYPE_MASK, _TTL, _CHUNKED = kf.TYPE_MASK, kf.TTL_FLAG, kf.TYPE_CHUNKED
_ZERO_PIECE = bytes(PIECE)


def chunked_record(version: int, length: int, expire_ms: int = 0) -> bytes:
    """The metadata record of a chunked string."""
    return Meta(kf.TYPE_CHUNKED, expire_ms, version, length).encode()


class StoredString:
    """The value of one string key, as stored (inline or in chunks), read by ranges."""

    __slots__ = ("engine", "inline", "length", "prefix", "version")

    def __init__(self, ks: Keyspace, mkey: bytes, record: bytes) -> None:
        self.engine = ks.engine
        if record[0] & _TYPE_MASK == _CHUNKED:
            meta = Meta.decode(record)
            self.inline: bytes | None = None
            self.length = meta.size
            self.version = meta.version
            self.prefix = member_prefix(mkey, meta.version)
        else:
            self.inline = record[9:] if record[0] & _TTL else record[1:]
            self.length = len(self.inline)
            self.version = 0
            self.prefix = b""

    def _stored(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """(chunk index, stored bytes) of the chunks present between two indexes, in order."""
        prefix = self.prefix
        cut = len(prefix)
        stop = prefix + _INDEX.pack(last + 1) if last + 1 < 2**32 else kf.prefix_end(prefix)
        for k, v in self.engine.scan(prefix + _INDEX.pack(first), stop):
            yield _INDEX.unpack_from(k, cut)[0], v

    def read(self, start: int, end: int) -> bytes:
        """The bytes in [start, end), clipped to the value."""
        end = min(end, self.length)
        if start >= end:
            return b""
        if self.inline is not None:
            return self.inline[start:end]
        first, last = start // CHUNK, (end - 1) // CHUNK
        if first == last:  # one chunk: a point lookup (the record cache may have it)
            base = first * CHUNK
            data = self.engine.get(self.prefix + _INDEX.pack(first)) or b""
            piece = data[start - base : end - base]
            return piece + bytes(end - start - len(piece))
        out = bytearray(end - start)
        for index, data in self._stored(first, last):
            base = index * CHUNK
            lo, hi = max(start, base), min(end, base + len(data))
            if lo < hi:
                out[lo - start : hi - start] = data[lo - base : hi - base]
        return bytes(out)

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """(chunk index, bytes) of every stored chunk in order (an inline value in CHUNK-size
        pieces); a chunk not listed is zeros."""
        if self.inline is not None:
            for start in range(0, self.length, CHUNK):
                yield start // CHUNK, self.inline[start : start + CHUNK]
        elif self.length:
            yield from self._stored(0, (self.length - 1) // CHUNK)

    def whole(self) -> bytes:
        return self.inline if self.inline is not None else self.read(0, self.length)

    def present(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) of the stored stretches within [start, end), in order; what lies
        between them is zeros (BITCOUNT and BITPOS skip it)."""
        end = min(end, self.length)
        if start >= end:
            return
        if self.inline is not None:
            yield start, self.inline[start:end]
            return
        for index, data in self._stored(start // CHUNK, (end - 1) // CHUNK):
            base = index * CHUNK
            lo, hi = max(start, base), min(end, base + len(data))
            if lo < hi:
                yield lo, data[lo - base : hi - base]

    def pieces(self) -> Iterator[bytes]:
        """The whole value in pieces of at most PIECE bytes (GET's reply); a stretch with
        nothing stored is one shared block of zeros."""
        if self.inline is not None:
            yield self.inline
            return
        length = self.length
        stored = self._stored(0, (length - 1) // CHUNK)
        pending = next(stored, None)
        for start in range(0, length, PIECE):
            end = min(start + PIECE, length)
            buf: bytearray | None = None
            while pending is not None and pending[0] * CHUNK < end:
                index, data = pending
                base = index * CHUNK - start
                if buf is None:
                    buf = bytearray(end - start)
                buf[base : base + len(data)] = data[: end - start - base]
                pending = next(stored, None)
            if buf is not None:
                yield bytes(buf)
            elif end - start == PIECE:
                yield _ZERO_PIECE
            else:
                yield bytes(end - start)


def store(ks: Keyspace, mkey: bytes, old: bytes | None, value: bytes, expire_ms: int = 0) -> None:
    """Write a whole string value over ``old`` (the key's live record of any type, or None).
    An expiry already in the past (SET ... EXAT 1) is stored as it is, as Redis does: the key
    exists until a read or the active sweep expires it."""
    if len(value) <= INLINE_MAX:
        ks.write(mkey, kf.string_value(value, expire_ms), old)
        return
    version = ks.new_version()
    _write_chunks(ks, member_prefix(mkey, version), 0, value, fresh=True)
    ks.write(mkey, chunked_record(version, len(value), expire_ms), old)


def store_chunks(
    ks: Keyspace,
    mkey: bytes,
    old: bytes | None,
    length: int,
    chunks: Iterable[tuple[int, bytes]],
    expire_ms: int = 0,
) -> None:
    """Write a new value of ``length`` bytes (more than INLINE_MAX) chunk by chunk: (index,
    bytes) in any order, a chunk not given is zeros (BITOP builds its result so)."""
    version = ks.new_version()
    prefix = member_prefix(mkey, version)
    put = ks.engine.put
    for index, data in chunks:
        data = data.rstrip(b"\0")
        if data:
            put(prefix + _INDEX.pack(index), data)
    ks.write(mkey, chunked_record(version, length, expire_ms), old)


def read_range(ks: Keyspace, mkey: bytes, record: bytes, start: int, end: int) -> bytes:
    """Bytes [start, end) of a string record's value (clipped to it)."""
    if record[0] & _TYPE_MASK != _CHUNKED:
        return record[9 + start : 9 + end] if record[0] & _TTL else record[1 + start : 1 + end]
    return StoredString(ks, mkey, record).read(start, end)


def length_of(record: bytes) -> int:
    """The length of a string record's value, without reading it."""
    if record[0] & _TYPE_MASK == _CHUNKED:
        return Meta.decode(record).size
    return len(record) - (9 if record[0] & _TTL else 1)


def write_at(
    ks: Keyspace, mkey: bytes, old: bytes | None, offset: int, data: bytes, expire_ms: int = 0
) -> bytes:
    """Write ``data`` at ``offset`` of a string (``old``: its live record, or None), zeros
    filling any gap; only the chunks it touches are read and written. The new record."""
    end = offset + len(data)
    if old is None or old[0] & _TYPE_MASK != _CHUNKED:  # inline: the common, short case
        value = b"" if old is None else old[9:] if old[0] & _TTL else old[1:]
        if end <= EDIT_MAX and len(value) <= EDIT_MAX:
            if offset == len(value):
                value += data
            elif offset > len(value):
                value += bytes(offset - len(value)) + data
            else:
                value = value[:offset] + data + value[end:]
            record = kf.string_value(value, expire_ms)
            ks.write(mkey, record, old)
            ks.raw_strings[mkey] = hash(record)  # written in place: Redis's "raw"
            return record
    view = StoredString(ks, mkey, old) if old is not None else None
    if view is not None and view.inline is None:
        version, prefix = view.version, view.prefix
    else:  # a new chunked value, starting with the inline one
        version = ks.new_version()
        prefix = member_prefix(mkey, version)
        if view is not None and view.inline:
            _write_chunks(ks, prefix, 0, view.inline, fresh=True)
    _write_chunks(ks, prefix, offset, data, fresh=False)
    record = chunked_record(version, max(view.length if view else 0, end), expire_ms)
    ks.write(mkey, record, old)
    return record


def _write_chunks(ks: Keyspace, prefix: bytes, offset: int, data: bytes, fresh: bool) -> None:
    """Store ``data`` at ``offset`` under a chunked value's ``prefix``: a chunk it covers whole
    is replaced, one it covers in part is read and patched (unless ``fresh``: nothing is stored
    under the prefix yet). Trailing zeros are not stored, nor chunks of zeros."""
    if not data:
        return
    engine = ks.engine
    end = offset + len(data)
    for index in range(offset // CHUNK, (end + CHUNK - 1) // CHUNK):
        base = index * CHUNK
        lo, hi = max(offset, base), min(end, base + CHUNK)
        piece = data[lo - offset : hi - offset]
        key = prefix + _INDEX.pack(index)
        whole = lo == base and hi == base + CHUNK
        current = None if fresh or whole else engine.get(key)
        if current:
            piece = current[: lo - base].ljust(lo - base, b"\0") + piece + current[hi - base :]
        elif lo > base:
            piece = bytes(lo - base) + piece
        piece = piece.rstrip(b"\0")
        if piece:
            engine.put(key, piece)
        elif current or (whole and not fresh and engine.get(key) is not None):
            engine.delete(key)


def stored_record(rec: bytes) -> bytes:
    """``rec`` itself when it is a string's; WrongType for other types."""
    if kf.rtype(rec) != kf.TYPE_STRING:
        raise WrongType()
    return rec


def stored_string(ks: Keyspace, mkey: bytes, rec: bytes) -> StoredString:
    """A string record read by ranges; WrongType for other types."""
    if kf.rtype(rec) != kf.TYPE_STRING:
        raise WrongType()
    return StoredString(ks, mkey, rec)


def lookup_record(db: Database, key: bytes) -> tuple[bytes, bytes | None]:
    """(metadata key, live record) of a key for a read command (counts hits and misses)."""
    mkey, rec = db.read(key)
    ks = db.ks
    if rec is None:
        ks.miss(mkey)
    else:
        ks.hits += 1
    return mkey, rec


def lookup_stored(db: Database, key: bytes) -> StoredString | None:
    """A string key for a read command, read by ranges (counts keyspace hits and misses)."""
    mkey, rec = lookup_record(db, key)
    return None if rec is None else stored_string(db.ks, mkey, rec)


def clamp_range(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's string range arithmetic (GETRANGE, BITCOUNT, ...): inclusive, or None if empty."""
    if start < 0 and end < 0 and start > end:
        return None
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    end = max(end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return None
    return start, end


def string_encoding(value: bytes) -> str:
    """OBJECT ENCODING of a string kept whole in its record and set as a whole (one written in
    place is "raw": ``Keyspace.raw_strings``), as Redis 7.0 names it."""
    if len(value) <= 20 and value and strict_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= 44 else "raw"
