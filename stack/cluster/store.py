"""The cluster's topology in etcd: the only module that uses ``etcd3`` (PyPI ``cslab-etcd3``).

- ``Store.load()`` reads one consistent ``Topology`` (every document at one revision, in one
  transaction).
- ``Store.commit()`` writes a change as one transaction that compares the mod revision of
  every document it replaces and of the ``epoch`` key, so two writers never both win; the
  loser gets ``Conflict``. A topology change puts ``epoch + 1`` in the same transaction, and
  its event sentence too.
- ``Watch`` follows the cluster's prefix from a revision and resumes after a disconnect from
  the last revision it delivered; when that revision was compacted it reloads a full snapshot.
- ``Lease`` grants a lease and keeps it alive in a thread; ``Registration`` keeps one key
  under a lease (a proxy's entry, later the controller's leader key), re-creating it after
  the lease was lost.
- Events: ``append_event`` and the bounded stream (oldest trimmed).
- etcd unreachable is ``EtcdUnavailable`` naming the endpoints, raised within the request
  timeout, or retried with backoff for as long as the caller asked (``retry_for``).

etcd3's client is synchronous gRPC; ``AsyncStore`` (``async_store.py``) runs it in a small
thread pool for asyncio callers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import etcd3
import etcd3.etcdrpc as rpc
import etcd3.exceptions as etcd_exc
import grpc

from stack.core.resp_client import Backoff

from .model import (
    Event,
    Group,
    Meta,
    MigrationTask,
    ModelError,
    Proxy,
    SlotMap,
    Topology,
    check_addr,
    parse_addr,
)
from .paths import ClusterPaths
from .txn import EventDraft, Guard, Write

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
MAX_EVENTS = 1000
RETRY_BACKOFF = Backoff(initial=0.2, maximum=5.0)
# keys under the prefix that are not part of a Topology: the stream, what observers see, the
# controller's workflows (read by whoever needs them, never rebuilt into a topology)
NOT_TOPOLOGY = frozenset({"event", "other", "view", "failover"})
TXN_MAX_OPS = 100  # etcd refuses transactions of more than 128 operations by default

# gRPC keepalive: a watch on a frozen etcd notices within ~15 s. etcd refuses pings more
# often than every 5 s, and any ping while no call is open (its enforcement policy does not
# permit them without a stream: it answers GOAWAY too_many_pings, which gRPC logs as an
# error), so pings go only while a call (a watch) is open.
_GRPC_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


class StoreError(Exception):
    """A failure to show a user as it is (one sentence, no traceback)."""


class EtcdUnavailable(StoreError):
    """etcd could not be reached (or did not answer in time)."""


class Conflict(StoreError):
    """Someone else changed what this change was computed from; re-read and try again."""


def prefix_end(prefix: str) -> bytes:
    return etcd3.utils.prefix_range_end(prefix.encode())


def parse_endpoints(endpoints: Sequence[str]) -> list[tuple[str, int]]:
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    return [parse_addr(check_addr(e)) for e in endpoints]


class Store:
    """One cluster's documents in etcd (see the module's description)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        cluster: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float = 0.0,
        backoff: Backoff = RETRY_BACKOFF,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self.paths = ClusterPaths(cluster)
        self.cluster = cluster
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self.retry_for = retry_for
        self.backoff = backoff
        self.max_events = max_events
        eps = [
            etcd3.Endpoint(host, port, secure=False, time_retry=0.5, opts=_GRPC_OPTIONS)
            for host, port in parse_endpoints(endpoints)
        ]
        self.client = etcd3.MultiEndpointEtcd3Client(endpoints=eps, timeout=timeout, failover=True)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({self.where}, cluster={self.cluster!r})"

    @property
    def where(self) -> str:
        return ",".join(self.endpoints)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calling etcd ------------------------------------------------------------------------

    def _unavailable(self, e: BaseException) -> EtcdUnavailable:
        if isinstance(e, grpc.RpcError):
            text = e.details() or ""  # type: ignore[attr-defined]
            detail = "connection refused" if "refused" in text else f"{e.code().name}: {text}"  # type: ignore[attr-defined]
        elif isinstance(e, etcd_exc.ConnectionTimeoutError):
            detail = f"no answer within {self.timeout:g} s"
        elif isinstance(e, ValueError | etcd_exc.NoServerAvailableError):
            detail = "connection failed just now"
        else:
            detail = str(e) or type(e).__name__
        return EtcdUnavailable(f"etcd at {self.where} is unreachable ({detail})")

    def call(self, fn: Callable[[], T], *, retry_for: float | None = None) -> T:
        """Run one request; etcd unreachable -> EtcdUnavailable, after retrying with backoff
        for ``retry_for`` seconds (the store's default when None; ``float('inf')``: forever)."""
        budget = self.retry_for if retry_for is None else retry_for
        deadline = time.monotonic() + budget
        failures = 0
        while True:
            try:
                return fn()
            except (
                etcd_exc.ConnectionFailedError,
                etcd_exc.ConnectionTimeoutError,
                etcd_exc.NoServerAvailableError,
                etcd_exc.InternalServerError,
            ) as e:
                error = self._unavailable(e)
            except ValueError as e:
                if "failed node" not in str(e):  # etcd3: "Trying to use a failed node"
                    raise
                error = self._unavailable(e)
            except grpc.RpcError as e:
                if e.code() not in (  # type: ignore[attr-defined]
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.UNKNOWN,
                ):
                    raise StoreError(f"etcd at {self.where}: {e.details()}") from None  # type: ignore[attr-defined]
                error = self._unavailable(e)
            failures += 1
            pause = self.backoff.delay(failures)
            if time.monotonic() + pause > deadline:
                raise error
            log.info("%s; retrying in %.1f s", error, pause)
            time.sleep(pause)

    def _range(self, key: bytes, end: bytes | None = None, **kw: Any) -> rpc.RangeRequest:
        req = rpc.RangeRequest(key=key, **kw)
        if end is not None:
            req.range_end = end
        return req

    def _stub_call(self, stub: str, method: str, request: Any) -> Any:
        client = self.client
        fn = getattr(getattr(client, stub), method)
        return fn(
            request, self.timeout, credentials=client.call_credentials, metadata=client.metadata
        )

    def _txn(self, request: rpc.TxnRequest, retry_for: float | None = None) -> rpc.TxnResponse:
        return self.call(lambda: self._stub_call("kvstub", "Txn", request), retry_for=retry_for)

    def ping(self) -> int:
        """The current revision (raises EtcdUnavailable)."""
        resp = self.call(
            lambda: self._stub_call(
                "kvstub", "Range", self._range(self.paths.epoch.encode(), count_only=True)
            )
        )
        return int(resp.header.revision)

    # -- reading -----------------------------------------------------------------------------

    def load(self) -> Topology:
        """Every document of the cluster (events aside) at one revision."""
        raw = self.load_raw()
        return build_topology(self.paths, raw.revision, raw.kvs)

    def load_raw(self) -> RawSnapshot:
        """The keys ``load`` reads, as they are (for a ``TopologyView``)."""
        p = self.paths
        events = p.events.encode()
        request = rpc.TxnRequest(
            success=[
                rpc.RequestOp(request_range=self._range(p.prefix.encode(), events)),
                rpc.RequestOp(
                    request_range=self._range(prefix_end(p.events), prefix_end(p.prefix))
                ),
            ]
        )
        resp = self._txn(request)
        kvs = tuple(
            (kv.key.decode(), bytes(kv.value), int(kv.mod_revision))
            for r in resp.responses
            for kv in r.response_range.kvs
        )
        return RawSnapshot(int(resp.header.revision), kvs)

    def read_prefix(self, prefix: str) -> tuple[int, list[tuple[str, bytes, int]]]:
        """The revision and every ``(path, value, mod_revision)`` under ``prefix``."""
        req = self._range(prefix.encode(), prefix_end(prefix))
        resp = self.call(lambda: self._stub_call("kvstub", "Range", req))
        return (
            int(resp.header.revision),
            [(kv.key.decode(), bytes(kv.value), int(kv.mod_revision)) for kv in resp.kvs],
        )

    def get_raw(self, path: str) -> tuple[bytes | None, int]:
        """A document's bytes and mod revision (None, 0 when absent)."""
        resp = self.call(lambda: self._stub_call("kvstub", "Range", self._range(path.encode())))
        if not resp.kvs:
            return (None, 0)
        return (resp.kvs[0].value, int(resp.kvs[0].mod_revision))

    # -- writing -----------------------------------------------------------------------------

    def commit(
        self,
        base: Topology,
        writes: Sequence[Write],
        *,
        bump_epoch: bool,
        guards: Sequence[Guard] = (),
        event: EventDraft | None = None,
    ) -> int:
        """Apply ``writes`` if nothing they replace changed since ``base`` was read: each
        written path keeps the mod revision ``base`` saw, and so does ``epoch``. With
        ``bump_epoch`` the transaction also puts ``base.epoch + 1``. Returns the new
        revision; raises Conflict when another writer got there first."""
        p = self.paths
        compares = [_compare(Guard(p.epoch, base.version(p.epoch)))]
        seen = {p.epoch}
        for g in guards:
            if g.path not in seen:
                compares.append(_compare(g))
                seen.add(g.path)
        for w in writes:
            if w.path not in seen:
                compares.append(_compare(Guard(w.path, base.version(w.path))))
                seen.add(w.path)
        ops = [_op(w) for w in writes]
        if bump_epoch:
            ops.append(_op(Write(p.epoch, str(base.epoch + 1).encode())))
        if event is not None:
            ops.append(_op(self._event_write(event)))
        if len(ops) + len(compares) > TXN_MAX_OPS:
            raise StoreError(f"a change of {len(ops)} writes is too big for one etcd transaction")
        # an unknown outcome (timeout after sending) is not retried: the compare would fail
        # against our own write and report a false conflict
        resp = self._txn(rpc.TxnRequest(compare=compares, success=ops), retry_for=0)
        if not resp.succeeded:
            now = f"revision {int(resp.header.revision)}"
            with contextlib.suppress(StoreError, ModelError):
                fresh = self.load()
                now = f"epoch {fresh.epoch} at revision {fresh.revision}"
            raise Conflict(
                f"cluster {self.cluster!r} changed since it was read "
                f"(epoch {base.epoch} at revision {base.revision}, now {now}); "
                "read it again and retry"
            )
        if event is not None:
            self.trim_events()
        return int(resp.header.revision)

    def put(self, path: str, value: bytes, lease: int = 0) -> int:
        req = rpc.PutRequest(key=path.encode(), value=value, lease=lease)
        return int(self.call(lambda: self._stub_call("kvstub", "Put", req)).header.revision)

    def delete(self, path: str) -> int:
        req = rpc.DeleteRangeRequest(key=path.encode())
        return int(self.call(lambda: self._stub_call("kvstub", "DeleteRange", req)).header.revision)

    def compare_and_put(self, path: str, value: bytes, revision: int, lease: int = 0) -> bool:
        """Put ``value`` if ``path``'s mod revision is ``revision`` (0: create it); False if
        not (a leader key's compare-and-create, a task's progress update)."""
        req = rpc.TxnRequest(
            compare=[_compare(Guard(path, revision))],
            success=[
                rpc.RequestOp(
                    request_put=rpc.PutRequest(key=path.encode(), value=value, lease=lease)
                )
            ],
        )
        return bool(self._txn(req, retry_for=0).succeeded)

    # -- events ------------------------------------------------------------------------------

    def _event_write(self, event: EventDraft, ts: float | None = None) -> Write:
        ts = time.time() if ts is None else ts
        event_id = f"{int(ts * 1000):013d}-{os.urandom(4).hex()}"
        doc = Event(event_id, 0, ts, event.source, event.kind, event.text)
        return Write(self.paths.event(event_id), doc.to_json())

    def append_event(self, source: str, kind: str, text: str) -> int:
        w = self._event_write(EventDraft(source, kind, text))
        assert w.value is not None
        revision = self.put(w.path, w.value)
        self.trim_events()
        return revision

    def events(self, limit: int = 100, after_revision: int = 0) -> list[Event]:
        """The newest ``limit`` events (after ``after_revision``), oldest first."""
        p = self.paths
        req = self._range(
            p.events.encode(),
            prefix_end(p.events),
            limit=limit,
            sort_order=rpc.RangeRequest.DESCEND,
            sort_target=rpc.RangeRequest.CREATE,
            min_create_revision=after_revision + 1 if after_revision else 0,
        )
        resp = self.call(lambda: self._stub_call("kvstub", "Range", req))
        out = []
        for kv in reversed(resp.kvs):
            path = kv.key.decode()
            _, event_id = p.classify(path)
            out.append(Event.from_json(path, kv.value, event_id, int(kv.create_revision)))
        return out

    def trim_events(self) -> int:
        """Delete the oldest events beyond ``max_events`` (once there are 10% more, so a
        busy stream is not trimmed on every append). Returns how many were deleted."""
        p = self.paths
        start, end = p.events.encode(), prefix_end(p.events)
        resp = self.call(
            lambda: self._stub_call("kvstub", "Range", self._range(start, end, count_only=True))
        )
        excess = int(resp.count) - self.max_events
        if excess <= 0 or int(resp.count) < self.max_events + max(1, self.max_events // 10):
            return 0
        req = self._range(
            start,
            end,
            limit=excess,
            keys_only=True,
            sort_order=rpc.RangeRequest.ASCEND,
            sort_target=rpc.RangeRequest.CREATE,
        )
        keys = [kv.key for kv in self.call(lambda: self._stub_call("kvstub", "Range", req)).kvs]
        for i in range(0, len(keys), TXN_MAX_OPS):
            ops = [
                rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))
                for k in keys[i : i + TXN_MAX_OPS]
            ]
            self._txn(rpc.TxnRequest(success=ops))
        return len(keys)

    # -- leases and watches ------------------------------------------------------------------

    def lease(self, ttl: int, on_lost: Callable[[Lease], None] | None = None) -> Lease:
        return Lease(self, ttl, on_lost).start()

    def register(self, path: str, value: Callable[[], bytes], ttl: int) -> Registration:
        return Registration(self, path, value, ttl).start()

    def watch(
        self,
        start_revision: int,
        on_change: Callable[[WatchBatch], None],
        *,
        on_reset: Callable[[RawSnapshot], None] | None = None,
    ) -> Watch:
        return Watch(self, start_revision, on_change, on_reset).start()

    @contextmanager
    def watching(
        self, start_revision: int, on_change: Callable[[WatchBatch], None]
    ) -> Iterator[Watch]:
        w = self.watch(start_revision, on_change)
        try:
            yield w
        finally:
            w.stop()

    # -- whole-cluster maintenance ----------------------------------------------------------

    def delete_cluster(self) -> int:
        """Delete every key of the cluster (tests and `cluster destroy`)."""
        p = self.paths
        req = rpc.DeleteRangeRequest(key=p.prefix.encode(), range_end=prefix_end(p.prefix))
        return int(self.call(lambda: self._stub_call("kvstub", "DeleteRange", req)).deleted)

    def compact(self, revision: int) -> None:
        req = rpc.CompactionRequest(revision=revision, physical=True)
        self.call(lambda: self._stub_call("kvstub", "Compact", req))


