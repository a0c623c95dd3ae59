"""Replication by LogID (DESIGN.md decision 5).

A replica connects to its master and sends ``LSYNC <last LogID> <checksum of that record>``.
When the master still holds every record after that LogID, and its record at that LogID is the
same (the histories agree), it answers ``+CONTINUE`` and streams records from there; otherwise
``+FULLSYNC <LogID>``, then a consistent LevelDB snapshot in chunks, ``END``, and the records
after the snapshot. Records are pushed as ``*2 :<LogID> $<record>``; the replica applies each
as one LevelDB batch under the same LogID (so it ends byte-identical) and acknowledges with
``REPLCONF ACK <LogID>``.

The master sends from its binlog (not from memory): a replica that falls behind catches up
from disk, and the master's memory stays bounded. A replica behind the purged part of the log
is disconnected and comes back with a full sync.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.reply_parser import ErrorReply
from stack.core.resp_client import Endpoint, HandshakeError, RequestTimeout, RespClient
from stack.core.resp_session import ClientError

from .storage import binlog as blog
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
BATCH_RECORDS = 256
HIGH_WATER = 4 * 1024 * 1024
HEARTBEAT_SECONDS = 1.0  # a replica acknowledges at least this often


NOMASTERLINK = b"-" + errors.NO_MASTER_LINK.encode() + b"\r\n"


def _finish(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def record_checksum(raw: bytes | None) -> int:
    return zlib.crc32(raw) if raw else 0


@dataclass
class ReplicaLink:
    """The master's view of one connected replica."""

    client: Client
    port: int = 0
    state: str = "wait_bgsave"
    ack: int = 0
    ack_time: float = field(default_factory=time.monotonic)
    sent: int = 0
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return self.client.addr.rsplit(":", 1)[0]


