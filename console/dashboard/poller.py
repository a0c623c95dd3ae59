"""Live samples: the topology from an etcd watch, events, and bounded parallel node polls.

Each poll asks every server ``INFO default commandstats latencystats`` and every proxy
``INFO`` and ``PROXY SLOTSTATS`` (its ops per slot, on a connection of its own:
slot_counters.py): counters only, never a key scan, at most ``concurrency`` nodes at a time,
each within ``timeout``; a node that does not answer in time is marked stale in that very
sample, keeping its last values. Connections are kept between polls, so a poll costs a
server one INFO call and a proxy an INFO and a SLOTSTATS. The caller schedules the next poll when this one has finished, so polls never
pile up on a slow node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from stack.cluster.async_store import AsyncStore
from stack.cluster.model import Event, ModelError, Topology, parse_addr
from stack.cluster.store import Store, StoreError
from stack.core.resp_client import Backoff, Endpoint, RespClient
from stack.failover.switchover import SwitchoverBasis, probe_group, read_group

from ..config import ClusterSettings
from .sample import (
    ClusterSample,
    NodeSample,
    ProxySample,
    node_from_info,
    proxy_from_info,
    slot_rates,
)
from .slot_counters import SlotCounterLink

log = logging.getLogger(__name__)

NODE_INFO = ("INFO", "default", "commandstats", "latencystats")
PROXY_INFO = ("INFO",)


class SampleSource(Protocol):
    """Where samples come from: a live cluster, a recording, or a test's fake model."""

    live: bool

    async def sample(self, prev: ClusterSample | None) -> ClusterSample: ...

    async def call(self, addr: str, *args: str) -> object:
        """One request to one node; raises when the source cannot (a recording)."""
        ...

    async def switchover_basis(self, group_id: int) -> SwitchoverBasis:
        """What a switchover of the group is planned from, read now (not from the last
        poll): the topology and the group's workflow from etcd, and a probe of its nodes."""
        ...

    async def close(self) -> None: ...


def _text(reply: object) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return str(reply)


class NodeLinks:
    """One kept connection per address, each request bounded by ``timeout``."""

    def __init__(self, password: str | None, timeout: float) -> None:
        self.password = password
        self.timeout = timeout
        self._clients: dict[str, RespClient] = {}

    def client(self, addr: str) -> RespClient:
        c = self._clients.get(addr)
        if c is None:
            host, port = parse_addr(addr)
            c = RespClient(
                Endpoint(host=host, port=port, password=self.password, client_name="ledis-dash"),
                connect_timeout=self.timeout,
                request_timeout=self.timeout,
                backoff=Backoff(initial=0.5, maximum=5.0),
            )
            self._clients[addr] = c
        return c

    async def call(self, addr: str, *args: str) -> object:
        # the client's own timeouts bound each step; this bounds connect + request together
        return await asyncio.wait_for(self.client(addr).execute(*args), self.timeout * 2)

    async def forget(self, keep: set[str]) -> None:
        for addr in [a for a in self._clients if a not in keep]:
            c = self._clients.pop(addr)
            with contextlib.suppress(Exception):
                await c.close()

    async def close(self) -> None:
        await self.forget(set())


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "no answer in time"
    return str(e) or type(e).__name__


