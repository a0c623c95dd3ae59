"""The ledis-proxy process: topology from etcd, registration, listener, ticks, shutdown.

Start: load the cluster's topology (etcd down: retry with backoff, logged once), listen,
write the ready-file, register ``proxies/<id>`` under a lease, follow the topology
(``AsyncStore.follow``). Each new topology becomes a ``RouteTable`` unless its epoch is older
than the one applied (an older epoch is ignored). If etcd goes away the proxy keeps routing
on the last map, says so once, and picks up what changed when the watch resumes; a MOVED
from a backend also reloads the map (``refresh``).

Every second: ops/s and latency windows, backend health (a link whose oldest request waited
``backend-timeout`` is given up; a down backend is retried with backoff); every
``stats-interval`` the registration is refreshed with the proxy's stats and the epoch it
applied (``epoch_seen``: what a migration waits for).

SIGTERM / SIGINT: stop listening, give clients a moment to get the replies in flight, revoke
the lease (the registration goes at once; etcd gets at most ``ETCD_STOP_SECONDS``, else the
lease expires by itself), close everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine
from pathlib import Path

from stack import __version__
from stack.cluster.async_store import AsyncStore
from stack.cluster.model import Proxy, Topology
from stack.cluster.store import Registration, Store, StoreError
from stack.core.resp import Limits
from stack.core.resp_client import Backoff

from .backend import Backend
from .client import Client
from .config import ProxyConfig
from .routes import RouteTable
from .stats import Stats
from .views import report_views

log = logging.getLogger(__name__)

ETCD_BACKOFF = Backoff(initial=0.2, maximum=5.0)
PRE_AUTH_OUTPUT_LIMIT = 64 * 1024
REFRESH_TIMEOUT = 5.0
SHUTDOWN_GRACE = 5.0
ETCD_STOP_SECONDS = 10.0  # at most this long for etcd at the exit (revoking the lease)


class ProxyServer:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.limits = Limits(
            max_bulk=config.proto_max_bulk_len, max_query_buffer=config.client_query_buffer_limit
        )
        self.stats = Stats()
        self.clients: dict[int, Client] = {}
        self.backends: dict[str, Backend] = {}
        self.retired: list[Backend] = []
        self.routes = RouteTable.empty()
        self._topology: Topology | None = None
        self.port = config.port
        self.proxy_id = config.proxy_id
        self.etcd_ok = False
        self.store = Store(list(config.etcd), config.cluster, timeout=config.etcd_timeout)
        self.astore = AsyncStore(self.store)
        self.registration: Registration | None = None
        self._registering = False  # a register call runs in an etcd thread
        self._client_seq = 0
        self._dirty: list[Client] = []
        self._changed = asyncio.Event()
        self._refreshing: asyncio.Future[None] | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._etcd_warned = False

    # -- identity ----------------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._client_seq += 1
        return self._client_seq

    @property
    def addr(self) -> str:
        """The address clients use (as registered): the advertised host, the bound port."""
        return f"{self.config.addr.rpartition(':')[0]}:{self.port}"

    def flush_later(self, client: Client) -> None:
        """Write ``client``'s ready replies once this loop turn's callbacks are done."""
        self._dirty.append(client)
        if len(self._dirty) == 1:
            asyncio.get_running_loop().call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        dirty = self._dirty
        self._dirty = []
        for client in dirty:
            client.flush_pending = False
            client.flush()

    def output_limit(self, client: Client) -> int:
        if not client.authenticated:
            return PRE_AUTH_OUTPUT_LIMIT
        return self.config.client_output_limit

    def backend_for(self, addr: str) -> Backend:
        backend = self.backends.get(addr)
        if backend is None or backend.retired:
            c = self.config
            backend = Backend(
                addr,
                password=c.backend_password or None,
                connections=c.backend_connections,
                max_in_flight=c.backend_max_in_flight,
                timeout=c.backend_timeout,
                connect_timeout=c.connect_timeout,
                max_bulk=c.proto_max_bulk_len,
            )
            self.backends[addr] = backend
        return backend

    # -- topology ----------------------------------------------------------------------------

    def apply(self, topo: Topology) -> bool:
        """Route by ``topo`` unless it is older than what is applied. True when applied."""
        current = self.routes
        if topo.epoch < current.epoch:
            log.info("ignoring a topology of epoch %d (have %d)", topo.epoch, current.epoch)
            return False
        if topo.epoch == current.epoch and topo.revision <= current.revision:
            return False
        last = self._topology
        if (
            last is not None
            and topo.epoch == last.epoch
            and topo.slots == last.slots
            and dict(topo.groups) == dict(last.groups)
        ):
            return False  # only registrations or tasks changed
        self._topology = topo
        table = RouteTable.build(topo, self.backend_for)
        old_default = current.default
        self.routes = table
        for addr, backend in list(self.backends.items()):
            if addr not in table.backends:
                del self.backends[addr]
                backend.retired = True
                self.retired.append(backend)
        if table.epoch != current.epoch:
            log.info(
                "slot map epoch %d: %d groups, %d slots unassigned, %d migrating",
                table.epoch,
                len(table.groups),
                topo.slots.unassigned(),
                sum(r.count for r in topo.slots.migrating()),
            )
        if old_default is not None and table.default is not old_default:
            for c in list(self.clients.values()):
                if c.sub is not None:
                    c.close()  # their channels' node changed: they subscribe again
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if table.epoch != current.epoch and self.registration is not None:
            self._spawn(self._register_now())
        return True

    async def map_changed(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for the next topology to be applied."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    async def refresh(self) -> None:
        """Reload the topology now (a backend said MOVED); concurrent callers share one
        load. etcd unreachable: the map stays as it is."""
        if self._refreshing is not None and not self._refreshing.done():
            await asyncio.shield(self._refreshing)
            return
        loop = asyncio.get_running_loop()
        self._refreshing = fut = loop.create_future()
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                topo = await self.astore.load()
            self.apply(topo)
        except (StoreError, TimeoutError) as e:
            log.info("cannot refresh the map: %s", e)
        finally:
            fut.set_result(None)

    async def _first_topology(self) -> Topology:
        failures = 0
        while True:
            try:
                topo = await self.astore.load()
            except StoreError as e:
                failures += 1
                if failures == 1:
                    log.warning("%s; waiting for etcd before serving", e)
                await asyncio.sleep(ETCD_BACKOFF.delay(failures))
                continue
            self.etcd_ok = True
            if not topo.initialised:
                log.warning(
                    "cluster %r is not initialised in etcd: every slot is unassigned until it is",
                    self.config.cluster,
                )
            return topo

    async def _follow(self) -> None:
        """Apply each topology as etcd's watch delivers it; start over after a failure."""
        failures = 0
        while not self._stop.is_set():
            try:
                async for topo in self.astore.follow():
                    failures = 0
                    self.apply(topo)
            except StoreError as e:
                failures += 1
                if failures == 1:
                    log.warning("following the topology: %s; retrying", e)
                await asyncio.sleep(ETCD_BACKOFF.delay(failures))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the topology failed; retrying")
                await asyncio.sleep(ETCD_BACKOFF.maximum)

    # -- registration ------------------------------------------------------------------------

    def _document(self) -> bytes:
        s = self.stats
        recent = s.recent()
        return Proxy(
            id=self.proxy_id,
            addr=self.addr,
            pid=os.getpid(),
            started=self.started,
            epoch_seen=self.routes.epoch,
            stats={
                "ops_per_sec": s.ops_per_sec,
                "clients": len(self.clients),
                "commands": s.total,
                "errors": s.errors,
                "p50_us": recent.percentile(50),
                "p99_us": recent.percentile(99),
                "backends_down": sum(1 for b in self.backends.values() if not b.up),
            },
        ).to_json()

    async def _register(self) -> None:
        path = self.store.paths.proxy(self.proxy_id)
        failures = 0
        while self.registration is None and not self._stop.is_set():
            self._registering = True
            try:
                await self.astore.run(self._register_blocking, path)
            except StoreError as e:
                failures += 1
                if failures == 1:
                    log.warning("cannot register %s: %s; retrying", path, e)
                await asyncio.sleep(ETCD_BACKOFF.delay(failures))
        log.info("registered as %s", path)

    def _register_blocking(self, path: str) -> None:
        """In an etcd thread: register, keeping the registration even when the task that asked
        was cancelled meanwhile (a SIGTERM right after the start: ``stop`` then revokes it)."""
        try:
            self.registration = self.store.register(path, self._document, self.config.lease_ttl)
        finally:
            self._registering = False

    async def _register_now(self) -> None:
        reg = self.registration
        if reg is None:
            return
        try:
            await self.astore.run(reg.update)
        except StoreError as e:
            self._etcd_down(e)
        else:
            self._etcd_up()

    def _etcd_down(self, e: Exception) -> None:
        self.etcd_ok = False
        if not self._etcd_warned:
            self._etcd_warned = True
            log.warning(
                "etcd unreachable (%s): routing on the map of epoch %d until it is back",
                e,
                self.routes.epoch,
            )

    def _etcd_up(self) -> None:
        self.etcd_ok = True
        if self._etcd_warned:
            self._etcd_warned = False
            log.warning("etcd reachable again; map epoch %d", self.routes.epoch)

    # -- ticks -------------------------------------------------------------------------------

    async def _ticks(self) -> None:
        last_report = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            self.stats.tick(now)
            for backend in list(self.backends.values()):
                backend.tick(now)
            for backend in list(self.retired):
                if backend.in_flight() == 0 and backend.dedicated == 0:
                    backend.close()
                    self.retired.remove(backend)
            if self.registration is None:
                continue
            if now - last_report >= self.config.stats_interval:
                last_report = now
                await self._register_now()

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.apply(await self._first_topology())
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: Client(self),
            host=self.config.bind,
            port=self.config.port,
            backlog=511,
            reuse_address=True,
        )
        self.port = self._listener.sockets[0].getsockname()[1]
        if not self.proxy_id:
            self.proxy_id = self.addr
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        self._spawn(self._follow())
        self._spawn(self._ticks())
        self._spawn(self._register())
        self._spawn(report_views(self))
        log.info(
            "ledis-proxy %s ready on %s:%d for cluster %r (etcd %s), map epoch %d",
            __version__,
            self.config.bind,
            self.port,
            self.config.cluster,
            ",".join(self.config.etcd),
            self.routes.epoch,
        )
        ready = self.config.ready_file
        if ready:
            tmp = Path(ready + ".tmp")
            tmp.write_text(f"{self.port}\n")
            os.replace(tmp, ready)

    def request_stop(self, why: str = "") -> None:
        if not self._stop.is_set():
            log.info("%s: shutting down", why or "stop requested")
            self._stop.set()

    async def serve(self) -> None:
        await self.start()
        await self._stop.wait()
        await self.stop()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while any(c.queue for c in self.clients.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for c in list(self.clients.values()):
            c.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        try:
            await asyncio.wait_for(self._leave_etcd(), ETCD_STOP_SECONDS)
        except TimeoutError:
            log.warning(
                "etcd did not answer within %.0f s: the registration goes when its lease expires",
                ETCD_STOP_SECONDS,
            )
        for backend in [*self.backends.values(), *self.retired]:
            backend.close()
        log.info("ledis-proxy stopped")

    async def _leave_etcd(self) -> None:
        """Revoke the registration's lease (its key goes at once) and close the etcd client;
        ``stop`` bounds it all (a busy or unreachable etcd must not hold the exit)."""
        deadline = time.monotonic() + self.store.timeout + 1
        while self._registering and time.monotonic() < deadline:  # its thread goes on
            await asyncio.sleep(0.02)
        if self.registration is not None:
            with contextlib.suppress(StoreError):
                await self.astore.run(self.registration.stop)
        with contextlib.suppress(Exception):
            await self.astore.close()
