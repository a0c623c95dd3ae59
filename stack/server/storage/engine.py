"""LevelDB underneath, with one pending write batch that doubles as a read overlay.

Commands write into ``pending`` (key -> value, or None for a delete); reads look there first, so
a pipeline sees its own writes. ``commit()`` applies everything pending as one atomic LevelDB
write batch (group commit: all commands of one event-loop turn share it), honouring the
durability mode. Replies are released only after the commit (see ``server.py``).

``start_commit()`` does the same with the LevelDB write in a writer thread while LevelDB is slow
(a write took 5 ms or more in the last 5 s: its memtable is full and it waits for a flush, tens
or hundreds of milliseconds), so that the event loop goes on meanwhile; otherwise it writes at
once (a thread's handoffs cost more than a quick write). Until ``finish_commit()`` the batch
stays readable as ``inflight``,
between ``pending`` and LevelDB; one batch is in flight at a time, and ``commit()`` waits for it
first, so batches reach LevelDB in LogID order. Reads that see data not yet written (pending or
in flight) are counted in ``dirty_reads``: a reply that depends on them waits for the batch.

Between the two sits a bounded record cache of small, recently used records (and of misses):
a dict lookup instead of a call into LevelDB for hot keys. It is updated by every commit, so it
never disagrees with the store.
"""

from __future__ import annotations

import heapq
import logging
import os
import sys
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from resource import RUSAGE_THREAD, getrusage

import plyvel

from ..accel import ext
from . import binlog as blog
from . import keyformat as kf
from .hints import remember
from .rangecache import RangeCache

log = logging.getLogger(__name__)

_MISSING = object()
CACHE_MAX_RECORD = 512  # bytes; larger records are read from LevelDB each time
# A write that took this long (LevelDB waiting for room in its memtable, or slowed down by
# too many level-0 files) sends the writes of the next THREADED_SECONDS to the writer thread.
# On the loop, only when the loop's thread waited in it (a voluntary context switch: LevelDB's
# stall or sleep, the disk) or spent SLOW_WRITE of its own CPU in it (a big batch): a write that
# was only preempted (a busy machine) keeps writing here, where a batch costs less than a
# handoff to the thread. On a 2-core machine at load 6,
# one or two such writes in 10 s sent 56-68% of SET -P 1's batches to the thread.
SLOW_WRITE = 0.005
COMPACT_AFTER = 4096  # deletions in one collection before its range may be compacted
COMPACT_EVERY = 5.0  # seconds from one compaction of a range to the next, at least
MAX_TRACKED = 4096  # collections whose deletions are counted (forgotten at once past it)
THREADED_SECONDS = 5.0
# LevelDB's memtable and table file sizes by default (leveldb-write-buffer-size and
# leveldb-max-file-size). For big values LedisDB's 64 MB / 32 MB do much better (16 KB SETs at
# -c 50 -P 1: 2,400 -> 7,000/s, p99 270 -> 21 ms), but a bigger memtable keeps deletions'
# tombstones longer, and every seek that lands before them walks them, whatever its range (an
# SPOP next to a sorted set emptied by 20,000 ZPOPMINs: 0.39 ms with 8 MB, 2.1 ms with 16 or
# 64 MB): docs/storage-format.md, "LevelDB settings".
WRITE_BUFFER_SIZE = 8 * 1024 * 1024
MAX_FILE_SIZE = 2 * 1024 * 1024
FOUND_MAX = 4096  # seeks whose LevelDB key Engine.first remembers (then all are forgotten)


def write_pending_py(
    pending: dict[bytes, bytes | None],
    put: Callable[[bytes, bytes], None],
    delete: Callable[[bytes], None],
    time_ms: int,
    log: bool,
    max_cached: int,
) -> tuple[bytes | None, list[bytes]]:
    """Put or delete every pending entry through ``put``/``delete`` (a write batch's).

    Returns the binlog record of the loggable changes (None when there are none or ``log`` is
    false) and the keys whose values are too large to stay cached. ``_fastlane.c`` has the same
    function, byte for byte (tests/test_fastlane.py compares them).
    """
    large = []
    changes: list[tuple[bytes, bytes | None]] = []
    for k, v in pending.items():
        if v is None:
            delete(k)
        else:
            put(k, v)
            if len(v) > max_cached:
                large.append(k)
        if log and blog.loggable(k):
            changes.append((k, v))
    return (blog.encode_record(time_ms, changes) if changes else None), large


write_pending = ext.write_pending if ext is not None else write_pending_py


@dataclass
class Flight:
    """A batch built from the pending writes, being written (by the writer thread, or by
    ``commit`` itself)."""

    writes: dict[bytes, bytes | None]
    batch: plyvel.WriteBatch | None
    large: list[bytes]  # keys of records too large to stay cached once written
    record: bytes | None  # its binlog record
    log_id: int  # the LogID of that record (0: none)
    sync: bool
    log_ids: tuple[int, int]  # (first, last) LogID before it, put back if it fails
    seconds: float = 0.0  # how long LevelDB took to write it
    waited: bool = False  # the writing thread gave up the CPU in it (not only preempted)
    cpu: float = 0.0  # seconds of the writing thread's CPU it took (LevelDB's own work)
    error: BaseException | None = None  # why LevelDB refused it
    future: Future[None] | None = None  # settled once written, when the writer thread writes


