"""What each master is told of the topology: its slot map (``SLOTSMAP SET``), and pushing it.

The document (docs/cluster.md "What a node knows") is the ``slots`` document of etcd with the
masters' addresses and the group of the node it is for::

    {"v": 1, "epoch": 7, "group": 1,
     "groups": {"1": "127.0.0.1:7002", "2": "127.0.0.1:7004"},
     "ranges": [{"from": 0, "to": 8191, "group": 1, "state": "online"},
                {"from": 8192, "to": 8192, "group": 1, "state": "migrating", "target": 2},
                {"from": 8193, "to": 16383, "group": 2, "state": "online"}]}

ledis-server reads it in ``stack/server/slotmap.py`` (the server never imports this package);
tests/test_migration.py holds the two together. Replicas get the map from their master
through replication, so only masters are pushed to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from stack.core.resp_client import RespClient
from stack.core.resp_session import ClientError, Endpoint, ServerError

from .model import DOC_VERSION, Topology, dumps, parse_addr

log = logging.getLogger(__name__)

PUSH_TIMEOUT = 5.0


def node_map(t: Topology, group: int) -> bytes:
    """The slot map document for the master of ``group``."""
    return dumps(
        {
            "v": DOC_VERSION,
            "epoch": t.epoch,
            "group": group,
            "groups": {str(g.id): g.master for g in (t.groups[i] for i in sorted(t.groups))},
            "ranges": [r.to_doc() for r in t.slots.ranges],
        }
    )


@dataclass(frozen=True)
class Pushed:
    """How one master took its map: ``error`` None when it has it (or a newer one)."""

    group: int
    addr: str
    error: str | None = None


class MapPusher:
    """Pushes maps to masters over connections it keeps (a migration pushes after every
    slot)."""

    def __init__(self, password: str | None = None, timeout: float = PUSH_TIMEOUT) -> None:
        self.password = password
        self.timeout = timeout
        self.clients: dict[str, RespClient] = {}

    def _client(self, addr: str) -> RespClient:
        client = self.clients.get(addr)
        if client is None:
            host, port = parse_addr(addr)
            client = self.clients[addr] = RespClient(
                Endpoint(host=host, port=port, password=self.password,
                         client_name="ledis-cluster"),
                connect_timeout=self.timeout,
                request_timeout=self.timeout,
                backoff=None,
            )  # fmt: skip
        return client

    async def push_one(self, t: Topology, group: int) -> Pushed:
        addr = t.groups[group].master
        try:
            await self._client(addr).execute("SLOTSMAP", "SET", str(t.epoch), node_map(t, group))
            return Pushed(group, addr)
        except ServerError as e:
            if "stale slot map epoch" in str(e):
                return Pushed(group, addr)  # it has a newer map already: nothing to do
            return Pushed(group, addr, str(e))
        except (ClientError, OSError) as e:
            return Pushed(group, addr, str(e) or type(e).__name__)

    async def push(self, t: Topology, groups: Iterable[int] | None = None) -> list[Pushed]:
        """Give every master (or those of ``groups``) the map of ``t``'s epoch, in parallel."""
        wanted = sorted(t.groups) if groups is None else [g for g in groups if g in t.groups]
        return list(await asyncio.gather(*(self.push_one(t, g) for g in wanted)))

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()


async def push_maps(
    t: Topology,
    password: str | None = None,
    groups: Iterable[int] | None = None,
    timeout: float = PUSH_TIMEOUT,
) -> list[Pushed]:
    """Give every master (or those of ``groups``) the map of ``t``'s epoch, once."""
    pusher = MapPusher(password, timeout)
    try:
        return await pusher.push(t, groups)
    finally:
        await pusher.close()
