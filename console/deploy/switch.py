"""Before a master restarts in a rolling change: hand its group over to a caught-up replica
through the controller's planned switchover (``stack/failover/switchover.py``), so writes
pause for a moment instead of failing while the old master restarts (then as a replica).

Run on a host by ``hostd switchover`` with ``{"cluster", "etcd", "password"?, "addr"}`` on
stdin. Nothing to do (``changed`` false) when the node is not a master, has no replica, or
no controller leads (the master then restarts in place).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stack.cluster import nodes, plans
from stack.cluster.store import Store
from stack.failover.switchover import plan_switchover, read_group, requested


async def switchover(doc: dict[str, Any], timeout: float) -> dict[str, Any]:
    store = Store(doc["etcd"], doc["cluster"], timeout=5.0)
    try:
        return await _switchover(store, doc["addr"], doc.get("password") or None, timeout)
    finally:
        store.close()


async def _switchover(
    store: Store, addr: str, password: str | None, timeout: float
) -> dict[str, Any]:
    topo = await asyncio.to_thread(store.load)
    found = topo.find_node(addr)
    if found is None or found[1] != "master":
        return {"ok": True, "changed": False, "text": f"{addr} is not a master"}
    group = found[0]
    if not group.replicas:
        return {"ok": True, "changed": False, "text": f"group {group.id} has no replica"}
    if topo.leader is None:
        return {"ok": True, "changed": False, "text": "no controller leads; restarting in place"}
    topo, current = await asyncio.to_thread(read_group, store, group.id)
    states = await nodes.probe_all(group.members, password)
    plan = plan_switchover(topo, states, group.id, None, current, source="ledis-console deploy")
    target = requested(plan).new
    await asyncio.to_thread(plans.apply, store, plan, "ledis-console deploy")
    path = store.paths.failover(group.id)
    deadline = time.monotonic() + timeout
    while (await asyncio.to_thread(store.get_raw, path))[0] is not None:
        if time.monotonic() > deadline:
            return {
                "ok": False,
                "text": f"group {group.id}: switchover not done after {timeout:g} s",
            }
        await asyncio.sleep(0.2)
    final = (await asyncio.to_thread(store.load)).groups[group.id]
    if final.master != target:
        return {
            "ok": False,
            "text": f"group {group.id}: switchover not done; {final.master} is master",
        }
    return {
        "ok": True,
        "changed": True,
        "text": f"group {group.id}: {target} took over from {addr}",
    }