def _write(flight: Flight) -> None:
    """Write a flight's batch and settle its future (thread-safe: LevelDB releases the GIL
    while it writes, and while it waits for room in its memtable)."""
    before = getrusage(RUSAGE_THREAD)
    started = time.monotonic()
    try:
        assert flight.batch is not None
        flight.batch.write()
    except BaseException as e:
        flight.error = e
    flight.batch = None
    flight.seconds = time.monotonic() - started
    after = getrusage(RUSAGE_THREAD)
    flight.waited = after.ru_nvcsw != before.ru_nvcsw
    flight.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if flight.future is not None:
        flight.future.set_result(None)


def _pieces(item: bytes | tuple[bytes, bytes]) -> tuple[bytes, ...]:
    return item if isinstance(item, tuple) else (item,)


class SortedKeys:
    """The keys of a dict that only grows, in order: the pending batch (written by
    ``Engine.put``/``delete`` and the C lane, never shrunk, replaced whole by a commit) or the
    batch in flight. Sorted once, then the keys added since are merged in when asked: they are
    the last ones in the dict's insertion order. So a range read in a big batch costs
    O(log n + k), not a sort of the whole batch."""

    __slots__ = ("keys", "source")

    def __init__(self) -> None:
        self.source: dict[bytes, bytes | None] = {}
        self.keys: list[bytes] = []

    def of(self, d: dict[bytes, bytes | None]) -> list[bytes]:
        keys = self.keys
        new = len(d) - len(keys)
        if d is not self.source or new < 0:
            self.source = d
            self.keys = keys = sorted(d)
        elif new:
            fresh = islice(reversed(d), new)
            if new <= 16:
                for k in fresh:
                    insort(keys, k)
            else:  # one sort of a sorted run and the rest: O(n + new log new)
                keys.extend(fresh)
                keys.sort()
        return keys

    def range(self, d: dict[bytes, bytes | None], start: bytes, stop: bytes) -> list[bytes]:
        """The keys of ``d`` in [start, stop), in order."""
        keys = self.of(d)
        return keys[bisect_left(keys, start) : bisect_left(keys, stop)]

    def any_in(self, d: dict[bytes, bytes | None], start: bytes, stop: bytes) -> bool:
        keys = self.of(d)
        i = bisect_left(keys, start)
        return i < len(keys) and keys[i] < stop

    def forget(self) -> None:
        self.source = {}
        self.keys = []


def _overlay_items(
    pending: dict[bytes, bytes | None],
    keys: list[bytes],
    inflight: dict[bytes, bytes | None],
    under: list[bytes],
    reverse: bool,
) -> Iterator[tuple[bytes, bytes | None]]:
    """``keys`` of ``pending`` merged with ``under``, keys of the batch in flight beneath it
    (both in walking order), with their values as the walk reaches them."""
    if not under:
        for k in keys:
            yield k, pending[k]
        return
    last = None
    for k in heapq.merge(keys, under, reverse=reverse):
        if k != last:
            last = k
            v = pending.get(k, _MISSING)
            yield k, (inflight[k] if v is _MISSING else v)  # type: ignore[misc]


class StorageError(Exception):
    """The data directory cannot be used (wrong format, locked, unreadable)."""


class WriteFailed(Exception):
    """A write batch was not written (disk full, too many open files...): none of it applies."""


def _message(error: Exception) -> str:
    """LevelDB's words for an error (plyvel gives them as bytes)."""
    if error.args and isinstance(error.args[0], bytes):
        return error.args[0].decode("utf-8", "replace")
    return str(error) or type(error).__name__


def _open_error(path: Path, e: plyvel.Error) -> str:
    """LevelDB's refusal to open ``path`` in words (its text arrives as bytes)."""
    text = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
    if "lock" in text.lower() and ("unavailable" in text.lower() or "held" in text.lower()):
        return (
            f"cannot open {path}: another process holds it (LevelDB's LOCK file is taken): "
            "is another ledis-server running on this data dir?"
        )
    return f"cannot open {path}: {text}"


