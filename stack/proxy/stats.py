"""The proxy's counters: operations per command and per slot, ops/s, latency percentiles.

Latency is measured per batch (from the moment the client's bytes arrived to the moment the
batch's replies were complete) and counted once per command in a log-linear histogram
(4 buckets per power of two, so a percentile is within 19% of the truth); percentiles are
taken over the last 10 to 20 seconds (two rotating windows) and over the proxy's life.
"""

from __future__ import annotations

import time
from array import array

from stack.core.slots import SLOT_COUNT

from .rules import FAST, all_rules

_SUB = 4  # buckets per power of two
_BUCKETS = 64 * _SUB
WINDOW = 10.0  # seconds per window


def bucket_of(us: int) -> int:
    if us < 8:
        return us
    bits = us.bit_length()
    return (bits - 2) * _SUB + ((us >> (bits - 3)) & 3)


def bucket_floor(b: int) -> int:
    """The smallest latency (µs) that falls in bucket ``b``."""
    if b < 8:
        return b
    bits = b // _SUB + 2
    return (4 + b % _SUB) << (bits - 3)


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = array("Q", [0]) * _BUCKETS
        self.total = 0

    def add(self, us: int, n: int = 1) -> None:
        self.counts[bucket_of(us) if us < 1 << 62 else _BUCKETS - 1] += n
        self.total += n

    def merged(self, other: Histogram) -> Histogram:
        h = Histogram()
        h.counts = array("Q", (a + b for a, b in zip(self.counts, other.counts, strict=True)))
        h.total = self.total + other.total
        return h

    def percentile(self, p: float) -> int:
        """The latency (µs, bucket floor) below which ``p`` percent of samples fall."""
        if not self.total:
            return 0
        rank = self.total * p / 100.0
        seen = 0
        for b, c in enumerate(self.counts):
            seen += c
            if c and seen >= rank:
                return bucket_floor(b)
        return bucket_floor(_BUCKETS - 1)


class Stats:
    def __init__(self) -> None:
        self.started = time.time()
        self.slot_ops = array("Q", [0]) * SLOT_COUNT
        self.fast_calls = array("Q", [0]) * len(FAST.rules)  # the C router's, by FAST index
        self.reset()

    def reset(self) -> None:
        for rule in all_rules():
            rule.calls = 0
        # zeroed in place: a client's loop may hold them while a CONFIG RESETSTAT runs
        self.fast_calls[:] = array("Q", [0]) * len(self.fast_calls)
        self.slot_ops[:] = array("Q", [0]) * SLOT_COUNT
        self.errors = 0  # error replies the proxy made (CROSSSLOT, backend down ...)
        self.redirects = 0  # MOVED / ASK / TRYAGAIN handled
        self.migrated_keys = 0  # SLOTSMGRTTAGONE calls made
        self.connections = 0
        self.rejected = 0
        self.net_in = 0
        self.net_out = 0
        self.life = Histogram()
        self.window = Histogram()
        self.previous = Histogram()
        self.window_start = time.monotonic()
        self.total_at_sample = 0
        self.sample_time = time.monotonic()
        self.ops_per_sec = 0

    @property
    def commands(self) -> dict[str, int]:
        """Calls per command (counted on the rules, one attribute per command call, and for
        the commands the C router ran, in ``fast_calls``)."""
        calls = {r.name: r.calls for r in all_rules() if r.calls}
        for rule, n in zip(FAST.rules, self.fast_calls, strict=True):
            if n:
                calls[rule.name] = calls.get(rule.name, 0) + n
        return calls

    @property
    def total(self) -> int:
        return sum(r.calls for r in all_rules()) + sum(self.fast_calls)

    def latency(self, us: int, n: int) -> None:
        b = bucket_of(us) if us < 1 << 40 else _BUCKETS - 1
        self.window.counts[b] += n
        self.window.total += n

    def tick(self, now: float) -> None:
        """Once a second: ops/s, and the latency windows."""
        total = self.total
        elapsed = now - self.sample_time
        if elapsed > 0:
            self.ops_per_sec = int((total - self.total_at_sample) / elapsed)
        self.total_at_sample = total
        self.sample_time = now
        if now - self.window_start >= WINDOW:
            self.life = self.life.merged(self.window)
            self.previous = self.window
            self.window = Histogram()
            self.window_start = now

    def recent(self) -> Histogram:
        return self.previous.merged(self.window)

    def lifetime(self) -> Histogram:
        return self.life.merged(self.window)