def _compare(g: Guard) -> rpc.Compare:
    c = rpc.Compare(key=g.path.encode(), target=rpc.Compare.MOD)
    if g.prefix:
        c.range_end = prefix_end(g.path)
        c.result = rpc.Compare.LESS
        c.mod_revision = g.revision + 1
    else:
        c.result = rpc.Compare.EQUAL
        c.mod_revision = g.revision
    return c


def _op(w: Write) -> rpc.RequestOp:
    if w.value is None:
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=w.path.encode()))
    return rpc.RequestOp(request_put=rpc.PutRequest(key=w.path.encode(), value=w.value))


# -- building a snapshot -----------------------------------------------------------------------


@dataclass(frozen=True)
class RawSnapshot:
    """The cluster's keys ``(path, value, mod_revision)`` at ``revision``."""

    revision: int
    kvs: tuple[tuple[str, bytes, int], ...]


def build_topology(
    paths: ClusterPaths, revision: int, kvs: Sequence[tuple[str, bytes, int]]
) -> Topology:
    """A Topology from the cluster's keys ``(path, value, mod_revision)``; a document that
    does not parse raises ModelError naming its key."""
    meta: Meta | None = None
    epoch = 0
    slots: SlotMap | None = None
    groups: dict[int, Group] = {}
    proxies: dict[str, Proxy] = {}
    migrations: dict[str, MigrationTask] = {}
    versions: dict[str, int] = {}
    leader: str | None = None
    for path, value, mod in kvs:
        kind, ident = paths.classify(path)
        if kind in NOT_TOPOLOGY:
            continue
        versions[path] = int(mod)
        if kind == "meta":
            meta = Meta.from_json(path, value)
        elif kind == "epoch":
            try:
                epoch = int(value.decode())
            except (ValueError, UnicodeDecodeError):
                raise ModelError(
                    f"{path}: expected a decimal integer, got {value[:40]!r}"
                ) from None
            if epoch < 0:
                raise ModelError(f"{path}: the epoch cannot be negative ({epoch})")
        elif kind == "slots":
            slots = SlotMap.from_json(path, value)
        elif kind == "group":
            group = Group.from_json(path, value)
            if str(group.id) != ident:
                raise ModelError(f"{path}: field 'id': {group.id} does not match the key")
            groups[group.id] = group
        elif kind == "proxy":
            proxy = Proxy.from_json(path, value)
            proxies[proxy.id] = proxy
        elif kind == "migration":
            task = MigrationTask.from_json(path, value)
            if task.id != ident:
                raise ModelError(f"{path}: field 'id': {task.id!r} does not match the key")
            migrations[task.id] = task
        elif kind == "leader":
            leader = value.decode(errors="replace")
    slot_map = slots if slots is not None else SlotMap.empty(0)
    for r in slot_map.ranges:
        for gid in (r.group, r.target):
            if gid is not None and gid not in groups:
                raise ModelError(
                    f"{paths.slots}: slots {r.start}-{r.end} name group {gid}, which does not exist"
                )
    return Topology(
        cluster=paths.cluster,
        revision=revision,
        meta=meta,
        epoch=epoch,
        groups=groups,
        slots=slot_map,
        proxies=proxies,
        migrations=migrations,
        versions=versions,
        leader=leader,
    )