class Replication:
    """Both roles: the master's replica links, and the replica's link to its master."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.links: list[ReplicaLink] = []
        self.master: tuple[str, int] | None = None
        self.link_state = "none"
        self.last_io = 0.0
        self.full_syncs = 0
        self.partial_syncs = 0
        self._task: asyncio.Task[None] | None = None
        self.ack_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.refused_writes = 0  # semi-sync: refused before running (-NOREPLICAS)
        self.unacked_writes = 0  # semi-sync: applied, not acknowledged in time (-UNACKED)
        server.engine.after_commit.append(self._new_record)

    # -- master side ----------------------------------------------------------------------

    def _new_record(self, log_id: int, raw: bytes) -> None:
        for link in self.links:
            link.wake.set()

    def attach(self, client: Client, after: int, checksum: int) -> bytes:
        """LSYNC from a replica: the reply that starts its stream. A replica serves one only
        while its own link is up, as Redis (a node made a replica of itself: never)."""
        if self.master is not None and self.link_state != "connected":
            return NOMASTERLINK
        eng = self.server.engine
        held = eng.first_log_id and eng.first_log_id <= after + 1 <= eng.last_log_id + 1
        same = after == 0 or record_checksum(eng.get(blog.log_key(after))) == checksum
        link = ReplicaLink(client, port=client.replica_port)
        client.replica_link = link
        self.links.append(link)
        if after and held and same:
            link.sent = after
            link.ack = after
            link.state = "online"
            self.partial_syncs += 1
            link.task = asyncio.get_running_loop().create_task(self._pump(link, None))
            return b"+CONTINUE %d\r\n" % eng.last_log_id
        self.full_syncs += 1
        eng.commit()
        snapshot = eng.db.snapshot()
        link.sent = eng.last_log_id
        link.task = asyncio.get_running_loop().create_task(self._pump(link, snapshot))
        return b"+FULLSYNC %d\r\n" % eng.last_log_id

    def detach(self, client: Client) -> None:
        link = client.replica_link
        if link is not None and link in self.links:
            self.links.remove(link)
            if link.task is not None:
                link.task.cancel()
        self._check_acks()

    async def _drain(self, link: ReplicaLink) -> None:
        """Wait while the link holds more unsent output than half of what its output limits
        allow (and at most HIGH_WATER): records wait in the binlog, not in memory, and a slow
        replica is not dropped for output the master need not have queued."""
        limit = self.server.output_limits.replica
        high = min(x // 2 for x in (HIGH_WATER * 2, limit.hard, limit.soft) if x)
        t = link.client.transport
        while t is not None and not link.client.closing and t.get_write_buffer_size() > high:
            await asyncio.sleep(0.01)

    async def _pump(self, link: ReplicaLink, snapshot: object | None) -> None:
        client = link.client
        eng = self.server.engine
        try:
            if snapshot is not None:
                await self._send_snapshot(link, snapshot)
                link.state = "online"
            while not client.closing:
                if eng.first_log_id and link.sent + 1 < eng.first_log_id:
                    log.warning("replica %s fell behind the binlog; it will resync", client.addr)
                    client.close_now()
                    return
                sent_any = False
                batch = []
                size = 0
                for record_key, raw in eng.scan(
                    blog.log_key(link.sent + 1), kf.prefix_end(blog.NS_BINLOG)
                ):
                    log_id = blog.log_id_of(record_key)
                    batch.append(b"*2\r\n:%d\r\n$%d\r\n%b\r\n" % (log_id, len(raw), raw))
                    link.sent = log_id
                    size += len(raw)
                    if len(batch) >= BATCH_RECORDS or size >= CHUNK_BYTES:
                        break
                if batch:
                    client.push(b"".join(batch))
                    sent_any = True
                    await self._drain(link)
                if not sent_any:
                    link.wake.clear()
                    if link.sent >= eng.last_log_id:
                        await link.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("replication stream to %s failed", client.addr)
            client.close_now()

    async def _send_snapshot(self, link: ReplicaLink, snapshot: object) -> None:
        client = link.client
        parts: list[bytes] = []
        size = 0
        try:
            for k, v in snapshot.iterator():  # type: ignore[attr-defined]
                if not blog.loggable(k) or k == kf.SYS_VERSION:
                    continue
                parts += (kf.U32.pack(len(k)), k, kf.U32.pack(len(v)), v)
                size += len(k) + len(v) + 8
                if size >= CHUNK_BYTES:
                    payload = b"".join(parts)
                    client.push(b"*2\r\n$5\r\nCHUNK\r\n$%d\r\n%b\r\n" % (len(payload), payload))
                    parts, size = [], 0
                    await self._drain(link)
            payload = b"".join(parts)
            client.push(b"*2\r\n$5\r\nCHUNK\r\n$%d\r\n%b\r\n" % (len(payload), payload))
            client.push(b"*2\r\n$3\r\nEND\r\n:%d\r\n" % link.sent)
        finally:
            snapshot.close()  # type: ignore[attr-defined]

    def acked(self, client: Client, log_id: int) -> None:
        link = client.replica_link
        if link is not None:
            link.ack = max(link.ack, log_id)
            link.ack_time = time.monotonic()
            self._check_acks()

    def good_replicas(self) -> int:
        """Replicas that count for semi-sync, as Redis counts them: online, and their last
        acknowledgement (replicas send one at least every second) no older than
        ``min-replicas-max-lag`` seconds."""
        max_lag = self.server.config["min-replicas-max-lag"]
        now = time.monotonic()
        return sum(
            1
            for link in self.links
            if link.state == "online" and int(now - link.ack_time) <= max_lag
        )

    def enough_good_replicas(self) -> bool:
        """Whether a write may run under ``min-replicas-to-write`` (Redis's
        checkGoodReplicasStatus: always on a replica, and when either setting is 0)."""
        need = self.server.semi_sync
        if not need or self.master is not None or not self.server.config["min-replicas-max-lag"]:
            return True
        return self.good_replicas() >= need

    def count_acked(self, log_id: int) -> int:
        return sum(1 for link in self.links if link.state == "online" and link.ack >= log_id)

    def wait_for(self, log_id: int, replicas: int, timeout: float) -> asyncio.Future[None]:
        """A future done when ``replicas`` replicas acknowledged ``log_id`` (or on timeout)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if self.count_acked(log_id) >= replicas:
            fut.set_result(None)
            return fut
        self.ack_waiters.append((log_id, replicas, fut))
        if timeout > 0:
            loop.call_later(timeout, _finish, fut)
        return fut

    def _check_acks(self) -> None:
        still = []
        for log_id, replicas, fut in self.ack_waiters:
            if fut.done():
                continue
            if self.count_acked(log_id) >= replicas:
                fut.set_result(None)
            else:
                still.append((log_id, replicas, fut))
        self.ack_waiters = still

    # -- replica side ---------------------------------------------------------------------

    def replicate(self, host: str, port: int) -> None:
        self.stop()
        self.master = (host, port)
        self.server.read_only = True
        self.server.keyspace.replica = True
        self.link_state = "connect"
        self._task = asyncio.get_running_loop().create_task(self._follow())

    def promote(self) -> None:
        """REPLICAOF NO ONE: keep the data and go on with the LogID sequence as a master."""
        self.stop()
        self.master = None
        self.server.read_only = False
        self.server.keyspace.become_primary()
        self.link_state = "none"

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _follow(self) -> None:
        delay = 0.1
        while self.master is not None:
            try:
                await self._sync_once(*self.master)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (OSError, ClientError, ValueError) as e:
                log.warning("replication link to %s:%d: %s", *self.master, e)
            self.link_state = "connect"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _sync_once(self, host: str, port: int) -> None:
        server = self.server
        eng = server.engine
        self.link_state = "connecting"
        password = server.config["masterauth"] or None
        username = server.config["masteruser"] or None  # an ACL user (docs/acl.md)
        link = RespClient(
            Endpoint(host=host, port=port, username=username, password=password),
            connect_timeout=10.0,
            backoff=None,  # _follow decides when to try again
            max_pushes=256,  # reading pauses while this many wait to be applied
        )
        try:
            await link.connect()
            self.last_io = link.last_io
            await link.execute("REPLCONF", "listening-port", server.port)
            after = eng.last_log_id
            checksum = record_checksum(eng.get(blog.log_key(after)))
            first = await link.call("LSYNC", after, checksum)
            if isinstance(first, ErrorReply):
                raise ValueError(f"master refused LSYNC: {first}")
            if str(first).startswith("FULLSYNC"):
                self.link_state = "sync"
                await self._load_snapshot(link)
            self.link_state = "connected"
            await link.send_no_reply("REPLCONF", "ACK", eng.last_log_id)
            while True:  # the stream: records come as pushes; one ACK per burst applied, and
                # one a second while nothing comes, as Redis replicas do (the master counts a
                # replica good for semi-sync only while it hears from it)
                try:
                    items = await link.next_pushes(timeout=HEARTBEAT_SECONDS)
                except RequestTimeout:
                    items = []
                self._apply(items)
                self.last_io = link.last_io
                await link.send_no_reply("REPLCONF", "ACK", eng.last_log_id)
                await asyncio.sleep(0)  # clients' turns between bursts already buffered
        except HandshakeError as e:
            raise ValueError(f"AUTH with masterauth failed: {e}") from None
        finally:
            await link.close()

    def _apply(self, items: list[object]) -> None:
        """Apply records pushed by the master (a burst of them: one write batch)."""
        eng = self.server.engine
        records = []
        after = eng.last_log_id
        for item in items:
            if not isinstance(item, list) or len(item) != 2:
                raise ValueError(f"unexpected message from master: {item!r}")
            log_id, raw = item
            if not isinstance(log_id, int) or not isinstance(raw, bytes):
                raise ValueError("malformed replication record")
            if log_id <= after:
                continue  # already applied (a resent record after a reconnect)
            after = log_id
            records.append((log_id, raw, blog.decode_record(log_id, raw).changes))
        eng.apply_replicated(records)
        if any(k[:1] == kf.NS_SYSTEM for _i, _r, changes in records for k, _v in changes):
            self.server.keyspace.reload()

    async def _load_snapshot(self, link: RespClient) -> None:
        eng = self.server.engine
        eng.wipe()
        while True:
            batch = await link.next_pushes()
            self.last_io = link.last_io
            for n, item in enumerate(batch):
                if not isinstance(item, list) or not item:
                    raise ValueError("malformed full sync")
                if item[0] == b"END":
                    log_id = item[1]
                    eng.load_chunk([(kf.SYS_LAST_LOG, kf.U64.pack(log_id))])
                    eng.last_log_id = log_id
                    eng.first_log_id = 0
                    self.server.keyspace.reload()
                    self._apply(batch[n + 1 :])  # records that came in the same read
                    return
                eng.load_chunk(_snapshot_pairs(item[1]))

    # -- introspection --------------------------------------------------------------------

    def lag_ms(self, link: ReplicaLink) -> int:
        """How old the oldest record the replica has not acknowledged is (0 when caught up)."""
        eng = self.server.engine
        if link.ack >= eng.last_log_id:
            return 0
        raw = eng.get(blog.log_key(link.ack + 1))
        if raw is None or len(raw) < 8:
            return 0
        return max(0, int(time.time() * 1000) - kf.U64.unpack_from(raw, 0)[0])

    def role(self) -> list[object]:
        eng = self.server.engine
        if self.master is None:
            return [
                b"master",
                eng.last_log_id,
                [
                    [link.address.encode(), str(link.port).encode(), str(link.ack).encode()]
                    for link in self.links
                ],
            ]
        host, port = self.master
        return [b"slave", host.encode(), port, self.link_state.encode(), eng.last_log_id]

    def info(self) -> list[tuple[str, object]]:
        eng = self.server.engine
        now = time.monotonic()
        if self.master is None:
            rows: list[tuple[str, object]] = [
                ("role", "master"),
                ("connected_slaves", len(self.links)),
            ]
            for n, link in enumerate(self.links):
                lag_ids = max(0, eng.last_log_id - link.ack)
                rows.append(
                    (
                        f"slave{n}",
                        f"ip={link.address},port={link.port},"
                        f"state={link.state},offset={link.ack},"
                        f"lag={int(now - link.ack_time)},lag_logids={lag_ids},"
                        f"lag_ms={self.lag_ms(link)}",
                    )
                )
            if self.server.semi_sync and self.server.config["min-replicas-max-lag"]:
                rows.append(("min_slaves_good_slaves", self.good_replicas()))
            rows += [
                ("min_replicas_to_write", self.server.semi_sync),
                ("ledis_semisync_refused_writes", self.refused_writes),
                ("ledis_semisync_unacked_writes", self.unacked_writes),
                ("master_failover_state", "no-failover"),
                ("master_replid", self.server.run_id),
                ("master_repl_offset", eng.last_log_id),
                ("ledis_full_syncs", self.full_syncs),
                ("ledis_partial_syncs", self.partial_syncs),
            ]
            return rows
        host, port = self.master
        up = self.link_state == "connected"
        return [
            ("role", "slave"),
            ("master_host", host),
            ("master_port", port),
            ("master_link_status", "up" if up else "down"),
            ("master_last_io_seconds_ago", int(now - self.last_io) if self.last_io else -1),
            ("master_sync_in_progress", int(self.link_state == "sync")),
            ("slave_repl_offset", eng.last_log_id),
            ("slave_read_only", 1),
            ("connected_slaves", len(self.links)),
            ("master_repl_offset", eng.last_log_id),
        ]


def _snapshot_pairs(payload: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) records of one full-sync chunk (``klen u32, key, vlen u32, value``)."""
    pairs = []
    pos = 0
    while pos < len(payload):
        klen = kf.U32.unpack_from(payload, pos)[0]
        k = payload[pos + 4 : pos + 4 + klen]
        pos += 4 + klen
        vlen = kf.U32.unpack_from(payload, pos)[0]
        pairs.append((k, payload[pos + 4 : pos + 4 + vlen]))
        pos += 4 + vlen
    return pairs
