"""Migration tasks the dashboard started, run by the dashboard until a controller hosts them.

An action that makes tasks (migrate, rebalance, resume) commits them through the plans; then
something must run them. ``ledis-console cluster migrate`` runs the engine in its own process;
the dashboard does the same here, in a thread of its own (its own asyncio loop and etcd
client), so the run does not depend on which screen is open and never competes with the
screen's loop. The tasks of one action run one after the other, as the scripted command runs
them (a task that ends other than ``done`` leaves the later ones for a person).

A controller (``ledis-failover``) may host tasks later. When a controller leads (the leader
key, held under its lease, is in etcd), the host gives it ``CONTROLLER_GRACE`` seconds to
take a pending task (its owner set); a task nobody took by then is run here, so a controller
that does not host migrations never leaves one waiting.

Quitting the dashboard stops the runner where it is: the task stays ``running`` and
``ledis-console cluster migrate --resume`` goes on with it from the slot in flight.

Plain Python, no Textual: the app calls ``start`` and ``stop``; tests call them directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from stack.cluster.migration import DEFAULT_RATE, MigrationRunner, RunnerSettings, runner_id
from stack.cluster.model import DONE, PENDING, MigrationTask
from stack.cluster.plans import PlanError
from stack.cluster.store import Store, StoreError

from ..config import ClusterSettings

log = logging.getLogger(__name__)

CONTROLLER_GRACE = 3.0  # seconds a leading controller has to take a pending task
RESUME_HINT = "ledis-console cluster migrate --resume"


@dataclass
class _Batch:
    """The tasks of one action, run in one thread."""

    tasks: tuple[str, ...]
    thread: threading.Thread | None = None
    loop: asyncio.AbstractEventLoop | None = None
    runner: MigrationRunner | None = None
    current: str | None = None
    results: dict[str, str] = field(default_factory=dict)  # task -> how it ended here


class TaskHost:
    def __init__(
        self,
        settings: ClusterSettings,
        *,
        rate: float = DEFAULT_RATE,
        grace: float = CONTROLLER_GRACE,
    ) -> None:
        self.settings = settings
        self.runner_settings = RunnerSettings(
            owner=f"{runner_id()}:dashboard", password=settings.password, rate=rate
        )
        self.grace = grace
        self._batches: list[_Batch] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    # -- what the screens ask -----------------------------------------------------------------

    @property
    def running(self) -> tuple[str, ...]:
        """The tasks this dashboard is running now."""
        with self._lock:
            return tuple(b.current for b in self._batches if b.current is not None)

    def result(self, task_id: str) -> str | None:
        """How the task ended here ('ran here: done', 'left to the controller ...'), if it
        did."""
        with self._lock:
            for b in self._batches:
                if task_id in b.results:
                    return b.results[task_id]
        return None

    @property
    def busy(self) -> bool:
        with self._lock:
            return any(b.thread is not None and b.thread.is_alive() for b in self._batches)

    # -- start and stop -----------------------------------------------------------------------

    def start(self, tasks: Sequence[str]) -> None:
        """Run these tasks (made by one action) one after the other, in a new thread."""
        if not tasks or self._stopping.is_set():
            return
        batch = _Batch(tuple(tasks))
        batch.thread = threading.Thread(
            target=self._thread, args=(batch,), name=f"migrate-{tasks[0]}", daemon=True
        )
        with self._lock:
            self._batches.append(batch)
        batch.thread.start()

    def stop(self, timeout: float = 10.0) -> tuple[str, ...]:
        """Stop every runner at its next step (the tasks stay resumable) and wait for the
        threads; returns the tasks that were running."""
        self._stopping.set()
        with self._lock:
            batches = list(self._batches)
        stopped = tuple(b.current for b in batches if b.current is not None)
        for b in batches:
            runner, loop = b.runner, b.loop
            if runner is not None and loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(runner.stop)
        deadline = time.monotonic() + timeout
        for b in batches:
            if b.thread is not None:
                b.thread.join(max(0.0, deadline - time.monotonic()))
        return stopped

    # -- the thread ---------------------------------------------------------------------------

    def _thread(self, batch: _Batch) -> None:
        try:
            asyncio.run(self._run(batch))
        except Exception as e:  # the screen must learn of it, never the thread die silently
            log.exception("migration host failed")
            with self._lock:
                for tid in batch.tasks:
                    batch.results.setdefault(tid, f"not run here: {e}")
        finally:
            with self._lock:
                batch.current = None

    async def _run(self, batch: _Batch) -> None:
        batch.loop = asyncio.get_running_loop()
        s = self.settings
        with Store(s.etcd, s.name, timeout=s.timeout) as store:
            for tid in batch.tasks:
                if self._stopping.is_set():
                    return
                if await self._controller_took(store, tid):
                    self._ended(batch, tid, "left to the controller, which took it")
                    continue
                runner = MigrationRunner(store, self.runner_settings)
                with self._lock:
                    batch.runner, batch.current = runner, tid
                if self._stopping.is_set():  # stop() came before the runner was seen
                    return
                try:
                    final = await runner.run(tid)
                except (PlanError, StoreError) as e:
                    self._ended(batch, tid, f"not run: {e}")
                    return
                finally:
                    with self._lock:
                        batch.runner, batch.current = None, None
                self._ended(batch, tid, f"ran here: {final.state}")
                if final.state != DONE:
                    return  # paused, cancelled, failed or stopped: later tasks wait

    def _ended(self, batch: _Batch, tid: str, how: str) -> None:
        log.info("migration %s: %s", tid, how)
        with self._lock:
            batch.results[tid] = how

    async def _controller_took(self, store: Store, tid: str) -> bool:
        """With a leading controller, whether it took the task within the grace period."""
        deadline = time.monotonic() + self.grace
        before: str | None = None  # the owner a resumed task kept from its last run
        first = True
        while True:
            t = await asyncio.to_thread(store.load)
            task: MigrationTask | None = t.migrations.get(tid)
            if t.leader is None or task is None:
                return False
            if first:
                before, first = task.owner, False
            if task.state != PENDING or task.owner not in (None, before):
                return True
            if time.monotonic() >= deadline or self._stopping.is_set():
                return False
            await asyncio.sleep(0.2)
