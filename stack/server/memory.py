"""Memory: what the clients' buffers hold, and giving back to the system what was freed.

Python frees a client's buffers as soon as they are done with, but glibc's malloc keeps freed
heap memory for reuse and, after large blocks have come and gone, raises its threshold for
mapping big blocks on their own, so a burst of big requests can leave the process large for
good. The cron asks glibc, in a thread, to return what it holds free (``malloc_trim``, where
the C library has it), at most every ``TRIM_EVERY`` seconds, when one of these says memory came
and went since the last trim:

* the clients' buffers fell by ``TRIM_AFTER`` from their high mark (a burst is over);
* the process grew by ``TRIM_GROWTH``;
* the memory it holds resident beyond what malloc has in use grew by ``TRIM_GROWTH``: what big
  writes leave behind is freed later, by the store's compactions and the background reclaim,
  while the process does not grow (its pages were touched before). glibc's own count of free
  bytes cannot tell this: a trim gives back the pages of free chunks but keeps them counted as
  free, and a compaction that reuses and frees them again leaves that count where it was.

INFO memory shows the buffers, their peak, and what the trims gave back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import resource
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)

TRIM_AFTER = 16 * 1024 * 1024  # bytes of client buffers freed that call for a trim
TRIM_GROWTH = 64 * 1024 * 1024  # RSS grown since the last trim that calls for one
TRIM_EVERY = 5.0  # seconds between trims at most


def rss() -> int:
    """The resident set size of this process (bytes)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def anonymous_rss() -> int:
    """The part of the resident set that is the process's own memory (heap, buffers), not
    pages of mapped files (LevelDB maps its table files: those are the page cache's)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return rss()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (find_library may run ldconfig), or None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _libc_function(name: str, argtypes: list[Any], restype: Any) -> Callable[..., Any] | None:
    """A function of glibc's with its C signature, or None (another C library, or an older
    glibc without it)."""
    libc = _libc()
    fn = getattr(libc, name, None) if libc is not None else None
    if fn is None:
        return None
    fn.argtypes = argtypes
    fn.restype = restype
    return fn  # type: ignore[no-any-return]


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None (another C library)."""
    return _libc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's mallinfo2 (glibc 2.33+), or None."""
    return _libc_function("mallinfo2", [], _MallInfo2)


def _heap_in_use() -> Callable[[], int] | None:
    """The bytes malloc has handed out and not had back (in its heaps and mapped on their
    own), or None (a C library without mallinfo2)."""
    info = _mallinfo2()
    if info is None:
        return None

    def in_use() -> int:
        i = info()
        return int(i.uordblks + i.hblkhd)

    return in_use


class Memory:
    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._heap_in_use = _heap_in_use()
        self._slack_base = 0  # resident beyond malloc's use, after the last trim
        self.trims = 0
        self.released = 0  # RSS the trims gave back (bytes)
        self.unparsed_bytes = 0  # input received and not yet parsed, all clients
        self.query_peak = 0  # most input held by clients at once
        self.buffers_peak = 0  # most input and output held by clients at once (sampled)
        self._high = 0  # most held since the last trim
        self._freed = 0  # held by clients that went away since the last trim
        self._last_trim = 0.0
        self._base = anonymous_rss()  # after the last trim
        self.startup = self._base  # the process's own memory when the server started

    @property
    def can_trim(self) -> bool:
        return self._trim is not None

    def unparsed(self, delta: int) -> None:
        """The unparsed input clients hold changed by ``delta`` bytes (kept exactly, so the
        peak of a burst shorter than a sample is seen too)."""
        self.unparsed_bytes += delta
        if self.unparsed_bytes > self.query_peak:
            self.query_peak = self.unparsed_bytes

    def gone(self, held: int) -> None:
        """A client that held ``held`` bytes of buffers went away."""
        self._freed += held

    def sample(self, clients: Iterable[Client]) -> bool:
        """Once a second: note what the clients hold; True when a trim is due (after a burst:
        run ``trim`` in a thread then)."""
        query = output = 0
        for c in clients:
            query += c.query_bytes()
            output += c.output_bytes()
        held = query + output
        self.query_peak = max(self.query_peak, query)
        self.buffers_peak = max(self.buffers_peak, held)
        self._high = max(self._high, held)
        now = time.monotonic()
        if self._trim is None or now - self._last_trim < TRIM_EVERY:
            return False
        burst_over = self._high - held + self._freed >= TRIM_AFTER
        resident = anonymous_rss()
        if (
            not burst_over
            and resident - self._base < TRIM_GROWTH
            and self._slack(resident) - self._slack_base < TRIM_GROWTH
        ):
            return False
        self._last_trim = now
        self._high = held
        self._freed = 0
        return True

    def _slack(self, resident: int) -> int:
        """Resident memory beyond what malloc has in use: free heap whose pages are still the
        process's, plus what is not malloc's at all (the interpreter's arenas, stacks), which
        changes little (0 without mallinfo2)."""
        if self._heap_in_use is None:
            return 0
        return resident - self._heap_in_use()

    def trim(self) -> int:
        """Return the heap's free memory to the system (glibc's malloc_trim, which lets go
        of the interpreter's lock: it may run in a thread of its own, and take tens of
        milliseconds after a big burst); the RSS it gave back."""
        if self._trim is None:
            return 0
        before = anonymous_rss()
        started = time.perf_counter()
        self._trim(0)
        after = anonymous_rss()
        self._base = after
        self._slack_base = self._slack(after)
        freed = max(0, before - after)
        self.trims += 1
        self.released += freed
        log.info(
            "returned %d MB of freed memory to the system (%.1f ms)",
            freed >> 20,
            (time.perf_counter() - started) * 1000,
        )
        return freed


def allocator_stats() -> str:
    """MEMORY MALLOC-STATS: glibc's malloc figures (mallinfo2), or Redis's answer for an
    allocator without statistics."""
    fn = _mallinfo2()
    if fn is None:
        return "Stats not supported for the current allocator"
    info = fn()
    rows = [
        ("arena", info.arena, "bytes in the main heap (from sbrk)"),
        ("hblkhd", info.hblkhd, "bytes in blocks mapped on their own (mmap)"),
        ("hblks", info.hblks, "blocks mapped on their own"),
        ("uordblks", info.uordblks, "bytes in use"),
        ("fordblks", info.fordblks, "bytes free in the heap"),
        ("keepcost", info.keepcost, "bytes malloc_trim could give back from the top"),
        ("ordblks", info.ordblks, "free chunks"),
        ("fsmblks", info.fsmblks, "bytes in free fastbin blocks"),
    ]
    lines = ["___ glibc malloc statistics (mallinfo2) ___"]
    lines += [f"{key}: {value} ({what})" for key, value, what in rows]
    return "\n".join(lines) + "\n"
