"""Migration tasks hosted by the leading controller (issue 13: "migrations go on with no
console open").

The engine is the migration runner of ``stack/cluster/migration.py``; the controller only
decides which task to run and when: the oldest active task that is not paused, one at a
time (a plan's tasks run in order), when it is ``pending``, or ``running``/``cancelling``
but left by its runner (its owner is this controller's runner id from an earlier life, or
its progress was last written more than ``stale_after`` seconds ago: the runner that had
it died). A task a live console is running (recent progress) is left to it. On losing the
lead the controller stops its runner at the next step; the task stays resumable and the
next leader picks it up from etcd.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from stack.cluster.migration import MigrationRunner, RunnerSettings
from stack.cluster.model import CANCELLING, PENDING, RUNNING, MigrationTask, Topology
from stack.cluster.store import Store

log = logging.getLogger(__name__)

OWNER_PREFIX = "ledis-failover:"  # a controller's runner id: OWNER_PREFIX + its id
STALE_AFTER = 45.0  # seconds without progress (a runner waits up to 30 s for proxies) before a
# running task is taken over


def runnable(
    t: Topology, owner: str, now: float, stale_after: float = STALE_AFTER
) -> MigrationTask | None:
    """The task the controller should run now, or None (pure: unit-tested)."""
    tasks = sorted(t.migrations.values(), key=lambda m: (m.created, m.id))
    for task in tasks:
        if task.state == PENDING:
            return task
        if task.state in (RUNNING, CANCELLING):
            # a controller's task is the leader's (an old leader stops its runner when it
            # stops leading, and the engine stops a runner whose task was taken over)
            controller = (task.owner or "").startswith(OWNER_PREFIX)
            if task.owner == owner or controller or now - task.updated > stale_after:
                return task
            return None  # someone is running it: the later tasks wait their turn
    return None


class MigrationHost:
    def __init__(
        self,
        store: Store,
        owner: str,
        password: str | None,
        say: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.owner = owner
        self.password = password
        self.say = say
        self.runner: MigrationRunner | None = None
        self.task: asyncio.Task[None] | None = None
        self.task_id: str | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def consider(self, t: Topology) -> None:
        """Start the runnable task if none runs here (called by the leader each tick)."""
        if self.busy:
            return
        task = runnable(t, self.owner, time.time())
        if task is None:
            return
        self.task_id = task.id
        settings = RunnerSettings(owner=self.owner, password=self.password)
        self.runner = MigrationRunner(self.store, settings)
        self.task = asyncio.get_running_loop().create_task(self._run(task))

    async def _run(self, task: MigrationTask) -> None:
        assert self.runner is not None
        how = "taking over" if task.state != PENDING else "starting"
        await self.say(
            f"migration {task.id}: {how} slots {task.slots_done}/{task.slots_total} from group "
            f"{task.source} to group {task.target} in controller {self.owner}"
        )
        try:
            final = await self.runner.run(task.id)
        except Exception as e:  # the task stays in etcd as it is: next tick takes it up again
            log.exception("migration %s", task.id)
            await self.say(f"migration {task.id}: the runner stopped ({e}); again next tick")
            return
        log.info("migration %s: %s", final.id, final.state)

    def stop(self) -> None:
        """Lost the lead: the runner stops at its next step (the task stays resumable)."""
        if self.runner is not None:
            self.runner.stop()
