"""One look at every node: PING, ROLE, INFO replication (LogIDs, the epoch it serves under,
fenced or not), all nodes at once, each bounded by the probe timeout. Uses the core's
RespClient with a fresh connection per look, so a restarted or frozen node is noticed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stack.cluster.model import format_addr
from stack.cluster.nodes import node_client
from stack.core.resp_client import RespClient
from stack.core.resp_session import ClientError


@dataclass(frozen=True)
class NodeLook:
    """What a node said about itself, or why it said nothing."""

    addr: str
    up: bool
    role: str | None = None  # master or replica
    master: str | None = None  # a replica's master
    link: str | None = None  # a replica's link: connect, connecting, sync, connected
    log_id: int | None = None  # the last LogID applied
    epoch: int = 0  # the epoch it serves under (NODEEPOCH)
    fenced: bool = False
    error: str | None = None

    @property
    def writable_master(self) -> bool:
        return self.up and self.role == "master" and not self.fenced


def _text(v: object) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def info_fields(info: object) -> dict[str, str]:
    out = {}
    for line in _text(info).splitlines():
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def read_look(addr: str, role: object, info: object) -> NodeLook:
    """A NodeLook from ROLE and INFO replication replies."""
    fields = info_fields(info)
    epoch = int(fields.get("ledis_node_epoch", "0") or 0)
    fenced = fields.get("ledis_fenced", "0") == "1"
    if not isinstance(role, list) or not role:
        return NodeLook(addr, False, error=f"unexpected ROLE reply {role!r}")
    kind = _text(role[0])
    if kind == "master":
        log_id = role[1] if len(role) > 1 and isinstance(role[1], int) else None
        return NodeLook(addr, True, "master", log_id=log_id, epoch=epoch, fenced=fenced)
    if kind == "slave" and len(role) >= 5:
        master = format_addr(_text(role[1]), int(_text(role[2])))
        log_id = role[4] if isinstance(role[4], int) else None
        return NodeLook(addr, True, "replica", master, _text(role[3]), log_id, epoch, fenced)
    return NodeLook(addr, False, error=f"unexpected ROLE reply {role!r}")


def client_for(addr: str, timeout: float, password: str | None) -> RespClient:
    return node_client(addr, password, timeout, "ledis-failover")


async def look(addr: str, dial: str, timeout: float, password: str | None) -> NodeLook:
    client = client_for(dial, timeout, password)
    try:
        async with asyncio.timeout(timeout * 2):
            await client.execute("PING")
            role = await client.execute("ROLE")
            info = await client.execute("INFO", "replication")
        return read_look(addr, role, info)
    except (TimeoutError, ClientError, OSError, ValueError) as e:
        return NodeLook(addr, False, error=str(e) or type(e).__name__)
    finally:
        await client.close()


async def look_all(
    addrs: Iterable[str],
    timeout: float,
    password: str | None = None,
    dial: Callable[[str], str] = lambda a: a,
) -> dict[str, NodeLook]:
    addrs = list(dict.fromkeys(addrs))
    looks = await asyncio.gather(*(look(a, dial(a), timeout, password) for a in addrs))
    return dict(zip(addrs, looks, strict=True))


async def command(
    addr: str, dial: str, timeout: float, password: str | None, *args: str | int
) -> object:
    """One command to one node (ClientError / OSError / TimeoutError when it fails)."""
    client = client_for(dial, timeout, password)
    try:
        async with asyncio.timeout(timeout * 2):
            return await client.execute(*args)
    finally:
        await client.close()