# -- leases ------------------------------------------------------------------------------------


class Lease:
    """A lease kept alive by a thread (a refresh every ttl/3). When etcd says the lease is
    gone (expired while we could not reach etcd), a new one is granted and ``on_lost`` is
    called with this object (``id`` is then the new lease's): re-put what lived under it."""

    def __init__(
        self, store: Store, ttl: int, on_lost: Callable[[Lease], None] | None = None
    ) -> None:
        if ttl < 2:
            raise ValueError("a lease lives at least 2 seconds")
        self.store = store
        self.ttl = ttl
        self.on_lost = on_lost
        self.id = 0
        self.lost_count = 0
        # monotonic time a keep-alive that etcd accepted was sent (or the grant): the lease
        # lives at least ttl seconds from then
        self.last_ok = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _grant(self) -> None:
        req = rpc.LeaseGrantRequest(TTL=self.ttl, ID=0)
        sent = time.monotonic()
        self.id = int(
            self.store.call(lambda: self.store._stub_call("leasestub", "LeaseGrant", req)).ID
        )
        self.last_ok = sent

    def _refresh(self) -> int:
        """The lease's remaining TTL after a keep-alive (0 or less: it is gone)."""
        client = self.store.client

        def once() -> int:
            stream = client.leasestub.LeaseKeepAlive(
                iter([rpc.LeaseKeepAliveRequest(ID=self.id)]),
                self.store.timeout,
                credentials=client.call_credentials,
                metadata=client.metadata,
            )
            for resp in stream:
                return int(resp.TTL)
            return 0

        return self.store.call(once, retry_for=0)

    def start(self) -> Lease:
        self._grant()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.id:x}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            sent = time.monotonic()
            try:
                remaining = self._refresh()
            except StoreError as e:
                log.warning("lease %x: keep-alive failed: %s", self.id, e)
                continue
            if remaining > 0:
                self.last_ok = sent
                continue
            log.warning("lease %x expired; granting a new one", self.id)
            try:
                self._grant()
            except StoreError as e:
                log.warning("lease: cannot grant a new one: %s", e)
                continue
            self.lost_count += 1
            if self.on_lost is not None:
                try:
                    self.on_lost(self)
                except Exception:
                    log.exception("lease %x: on_lost failed", self.id)

    def stop(self, revoke: bool = True) -> None:
        """Stop keeping it alive; revoke it (its keys go at once) unless told not to."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.store.timeout + 1)
        if revoke and self.id:
            req = rpc.LeaseRevokeRequest(ID=self.id)
            try:
                self.store.call(
                    lambda: self.store._stub_call("leasestub", "LeaseRevoke", req), retry_for=0
                )
            except StoreError as e:
                log.info("lease %x not revoked (%s); it expires in %d s", self.id, e, self.ttl)


class Registration:
    """One key kept under a lease: ``value()`` is put now, again by ``update()``, and again
    whenever the lease had to be replaced."""

    def __init__(self, store: Store, path: str, value: Callable[[], bytes], ttl: int) -> None:
        self.store = store
        self.path = path
        self.value = value
        self.lease = Lease(store, ttl, on_lost=lambda _lease: self.update())

    def start(self) -> Registration:
        self.lease.start()
        self.update()
        return self

    def update(self) -> None:
        self.store.put(self.path, self.value(), lease=self.lease.id)

    def stop(self, revoke: bool = True) -> None:
        self.lease.stop(revoke=revoke)


# -- watches -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str
    value: bytes | None  # None: deleted
    revision: int  # the revision of this change (mod revision of the put, or of the delete)


@dataclass(frozen=True)
class WatchBatch:
    """Changes under the cluster's prefix, in revision order; ``revision`` is the last one."""

    revision: int
    changes: tuple[Change, ...] = field(default_factory=tuple)


