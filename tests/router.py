"""A minimal client-side router: the stand-in for ledis-proxy in the migration tests, until the
proxy lands on main (then the tests go through the real one).

It does what docs/cluster.md asks of a proxy during a migration, and no more: it follows the
topology in etcd (a watch), registers under ``proxies/<id>`` with the epoch it applied
(``epoch_seen``, which the migration waits for), and runs each one-key command on the owner
of the key's slot; while the slot migrates it first asks the source to move the key
(``SLOTSMGRTTAGONE``), then sends ``ASKING`` and the command to the target. A -MOVED, -ASK or
-TRYAGAIN (a stale map, a key on its way) is followed; nothing else is retried, so an error a
client would see is counted, never hidden.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from stack.cluster.model import Proxy, Topology, parse_addr
from stack.cluster.store import Registration, Store, TopologyView, WatchBatch
from stack.core.slots import key_slot

RETRIES = 50


class Router:
    def __init__(self, store: Store, proxy_id: str, password: str | None = None) -> None:
        self.store = store
        self.id = proxy_id
        self.password = password
        self.view = TopologyView(store.paths, store.load_raw())
        self._lock = threading.Lock()
        self._nodes: dict[str, redis.Redis] = {}
        self.redirects = 0
        self.moves = 0
        self.registration: Registration | None = None
        self.watch = store.watch(self.view.revision + 1, self._changed)

    @property
    def topology(self) -> Topology:
        return self.view.topology

    def start(self) -> Router:
        self.registration = self.store.register(self.store.paths.proxy(self.id), self._doc, ttl=10)
        return self

    def _doc(self) -> bytes:
        return Proxy(self.id, "127.0.0.1:1", epoch_seen=self.topology.epoch).to_json()

    def _changed(self, batch: WatchBatch) -> None:
        with self._lock:
            changed = self.view.apply(batch)
        if changed and self.registration is not None:
            self.registration.update()  # the epoch applied, for the migration to see

    def refresh(self) -> None:
        with self._lock:
            self.view.reset(self.store.load_raw())

    def stop(self) -> None:
        self.watch.stop()
        if self.registration is not None:
            self.registration.stop()
        for c in self._nodes.values():
            c.close()

    def node(self, address: str) -> redis.Redis:
        c = self._nodes.get(address)
        if c is None:
            host, port = parse_addr(address)
            c = redis.Redis(host=host, port=port, password=self.password, socket_timeout=60,
                            max_connections=64)  # fmt: skip
            self._nodes[address] = c
        return c

    def execute(self, *args: Any) -> Any:
        """One command on one key (``args[1]``), wherever the key is now."""
        key = args[1].encode() if isinstance(args[1], str) else args[1]
        slot = key_slot(key)
        ask: str | None = None
        for attempt in range(RETRIES):
            t = self.topology
            r = t.slots.range_of(slot)
            assert r.group is not None
            try:
                if ask is not None:
                    return self._asking(ask, args)
                source = t.groups[r.group].master
                if r.target is None:
                    return self.node(source).execute_command(*args)
                target = t.groups[r.target].master
                host, port = parse_addr(target)
                self.node(source).execute_command("SLOTSMGRTTAGONE", host, port, 30000, key)
                self.moves += 1
                return self._asking(target, args)
            except redis.exceptions.AskError as e:
                ask = f"{e.host}:{e.port}"
            except redis.exceptions.MovedError:
                ask = None
                self.refresh()
            except redis.exceptions.TryAgainError:
                ask = None
                time.sleep(0.01 * (attempt + 1))
            self.redirects += 1
        raise RuntimeError(f"slot {slot} kept moving")

    def _asking(self, address: str, args: tuple[Any, ...]) -> Any:
        pipe = self.node(address).pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.execute_command(*args)
        _ok, reply = pipe.execute(raise_on_error=False)
        if isinstance(reply, Exception):
            raise reply
        return reply
