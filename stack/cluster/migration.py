"""The migration engine: runs a migration task from etcd, a window of slots at a time.

For each step of the task, exactly as docs/cluster.md ("Migration") says:

1. ``plans.plan_start_slot``: the task is ``running`` with its next slots in flight (``current``
   and ``window``) and those slots ``migrating`` in the map (epoch + 1), one transaction; slots
   already in flight (a runner was killed) are taken over as they are. Every master gets the new map (nodemap.py); then the
   runner waits, at most ``proxy_wait``, until every registered proxy reports that epoch.
2. ``SLOTSMGRTTAGSLOT`` on the source master in a loop, one bounded batch per call, with a
   throttle (``rate``, keys a second); progress (keys, bytes, rate, ETA) is written to the
   task a few times a second, with a compare on its revision, so a ``pause`` or ``cancel``
   written meanwhile is never overwritten: the runner reads it and obeys. Paused, it stops
   where it is (the slots stay migrating: the source serves what it still has, the target
   what moved); cancelling, it finishes the slots in flight and stops. The slots in flight
   are emptied one after the other.
3. When the source reports nothing left of them: ``plans.plan_next_slot``, which is
   ``plan_finish_slot`` (the slots online at the target) and, when the task goes on,
   ``plan_start_slot`` of the next window, in one transaction and one epoch; then step 1's
   push and wait for that epoch. So a step costs one epoch, one push and one wait, whatever
   its number of slots.

The window adapts: it doubles (up to ``max_window``) after a step that moved fewer than
``batch_keys`` keys, and halves after one that moved more, so sparse slots go many a step
(a rebalance of an empty cluster is a few hundred steps, not 8192) while full slots go one at
a time and a pause or cancel takes effect after at most one full slot.

Anything can stop it (Ctrl-C, kill -9, a node restarting): whoever runs the task again
(``ledis-console cluster migrate --resume``, later the controller) re-reads it and goes on
from the slots in flight; moving what remains of a slot is idempotent. A node that does not
answer is retried with backoff for ``node_wait`` seconds; after that the task is ``failed``
with the reason, and ``resume`` sets it going again.

The runner works from one topology snapshot per decision and never imports the console;
``on_progress`` lets a caller (the console's progress bar) watch it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from stack.core.resp_client import Backoff, RespClient
from stack.core.resp_session import ClientError, Endpoint, ServerError

from . import plans
from .async_store import AsyncStore
from .model import (
    CANCELLED,
    CANCELLING,
    DONE,
    FAILED,
    PAUSED,
    PENDING,
    RUNNING,
    MigrationTask,
    ModelError,
    Topology,
    parse_addr,
)
from .nodemap import MapPusher
from .store import Store, StoreError

log = logging.getLogger(__name__)

NODE_BACKOFF = Backoff(initial=0.2, maximum=5.0)
FINISHED = (DONE, CANCELLED, FAILED)


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# Keys a second by default: on the shared 2-core machine of docs/cluster.md "Speed", about
# half of what the nodes move at full speed, where another client's p99 stays near 2x
# (full speed: 6-16x). 0 moves as fast as the nodes go.
DEFAULT_RATE = 20_000.0


@dataclass(frozen=True)
class RunnerSettings:
    owner: str
    password: str | None = None  # the nodes' password (requirepass)
    rate: float = DEFAULT_RATE  # keys a second at most (0: as fast as the nodes go)
    batch_keys: int = 500  # keys per SLOTSMGRTTAGSLOT call
    batch_bytes: int = 1024 * 1024
    move_timeout: float = 30.0  # seconds, SLOTSMGRTTAGSLOT's timeout argument
    proxy_wait: float = 30.0  # seconds to wait for every proxy to see a new epoch
    node_wait: float = 60.0  # seconds a node may not answer before the task fails
    progress_every: float = 0.3  # seconds between progress writes
    max_window: int = 64  # slots in flight in one step at most (1: one slot a step)


@dataclass(frozen=True)
class Progress:
    """What the runner is doing, for whoever watches it."""

    task: MigrationTask
    slot: int | None = None
    slot_keys: int = 0  # moved from the slot in flight
    slot_remaining: int = 0  # the source's count of what is left of it
    keys: int = 0  # the task's keys moved, the slot in flight included
    nbytes: int = 0
    rate: float = 0.0  # keys a second, lately
    eta_s: float | None = None
    note: str = ""


class TaskStopped(Exception):
    """The task left the runner's hands (paused, cancelled elsewhere, taken over)."""