class Watch:
    """Follows the cluster's prefix from ``start_revision`` in a thread, calling ``on_change``
    with each batch (from that thread). After a disconnect it watches again from the revision
    after the last one it delivered, so nothing is missed or seen twice; if etcd compacted
    that revision away, it loads a full snapshot and calls ``on_reset`` with it, then goes on
    from the snapshot's revision."""

    def __init__(
        self,
        store: Store,
        start_revision: int,
        on_change: Callable[[WatchBatch], None],
        on_reset: Callable[[RawSnapshot], None] | None = None,
    ) -> None:
        self.store = store
        self.next_revision = start_revision
        self.on_change = on_change
        self.on_reset = on_reset
        self.reconnects = 0
        self.resets = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._broken = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch_id: int | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._broken.set()
        if self._watch_id is not None:
            with contextlib.suppress(Exception):  # the stream may already be gone
                self.store.client.cancel_watch(self._watch_id)
        if self._thread is not None:
            self._thread.join(self.store.timeout + 2)

    def _callback(self, response: Any) -> None:
        if self._stop.is_set():
            return
        if isinstance(response, Exception):
            log.info("watch on %s broke: %s", self.store.where, response)
            self._broken.set()
            return
        changes = []
        top = self.next_revision - 1
        for ev in response.events:
            value = None if isinstance(ev, etcd3.events.DeleteEvent) else bytes(ev.value)
            revision = int(ev.mod_revision)
            changes.append(Change(ev.key.decode(), value, revision))
            top = max(top, revision)
        if not changes:
            return
        self.next_revision = top + 1
        try:
            self.on_change(WatchBatch(top, tuple(changes)))
        except Exception:
            log.exception("watch callback failed")

    def _compacted(self, revision: int) -> bool:
        """etcd no longer has ``revision`` (a future one is fine: nothing to miss)."""
        req = self.store._range(self.store.paths.epoch.encode(), revision=revision, count_only=True)

        def once() -> bool:
            try:
                self.store._stub_call("kvstub", "Range", req)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.OUT_OF_RANGE:  # type: ignore[attr-defined]
                    return "compacted" in (e.details() or "")  # type: ignore[attr-defined]
                raise
            return False

        return self.store.call(once, retry_for=0)

    def _reset(self) -> None:
        snapshot = self.store.load_raw()
        self.resets += 1
        self.next_revision = snapshot.revision + 1
        log.info(
            "watch: revision compacted; reloaded the cluster at revision %d", snapshot.revision
        )
        if self.on_reset is not None:
            self.on_reset(snapshot)

    def _add_watch(self) -> int:
        prefix = self.store.paths.prefix
        kwargs: dict[str, Any] = {"range_end": prefix_end(prefix)}
        if self.next_revision > 0:
            kwargs["start_revision"] = self.next_revision
        return int(self.store.client.add_watch_callback(prefix, self._callback, **kwargs))

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._broken.clear()
            try:
                if self.next_revision > 0 and self._compacted(self.next_revision):
                    self._reset()
                self._watch_id = self.store.call(self._add_watch, retry_for=0)
            except etcd_exc.RevisionCompactedError:
                try:
                    self._reset()
                except StoreError as e:
                    log.info("watch: %s", e)
                continue
            except (StoreError, etcd_exc.WatchTimedOut, grpc.RpcError) as e:
                failures += 1
                pause = self.store.backoff.delay(failures)
                log.info("watch: cannot watch (%s); again in %.1f s", e, pause)
                self._stop.wait(pause)
                continue
            if failures or self.reconnects:
                log.info(
                    "watch: following %s again from revision %d",
                    self.store.where,
                    self.next_revision,
                )
            failures = 0
            self.connected.set()
            self._broken.wait()
            self.connected.clear()
            self._watch_id = None
            if not self._stop.is_set():
                self.reconnects += 1
                # the old stream is gone: make the client build a new one
                self.store.client._clear_old_stubs()
                self._stop.wait(self.store.backoff.delay(1))


