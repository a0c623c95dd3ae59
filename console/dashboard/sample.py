"""What the dashboard shows, as frozen snapshots: one ``ClusterSample`` per refresh.

A sample is the topology (etcd, one revision), the newest events, and what each node and
proxy said in one poll (INFO sections and counters only). Everything here is pure: built from
INFO text and the previous sample, so the screens, the recorder and the tests work on the
same values whether they came from a live cluster, a recording or a fake model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from stack.cluster.model import Event, Topology
from stack.core.slots import SLOT_COUNT

from . import percentiles

Sections = Mapping[str, Mapping[str, str]]


def parse_info(text: str) -> dict[str, dict[str, str]]:
    """INFO's text -> {section (lower case): {field: value}}; lines outside a section and
    lines without ``:`` are ignored."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = out.setdefault(line[1:].strip().lower(), {})
            continue
        if current is None:
            continue
        name, sep, value = line.partition(":")
        if sep:
            current[name] = value
    return out


def parse_fields(value: str) -> dict[str, str]:
    """``a=1,b=x`` (an INFO value like ``slave0`` or ``db0``) -> {"a": "1", "b": "x"}."""
    out: dict[str, str] = {}
    for part in value.split(","):
        name, sep, v = part.partition("=")
        if sep:
            out[name] = v
    return out


def _int(section: Mapping[str, str], name: str) -> int | None:
    try:
        return int(section[name])
    except (KeyError, ValueError):
        return None


def _float(section: Mapping[str, str], name: str) -> float | None:
    try:
        return float(section[name])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class ReplicaLink:
    """A master's view of one replica (INFO replication ``slaveN``)."""

    addr: str
    state: str
    lag_logids: int
    lag_ms: int


@dataclass(frozen=True)
class NodeSample:
    """One server as the last poll saw it. ``stale`` means the last poll failed: the values
    are the last good ones (if any) and ``error`` says why."""

    addr: str
    ts: float
    stale: bool = False
    error: str | None = None
    role: str | None = None  # "master" or "replica"
    version: str = ""
    uptime_s: int = 0
    clients: int = 0
    ops_per_sec: float = 0.0
    keys: int = 0
    disk_bytes: int = 0
    memory_bytes: int = 0
    log_id: int = 0
    master: str | None = None  # a replica's master, host:port
    link: str | None = None  # a replica's link: up / down
    sync_in_progress: bool = False
    replicas: tuple[ReplicaLink, ...] = ()
    min_replicas: int = 0  # semi-sync: min-replicas-to-write
    refused_writes: int = 0  # -NOREPLICAS before applying
    unacked_writes: int = 0  # applied, not acknowledged in time
    full_syncs: int = 0
    partial_syncs: int = 0
    # latency percentiles (usec) of the calls since the previous poll (percentiles.py)
    p50_us: float | None = None
    p99_us: float | None = None
    p999_us: float | None = None
    command_calls: Mapping[str, int] = field(default_factory=dict, compare=False)
    sections: Sections = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return not self.stale

    def gone_stale(self, ts: float, error: str) -> NodeSample:
        """The same node, marked stale now (its last values kept)."""
        return replace(self, ts=ts, stale=True, error=error, ops_per_sec=0.0)


@dataclass(frozen=True)
class ProxySample:
    addr: str
    ts: float
    id: str = ""
    stale: bool = False
    error: str | None = None
    version: str = ""
    uptime_s: int = 0
    clients: int = 0
    ops_per_sec: float = 0.0
    p50_us: float | None = None
    p99_us: float | None = None
    p999_us: float | None = None
    epoch_seen: int = 0
    etcd_state: str = ""
    # PROXY SLOTSTATS: operations routed per slot since the proxy started (slots with any)
    slot_counts: Mapping[int, int] = field(default_factory=dict, compare=False)

    def gone_stale(self, ts: float, error: str) -> ProxySample:
        return replace(self, ts=ts, stale=True, error=error, ops_per_sec=0.0, slot_counts={})


def parse_slotstats(reply: object) -> dict[int, int]:
    """PROXY SLOTSTATS' ``[[slot, ops], ...]`` (or the {slot: ops} slot_counters.py read)
    -> {slot: ops}; anything else is skipped, so at most every slot once."""
    if isinstance(reply, dict):
        return reply
    out: dict[int, int] = {}
    if not isinstance(reply, list):
        return out
    for pair in reply[:SLOT_COUNT]:
        if isinstance(pair, list) and len(pair) == 2:
            slot, ops = pair
            if isinstance(slot, int) and isinstance(ops, int) and 0 <= slot < SLOT_COUNT:
                out[slot] = ops
    return out


def slot_rates(
    before: Mapping[str, ProxySample], now: Mapping[str, ProxySample]
) -> dict[int, float] | None:
    """Operations per second per slot, summed over the proxies that answered both polls
    with their counters (a counter that went down was reset: its new count is the rate's);
    None when no proxy did (the first poll, or no proxy)."""
    rates: dict[int, float] = {}
    known = False
    for addr, p in now.items():
        b = before.get(addr)
        if (
            p.stale
            or b is None
            or b.stale
            or p.ts <= b.ts
            or (not p.slot_counts and not b.slot_counts)
        ):
            continue
        known = True
        span = p.ts - b.ts
        old = b.slot_counts
        for slot, n in p.slot_counts.items():
            was = old.get(slot, 0)
            d = n - was if n >= was else n
            if d > 0:
                rates[slot] = rates.get(slot, 0.0) + d / span
    return rates if known else None


