"""The keys of a slot, read in bounded steps.

A slot of a database is one contiguous range of metadata keys (``0x01 phys slot``, see
docs/storage-format.md), so everything per slot is a range scan: CLUSTER COUNTKEYSINSLOT /
GETKEYSINSLOT, SLOTSINFO, SLOTSSCAN, SLOTSDEL and the migration's choice of keys. Each step
here stops after a budget of records (and a deadline), and says where it stopped, so a caller
working through a slot of a million keys resumes there in the next step instead of holding the
event loop for the whole slot (or walking again over the tombstones of what it deleted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

from stack.core.slots import SLOT_COUNT

from . import keyformat as kf
from .keyspace import Database, Keyspace, now_ms

# Records examined per step, and how long a step may take: a few milliseconds of the loop.
STEP_RECORDS = 4000
STEP_SECONDS = 0.002


def slot_range(db: Database, first: int, last: int | None = None) -> tuple[bytes, bytes]:
    """[start, stop) of the metadata keys of slots ``first``..``last`` (inclusive)."""
    last = first if last is None else last
    start = kf.slot_prefix(db.phys, first)
    stop = kf.slot_prefix(db.phys, last + 1) if last + 1 < SLOT_COUNT else kf.prefix_end(db.prefix)
    return start, stop


@dataclass
class Step:
    """What one step saw: ``records`` (metadata key, record) of live keys, where to resume
    (``after``: the last key examined) and whether the range is done."""

    records: list[tuple[bytes, bytes]]
    after: bytes
    done: bool


def live_step(
    ks: Keyspace,
    start: bytes,
    stop: bytes,
    after: bytes = b"",
    budget: int = STEP_RECORDS,
    deadline: float | None = None,
) -> Step:
    """The live keys of [start, stop) after ``after``, examining at most ``budget`` records
    and stopping at ``deadline`` (time.monotonic())."""
    begin = after + b"\x00" if after else start
    now = now_ms()
    out: list[tuple[bytes, bytes]] = []
    last = after
    clock = time.monotonic
    for n, (mkey, rec) in enumerate(ks.engine.scan(begin, stop), 1):
        last = mkey
        if not rec[0] & kf.TTL_FLAG or kf.expire_of(rec) > now:
            out.append((mkey, rec))
        if n >= budget or (deadline is not None and n & 63 == 0 and clock() >= deadline):
            return Step(out, last, False)
    return Step(out, last, True)


def iter_live(ks: Keyspace, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every live (metadata key, record) of the range, in one go (for bounded callers)."""
    now = now_ms()
    for mkey, rec in ks.engine.scan(start, stop):
        if not rec[0] & kf.TTL_FLAG or kf.expire_of(rec) > now:
            yield mkey, rec


def count_step(
    ks: Keyspace,
    start: bytes,
    stop: bytes,
    counts: dict[int, int],
    after: bytes = b"",
    budget: int = STEP_RECORDS,
) -> tuple[bytes, bool]:
    """Count the keys of [start, stop) per slot into ``counts``, resuming after ``after``;
    (where it stopped, whether the range is done). Keys whose TTL ran out but which the
    expiry has not reached yet are counted, as DBSIZE counts them."""
    begin = after + b"\x00" if after else start
    last = after
    for n, mkey in enumerate(ks.engine.scan_keys(begin, stop), 1):
        slot = (mkey[5] << 8) | mkey[6]
        counts[slot] = counts.get(slot, 0) + 1
        last = mkey
        if n >= budget:
            return last, False
    return last, True


def first_live(ks: Keyspace, db: Database, slot: int) -> bytes | None:
    """The metadata key of a live key of the slot, or None when it holds none."""
    start, stop = slot_range(db, slot)
    for mkey, _rec in iter_live(ks, start, stop):
        return mkey
    return None


async def count_slots(ks: Keyspace, db: Database, first: int, last: int) -> dict[int, int]:
    """Keys per slot of ``first``..``last``, counted in steps (the loop runs between)."""
    start, stop = slot_range(db, first, last)
    counts: dict[int, int] = {}
    after = b""
    while True:
        after, done = count_step(ks, start, stop, counts, after)
        if done:
            return counts
        await asyncio.sleep(0)
