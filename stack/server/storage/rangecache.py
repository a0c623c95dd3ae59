"""LRANGE replies kept encoded, for lists read again while they have not changed.

A list read by LRANGE keeps the RESP encoding of the elements it read (a window of the list:
``count`` elements from index ``first``), remembered with the list's metadata record as it was
then. The record *object* is the proof that nothing changed: every write that moves a list's
ends or size stores a new record object (push, pop, a rewrite, a delete, an expiry, a restore;
the C lane's pushes and pops too), the record cache reloads a dropped record as a new object,
and the writes that change elements without a new record (LSET, or any write of a sub-key on
the Python path) drop the window through ``Engine.put``/``delete``; what changes records behind
the engine (replication, a full sync, a failed batch) clears everything (``Engine.forget_bounds``).
So a window is used only while ``engine.get(mkey) is record``.

LRANGE of a range inside a window is then one slice of it (``ext.bulk_slice``, or the pure
Python ``bulk_slice`` here), without LevelDB; the C lane answers it the same way, from the same
dict, and leaves every miss to the Python path, which fills it (docs/storage-format.md).
Bounded: windows of at most ``WINDOW_MAX`` bytes and ``WINDOW_ELEMENTS`` elements, ``BUDGET``
bytes in all, each counted with
``ENTRY_COST`` more (so many small windows are bounded too); the oldest go first.
"""

from __future__ import annotations

from collections import OrderedDict

from ..accel import ext
from . import keyformat as kf

WINDOW_MAX = 1 << 20  # bytes of one window's encoding; a longer read is not kept
# elements of one window: a slice walks the elements before it, so a read from the tail of a
# window stays a few µs (C) or about 0.5 ms (the Python path) at most
WINDOW_ELEMENTS = 1024
BUDGET = 16 << 20  # bytes of all windows
ENTRY_COST = 256  # what one window costs besides its encoding (key, record, tuple, dict slot)
_NS_SUB = kf.NS_SUB[0]


def bulk_slice_py(body: bytes, skip: int, n: int) -> bytes | None:
    """The n RESP bulk strings after the first ``skip`` of ``body`` (None: body is short)."""
    pos = 0
    end = len(body)
    bounds = []
    for _ in range(skip + n):
        if pos >= end or body[pos] != 0x24:  # '$'
            return None
        eol = body.index(b"\r\n", pos)
        bounds.append(pos)
        pos = eol + 2 + int(body[pos + 1 : eol]) + 2
    if pos > end:
        return None
    return body[bounds[skip] : pos] if n else b""


bulk_slice = ext.bulk_slice if ext is not None else bulk_slice_py


def meta_key_of_sub(sub: bytes) -> bytes:
    """The metadata key of the collection a sub-key belongs to (keyformat's layout)."""
    klen = kf.U32.unpack_from(sub, 7)[0]
    return kf.NS_META + sub[1:7] + sub[11 : 11 + klen]


class RangeCache:
    def __init__(self) -> None:
        # mkey -> (record, first, count, body): shared with the C lane, which only reads it
        self.entries: OrderedDict[bytes, tuple[bytes, int, int, bytes]] = OrderedDict()
        self.size = 0  # bytes held: the bodies, and ENTRY_COST per window
        self.hits = 0
        self.misses = 0

    def get(self, mkey: bytes, record: bytes, first: int, last: int) -> bytes | None:
        """The encoding of elements first..last (inclusive) of the list whose current record
        is ``record``, when a window holds them; else None."""
        entry = self.entries.get(mkey)
        if entry is None or entry[0] is not record:
            self.misses += 1
            return None
        _rec, start, count, body = entry
        if first < start or last >= start + count:
            self.misses += 1
            return None
        self.hits += 1
        if first == start and last == start + count - 1:
            return body
        return bulk_slice(body, first - start, last - first + 1)

    def keep(self, mkey: bytes, record: bytes, first: int, count: int, body: bytes) -> None:
        if len(body) > WINDOW_MAX or count > WINDOW_ELEMENTS:
            return
        self.drop(mkey)
        entries = self.entries
        cost = len(body) + ENTRY_COST
        while entries and self.size + cost > BUDGET:  # the oldest first, O(1) each
            _old_key, old = entries.popitem(last=False)
            self.size -= len(old[3]) + ENTRY_COST
        entries[mkey] = (record, first, count, body)
        self.size += cost

    def drop(self, mkey: bytes) -> None:
        entry = self.entries.pop(mkey, None)
        if entry is not None:
            self.size -= len(entry[3]) + ENTRY_COST

    def written(self, key: bytes) -> None:
        """A record was written: drop the window of the list it is an element of (callers
        check that there are windows at all)."""
        if key[0] == _NS_SUB and len(key) >= 11:
            self.drop(meta_key_of_sub(key))

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0
