"""How many bytes one key takes in the store (MEMORY USAGE), from its records.

A key is its metadata record, its expiry-index entry when it has a TTL, and, for a collection or
a chunked string, its member sub-keys (docs/storage-format.md). Each LevelDB record counts as
its key, its value and the 8 bytes LevelDB adds to each (sequence number and type), before
compression. Members are sampled as Redis samples the elements of big values: the first
``samples`` records of the key's current version are read and their average size is taken for
all of them (``samples`` 0: every record is read), so the work is bounded by ``samples``
whatever the size of the key. A chunked string's size is known from its length without reading.
"""

from __future__ import annotations

from itertools import islice

from . import keyformat as kf
from .collections import Meta, member_prefix
from .engine import Engine

RECORD_OVERHEAD = 8  # LevelDB's sequence number and value type, per record
# Sub-key records per member: a sorted set keeps member -> score and score+member (the order).
RECORDS_PER_MEMBER = {kf.TYPE_ZSET: 2}


def key_bytes(engine: Engine, mkey: bytes, record: bytes, samples: int) -> int:
    """The bytes of the key stored at ``mkey`` (live ``record``), members sampled."""
    total = len(mkey) + len(record) + RECORD_OVERHEAD
    if record[0] & kf.TTL_FLAG:
        total += len(mkey) + 8 + RECORD_OVERHEAD  # expiry index: 0x03 expire(8) phys slot key
    if not kf.has_members(record):
        return total
    meta = Meta.decode(record)
    prefix = member_prefix(mkey, meta.version)
    if meta.kind == kf.TYPE_CHUNKED:  # chunks of STRING_CHUNK bytes, each with its index
        chunks = -(-meta.size // kf.STRING_CHUNK)
        per_chunk = len(prefix) + kf.CHUNK_INDEX.size + RECORD_OVERHEAD
        return total + meta.size + chunks * per_chunk
    records = meta.size * RECORDS_PER_MEMBER.get(meta.kind, 1)
    if not records:
        return total
    scan = engine.scan(prefix, kf.prefix_end(prefix))
    limit = records if samples <= 0 else min(samples, records)
    seen = bytes_seen = 0
    for k, v in islice(scan, limit):
        seen += 1
        bytes_seen += len(k) + len(v) + RECORD_OVERHEAD
    if not seen:
        return total
    return total + bytes_seen * records // seen
