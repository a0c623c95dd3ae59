"""Latency: the latency monitor's events (LATENCY LATEST / HISTORY / GRAPH / DOCTOR / RESET)
and each command's histogram of durations (LATENCY HISTOGRAM, INFO latencystats).

Events, as Redis's: a command at least ``latency-monitor-threshold`` ms long adds a sample to
``command`` (or ``fast-command``); an event keeps its latest 160 samples, one per second (the
highest of that second), and its all-time high.

Histograms: each command (and subcommand) counts its calls by duration in power-of-two
buckets, bucket ``k`` holding calls shorter than ``1024 << k`` ns: recording one call is a
shift, a ``bit_length`` and an increment (``python -m bench.latency_bench`` measures what it
costs). Replies show each bucket as Redis 7.0 does: the bucket's upper bound in µs as its
histogram (HdrHistogram, 2 significant digits) reports it (1, 2, 4, 8, 16, 33, 66, 132 ...),
with the cumulative count of calls up to there, for the buckets that hold calls. Percentiles
(INFO latencystats) are the upper bound of the bucket they fall in, so they are coarser than
Redis's (within a factor of two). ``latency-tracking no`` stops the recording: every command
then counts into one scratch histogram that nothing reads. Commands of the C fast lane are
timed per run, so each counts at the average duration of its run.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dispatch import Dispatcher
    from .server import Server

BUCKETS = 64  # (ns >> 10).bit_length() of any 64-bit duration is below this
SAMPLES_KEPT = 160  # per event, as Redis's LATENCY_TS_LEN
GRAPH_COLUMNS = 80
_SCRATCH = [0] * BUCKETS  # where calls count while latency-tracking is off


def new_histogram() -> list[int]:
    return [0] * BUCKETS


def bucket_bound_ns(k: int) -> int:
    """The highest duration HdrHistogram (2 significant digits) counts at ``1024 << k`` ns:
    the bound Redis reports for that bucket."""
    value = 1024 << k
    shift = max(0, value.bit_length() - 8)
    return value + (1 << shift) - 1


def cumulative(histogram: list[int]) -> list[tuple[int, int]]:
    """(upper bound in µs, calls up to it) for each bucket that holds calls."""
    out = []
    total = 0
    for k, n in enumerate(histogram):
        if n:
            total += n
            out.append((bucket_bound_ns(k) // 1000, total))
    return out


def percentile(histogram: list[int], p: float) -> float:
    """The upper bound (µs) of the bucket holding the ``p``-th percentile call (0 if none)."""
    total = sum(histogram)
    if not total:
        return 0.0
    rank = max(1, -(-total * p // 100))  # the ceil(p% of total)-th call
    seen = 0
    for k, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return bucket_bound_ns(k) / 1000
    return bucket_bound_ns(BUCKETS - 1) / 1000


def set_tracking(dispatcher: Dispatcher, on: bool) -> None:
    """latency-tracking yes|no: give each command its own histogram (kept while it stays on)
    or point them all at the scratch one."""
    for e in dispatcher.all_entries:
        if not on:
            e.histogram = _SCRATCH
        elif e.histogram is _SCRATCH:
            e.histogram = new_histogram()


def reset_histograms(dispatcher: Dispatcher, on: bool) -> None:
    """CONFIG RESETSTAT."""
    for e in dispatcher.all_entries:
        e.histogram = new_histogram() if on else _SCRATCH


def tracked(histogram: list[int]) -> bool:
    return histogram is not _SCRATCH and any(histogram)


class LatencyMonitor:
    """Latency events (LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR)."""

    def __init__(self) -> None:
        self.events: dict[str, deque[tuple[int, int]]] = {}
        self.highest: dict[str, int] = {}

    def sample(self, event: str, ms: int) -> None:
        samples = self.events.get(event)
        if samples is None:
            samples = self.events[event] = deque(maxlen=SAMPLES_KEPT)
        now = int(time.time())
        if samples and samples[-1][0] == now:  # one sample a second: its highest
            if ms <= samples[-1][1]:
                self.highest[event] = max(self.highest.get(event, 0), ms)
                return
            samples.pop()
        samples.append((now, ms))
        self.highest[event] = max(self.highest.get(event, 0), ms)

    def reset(self, names: list[str]) -> int:
        """Forget the named events (every event when none is named); how many there were.
        Names match case-insensitively, as Redis's."""
        wanted = {n.lower() for n in names}
        gone = [e for e in self.events if not names or e.lower() in wanted]
        for event in gone:
            del self.events[event]
            self.highest.pop(event, None)
        return len(gone)

    def latest(self) -> list[list[object]]:
        return [
            [name.encode(), samples[-1][0], samples[-1][1], self.highest.get(name, 0)]
            for name, samples in self.events.items()
            if samples
        ]

    def history(self, event: str) -> list[list[int]]:
        return [[ts, ms] for ts, ms in self.events.get(event, ())]

    def graph(self, event: str) -> str | None:
        """An ASCII graph of an event's samples (None: no samples), Redis's layout: a title
        line, a rule, four rows of bars, and under each column how long ago it was."""
        samples = list(self.events.get(event, ()))
        if not samples:
            return None
        values = [ms for _ts, ms in samples]
        high, low = max(values), min(values)
        now = int(time.time())
        lines = [
            f"{event} - high {high} ms, low {low} ms (all time high {self.highest[event]} ms)",
            "-" * GRAPH_COLUMNS,
        ]
        for start in range(0, len(samples), GRAPH_COLUMNS):
            part = samples[start : start + GRAPH_COLUMNS]
            if start:
                lines.append("")
            lines += _bars([ms for _t, ms in part], low, high)
            labels = [_ago(now - ts) for ts, _ms in part]
            lines.append("")
            for row in range(max(len(label) for label in labels)):
                lines.append("".join(lb[row] if row < len(lb) else " " for lb in labels))
        return "\n".join(lines) + "\n"

    def doctor(self, server: Server) -> str:
        """A report in plain words: each event's spikes, and what might help."""
        threshold = server.config["latency-monitor-threshold"]
        if not self.events and not threshold:
            return (
                "Latency monitoring is off on this ledis-server, and nothing was recorded "
                'while it was on. Turn it on with "CONFIG SET latency-monitor-threshold '
                '<milliseconds>": commands at least that slow are then recorded as latency '
                "events.\n"
            )
        if not self.events:
            return (
                f"No latency spike of {threshold} ms or more was seen since the latency "
                "monitor was turned on (or last reset). Nothing to report.\n"
            )
        lines = ["Latency spikes were recorded on this ledis-server:", ""]
        advice: list[str] = []
        for n, (event, samples) in enumerate(self.events.items(), 1):
            values = [ms for _t, ms in samples]
            avg = sum(values) // len(values)
            mad = sum(abs(v - avg) for v in values) // len(values)
            period = max(1, int(time.time()) - min(t for t, _ in samples)) / len(values)
            lines.append(
                f"{n}. {event}: {len(values)} latency spikes (average {avg}ms, mean deviation "
                f"{mad}ms, period {period:.2f} sec). Worst all time event "
                f"{self.highest.get(event, 0)}ms."
            )
            if event == "command":
                slow = server.config["slowlog-log-slower-than"]
                if slow < 0:
                    advice.append(
                        "- Slow commands caused spikes but the slow log is off: turn it on "
                        f"with 'CONFIG SET slowlog-log-slower-than {threshold * 1000}' to see "
                        "which ones."
                    )
                elif slow // 1000 > threshold:
                    advice.append(
                        "- The slow log only records commands slower than the latency "
                        "threshold's spikes: 'CONFIG SET slowlog-log-slower-than "
                        f"{threshold * 1000}' records these too."
                    )
                advice.append(
                    "- SLOWLOG GET shows the slow commands. Commands over big collections "
                    "(ZRANGE 0 -1, HGETALL, SMEMBERS, KEYS, LRANGE over a long list) take time "
                    "in proportion to what they return: ask for less at a time (SCAN, ranges)."
                )
            elif event == "fast-command":
                advice.append(
                    "- Commands that should take microseconds took milliseconds: the machine "
                    "is short of CPU for this process (other load on it, a noisy neighbour), "
                    "or the store waited on the disk. Compare with the load of the machine."
                )
        lines.append("")
        if advice:
            lines.append("What might help:")
            lines.append("")
            lines += advice
        else:
            lines.append("No simple remedy is known for these events.")
        return "\n".join(lines) + "\n"


def _ago(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


_FILL = "_o#"
_ROWS = 4


def _bars(values: list[int], low: int, high: int) -> list[str]:
    """Four rows of bars for ``values``, scaled between ``low`` and ``high``: each row has
    three heights (``_`` ``o`` ``#``) and is solid (``|``) under the top of a bar."""
    steps = len(_FILL) * _ROWS
    span = (high - low) or 1
    levels = [min(steps - 1, max(0, int((v - low) * steps / span))) for v in values]
    rows = []
    for row in range(_ROWS):
        below = (_ROWS - row - 1) * len(_FILL)  # steps under this row
        chars = []
        for level in levels:
            part = level - below
            chars.append(_FILL[part] if 0 <= part < len(_FILL) else ("|" if part >= 3 else " "))
        rows.append("".join(chars))
    return rows