@dataclass
class _Slot:
    """One slot in flight of a task, as the runner counts it."""

    base: MigrationTask  # the task before this step's calls (what it had counted)
    slot: int
    keys: int = 0
    nbytes: int = 0
    remaining: int = 0
    moved_before: int = 0  # keys and bytes the step's earlier slots moved
    bytes_before: int = 0
    index: int = 0  # the slot's place in the step


@dataclass
class _Run:
    """What one ``run`` keeps between slots: where it started, for rates and the ETA."""

    started: float
    slots_done: int
    window: deque[tuple[float, int]]  # (time, the task's keys moved) lately
    written: float = 0.0  # when progress was last written to the task
    step: int = 1  # slots to take in the next step
    moved: int = 0  # keys this run moved (the throttle's count)


def next_step(step: int, keys: int, settings: RunnerSettings) -> int:
    """The window after a step of ``step`` slots that moved ``keys`` keys."""
    if keys < settings.batch_keys:
        return min(max(1, settings.max_window), step * 2)
    return max(1, step // 2)


class MigrationRunner:
    """Runs migration tasks (see the module's description)."""

    def __init__(
        self,
        store: Store,
        settings: RunnerSettings,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.store = store
        self.astore = AsyncStore(store, workers=2)
        self.settings = settings
        self.on_progress = on_progress
        self._stop = asyncio.Event()
        self._clients: dict[str, RespClient] = {}
        self._pusher = MapPusher(settings.password)
        self._pushed = 0  # the epoch last pushed to every master

    def stop(self) -> None:
        """Stop at the next step; the task stays as it is (resumable)."""
        self._stop.set()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await self._pusher.close()

    # -- etcd -----------------------------------------------------------------------------

    async def _load(self) -> Topology:
        return await self.astore.load()

    async def _apply(self, make: plans.PlanMaker) -> plans.Applied:
        return await self.astore.run(
            plans.apply_fresh, self.store, make, source=f"migration {self.settings.owner}"
        )

    async def _event(self, text: str) -> None:
        try:
            await self.astore.append_event(f"migration {self.settings.owner}", "migration", text)
        except StoreError as e:
            log.warning("could not record an event (%s): %s", e, text)

    async def _read_task(self, task_id: str) -> tuple[MigrationTask, int]:
        path = self.store.paths.migration(task_id)
        raw, revision = await self.astore.run(self.store.get_raw, path)
        if raw is None:
            raise TaskStopped(f"migration {task_id} was deleted")
        return MigrationTask.from_json(path, raw), revision

    async def _write_task(self, task: MigrationTask, revision: int) -> bool:
        path = self.store.paths.migration(task.id)
        return bool(
            await self.astore.run(self.store.compare_and_put, path, task.to_json(), revision)
        )

    # -- nodes ----------------------------------------------------------------------------

    async def _push(self, t: Topology, must: tuple[int, ...]) -> None:
        """The map of ``t`` to every master; those of ``must`` retried until ``node_wait``."""
        if t.epoch == self._pushed:
            return
        deadline = time.monotonic() + self.settings.node_wait
        wanted: list[int] | None = None
        failures = 0
        while True:
            results = await self._pusher.push(t, wanted)
            missed = [p for p in results if p.error is not None]
            for p in missed:
                log.warning("group %d's master %s did not take the map: %s",
                            p.group, p.addr, p.error)  # fmt: skip
            wanted = [p.group for p in missed if p.group in must]
            if not wanted:
                self._pushed = t.epoch
                return
            failures += 1
            if time.monotonic() > deadline or self._stop.is_set():
                raise NodeDown(
                    f"group {wanted[0]}'s master {t.groups[wanted[0]].master} did not take the "
                    f"slot map of epoch {t.epoch} within {self.settings.node_wait:g} s"
                )
            await asyncio.sleep(NODE_BACKOFF.delay(failures))

    async def _wait_for_proxies(self, epoch: int) -> None:
        deadline = time.monotonic() + self.settings.proxy_wait
        while True:
            t = await self._load()
            behind = [p for p in t.proxies.values() if p.epoch_seen < epoch]
            if not behind:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"{p.id} (epoch {p.epoch_seen})" for p in behind)
                await self._event(
                    f"proxies {names} have not seen epoch {epoch} after "
                    f"{self.settings.proxy_wait:g} s; going on (they follow redirections)"
                )
                return
            await asyncio.sleep(0.02)

    def _client(self, addr: str) -> RespClient:
        client = self._clients.get(addr)
        if client is None:
            host, port = parse_addr(addr)
            client = self._clients[addr] = RespClient(
                Endpoint(host=host, port=port, password=self.settings.password,
                         client_name="ledis-migration"),
                connect_timeout=5.0,
                backoff=None,
            )  # fmt: skip
        return client

    # -- running a task -------------------------------------------------------------------

    async def run(self, task_id: str) -> MigrationTask:
        """Run the task until it is done, cancelled, paused, failed or the runner is
        stopped; returns the task as it then is."""
        t = await self._load()
        task = t.migrations.get(task_id)
        if task is None:
            raise plans.PlanError(f"there is no migration {task_id!r}")
        if task.state not in (PENDING, RUNNING, CANCELLING):
            return task
        run = _Run(time.monotonic(), task.slots_done, deque())
        owner = self.settings.owner
        try:
            if task.state == CANCELLING and task.current is None:
                return await self._cancelled(task_id)
            # this runner owns the task from now on (a cancelling one only finishes its slot)
            await self._apply(lambda t: plans.plan_start_slot(t, task_id, owner, run.step))
            while not self._stop.is_set():
                t = await self._load()
                task = t.migrations[task_id]
                if task.state not in (RUNNING, CANCELLING) or task.current is None:
                    await self._push(t, (task.source, task.target))
                    return task
                if task.owner != owner:
                    raise TaskStopped(f"taken over by {task.owner}")
                t0 = time.monotonic()
                await self._push(t, (task.source, task.target))
                t1 = time.monotonic()
                await self._wait_for_proxies(t.epoch)
                t2 = time.monotonic()
                keys = nbytes = 0
                in_flight = task.in_flight()
                for i, slot in enumerate(in_flight):
                    sl = _Slot(task, slot, moved_before=keys, bytes_before=nbytes, index=i)
                    k, b = await self._drain(sl, t, run)
                    keys, nbytes = keys + k, nbytes + b
                t3 = time.monotonic()
                # these slots online at the target and the next ones migrating: one epoch
                counted = (task.keys_moved + keys, task.bytes_moved + nbytes)
                run.step = next_step(len(in_flight), keys, self.settings)
                await self._apply(functools.partial(_next_slot, task_id, owner, counted, run.step))
                log.debug(
                    "slots %s+%d: map pushed in %.0f ms, proxies at epoch %d in %.0f ms, %d "
                    "keys moved in %.0f ms, next step in %.0f ms", task.current,
                    task.window - 1, (t1 - t0) * 1000, t.epoch, (t2 - t1) * 1000, keys,
                    (t3 - t2) * 1000, (time.monotonic() - t3) * 1000,
                )  # fmt: skip
        except TaskStopped as e:
            log.info("migration %s: %s", task_id, e)
        except NodeDown as e:
            return await self._fail(task_id, str(e))
        finally:
            await self.close()
        t = await self._load()
        return t.migrations[task_id]

    async def _drain(self, sl: _Slot, t: Topology, run: _Run) -> tuple[int, int]:
        """SLOTSMGRTTAGSLOT until ``sl.slot`` (one of the task's slots in flight) is empty;
        (keys, bytes) moved from it."""
        s = self.settings
        base = sl.base
        failures = 0
        failing_since = 0.0
        timeout_ms = str(int(s.move_timeout * 1000))
        while True:
            if self._stop.is_set():
                raise TaskStopped("stopped by its runner")
            source = t.groups[base.source].master
            thost, tport = parse_addr(t.groups[base.target].master)
            try:
                reply = await self._client(source).execute(
                    "SLOTSMGRTTAGSLOT", thost, str(tport), timeout_ms, str(sl.slot),
                    "MAXKEYS", str(s.batch_keys), "MAXBYTES", str(s.batch_bytes), "WITHBYTES",
                    timeout=s.move_timeout * 3,
                )  # fmt: skip
                if not isinstance(reply, list) or len(reply) != 3:
                    raise ValueError(f"unexpected reply {reply!r}")
                moved, sl.remaining, sent = (int(x) for x in reply)
                failures = 0
            except (ClientError, OSError, ValueError) as e:
                failures += 1
                now = time.monotonic()
                if failures == 1:
                    failing_since = now
                why = f"{source} said: {e}" if isinstance(e, ServerError) else f"{source}: {e}"
                log.warning("migration %s, slot %d: %s", base.id, sl.slot, why)
                if now - failing_since > s.node_wait:
                    raise NodeDown(
                        f"slot {sl.slot} could not move for {s.node_wait:g} s ({why})"
                    ) from None
                await self._progress(sl, run, note=why)
                await asyncio.sleep(NODE_BACKOFF.delay(failures))
                t = await self._load()  # a failover may have named another master
                continue
            sl.keys += moved
            sl.nbytes += sent
            run.moved += moved
            due = time.monotonic() - run.written >= s.progress_every
            if due:
                await self._progress(sl, run)
            await self._throttle(sl, run)
            if sl.remaining == 0:
                if not due:
                    self._report(sl, run)
                return sl.keys, sl.nbytes

    async def _throttle(self, sl: _Slot, run: _Run) -> None:
        """Wait until the keys this run moved are within ``rate`` keys a second since it
        started (a slot emptied in one call waits too, so the rate holds across slots and
        steps), writing progress (and obeying a pause or cancel) meanwhile."""
        s = self.settings
        if s.rate <= 0:
            return
        while not self._stop.is_set():
            ahead = run.moved / s.rate - (time.monotonic() - run.started)
            if ahead <= 0:
                return
            await asyncio.sleep(min(ahead, s.progress_every))
            if time.monotonic() - run.written >= s.progress_every:
                await self._progress(sl, run)

    # -- progress -------------------------------------------------------------------------

    def _report(self, sl: _Slot, run: _Run, note: str = "") -> Progress:
        base = sl.base
        now = time.monotonic()
        total = base.keys_moved + sl.moved_before + sl.keys
        w = run.window
        w.append((now, total))
        while len(w) > 2 and now - w[0][0] > 5.0:
            w.popleft()
        t0, k0 = w[0]
        rate = (total - k0) / (now - t0) if now > t0 else 0.0
        done = sl.keys + sl.remaining
        fraction = sl.keys / done if done else 0.0
        fraction += sl.index
        progressed = base.slots_done - run.slots_done + fraction
        eta = None
        if progressed > 0:
            left = base.slots_total - base.slots_done - fraction
            eta = max(0.0, (now - run.started) / progressed * left)
        p = Progress(base, sl.slot, sl.keys, sl.remaining, total,
                     base.bytes_moved + sl.bytes_before + sl.nbytes,
                     rate, eta, note)  # fmt: skip
        if self.on_progress is not None:
            self.on_progress(p)
        return p

    async def _progress(self, sl: _Slot, run: _Run, note: str = "") -> None:
        """Write progress to the task (compare on its revision), and obey what it says."""
        task, revision = await self._read_task(sl.base.id)
        if task.owner != self.settings.owner:
            raise TaskStopped(f"taken over by {task.owner}")
        if task.state == PAUSED:
            raise TaskStopped("paused")
        run.written = time.monotonic()
        p = self._report(sl, run, note)
        new = replace(
            task,
            keys_moved=p.keys,
            bytes_moved=p.nbytes,
            rate_keys=round(p.rate, 1),
            eta_s=None if p.eta_s is None else round(p.eta_s, 1),
            updated=time.time(),
        )
        await self._write_task(new, revision)  # lost to a concurrent change: the next tick reads it

    # -- endings --------------------------------------------------------------------------

    async def _cancelled(self, task_id: str) -> MigrationTask:
        task, revision = await self._read_task(task_id)
        if task.state == CANCELLING and task.current is None:
            await self._write_task(replace(task, state=CANCELLED, updated=time.time()), revision)
        t = await self._load()
        return t.migrations[task_id]

    async def _fail(self, task_id: str, why: str) -> MigrationTask:
        for _ in range(5):
            try:
                task, revision = await self._read_task(task_id)
            except (TaskStopped, ModelError):
                break
            if task.state in FINISHED or task.state == PAUSED:
                break
            if await self._write_task(
                replace(task, state=FAILED, error=why, updated=time.time()), revision
            ):
                await self._event(f"migration {task_id} failed: {why}")
                break
        t = await self._load()
        return t.migrations[task_id]


def _next_slot(
    task_id: str, owner: str, counted: tuple[int, int], window: int, t: Topology
) -> plans.Plan:
    """``plan_next_slot`` with what the runner counted for the task (keys, bytes), less what
    its progress writes put there already."""
    task = t.migrations[task_id]
    keys, nbytes = counted
    return plans.plan_next_slot(
        t,
        task_id,
        owner,
        max(0, keys - task.keys_moved),
        max(0, nbytes - task.bytes_moved),
        window,
    )


class NodeDown(Exception):
    """A node did not answer for longer than the runner waits."""
