"""What one observer (a controller or a proxy) sees of the nodes, reported into etcd.

Each observer keeps ``views/<observer>`` under its lease (docs/failover.md): for every node it
watches, whether the node answered its last look and since when (wall-clock time of the last
change). The controller declares a master down only when more than one view agrees, so one
observer cut from the nodes cannot fail over a healthy master.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stack.core.resp_session import ClientError

from .model import DOC_VERSION, ModelError, _Reader, check_addr, dumps
from .nodes import node_client

CONTROLLER = "controller"
PROXY = "proxy"


@dataclass(frozen=True)
class Seen:
    """One node as an observer sees it: ``up`` since ``since`` (wall-clock seconds)."""

    up: bool
    since: float

    def down_for(self, now: float) -> float:
        return 0.0 if self.up else max(0.0, now - self.since)


@dataclass(frozen=True)
class View:
    observer: str
    kind: str  # controller or proxy
    ts: float  # when it was taken (wall clock)
    nodes: Mapping[str, Seen] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return dumps(
            {
                "v": DOC_VERSION,
                "observer": self.observer,
                "kind": self.kind,
                "ts": self.ts,
                "nodes": {a: {"up": s.up, "since": s.since} for a, s in self.nodes.items()},
            }
        )

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> View:
        r = _Reader(where, raw)
        r.version()
        items = r.get("nodes", {})
        if not isinstance(items, dict):
            raise r.fail("nodes", "expected an object of 'host:port' -> {up, since}")
        nodes: dict[str, Seen] = {}
        for addr, item in items.items():
            rr = _Reader(f"{where}: nodes[{addr!r}]", item if isinstance(item, dict) else "0")
            up = rr.get("up")
            if not isinstance(up, bool):
                raise rr.fail("up", f"expected true or false, got {up!r}")
            try:
                nodes[check_addr(addr)] = Seen(up, rr.number("since"))
            except ValueError as e:
                raise r.fail("nodes", str(e)) from None
        return cls(
            observer=r.text("observer"),
            kind=r.text("kind", choices=(CONTROLLER, PROXY)),
            ts=r.number("ts"),
            nodes=nodes,
        )


def read_views(kvs: Iterable[tuple[str, bytes, int]]) -> dict[str, View]:
    """The views among ``(path, value, mod)`` rows; one that does not parse is left out."""
    out: dict[str, View] = {}
    for path, value, _mod in kvs:
        try:
            view = View.from_json(path, value)
        except ModelError:
            continue
        out[view.observer] = view
    return out


class Sightings:
    """An observer's memory of each node: up or down, and since when."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}

    def update(self, results: Mapping[str, bool], now: float) -> dict[str, Seen]:
        """Record this look's results (nodes not looked at are forgotten)."""
        fresh: dict[str, Seen] = {}
        for addr, up in results.items():
            old = self.seen.get(addr)
            fresh[addr] = old if old is not None and old.up == up else Seen(up, now)
        self.seen = fresh
        return dict(fresh)


async def ping(addr: str, timeout: float, password: str | None = None, name: str = "") -> bool:
    """Whether ``addr`` answers PING within ``timeout`` (a fresh connection each time, so a
    node that restarted or froze is noticed)."""
    client = node_client(addr, password, timeout, name)
    try:
        async with asyncio.timeout(timeout * 2):
            await client.execute("PING")
        return True
    except (TimeoutError, ClientError, OSError):
        return False
    finally:
        await client.close()


async def ping_all(
    addrs: Iterable[str], timeout: float, password: str | None = None, name: str = ""
) -> dict[str, bool]:
    addrs = list(dict.fromkeys(addrs))
    results = await asyncio.gather(*(ping(a, timeout, password, name) for a in addrs))
    return dict(zip(addrs, results, strict=True))