class Engine:
    def __init__(
        self,
        path: Path,
        fsync: str = "everysec",
        cache_entries: int = 500_000,
        binlog: bool = True,
        compression: str = "none",
        max_open_files: int = 1000,
        write_buffer_size: int = WRITE_BUFFER_SIZE,
        max_file_size: int = MAX_FILE_SIZE,
    ) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StorageError(f"cannot open {path}: it is a file, not a directory") from None
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror}") from None
        try:
            self.db = plyvel.DB(
                str(path),
                create_if_missing=True,
                write_buffer_size=write_buffer_size,
                max_file_size=max_file_size,
                lru_cache_size=128 * 1024 * 1024,
                bloom_filter_bits=10,
                compression=None if compression == "none" else compression,
                max_open_files=max_open_files,
            )
        except plyvel.Error as e:
            raise StorageError(_open_error(path, e)) from None
        self.path = path
        self.fsync = fsync
        self.pending: dict[bytes, bytes | None] = {}
        # The batch the writer thread is writing (readable until finish_commit), or None.
        self.flight: Flight | None = None
        self.inflight: dict[bytes, bytes | None] = {}  # its writes ({} when none)
        # Both in key order, for range reads (kept up to date as they are asked for).
        self._pending_keys = SortedKeys()
        self._inflight_keys = SortedKeys()
        # A LevelDB iterator kept for seeks (``first``) while LevelDB is unchanged: made at the
        # first seek after a write, closed at the next one (``_stale``), so a pop or a random
        # pick seeks an iterator that exists (1.5 µs) instead of making one (3.6 µs).
        self._reader: plyvel.RawIterator | None = None
        # What its seeks found: start -> LevelDB's first key at or after it (None: none), so
        # the next seek from there goes straight to it, past the tombstones (the pops of
        # earlier batches) a seek from the start of a collection steps over. Dropped with it.
        self._found: dict[bytes, bytes | None] = {}
        self._writer: ThreadPoolExecutor | None = None
        # Until then (time.monotonic()), batches are written by the writer thread.
        self.threaded_until = 0.0
        self.threaded_commits = 0  # batches written by the writer thread (INFO)
        self.dirty_reads = 0  # reads that found a pending or in-flight write
        # Where the live records of a sorted set's score index begin and end, past the
        # tombstones its pops left (zset.py keeps them): for the index starting at ``base``, no
        # live record lies below floors[base] nor above ceilings[base]. Writes into the index
        # widen them (ZSet.set, the C lane's ZADD); anything else that changes records without
        # those (a failed batch, replication, a full sync) forgets them all.
        self.floors: dict[bytes, bytes] = {}
        self.ceilings: dict[bytes, bytes] = {}
        # The last member a random pick found in each collection (Collection.last): a hint,
        # right or not, so nothing keeps it up to date; forgotten whole when it grows large.
        self.tails: dict[bytes, bytes] = {}
        # Deletions per collection since its range was last compacted (note_deletes).
        self.deletes: dict[bytes, int] = {}
        self._compactor: ThreadPoolExecutor | None = None
        self._compaction: Future[None] | None = None
        self._next_compaction = 0.0
        self.compactions = 0
        # LRANGE replies kept encoded while their list is unchanged (rangecache.py): a write
        # of an element drops its list's window, whatever changes records behind the engine
        # (forget_bounds) all of them.
        self.ranges = RangeCache()
        # The record cache in two generations: ``cache`` takes every write and recent reads;
        # when it holds half the limit it becomes ``cache_old`` (still read, and entries found
        # there move back to ``cache``), and the generation before is retired: freed a little
        # at a time (``free_retired``), so no step costs more than a slice of the work.
        self.cache: dict[bytes, bytes | None] = {}
        self.cache_old: dict[bytes, bytes | None] = {}
        self._retired: list[dict[bytes, bytes | None]] = []
        self.cache_entries = cache_entries
        self.cache_hits = 0
        self.cache_misses = 0
        self.unsynced = False
        self.last_sync = time.time()
        self.commits = 0
        self.batched_keys = 0
        # Called before each commit, so bookkeeping (key counters) lands in the same batch.
        self.before_commit: list[Callable[[], None]] = []
        # Called after each commit with (LogID, encoded record) -- replication fans out here.
        self.after_commit: list[Callable[[int, bytes], None]] = []
        # Called when a batch could not be written (its writes are dropped, see _failed).
        self.on_failure: list[Callable[[WriteFailed], None]] = []
        self.failed_batches = 0
        self.last_error = ""  # the last failed batch's error, until a batch is written
        self._check_format()
        self.binlog = binlog
        self.first_log_id, self.last_log_id = self._log_bounds()

    # -- format -------------------------------------------------------------------------------

    def _check_format(self) -> None:
        raw = self.db.get(kf.SYS_VERSION)
        if raw is None:
            with self.db.iterator(include_value=False) as it:
                for _ in it:
                    raise StorageError(
                        f"{self.path} holds data without a ledis format record; refusing to use it"
                    )
            self.db.put(kf.SYS_VERSION, kf.U32.pack(kf.FORMAT_VERSION), sync=True)
            return
        version = kf.U32.unpack(raw)[0] if len(raw) == 4 else -1
        if version not in kf.READABLE_FORMATS:
            raise StorageError(
                f"{self.path} uses storage format {version}; this ledis-server reads formats "
                f"{', '.join(map(str, kf.READABLE_FORMATS))}"
            )
        if version != kf.FORMAT_VERSION:  # an older format this one contains: upgrade the mark
            log.warning(
                "%s: storage format %d upgraded to %d", self.path, version, kf.FORMAT_VERSION
            )
            self.db.put(kf.SYS_VERSION, kf.U32.pack(kf.FORMAT_VERSION), sync=True)

    def _log_bounds(self) -> tuple[int, int]:
        """(first, last) LogID held in the binlog; (0, 0) when it is empty."""
        end = kf.prefix_end(blog.NS_BINLOG)
        first = last = 0
        with self.db.iterator(start=blog.NS_BINLOG, stop=end, include_value=False) as it:
            for key in it:
                first = blog.log_id_of(key)
                break
        raw = self.db.raw_iterator()
        try:
            raw.seek(end)
            raw.prev() if raw.valid() else raw.seek_to_last()
            if raw.valid() and raw.key()[:1] == blog.NS_BINLOG:
                last = blog.log_id_of(raw.key())
        finally:
            raw.close()
        stored = self.db.get(kf.SYS_LAST_LOG)
        if stored is not None:  # the log may have been purged entirely: the sequence goes on
            last = max(last, kf.U64.unpack(stored)[0])
        return first, last

    # -- reads and writes -----------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        # The cache also holds every pending write (put() writes both), so one dict lookup
        # answers hot keys; pending is consulted only for writes the cache has dropped.
        value: object = self.cache.get(key, _MISSING)
        if value is _MISSING:
            value = self.cache_old.get(key, _MISSING)
            if value is not _MISSING:
                self.cache[key] = value  # type: ignore[assignment]  # in use: it stays cached
            else:
                value = self.pending.get(key, _MISSING)
                if value is _MISSING:
                    value = self.inflight.get(key, _MISSING)
                    if value is _MISSING:
                        stored: bytes | None = self.db.get(key)
                        self.cache_misses += 1
                        if stored is None or len(stored) <= CACHE_MAX_RECORD:
                            self.cache[key] = stored
                            self.rotate_cache()
                        return stored
                self.dirty_reads += 1
                return value  # type: ignore[return-value]
            self.rotate_cache()
        if (self.pending or self.inflight) and (key in self.pending or key in self.inflight):
            self.dirty_reads += 1
        return value  # type: ignore[return-value]

    def remember(self, key: bytes, value: bytes) -> None:
        """Cache a record a scan has just read (``scan`` merges the pending writes, so it is
        the current one), so that the next ``get`` of it is one dict lookup, as after a
        ``get`` that read it from LevelDB (the migration holds the keys it walks over)."""
        if len(value) <= CACHE_MAX_RECORD:
            self.cache[key] = value
            self.rotate_cache()

    def load(self, key: bytes) -> bytes | None:
        """Read a record the cache does not hold from the batch in flight or LevelDB, and
        cache it (the C lane's reader: it never starts a new cache generation, so the lane's
        view stays valid until ``rotate_cache`` after it)."""
        value = self.inflight.get(key, _MISSING)
        if value is not _MISSING:
            self.dirty_reads += 1
            return value  # type: ignore[return-value]
        stored: bytes | None = self.db.get(key)
        self.cache_misses += 1
        if stored is None or len(stored) <= CACHE_MAX_RECORD:
            self.cache[key] = stored
        return stored

    def rotate_cache(self) -> None:
        """Start a new generation when the young one holds half the limit (O(1); the retired
        generation is freed by ``free_retired``)."""
        if len(self.cache) > self.cache_entries // 2:
            if self.cache_old:
                self._retired.append(self.cache_old)
            self.cache_old = self.cache
            self.cache = {}

    def free_retired(self, budget: int) -> None:
        """Free up to ``budget`` records of retired cache generations."""
        retired = self._retired
        while retired and budget > 0:
            gen = retired[-1]
            n = min(budget, len(gen))
            popitem = gen.popitem
            for _ in range(n):
                popitem()
            budget -= n
            if not gen:
                retired.pop()

    def reset_cache(self) -> None:
        self.cache = {}
        self.cache_old = {}
        self._retired = []

    def cached_records(self) -> int:
        return len(self.cache) + len(self.cache_old)

    def put(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value
        self.cache[key] = value
        if self.ranges.entries:
            self.ranges.written(key)

    def delete(self, key: bytes) -> None:
        self.pending[key] = None
        self.cache[key] = None
        if self.ranges.entries:
            self.ranges.written(key)

    @property
    def dirty(self) -> bool:
        return bool(self.pending)

    def commit(self) -> None:
        """Apply every pending write as one atomic batch (synced when fsync is 'always'),
        after the batch in flight, if any; WriteFailed when either could not be written."""
        if self.flight is not None:
            self.finish_commit(wait=True)
        flight = self._prepare()
        if flight is None:
            return
        self.flight = flight
        _write(flight)
        self.finish_commit()

    def start_commit(self) -> Future[None] | None:
        """Write every pending write as one batch: in the writer thread while LevelDB is slow
        (see ``threaded_until``), returning the future of that write (call ``finish_commit``
        on this thread once it is done, before the next batch); else at once, returning None
        (as when nothing is pending). WriteFailed if the batch cannot be built or written
        here (nothing of it then stays)."""
        assert self.flight is None, "one batch in flight at a time"
        flight = self._prepare()
        if flight is None:
            return None
        self.flight = flight
        if time.monotonic() >= self.threaded_until:
            # Handing a batch to a thread costs more than most writes (the thread's GIL
            # handoffs made the loop wait 15% of its time at redis-benchmark -P 1): write
            # here, and go to the thread for a while once a write was slow.
            _write(flight)
            if flight.seconds >= SLOW_WRITE and (flight.waited or flight.cpu >= SLOW_WRITE):
                self.threaded_until = time.monotonic() + THREADED_SECONDS
            self.finish_commit()
            return None
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="leveldb-writer")
        flight.future = Future()
        self.threaded_commits += 1
        self.inflight = flight.writes
        if self._pending_keys.source is flight.writes:  # sorted already: the batch it was
            self._pending_keys, self._inflight_keys = self._inflight_keys, self._pending_keys
        self._writer.submit(self._write_in_thread, flight)
        return flight.future

    def _write_in_thread(self, flight: Flight) -> None:
        _write(flight)
        # Still slow: stay in the thread a while longer. Here the time includes taking the GIL
        # back from the loop (up to the switch interval, 5 ms, while the loop is busy): only
        # what lies beyond that counts.
        if flight.seconds >= SLOW_WRITE + sys.getswitchinterval():
            self.threaded_until = max(self.threaded_until, time.monotonic() + THREADED_SECONDS)

    def _prepare(self) -> Flight | None:
        """Build the write batch of everything pending, with its binlog record and LogID."""
        if not self.pending:
            return None
        for hook in self.before_commit:
            hook()
        pending = self.pending
        sync = self.fsync == "always"
        log_ids = self.first_log_id, self.last_log_id
        self.pending = {}
        try:
            wb = self.db.write_batch(sync=sync)
            record, large = write_pending(
                pending,
                wb.put,
                wb.delete,
                int(time.time() * 1000),
                self.binlog,
                CACHE_MAX_RECORD,
            )
            if record is not None:
                self.last_log_id += 1
                if not self.first_log_id:
                    self.first_log_id = self.last_log_id
                wb.put(blog.log_key(self.last_log_id), record)
        except Exception as e:
            self.pending = pending
            failure = WriteFailed(_message(e))
            self._failed(failure, log_ids)
            raise failure from e
        log_id = self.last_log_id if record is not None else 0
        return Flight(pending, wb, large, record, log_id, sync, log_ids)

    def finish_commit(self, wait: bool = False) -> bool:
        """Complete the batch in flight once its write returned (``wait``: block until it
        does): the cache, counters and hooks, or, if LevelDB refused it, WriteFailed with
        nothing of it (nor of what is pending, built on it) left. False when there was none
        (already finished)."""
        flight = self.flight
        if flight is None:
            return False
        if flight.future is not None:
            if not wait and not flight.future.done():
                raise RuntimeError("the batch in flight is still being written")
            flight.future.result()
        error = flight.error
        self.flight = None
        self.inflight = {}
        self._stale()
        self._inflight_keys.forget()
        if self._pending_keys.source is flight.writes:
            self._pending_keys.forget()
        if error is not None:
            failure = WriteFailed(_message(error))  # type: ignore[arg-type]
            self._failed(failure, flight.log_ids)
            raise failure from error
        self.last_error = ""
        cache, cache_old = self.cache, self.cache_old
        for k in flight.large:  # big records were cached only until written
            cache.pop(k, None)
            cache_old.pop(k, None)
        self.rotate_cache()
        self.free_retired(2 * len(flight.writes) + 256)  # faster than the cache fills
        self.commits += 1
        self.batched_keys += len(flight.writes)
        if flight.sync:
            self.last_sync = time.time()
        else:
            self.unsynced = True
        if flight.record:
            for notify in self.after_commit:
                notify(flight.log_id, flight.record)
        return True

    def apply_replicated(
        self, records: Sequence[tuple[int, bytes, list[tuple[bytes, bytes | None]]]]
    ) -> None:
        """Apply a master's batches as they are, under the master's LogIDs (replicas only):
        ``records`` are (LogID, raw record, changes) in order, written in one LevelDB batch,
        so ``appendfsync always`` costs one fsync per burst from the master, not one per
        record (a burst of 256 records was 256 fsyncs with the loop held)."""
        if not records:
            return
        self.commit()
        self.forget_bounds()
        self._stale()
        cache = self.cache
        changed = 0
        with self.db.write_batch(sync=self.fsync == "always") as wb:
            for log_id, raw, changes in records:
                changed += len(changes)
                for k, v in changes:
                    if v is None:
                        wb.delete(k)
                        cache[k] = None
                    else:
                        wb.put(k, v)
                        if len(v) <= CACHE_MAX_RECORD:
                            cache[k] = v
                        else:
                            cache.pop(k, None)
                            self.cache_old.pop(k, None)
                if self.binlog:
                    wb.put(blog.log_key(log_id), raw)
            if not self.binlog:  # without a log of its own, the replica remembers where it is
                wb.put(kf.SYS_LAST_LOG, kf.U64.pack(records[-1][0]))
        if self.binlog and not self.first_log_id:
            self.first_log_id = records[0][0]
        self.last_log_id = records[-1][0]
        self.unsynced = True
        self.rotate_cache()
        self.free_retired(2 * changed + 256)
        for log_id, raw, _changes in records:
            for notify in self.after_commit:
                notify(log_id, raw)

    def wipe(self) -> None:
        """Delete everything but the format record (a replica before a full sync)."""
        self.commit()
        self.reset_cache()
        self.forget_bounds()
        self._stale()
        batch = self.db.write_batch()
        n = 0
        with self.db.iterator(include_value=False) as it:
            for k in it:
                if k == kf.SYS_VERSION:
                    continue
                batch.delete(k)
                n += 1
                if n % 10_000 == 0:
                    batch.write()
                    batch = self.db.write_batch()
        batch.write()
        self.first_log_id = self.last_log_id = 0

    def load_chunk(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """Write records of a full sync (not logged: the snapshot is not a batch of its own)."""
        self.forget_bounds()
        self._stale()
        cache, old = self.cache, self.cache_old
        with self.db.write_batch() as wb:
            for k, v in pairs:
                wb.put(k, v)
                cache.pop(k, None)  # a read while the sync runs may have cached it as missing
                old.pop(k, None)

    def log_size(self) -> int:
        return self.approximate_size(blog.NS_BINLOG, kf.prefix_end(blog.NS_BINLOG))

    def purge_log(self, max_bytes: int, max_age_s: int, budget: int = 1000) -> int:
        # The newest record is never purged, so the last LogID is always found in the log;
        # 0x00 'L' only carries it across a restore or a full sync (whose logs start empty).
        """Drop the oldest binlog records beyond the size or age limits (a bounded step);
        returns how many were dropped."""
        if not self.first_log_id:
            return 0
        now_ms = int(time.time() * 1000)
        too_big = max_bytes and self.log_size() > max_bytes
        dropped = 0
        for key, raw in self.scan(blog.NS_BINLOG, kf.prefix_end(blog.NS_BINLOG)):
            log_id = blog.log_id_of(key)
            if log_id >= self.last_log_id or dropped >= budget:
                break  # the newest record always stays: it anchors the sequence
            old = max_age_s and now_ms - kf.U64.unpack_from(raw, 0)[0] > max_age_s * 1000
            if not (too_big or old):
                break
            self.delete(key)
            dropped += 1
            self.first_log_id = log_id + 1
        if dropped:
            self.commit()
        return dropped

    def read_log(self, after: int) -> Iterator[blog.Record]:
        """Binlog records with LogID > ``after``, oldest first."""
        start = blog.log_key(after + 1)
        yield from blog.iter_records(self.scan(start, kf.prefix_end(blog.NS_BINLOG)))

    def discard_pending(self) -> None:
        self.pending = {}
        self.reset_cache()
        self.forget_bounds()

    def forget_bounds(self) -> None:
        """Forget where sorted sets' live scores begin and end, and the LRANGE windows
        (records changed behind them)."""
        self.ranges.clear()
        if self.floors or self.ceilings:
            self.floors.clear()
            self.ceilings.clear()

    def _failed(self, error: WriteFailed, log_ids: tuple[int, int]) -> None:
        """A batch could not be written: nothing of it stays in memory either. The pending
        writes and the record cache (which holds them) are dropped, the LogIDs put back, and
        ``on_failure`` lets the keeper of other bookkeeping re-read it from the store."""
        self.first_log_id, self.last_log_id = log_ids
        self.failed_batches += 1
        self.last_error = str(error)
        self.discard_pending()
        for hook in self.on_failure:
            hook(error)

    def sync(self) -> None:
        """Force everything written so far to stable storage (used by 'everysec')."""
        self.commit()
        if self.unsynced:
            # A synced write flushes and fsyncs LevelDB's log, including earlier writes.
            self._stale()
            self.db.put(b"\x00T", kf.U64.pack(int(time.time() * 1000)), sync=True)
            self.unsynced = False
            self.last_sync = time.time()

    def sync_log_files(self) -> int:
        """fsync LevelDB's log files: what was written to them so far is then on stable
        storage. Blocking, thread-safe, and outside LevelDB's writer queue (a synced write
        would hold up the event loop's writes behind the fsync), so 'everysec' runs it in a
        thread: LevelDB appends each batch to its log with write(2), so an fsync of the file
        from any descriptor covers it; a log that LevelDB retired is in a table it synced.
        Returns the number of commits covered (pass it to ``synced``)."""
        covered = self.commits
        for path in self.path.glob("*.log"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # retired meanwhile: its records are in a synced table
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return covered

    def synced(self, covered: int) -> None:
        """``sync_log_files`` finished; the writes of the first ``covered`` commits are safe."""
        self.last_sync = time.time()
        if self.commits == covered:
            self.unsynced = False

    # -- iteration ------------------------------------------------------------------------------

    def scan(
        self, start: bytes, stop: bytes, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate [start, stop) over LevelDB merged with the pending batch (pending wins).

        Nothing is committed here, so a transaction that reads ranges mid-way is still applied
        as one batch. The pending and in-flight keys in the range are those of when iteration
        starts (LevelDB's, those of its snapshot then); their values are read as the walk
        reaches them, so a walk that stops early costs what it read, not the whole range.
        """
        overlay = self._overlay(start, stop, reverse)
        with self._range(start, stop, reverse) as it:
            if overlay is None:
                yield from it
                return
            self.dirty_reads += 1
            later = (lambda a, b: a < b) if reverse else (lambda a, b: a > b)
            head = next(overlay, None)
            for k, v in it:
                while head is not None and not later(head[0], k):
                    pk, pv = head
                    head = next(overlay, None)
                    if pk == k:
                        v = pv  # type: ignore[assignment]
                        break
                    if pv is not None:
                        yield pk, pv
                if v is not None:
                    yield k, v
            while head is not None:
                if head[1] is not None:
                    yield head  # type: ignore[misc]
                head = next(overlay, None)

    def first(self, start: bytes, stop: bytes, reverse: bool = False) -> tuple[bytes, bytes] | None:
        """The first record of [start, stop) (``reverse``: the last), as ``scan`` would yield
        it first, in one seek: LevelDB's records merged with the pending and in-flight writes
        (bisected, pending wins), stepping over what they deleted, as far as the first live
        record and no further. None when the range holds nothing. What pops and random picks
        seek with (zset.py, sampling.py, the C lane's ZPOPMIN and SPOP), where a ``scan``
        generator, its context manager and a new LevelDB iterator cost more than the seek."""
        pending, inflight = self.pending, self.inflight
        # the overlay's keys in walking order: pending's and the batch in flight's
        ps = self._pending_keys.of(pending) if pending else ()
        fs = self._inflight_keys.of(inflight) if inflight else ()
        if reverse:
            pi, fi = bisect_left(ps, stop) - 1, bisect_left(fs, stop) - 1
            pe = fe = -1
            step = -1
        else:
            pi, fi = bisect_left(ps, start), bisect_left(fs, start)
            pe, fe = len(ps), len(fs)
            step = 1
        it = self._reader
        if it is None:
            it = self._reader = self.db.raw_iterator()
        k: bytes | None
        if reverse:
            it.seek(stop)
            if it.valid():
                it.prev()
            else:
                it.seek_to_last()
            k = it.key() if it.valid() else None
        else:
            found = self._found.get(start, start)
            if found is None:
                k = None
            else:
                it.seek(found)
                k = it.key() if it.valid() else None
                if found is start:  # a new start: remember where it led
                    remember(self._found, start, k, FOUND_MAX)
        dirty = False
        while True:
            if k is not None and (k < start if reverse else k >= stop):
                k = None
            o: bytes | None = None  # the overlay's next key
            if pi != pe:
                o = ps[pi]
            if fi != fe and (o is None or (fs[fi] > o if reverse else fs[fi] < o)):
                o = fs[fi]
            if o is not None and (o < start if reverse else o >= stop):
                o = None
            if o is None or (k is not None and (k > o if reverse else k < o)):
                if dirty:
                    self.dirty_reads += 1
                return None if k is None else (k, it.value())
            dirty = True
            v = pending.get(o, _MISSING)
            if v is _MISSING:
                v = inflight[o]
            if v is not None:
                self.dirty_reads += 1
                return o, v  # type: ignore[return-value]
            # deleted: past it in the overlay (both), and in LevelDB when it is there
            if pi != pe and ps[pi] == o:
                pi += step
            if fi != fe and fs[fi] == o:
                fi += step
            if k == o:
                it.prev() if reverse else it.next()
                k = it.key() if it.valid() else None

    def _stale(self) -> None:
        """LevelDB changes (or closes): the iterator kept for seeks would not see it."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._found.clear()

    @contextmanager
    def _range(
        self, start: bytes, stop: bytes, reverse: bool
    ) -> Iterator[Iterator[tuple[bytes, bytes]]]:
        """LevelDB's items in [start, stop), forwards or backwards.

        Backwards uses a raw iterator: plyvel's bounded reverse iterator can skip a range
        whose upper bound is an existing key.
        """
        if not reverse:
            with self.db.iterator(start=start, stop=stop) as it:
                yield it
            return
        raw = self.db.raw_iterator()
        try:
            yield self._backwards(raw, start, stop)
        finally:
            raw.close()

    @staticmethod
    def _backwards(
        raw: plyvel.RawIterator, start: bytes, stop: bytes
    ) -> Iterator[tuple[bytes, bytes]]:
        raw.seek(stop)
        if raw.valid():
            raw.prev()
        else:
            raw.seek_to_last()
        while raw.valid():
            key = raw.key()
            if key < start:
                return
            if key < stop:
                yield key, raw.value()
            raw.prev()

    def encoded_range(
        self, start: bytes, stop: bytes, cut: int, keys: bool, values: bool
    ) -> tuple[bytes, int]:
        """The records in [start, stop) as RESP bulk strings in one bytes object: keys
        (without their first ``cut`` bytes), values, or both (key, value, key ...); and how
        many bulks. Read straight from LevelDB in C when nothing pending or in flight is in
        the range, else through ``scan``."""
        if ext is not None and not self.unwritten_in(start, stop):
            with self.db.iterator(
                start=start, stop=stop, include_key=keys, include_value=values
            ) as it:
                return ext.encode_bulks(it, cut if keys else 0)
        items: Iterator[bytes | tuple[bytes, bytes]]
        if keys and values:
            items = ((k[cut:], v) for k, v in self.scan(start, stop))
        elif keys:
            items = (k[cut:] for k, _v in self.scan(start, stop))
        else:
            items = (v for _k, v in self.scan(start, stop))
        parts = [b"$%d\r\n%b\r\n" % (len(x), x) for item in items for x in _pieces(item)]
        return b"".join(parts), len(parts)

    def _overlay(
        self, start: bytes, stop: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes | None]] | None:
        """The pending and in-flight writes in [start, stop), in order (pending wins), their
        values read lazily; None when there are none. O(log n) to start in a batch of n."""
        pending, inflight = self.pending, self.inflight
        keys = self._pending_keys.range(pending, start, stop) if pending else []
        under = self._inflight_keys.range(inflight, start, stop) if inflight else []
        if not (keys or under):
            return None
        if reverse:
            keys.reverse()
            under.reverse()
        return _overlay_items(pending, keys, inflight, under, reverse)

    def unwritten_in(self, start: bytes, stop: bytes) -> bool:
        """Whether a pending or in-flight write falls in [start, stop) (O(1) when none is
        waiting, as is usual for reads; O(log n) else)."""
        return bool(
            (self.pending and self._pending_keys.any_in(self.pending, start, stop))
            or (self.inflight and self._inflight_keys.any_in(self.inflight, start, stop))
        )

    def scan_keys(self, start: bytes, stop: bytes) -> Iterator[bytes]:
        for k, _v in self.scan(start, stop):
            yield k

    def first_key(self, start: bytes, stop: bytes) -> bytes | None:
        for k in self.scan_keys(start, stop):
            return k
        return None

    def approximate_size(self, start: bytes, stop: bytes) -> int:
        return int(self.db.approximate_size(start, stop))

    def disk_bytes(self) -> int:
        """What the store takes on disk: the sizes of the files in its directory (tables, the
        write-ahead log, the manifest). LevelDB's approximate_size counts tables only, so
        writes still in the memtable (and in the log) read as 0 bytes."""
        total = 0
        with os.scandir(self.path) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # a table compaction removed meanwhile
        return total

    def store_memory(self) -> int:
        """What LevelDB holds in memory: its block cache and its memtables (writes not yet in a
        table: a burst of big values stays there until later writes push it out)."""
        try:
            return int(self.property("leveldb.approximate-memory-usage") or 0)
        except ValueError:  # pragma: no cover - a LevelDB without the property
            return 0

    def property(self, name: str) -> str:
        value = self.db.get_property(name.encode())
        return value.decode() if value else ""

    def note_deletes(self, start: bytes, count: int, live: int) -> None:
        """``count`` members of the collection whose records start with ``start`` were
        deleted and ``live`` are left. LevelDB keeps a tombstone for each until a compaction
        reaches it, and every walk through the range steps over them (a set emptied by SPOP
        took ms a pick near its end): once they are ``COMPACT_AFTER`` or more and four times
        the live members, the range is compacted in a thread of its own (LevelDB lets go of
        the interpreter's lock meanwhile; it writes what its memtable holds first), one at a
        time, at most every ``COMPACT_EVERY`` seconds."""
        deletes = self.deletes
        if live <= 0:  # the collection is gone: nothing walks its range any more
            deletes.pop(start, None)
            return
        total = deletes.get(start, 0) + count
        busy = self._compaction is not None and not self._compaction.done()
        if (
            total < COMPACT_AFTER
            or total < 4 * live
            or busy
            or time.monotonic() < self._next_compaction
        ):
            remember(deletes, start, total, MAX_TRACKED)
            return
        deletes.pop(start, None)
        self._next_compaction = time.monotonic() + COMPACT_EVERY
        if self._compactor is None:
            self._compactor = ThreadPoolExecutor(1, thread_name_prefix="leveldb-compact")
        self._compaction = self._compactor.submit(self._compact, start, kf.prefix_end(start))

    def _compact(self, start: bytes, stop: bytes) -> None:
        began = time.perf_counter()
        self.db.compact_range(start=start, stop=stop)
        self.compactions += 1
        log.debug("compacted a collection's range (%.1f ms)", (time.perf_counter() - began) * 1000)

    def close(self) -> None:
        if self.db.closed:
            return
        self.sync()
        self._stale()
        if self._compactor is not None:
            self._compactor.shutdown(wait=True)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self.db.close()
