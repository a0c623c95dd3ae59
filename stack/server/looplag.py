"""How long the event loop keeps what is ready waiting: the signal the pace of background
work (slot moves, docs/cluster.md "The pace of the moves") reads to give way while other
clients wait, and to run at full speed when nobody does.

While some background work uses it (``touch``), a timer is set every ``TICK``; how late
each one runs is how long a client whose request arrived then waited on top of its own
work: this node's loop busy elsewhere, or the process kept from the CPU by the machine's
other work. A tick ``LATE`` or more after its time counts as a wait (``late_ticks``, the
time of the last in ``late_at``): uvloop keeps its timers to the millisecond, so a tick on
an idle loop runs up to about 1 ms late by itself, and ``LATE`` is counted beyond that.
With nothing touching it for ``IDLE`` the timer stops (an idle node sets no timer).
"""

from __future__ import annotations

import asyncio
import time

TICK = 0.001  # seconds between two ticks (the loop's timers: milliseconds)
LATE = 0.002  # a tick this much after its time: something ready waited (timer rounding aside)
RECENT = 0.02  # ``waited``: a late tick within this many seconds
IDLE = 0.05  # no touch for this long: the ticks stop


class LoopLag:
    """The lateness of the loop's timers while background work runs (see the module)."""

    __slots__ = ("_due", "_handle", "_touched", "late_at", "late_ticks", "ticks")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._touched = 0.0
        self.ticks = 0  # ticks run (INFO)
        self.late_ticks = 0  # those LATE or more after their time (INFO)
        self.late_at = -RECENT  # monotonic time of the last late tick

    def touch(self) -> None:
        """Background work is under way: keep the ticks going (start them if stopped)."""
        self._touched = now = time.monotonic()
        if self._handle is None:
            self._schedule(now)

    def waited(self) -> bool:
        """Did something ready wait LATE or more within the last RECENT seconds?"""
        return time.monotonic() - self.late_at < RECENT

    def note(self, late: float) -> None:
        """Count one tick that ran ``late`` seconds after its time."""
        self.ticks += 1
        if late >= LATE:
            self.late_ticks += 1
            self.late_at = time.monotonic()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        self._due = now + TICK
        self._handle = asyncio.get_running_loop().call_later(TICK, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.note(now - self._due)
        if now - self._touched >= IDLE:
            self._handle = None
            return
        self._schedule(now)