def node_from_info(addr: str, ts: float, text: str, prev: NodeSample | None = None) -> NodeSample:
    """A server's sample from its ``INFO default commandstats latencystats`` text (and the
    previous sample: the latency percentiles weigh each command by its calls since then)."""
    info = parse_info(text)
    srv = info.get("server", {})
    cl = info.get("clients", {})
    mem = info.get("memory", {})
    per = info.get("persistence", {})
    st = info.get("stats", {})
    rep = info.get("replication", {})
    keys = sum(_int(parse_fields(v), "keys") or 0 for v in info.get("keyspace", {}).values())
    calls: dict[str, int] = {}
    for name, value in info.get("commandstats", {}).items():
        if name.startswith("cmdstat_"):
            calls[name[8:]] = _int(parse_fields(value), "calls") or 0
    before = prev.command_calls if prev is not None and not prev.stale else None
    latency = percentiles.mixed(
        percentiles.command_points(info.get("latencystats", {})),
        percentiles.call_weights(calls, before),
    )
    p50, p99, p999 = latency if latency is not None else (None, None, None)
    role = rep.get("role")
    replicas = []
    for name, value in rep.items():
        if name.startswith("slave") and name[5:].isdigit():
            f = parse_fields(value)
            replicas.append(
                ReplicaLink(
                    f"{f.get('ip', '?')}:{f.get('port', '?')}",
                    f.get("state", "?"),
                    _int(f, "lag_logids") or 0,
                    _int(f, "lag_ms") or 0,
                )
            )
    master = None
    if role == "slave" and "master_host" in rep:
        master = f"{rep['master_host']}:{rep.get('master_port', '?')}"
    log_id = _int(per, "ledis_binlog_last_id")
    if log_id is None:
        log_id = _int(rep, "master_repl_offset") or 0
    return NodeSample(
        addr=addr,
        ts=ts,
        role="replica" if role == "slave" else role,
        version=srv.get("ledis_version", srv.get("redis_version", "")),
        uptime_s=_int(srv, "uptime_in_seconds") or 0,
        clients=_int(cl, "connected_clients") or 0,
        ops_per_sec=_float(st, "instantaneous_ops_per_sec") or 0.0,
        keys=keys,
        disk_bytes=_int(mem, "ledis_disk_bytes") or 0,
        memory_bytes=_int(mem, "used_memory_rss") or 0,
        log_id=log_id,
        master=master,
        link=rep.get("master_link_status"),
        sync_in_progress=rep.get("master_sync_in_progress") == "1",
        replicas=tuple(replicas),
        min_replicas=_int(rep, "min_replicas_to_write") or 0,
        refused_writes=_int(rep, "ledis_semisync_refused_writes") or 0,
        unacked_writes=_int(rep, "ledis_semisync_unacked_writes") or 0,
        full_syncs=_int(rep, "ledis_full_syncs") or 0,
        partial_syncs=_int(rep, "ledis_partial_syncs") or 0,
        p50_us=p50,
        p99_us=p99,
        p999_us=p999,
        command_calls=calls,
        sections=info,
    )


def proxy_from_info(
    addr: str, ts: float, text: str, proxy_id: str = "", slotstats: object = None
) -> ProxySample:
    info = parse_info(text)
    srv = info.get("server", {})
    cl = info.get("clients", {})
    st = info.get("stats", {})
    px = info.get("proxy", {})
    return ProxySample(
        addr=addr,
        ts=ts,
        id=srv.get("proxy_id", proxy_id),
        version=srv.get("ledis_version", ""),
        uptime_s=_int(srv, "uptime_in_seconds") or 0,
        clients=_int(cl, "connected_clients") or 0,
        ops_per_sec=_float(st, "instantaneous_ops_per_sec") or 0.0,
        p50_us=_float(px, "latency_p50_us"),
        p99_us=_float(px, "latency_p99_us"),
        p999_us=_float(px, "latency_p999_us"),
        epoch_seen=_int(px, "slot_map_epoch") or 0,
        etcd_state=px.get("etcd_state", ""),
        slot_counts=parse_slotstats(slotstats),
    )


@dataclass(frozen=True)
class ClusterSample:
    """One refresh: the topology (None when etcd could not be read and nothing was read
    before), etcd's health, the newest events (oldest first) and every node and proxy."""

    ts: float
    cluster: str
    etcd: tuple[str, ...]
    topology: Topology | None
    etcd_ok: bool = True
    etcd_error: str | None = None
    events: tuple[Event, ...] = ()
    nodes: Mapping[str, NodeSample] = field(default_factory=dict)
    proxies: Mapping[str, ProxySample] = field(default_factory=dict)
    poll_ms: float = 0.0  # how long the poll took
    # ops/s per slot through the proxies since the previous poll (slot_rates); None: unknown
    slot_ops: Mapping[int, float] | None = None

    def totals(self) -> dict[str, float]:
        """keys, ops/s, disk, clients over the masters (keys) and every node (the rest)."""
        masters = set()
        if self.topology is not None:
            masters = {g.master for g in self.topology.groups.values()}
        live = [n for n in self.nodes.values() if not n.stale]
        return {
            "keys": sum(n.keys for n in live if n.addr in masters),
            "ops": sum(n.ops_per_sec for n in live)
            + sum(p.ops_per_sec for p in self.proxies.values() if not p.stale),
            "disk": sum(n.disk_bytes for n in live),
            "clients": sum(n.clients for n in live),
            "stale": sum(1 for n in self.nodes.values() if n.stale)
            + sum(1 for p in self.proxies.values() if p.stale),
        }
