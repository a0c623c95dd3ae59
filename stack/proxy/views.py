"""The proxy's view of the masters it routes to, reported into etcd (``views/proxy:<id>``).

Every ``view_interval`` seconds the proxy PINGs each group's master (fresh connections,
``connect_timeout`` bounded, all at once) and puts what it saw under a lease of its own, so the
failover controller can count it as one view (docs/failover.md, "Detection"). A view that stops
being refreshed (the proxy died or lost etcd) expires with its lease and no longer counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from stack.cluster.store import Registration, StoreError
from stack.cluster.views import PROXY, Sightings, View, ping_all

if TYPE_CHECKING:
    from .server import ProxyServer

log = logging.getLogger(__name__)


async def report_views(proxy: ProxyServer) -> None:
    """Runs for the proxy's life (a task of its own); never raises but CancelledError."""
    config = proxy.config
    interval = config.view_interval
    if interval <= 0:
        return
    observer = f"{PROXY}:{proxy.proxy_id}"
    path = proxy.store.paths.view(observer)
    sightings = Sightings()
    view = View(observer, PROXY, time.time())
    registration: Registration | None = None
    timeout = min(config.connect_timeout, max(interval, 0.5))
    try:
        while True:
            topo = proxy._topology
            masters = [g.master for g in topo.groups.values()] if topo is not None else []
            results = await ping_all(
                masters, timeout, config.backend_password or None, "ledis-proxy-view"
            )
            now = time.time()
            view = View(observer, PROXY, now, sightings.update(results, now))
            try:
                if registration is None:
                    registration = await proxy.astore.run(
                        proxy.store.register, path, view.to_json, config.lease_ttl
                    )
                else:
                    registration.value = view.to_json
                    await proxy.astore.run(registration.update)
            except StoreError as e:
                log.debug("cannot report the view: %s", e)
            await asyncio.sleep(interval)
    finally:
        if registration is not None:
            with contextlib.suppress(StoreError):
                await proxy.astore.run(registration.stop)
