"""Lists on disk: elements are sub-keys indexed by a u64 position in [head, tail).

Pushes and pops at either end are O(1); a rewrite (LINSERT, LREM) stores the list under a new
version (O(N), as in Redis).
"""

from __future__ import annotations

from stack.core.resp import Chunks, bulk_array, encoded_array

from . import keyformat as kf
from .collections import LIST_ORIGIN, Collection, Meta
from .keyspace import Database

LIST_TYPE = kf.TYPE_LIST
U64 = kf.U64


class ListView:
    """A list key: push, pop and index its elements."""

    def __init__(self, db: Database, key: bytes, for_read: bool = False) -> None:
        self.col = Collection.open(db, key, LIST_TYPE, for_read)

    @property
    def size(self) -> int:
        return self.col.size

    def _meta(self) -> Meta:
        assert self.col.meta is not None
        return self.col.meta

    def push(self, values: list[bytes], left: bool) -> int:
        meta = self.col.ensure()
        for v in values:
            if left:
                meta.head -= 1
                self.col.put(U64.pack(meta.head), v)
            else:
                self.col.put(U64.pack(meta.tail), v)
                meta.tail += 1
        meta.size += len(values)
        self.col.save()
        return meta.size

    def pop(self, count: int, left: bool, save: bool = True) -> list[bytes]:
        """Remove and return up to ``count`` elements from one end (``save``: then write the
        metadata, deleting the key if that emptied it)."""
        if not self.col.exists:
            return []
        meta = self._meta()
        out: list[bytes] = []
        for _ in range(min(count, meta.size)):
            if left:
                pos = U64.pack(meta.head)
                meta.head += 1
            else:
                meta.tail -= 1
                pos = U64.pack(meta.tail)
            value = self.col.get(pos)
            self.col.delete(pos)
            out.append(value or b"")
        meta.size -= len(out)
        if save:
            self.col.save()
        return out

    def index(self, i: int) -> bytes | None:
        if not self.col.exists:
            return None
        meta = self._meta()
        if i < 0:
            i += meta.size
        if not 0 <= i < meta.size:
            return None
        return self.col.get(U64.pack(meta.head + i))

    def set(self, i: int, value: bytes) -> bool:
        meta = self._meta()
        if i < 0:
            i += meta.size
        if not 0 <= i < meta.size:
            return False
        self.col.put(U64.pack(meta.head + i), value)
        self.col.touch()
        return True

    def bounds(self, start: int, stop: int) -> tuple[int, int] | None:
        """Redis's LRANGE arithmetic: an inclusive range of positions, or None if empty."""
        size = self.size
        if start < 0:
            start = max(start + size, 0)
        if stop < 0:
            stop += size
        stop = min(stop, size - 1)
        if start > stop or start >= size:
            return None
        return start, stop

    def stream(self, start: int, stop: int) -> Chunks:
        """LRANGE's reply, encoded while LevelDB is read."""
        bounds = self.bounds(start, stop)
        if bounds is None:
            return bulk_array(())
        col = self.col
        engine = col.ks.engine
        record = col.record
        assert record is not None  # bounds: it exists
        start, stop = bounds
        body = engine.ranges.get(col.mkey, record, start, stop)
        if body is not None:
            return encoded_array(body, stop - start + 1)
        meta = self._meta()
        first = col.prefix + U64.pack(meta.head + start)
        last = col.prefix + U64.pack(meta.head + stop + 1)
        body, count = engine.encoded_range(first, last, 0, False, True)
        # Kept for the next read of the unchanged list; not when it holds elements not written
        # yet (an LSET's): the lane would send them without waiting for their batch.
        if count == stop - start + 1 and not engine.unwritten_in(first, last):
            engine.ranges.keep(col.mkey, record, start, count, body)
        return encoded_array(body, count)

    def elements(self) -> list[bytes]:
        return [v for _k, v in self.col.items()]

    def rewrite(self, values: list[bytes]) -> None:
        """Replace the whole list (a new version) with ``values``."""
        col = self.col
        expire = col.meta.expire if col.meta else 0
        col.replace_with([(U64.pack(LIST_ORIGIN + i), v) for i, v in enumerate(values)], expire)