class TopologyView:
    """The latest Topology, kept current from a watch: ``apply`` each batch, ``reset`` after
    a compaction. A document that does not parse is logged and the last good topology kept
    (``error`` says why), so a bad hand edit never takes a proxy's map away."""

    def __init__(self, paths: ClusterPaths, raw: RawSnapshot) -> None:
        self.paths = paths
        self.docs: dict[str, tuple[bytes, int]] = {}
        self.revision = 0
        self.error: str | None = None
        self.reset(raw)

    @property
    def topology(self) -> Topology:
        return self._topology

    def reset(self, raw: RawSnapshot) -> None:
        self.docs = {path: (value, mod) for path, value, mod in raw.kvs}
        self.revision = raw.revision
        self._topology = build_topology(self.paths, raw.revision, raw.kvs)
        self.error = None

    def apply(self, batch: WatchBatch) -> bool:
        """True when the topology changed (events alone change nothing here)."""
        touched = False
        for c in batch.changes:
            if c.revision <= self.revision:
                continue  # already in the snapshot
            if self.paths.classify(c.path)[0] in NOT_TOPOLOGY:
                continue
            touched = True
            if c.value is None:
                self.docs.pop(c.path, None)
            else:
                self.docs[c.path] = (c.value, c.revision)
        self.revision = max(self.revision, batch.revision)
        if not touched:
            return False
        kvs = [(path, value, mod) for path, (value, mod) in sorted(self.docs.items())]
        try:
            self._topology = build_topology(self.paths, self.revision, kvs)
        except ModelError as e:
            self.error = str(e)
            log.error("keeping the topology of revision %d: %s", self._topology.revision, e)
            return False
        self.error = None
        return True