class Poller:
    """Bounded parallel polls of the nodes and proxies of a topology."""

    def __init__(
        self,
        password: str | None = None,
        timeout: float = 1.0,
        concurrency: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.links = NodeLinks(password, timeout)
        self.password = password
        self.timeout = timeout
        self.counters: dict[str, SlotCounterLink] = {}  # per proxy, for PROXY SLOTSTATS
        self.limit = asyncio.Semaphore(concurrency)
        self.clock = clock

    async def _node(self, addr: str, prev: NodeSample | None) -> NodeSample:
        async with self.limit:
            try:
                text = _text(await self.links.call(addr, *NODE_INFO))
            except Exception as e:  # any failure (a timeout too): stale
                now = self.clock()
                if prev is not None:
                    return prev.gone_stale(now, _reason(e))
                return NodeSample(addr, now, stale=True, error=_reason(e))
            return node_from_info(addr, self.clock(), text, prev)

    async def _proxy(self, addr: str, pid: str, prev: ProxySample | None) -> ProxySample:
        async with self.limit:
            try:
                info, counts = await asyncio.gather(
                    self.links.call(addr, *PROXY_INFO), self._slot_counts(addr)
                )
            except Exception as e:
                now = self.clock()
                if prev is not None:
                    return prev.gone_stale(now, _reason(e))
                return ProxySample(addr, now, pid, stale=True, error=_reason(e))
            return proxy_from_info(addr, self.clock(), _text(info), pid, counts)

    async def _slot_counts(self, addr: str) -> dict[int, int]:
        """The proxy's ops per slot; none (no rate this poll) when they cannot be read."""
        link = self.counters.get(addr)
        if link is None:
            link = self.counters[addr] = SlotCounterLink(addr, self.password, self.timeout)
        try:
            return await link.read()
        except Exception as e:  # INFO says whether the proxy answers; this is only the shade
            log.debug("PROXY SLOTSTATS from %s: %s", addr, _reason(e))
            return {}

    async def poll(
        self, topo: Topology, prev: ClusterSample | None
    ) -> tuple[dict[str, NodeSample], dict[str, ProxySample]]:
        nodes = list(dict.fromkeys(addr for _, addr, _ in topo.nodes()))
        proxies = {p.addr: p.id for p in topo.proxies.values()}
        await self.links.forget(set(nodes) | set(proxies))
        for addr in [a for a in self.counters if a not in proxies]:
            await self.counters.pop(addr).close()
        pn = prev.nodes if prev else {}
        pp = prev.proxies if prev else {}
        node_jobs = [self._node(a, pn.get(a)) for a in nodes]
        proxy_jobs = [self._proxy(a, i, pp.get(a)) for a, i in proxies.items()]
        results = await asyncio.gather(*node_jobs, *proxy_jobs)
        n = len(nodes)
        return (
            {s.addr: s for s in results[:n] if isinstance(s, NodeSample)},
            {s.addr: s for s in results[n:] if isinstance(s, ProxySample)},
        )

    async def close(self) -> None:
        await self.links.close()
        for link in self.counters.values():
            await link.close()
        self.counters.clear()


class LiveSource:
    """Samples of a live cluster: the topology kept current by a watch (``follow``), the
    newest events read per sample (which also tells etcd's health), and a node poll."""

    live = True

    def __init__(
        self,
        settings: ClusterSettings,
        *,
        node_timeout: float = 1.0,
        concurrency: int = 16,
        events: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = AsyncStore(Store(settings.etcd, settings.name, timeout=settings.timeout))
        self.poller = Poller(settings.password, node_timeout, concurrency, clock)
        self.clock = clock
        self.event_limit = events
        self._topology: Topology | None = None
        self._follow: asyncio.Task[None] | None = None
        self._follow_error: str | None = None

    async def _follow_loop(self) -> None:
        try:
            async for topo in self.store.follow():
                self._topology = topo
                self._follow_error = None
        except (StoreError, ModelError) as e:
            self._follow_error = str(e)

    async def _topology_now(self) -> Topology:
        """The watched topology; read once (and the watch started again) when the watch is
        not running, e.g. it ended because etcd was down."""
        if self._follow is None or self._follow.done() or self._topology is None:
            topo = await self.store.load()
            self._topology = topo
            if self._follow is None or self._follow.done():
                self._follow = asyncio.create_task(self._follow_loop())
            return topo
        return self._topology

    async def sample(self, prev: ClusterSample | None) -> ClusterSample:
        start = time.perf_counter()
        s = self.settings
        etcd_ok, etcd_error = True, None
        events: tuple[Event, ...] = prev.events if prev else ()
        topo: Topology | None = self._topology
        try:
            topo = await self._topology_now()
            events = tuple(await self.store.events(self.event_limit))
        except (StoreError, ModelError) as e:
            etcd_ok, etcd_error = False, str(e)
        nodes: dict[str, NodeSample] = {}
        proxies: dict[str, ProxySample] = {}
        if topo is not None:
            nodes, proxies = await self.poller.poll(topo, prev)
        slot_ops = slot_rates(prev.proxies if prev else {}, proxies)
        return ClusterSample(
            ts=self.clock(),
            cluster=s.name,
            etcd=s.etcd,
            topology=topo,
            etcd_ok=etcd_ok,
            etcd_error=etcd_error,
            events=events,
            nodes=nodes,
            proxies=proxies,
            poll_ms=(time.perf_counter() - start) * 1000,
            slot_ops=slot_ops,
        )

    async def call(self, addr: str, *args: str) -> object:
        """One request to a node (the detail screen: SLOWLOG, BINLOG SHOW, the cli session)."""
        return await self.poller.links.call(addr, *args)

    async def switchover_basis(self, group_id: int) -> SwitchoverBasis:
        """As ``ledis-console failover`` reads it (stack/failover/switchover.py): etcd now,
        then the group's nodes probed on connections of their own."""
        topo, current = await self.store.run(read_group, self.store.store, group_id)
        s = self.settings
        return await probe_group(topo, group_id, current, s.password, s.timeout)

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(BaseException):
                await self._follow
        await self.poller.close()
        await self.store.close()
