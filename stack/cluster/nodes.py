"""Talking to the nodes of a cluster: probe (PING, ROLE, INFO keyspace), attach a replica
(REPLICAOF, then ROLE until its link is up), detach one. Bounded: every request has a
timeout, every probe of many nodes runs them in parallel. Uses the core's RespClient."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from stack.core.resp_client import RespClient
from stack.core.resp_session import ClientError, Endpoint, ServerError

from .model import format_addr, parse_addr

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class NodeState:
    """What a node said about itself (or why it said nothing)."""

    addr: str
    reachable: bool
    role: str | None = None  # "master" or "replica"
    master: str | None = None  # a replica's master, "host:port"
    link: str | None = None  # a replica's link state: connect, connecting, sync, connected
    log_id: int | None = None
    keys: int | None = None  # keys in all databases
    error: str | None = None

    def describe(self) -> str:
        if not self.reachable:
            return f"{self.addr} does not answer ({self.error})"
        if self.role == "replica":
            return f"{self.addr} is a replica of {self.master} (link {self.link})"
        return f"{self.addr} is a master with {self.keys} keys"


class NodeError(Exception):
    """A node refused or failed an administrative step; the message says which and why."""


def node_client(
    addr: str, password: str | None, timeout: float, name: str = "ledis-console"
) -> RespClient:
    """A one-off client of a node: no reconnection, every step bounded by ``timeout``."""
    host, port = parse_addr(addr)
    return RespClient(
        Endpoint(host=host, port=port, password=password, client_name=name or None),
        connect_timeout=timeout,
        request_timeout=timeout,
        backoff=None,
    )


def _text(v: object) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _count_keys(info: object) -> int:
    keys = 0
    for line in _text(info).splitlines():
        if line.startswith("db") and ":" in line:
            for part in line.split(":", 1)[1].split(","):
                name, _, value = part.partition("=")
                if name == "keys" and value.isdigit():
                    keys += int(value)
    return keys


async def _probe(client: RespClient, addr: str) -> NodeState:
    await client.execute("PING")
    role = await client.execute("ROLE")
    info = await client.execute("INFO", "keyspace")
    if not isinstance(role, list) or not role:
        raise NodeError(f"{addr}: unexpected ROLE reply {role!r}")
    kind = _text(role[0])
    keys = _count_keys(info)
    if kind == "master":
        log_id = role[1] if len(role) > 1 and isinstance(role[1], int) else None
        return NodeState(addr, True, "master", log_id=log_id, keys=keys)
    if kind == "slave" and len(role) >= 4:
        master = format_addr(_text(role[1]), int(_text(role[2])))
        log_id = role[4] if len(role) > 4 and isinstance(role[4], int) else None
        return NodeState(addr, True, "replica", master, _text(role[3]), log_id, keys)
    return NodeState(addr, True, kind, keys=keys)


async def probe(
    addr: str, password: str | None = None, timeout: float = PROBE_TIMEOUT
) -> NodeState:
    """PING, ROLE and INFO keyspace of one node; never raises for an unreachable node."""
    client = node_client(addr, password, timeout)
    try:
        return await asyncio.wait_for(_probe(client, addr), timeout * 3)
    except (TimeoutError, ClientError, OSError, NodeError) as e:
        return NodeState(addr, False, error=str(e) or type(e).__name__)
    finally:
        await client.close()


async def probe_all(
    addrs: Iterable[str], password: str | None = None, timeout: float = PROBE_TIMEOUT
) -> dict[str, NodeState]:
    addrs = list(dict.fromkeys(addrs))
    states = await asyncio.gather(*(probe(a, password, timeout) for a in addrs))
    return dict(zip(addrs, states, strict=True))


async def replicate(
    addr: str,
    master: str,
    password: str | None = None,
    timeout: float = PROBE_TIMEOUT,
    link_timeout: float = 30.0,
) -> NodeState:
    """Make ``addr`` a replica of ``master`` and wait (``link_timeout``) until ROLE says its
    link is connected. Raises NodeError saying what went wrong."""
    host, port = parse_addr(master)
    client = node_client(addr, password, timeout)
    try:
        try:
            await client.execute("REPLICAOF", host, str(port))
        except ServerError as e:
            raise NodeError(f"{addr} refused REPLICAOF {host} {port}: {e}") from None
        deadline = time.monotonic() + link_timeout
        state = await _probe(client, addr)
        while not (
            state.role == "replica" and state.master == master and state.link == "connected"
        ):
            if time.monotonic() > deadline:
                raise NodeError(
                    f"{addr} did not connect to its master {master} within {link_timeout:g} s "
                    f"({state.describe()})"
                )
            await asyncio.sleep(0.1)
            state = await _probe(client, addr)
        return state
    except (ClientError, OSError) as e:
        raise NodeError(f"{addr}: {e}") from None
    finally:
        await client.close()


async def detach(addr: str, password: str | None = None, timeout: float = PROBE_TIMEOUT) -> None:
    """REPLICAOF NO ONE, then SLOTSMAP RESET: the node leaves the cluster, keeps its data and
    serves all of it (the slot map it had from its master would answer -MOVED)."""
    client = node_client(addr, password, timeout)
    try:
        await client.execute("REPLICAOF", "NO", "ONE")
        await client.execute("SLOTSMAP", "RESET")
    except (ClientError, OSError) as e:
        raise NodeError(f"{addr}: REPLICAOF NO ONE / SLOTSMAP RESET failed: {e}") from None
    finally:
        await client.close()
