"""The proxy's migration path and its handling of stale maps, against small fake backends.

The server side of SLOTSMGRTTAGONE / ASKING / MOVED comes with the migration work
(docs/cluster.md is the contract); these fakes play it: each records what it received and
when, and answers as a test tells it. The proxy runs in-process with a topology given by hand
(no etcd). The end-to-end migration under load belongs to the migration work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from stack.cluster.model import Group, Meta, SlotMap, SlotRange, Topology
from stack.core.resp import RequestParser, encode
from stack.core.resp_client import Endpoint, RespClient
from stack.core.slots import key_slot
from stack.proxy.client import Client
from stack.proxy.config import ProxyConfig
from stack.proxy.replies import ReplySplitter
from stack.proxy.server import ProxyServer

Handler = Callable[["FakeNode", list[bytes]], Awaitable[bytes | None]]


@dataclass
class Seen:
    args: list[bytes]
    at: float  # when it arrived
    conn: int


@dataclass
class FakeNode:
    """A RESP server that records commands and answers through ``handler`` (None: the
    default answers of a plain node holding ``data``)."""

    handler: Handler | None = None
    data: dict[bytes, bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    replied: dict[bytes, float] = field(default_factory=dict)  # key -> when it was moved
    port: int = 0
    server: asyncio.AbstractServer | None = None
    conns: int = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> FakeNode:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.conns += 1
        conn = self.conns
        parser = RequestParser()
        while data := await reader.read(65536):
            parser.feed(data)
            for args in parser.parse():
                self.seen.append(Seen(args, time.monotonic(), conn))
                reply = await self.handler(self, args) if self.handler else None
                writer.write(reply if reply is not None else self.default(args))
                await writer.drain()
        writer.close()

    def default(self, args: list[bytes]) -> bytes:
        name = args[0].upper()
        if name in (b"ASKING", b"PING"):
            return b"+OK\r\n" if name == b"ASKING" else b"+PONG\r\n"
        if name == b"SET":
            self.data[args[1]] = args[2]
            return b"+OK\r\n"
        if name == b"GET":
            return encode(self.data.get(args[1]))
        if name == b"MGET":
            return encode([self.data.get(k) for k in args[1:]])
        return b"-ERR fake node: " + name + b"\r\n"

    def names(self) -> list[bytes]:
        return [s.args[0].upper() for s in self.seen]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def topology(epoch: int, a: FakeNode, b: FakeNode, slot: int, state: str) -> Topology:
    """Slots up to ``slot`` - 1 to group 1, the rest to group 2; ``slot`` itself in group 1,
    migrating to group 2 (``state`` "migrating"), or moved there ("moved")."""
    ranges = []
    if slot > 0:
        ranges.append(SlotRange(0, slot - 1, 1))
    if state == "migrating":
        ranges.append(SlotRange(slot, slot, 1, "migrating", 2))
    elif state == "moved":
        ranges.append(SlotRange(slot, slot, 2))
    else:
        ranges.append(SlotRange(slot, slot, 1))
    if slot < 16383:
        ranges.append(SlotRange(slot + 1, 16383, 2))
    merged: list[SlotRange] = []
    for r in ranges:
        last = merged[-1] if merged else None
        if last and (last.group, last.state, last.target) == (r.group, r.state, r.target):
            merged[-1] = SlotRange(last.start, r.end, r.group, r.state, r.target)
        else:
            merged.append(r)
    return Topology(
        cluster="fake",
        revision=epoch,
        meta=Meta("fake", 0.0),
        epoch=epoch,
        groups={1: Group(1, a.addr), 2: Group(2, b.addr)},
        slots=SlotMap(epoch, tuple(merged)),
    )


KEY = b"user:1000"
SLOT = key_slot(KEY)
OTHER = b"a"  # a key of a slot above SLOT: group 2's
LOW = next(k for k in (b"low%d" % i for i in range(10_000)) if key_slot(k) < SLOT)  # group 1's


@dataclass
class Rig:
    a: FakeNode
    b: FakeNode
    proxy: ProxyServer
    client: RespClient
    listener: asyncio.AbstractServer


async def rig(a: FakeNode, b: FakeNode, state: str, **config: object) -> Rig:
    await a.start()
    await b.start()
    proxy = ProxyServer(ProxyConfig(etcd=("127.0.0.1:9",), cluster="fake", **config))  # type: ignore[arg-type]
    assert proxy.apply(topology(5, a, b, SLOT, state))
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Client(proxy), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = RespClient(Endpoint("127.0.0.1", port), raw=True, request_timeout=10)
    return Rig(a, b, proxy, client, listener)


async def done(r: Rig) -> None:
    await r.client.close()
    r.listener.close()
    for backend in r.proxy.backends.values():
        backend.close()
    await r.a.stop()
    await r.b.stop()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_a_key_moves_to_the_target_before_the_command_goes_there() -> None:
    async def source(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"SLOTSMGRTTAGONE":
            await asyncio.sleep(0.2)  # the key takes a while to travel
            node.replied[args[4]] = time.monotonic()
            return b":1\r\n"
        return None

    async def main() -> None:
        r = await rig(FakeNode(source), FakeNode(), "migrating", migrate_timeout=1234)
        try:
            assert await r.client.call("SET", KEY, "v") == b"+OK\r\n"
            mgrt = [s.args for s in r.a.seen if s.args[0].upper() == b"SLOTSMGRTTAGONE"]
            assert mgrt == [
                [b"SLOTSMGRTTAGONE", b"127.0.0.1", str(r.b.port).encode(), b"1234", KEY]
            ]
            assert [s.args for s in r.b.seen[-2:]] == [[b"ASKING"], [b"SET", KEY, b"v"]]
            assert r.b.seen[-2].at >= r.a.replied[KEY]  # never before the key was there
            assert r.b.seen[-2].conn == r.b.seen[-1].conn
            assert b"SET" not in r.a.names()
            # a read moves the key too, and a multi-key command splits around the slot
            r.b.data[OTHER] = b"o"  # OTHER is group 2's (slot 15495 > SLOT)
            assert key_slot(OTHER) > SLOT
            assert (
                await r.client.call("MGET", OTHER, KEY, "nope")
                == b"*3\r\n$1\r\no\r\n$1\r\nv\r\n$-1\r\n"
            )
            assert r.a.names().count(b"SLOTSMGRTTAGONE") == 2
            assert r.proxy.stats.migrated_keys == 2
        finally:
            await done(r)

    run(main())


def test_a_failed_key_move_is_a_clear_error_and_the_target_is_not_touched() -> None:
    async def source(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"SLOTSMGRTTAGONE":
            return b"-ERR target refused the key\r\n"
        return None

    async def main() -> None:
        r = await rig(FakeNode(source), FakeNode(), "migrating")
        try:
            reply = await r.client.call("SET", KEY, "v")
            assert reply == (
                b"-ERR ledis-proxy: moving a key of slot %d failed: ERR target refused the key\r\n"
                % SLOT
            )
            assert r.b.seen == []
        finally:
            await done(r)

    run(main())


def test_moved_refreshes_the_map_and_the_client_never_sees_it() -> None:
    async def stale(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() in (b"GET", b"SET") and args[1] == KEY:
            return b"-MOVED %d %s\r\n" % (SLOT, b_node.addr.encode())
        return None

    b_node = FakeNode()

    async def main() -> None:
        r = await rig(FakeNode(stale), b_node, "online")
        b_node.data[KEY] = b"fresh"
        loads = 0

        async def load() -> Topology:
            nonlocal loads
            loads += 1
            return topology(6, r.a, r.b, SLOT, "moved")

        r.proxy.astore.load = load  # type: ignore[method-assign]
        try:
            assert await r.client.call("GET", KEY) == b"$5\r\nfresh\r\n"
            assert loads == 1 and r.proxy.routes.epoch == 6
            assert r.proxy.routes.routes[SLOT].backend is r.proxy.backends[r.b.addr]
            # pipelined: the MOVED reply in the middle is fixed in its place
            futures = [await r.client.submit(["GET", k]) for k in (OTHER, KEY, OTHER)]
            replies = [await f for f in futures]
            assert replies[1] == b"$5\r\nfresh\r\n"
            assert r.proxy.stats.redirects == 1
        finally:
            await done(r)

    run(main())


def test_moved_with_no_fresher_map_follows_the_address() -> None:
    b_node = FakeNode(data={KEY: b"there"})

    async def stale(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"GET" and args[1] == KEY:
            return b"-MOVED %d %s\r\n" % (SLOT, b_node.addr.encode())
        return None

    async def main() -> None:
        r = await rig(FakeNode(stale), b_node, "online")

        async def load() -> Topology:
            return topology(5, r.a, r.b, SLOT, "online")

        r.proxy.astore.load = load  # type: ignore[method-assign]
        try:
            assert await r.client.call("GET", KEY) == b"$5\r\nthere\r\n"
        finally:
            await done(r)

    run(main())


def test_ask_and_tryagain_are_followed() -> None:
    tries = {"n": 0}

    async def source(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"GET" and args[1] == KEY:
            return b"-ASK %d %s\r\n" % (SLOT, b_node.addr.encode())
        return None

    async def target(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"GET" and tries["n"] < 2:
            tries["n"] += 1
            return b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
        return None

    b_node = FakeNode(target, data={KEY: b"asked"})

    async def main() -> None:
        r = await rig(FakeNode(source), b_node, "online")

        async def load() -> Topology:
            return topology(5, r.a, r.b, SLOT, "online")

        r.proxy.astore.load = load  # type: ignore[method-assign]
        try:
            assert await r.client.call("GET", KEY) == b"$5\r\nasked\r\n"
            assert r.b.names().count(b"ASKING") >= 1
            assert tries["n"] == 2
        finally:
            await done(r)

    run(main())


def test_redirects_are_bounded() -> None:
    async def forever(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"GET":
            return b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
        return None

    async def main() -> None:
        r = await rig(FakeNode(forever), FakeNode(), "online", redirect_retries=3)
        try:
            reply = await r.client.call("GET", KEY)
            assert reply.startswith(b"-ERR ledis-proxy: slot %d kept moving (TRYAGAIN" % SLOT)
            assert r.a.names().count(b"GET") == 1 + 4  # the first try, then 1 + 3 retries
        finally:
            await done(r)

    run(main())


def test_an_older_epoch_is_ignored() -> None:
    async def main() -> None:
        r = await rig(FakeNode(), FakeNode(), "online")
        try:
            before = r.proxy.routes
            assert not r.proxy.apply(topology(4, r.a, r.b, SLOT, "moved"))
            assert r.proxy.routes is before
            assert r.proxy.apply(topology(7, r.a, r.b, SLOT, "moved"))
            assert r.proxy.routes.epoch == 7
            assert r.proxy.routes.routes[SLOT].group == 2
        finally:
            await done(r)

    run(main())


def test_transaction_waits_for_a_migrating_slot() -> None:
    async def main() -> None:
        a, b = FakeNode(), FakeNode()

        async def txn(node: FakeNode, args: list[bytes]) -> bytes | None:
            name = args[0].upper()
            if name == b"MULTI":
                return b"+OK\r\n"
            if name == b"EXEC":
                return b"*1\r\n+OK\r\n"
            if name == b"SET":
                return b"+QUEUED\r\n"
            return None

        b.handler = txn
        r = await rig(a, b, "migrating", transaction_wait=10)
        try:
            assert await r.client.call("MULTI") == b"+OK\r\n"
            assert await r.client.call("SET", KEY, "v") == b"+QUEUED\r\n"
            fut = await r.client.submit(["EXEC"])
            await asyncio.sleep(0.2)
            assert not fut.done()  # held while the slot migrates
            r.proxy.apply(topology(6, r.a, r.b, SLOT, "moved"))
            assert await fut == b"*1\r\n+OK\r\n"
            assert [s.args[0] for s in b.seen] == [b"MULTI", b"SET", b"EXEC"]
            assert a.seen == []
        finally:
            await done(r)

    run(main())


@pytest.mark.parametrize("state", ["online", "migrating"])
def test_blocking_command_gets_its_own_link(state: str) -> None:
    async def main() -> None:
        async def slow(node: FakeNode, args: list[bytes]) -> bytes | None:
            if args[0].upper() == b"BLPOP":
                await asyncio.sleep(0.3)
                return b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
            if args[0].upper() == b"SLOTSMGRTTAGONE":
                return b":0\r\n"
            return None

        a, b = FakeNode(slow), FakeNode(slow)
        r = await rig(a, b, state)
        try:
            fut = await r.client.submit(["BLPOP", KEY, "0"])
            other = RespClient(r.client.endpoint, raw=True, request_timeout=10)
            node, key = (a, LOW) if state == "online" else (b, OTHER)
            assert await other.call("SET", key, "1") == b"+OK\r\n"  # not stuck behind it
            assert not fut.done()
            assert await fut == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
            blpop = next(s for s in node.seen if s.args[0].upper() == b"BLPOP")
            sets = [s for s in node.seen if s.args[0].upper() == b"SET"]
            assert sets and all(s.conn != blpop.conn for s in sets)
            await other.close()
        finally:
            await done(r)

    run(main())


def test_moved_inside_a_read_that_spans_both_nodes() -> None:
    """One read with commands for both nodes (one batch each, put back in order) where one
    reply is a MOVED: fixed in its place."""
    b_node = FakeNode(data={KEY: b"fresh", OTHER: b"o"})

    async def stale(node: FakeNode, args: list[bytes]) -> bytes | None:
        if args[0].upper() == b"GET" and args[1] == KEY:
            return b"-MOVED %d %s\r\n" % (SLOT, b_node.addr.encode())
        return None

    async def main() -> None:
        a = FakeNode(stale, data={LOW: b"low"})
        r = await rig(a, b_node, "online")

        async def load() -> Topology:
            return topology(6, r.a, r.b, SLOT, "moved")

        r.proxy.astore.load = load  # type: ignore[method-assign]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", r.client.endpoint.port)
            cmds = [[b"GET", k] for k in (OTHER, KEY, LOW, OTHER, LOW)]
            writer.write(b"".join(encode(c) for c in cmds))
            splitter = ReplySplitter()
            replies: list[bytes] = []
            while len(replies) < 5:
                replies += splitter.feed(await reader.read(65536))
            assert replies == [
                b"$1\r\no\r\n",
                b"$5\r\nfresh\r\n",
                b"$3\r\nlow\r\n",
                b"$1\r\no\r\n",
                b"$3\r\nlow\r\n",
            ]
            writer.close()
        finally:
            await done(r)

    run(main())
