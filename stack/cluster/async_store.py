"""The etcd store for asyncio callers (proxy, controller, console).

etcd3's client is synchronous gRPC. Each call here runs in a small thread pool of its own
(``loop.run_in_executor``), so a slow or unreachable etcd never blocks the event loop;
watches run in the store's watch thread and hand their batches to the loop with
``call_soon_threadsafe``. bench/etcd_bench.py measures what the pool costs per request
against calling etcd3 directly.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .model import Event, Topology
from .store import RawSnapshot, Store, TopologyView, Watch, WatchBatch
from .txn import EventDraft, Guard, Write

T = TypeVar("T")


class AsyncStore:
    """``Store`` with awaitable methods (see the module's description)."""

    def __init__(self, store: Store, workers: int = 4) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etcd")

    @property
    def cluster(self) -> str:
        return self.store.cluster

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    async def ping(self) -> int:
        return await self.run(self.store.ping)

    async def load(self) -> Topology:
        return await self.run(self.store.load)

    async def commit(
        self,
        base: Topology,
        writes: Sequence[Write],
        *,
        bump_epoch: bool,
        guards: Sequence[Guard] = (),
        event: EventDraft | None = None,
    ) -> int:
        return await self.run(
            self.store.commit, base, writes, bump_epoch=bump_epoch, guards=guards, event=event
        )

    async def append_event(self, source: str, kind: str, text: str) -> int:
        return await self.run(self.store.append_event, source, kind, text)

    async def events(self, limit: int = 100, after_revision: int = 0) -> list[Event]:
        return await self.run(self.store.events, limit, after_revision)

    async def follow(self) -> AsyncIterator[Topology]:
        """The current topology, then each new one as the watch changes it. Changes that
        arrive while the consumer is busy are folded into the next topology it gets (never
        a backlog); after a disconnect the watch resumes by itself."""
        loop = asyncio.get_running_loop()
        raw = await self.run(self.store.load_raw)
        view = TopologyView(self.store.paths, raw)
        changed = asyncio.Event()

        def on_change(batch: WatchBatch) -> None:
            loop.call_soon_threadsafe(_apply, batch)

        def on_reset(snapshot: RawSnapshot) -> None:
            loop.call_soon_threadsafe(_reset, snapshot)

        def _apply(batch: WatchBatch) -> None:
            if view.apply(batch):
                changed.set()

        def _reset(snapshot: RawSnapshot) -> None:
            view.reset(snapshot)
            changed.set()

        watch: Watch = await self.run(
            self.store.watch, raw.revision + 1, on_change, on_reset=on_reset
        )
        try:
            yield view.topology
            while True:
                await changed.wait()
                changed.clear()
                yield view.topology
        finally:
            await self.run(watch.stop)

    async def close(self) -> None:
        await self.run(self.store.close)
        self._pool.shutdown(wait=False)
