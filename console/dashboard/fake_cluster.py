"""A made-up cluster for tests, snapshots and the benchmark: deterministic (a seed and a
frozen clock), any size, with a migration at a chosen point, stale nodes and failover events.
It builds the same ``ClusterSample`` a live poll builds, through the same INFO parser."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from stack.cluster.model import (
    RUNNING,
    Event,
    Group,
    Meta,
    MigrationTask,
    Proxy,
    SlotMap,
    Topology,
)
from stack.cluster.nodes import NodeState
from stack.cluster.plans import even_shares
from stack.core.slots import SLOT_COUNT
from stack.failover.switchover import SwitchoverBasis

from .sample import (
    ClusterSample,
    NodeSample,
    ProxySample,
    node_from_info,
    proxy_from_info,
    slot_rates,
)

FROZEN_TS = 1_800_000_000.0  # the frozen clock's "now"


_RATES: tuple[int, ...] | None = None


def fake_slot_rate(slot: int) -> int:
    """Each proxy's ops/s on a slot: a little everywhere, a warm range, one hot slot."""
    if slot == 12_000:
        return 400
    if 1_000 <= slot < 1_400:
        return 20
    return 1 + slot % 3


def _server_info(
    rng: random.Random,
    role: str,
    port: int,
    keys: int,
    replicas: list[tuple[str, int, int]],
    master: str | None,
    log_id: int,
    uptime: int,
) -> str:
    lines = [
        "# Server",
        "ledis_version:0.1.0",
        "redis_version:7.0.0",
        f"tcp_port:{port}",
        f"uptime_in_seconds:{uptime}",
        "# Clients",
        f"connected_clients:{rng.randint(1, 40)}",
        "# Memory",
        f"used_memory_rss:{rng.randint(30, 90) << 20}",
        f"ledis_disk_bytes:{keys * 120 + rng.randint(0, 1 << 20)}",
        "# Persistence",
        f"ledis_binlog_last_id:{log_id}",
        "# Stats",
        f"instantaneous_ops_per_sec:{rng.randint(200, 9000) if role == 'master' else rng.randint(0, 50)}",
        "# Replication",
        f"role:{'master' if role == 'master' else 'slave'}",
    ]
    if role == "master":
        lines.append(f"connected_slaves:{len(replicas)}")
        for i, (addr, lag_ids, lag_ms) in enumerate(replicas):
            host, _, p = addr.rpartition(":")
            lines.append(
                f"slave{i}:ip={host},port={p},state=online,offset={log_id - lag_ids},"
                f"lag=0,lag_logids={lag_ids},lag_ms={lag_ms}"
            )
        lines += [
            "min_replicas_to_write:1",
            f"ledis_semisync_refused_writes:{rng.randint(0, 3)}",
            "ledis_semisync_unacked_writes:0",
            "ledis_full_syncs:1",
            "ledis_partial_syncs:2",
        ]
    else:
        assert master is not None
        host, _, p = master.rpartition(":")
        lines += [
            f"master_host:{host}",
            f"master_port:{p}",
            "master_link_status:up",
            "master_sync_in_progress:0",
        ]
    lines += [
        "# Commandstats",
        f"cmdstat_get:calls={keys * 3},usec={keys * 9},usec_per_call=3.00",
        f"cmdstat_set:calls={keys},usec={keys * 11},usec_per_call=11.00",
        f"cmdstat_info:calls={uptime},usec={uptime * 300},usec_per_call=300.00",
        "# Latencystats",
        # the server's bucket bounds (stack/server/latency.py); INFO's own slow figure is left out
        f"latency_percentiles_usec_get:p50={rng.choice((2.047, 4.095))},"
        f"p99={rng.choice((8.191, 16.383, 32.767))},p99.9={rng.choice((65.535, 131.071))}",
        f"latency_percentiles_usec_set:p50={rng.choice((8.191, 16.383))},"
        f"p99={rng.choice((32.767, 65.535))},p99.9={rng.choice((262.143, 524.287))}",
        "latency_percentiles_usec_info:p50=262.143,p99=524.287,p99.9=524.287",
        "# Keyspace",
        f"db0:keys={keys},expires=0,avg_ttl=0",
    ]
    return "\r\n".join(lines) + "\r\n"


@dataclass
class FakeCluster:
    """``groups`` groups of a master and ``replicas`` replicas on 127.0.0.1 from port 7002,
    ``proxies`` proxies after them, every slot spread evenly."""

    groups: int = 3
    replicas: int = 1
    proxies: int = 1
    name: str = "demo"
    seed: int = 7
    migration_percent: float | None = None  # a running migration of 100 slots, this far done
    stale: set[str] = field(default_factory=set)  # addresses that do not answer
    failover: bool = False  # a failover among the events
    ts: float = FROZEN_TS
    events: int = 6
    leader: str | None = None  # the leading controller's id

    def addr(self, group: int, index: int) -> str:
        return f"127.0.0.1:{7002 + (group - 1) * (1 + self.replicas) + index}"

    def proxy_addr(self, i: int) -> str:
        return f"127.0.0.1:{7002 + self.groups * (1 + self.replicas) + i}"

    def topology(self) -> Topology:
        groups = {
            g: Group(
                g, self.addr(g, 0), tuple(self.addr(g, r + 1) for r in range(self.replicas)), 3
            )
            for g in range(1, self.groups + 1)
        }
        owners: list[int | None] = [None] * 16384
        for g, (a, b) in even_shares(sorted(groups)).items():
            owners[a : b + 1] = [g] * (b - a + 1)
        migrations: dict[str, MigrationTask] = {}
        targets: dict[int, int] = {}
        if self.migration_percent is not None and self.groups > 1:
            first, _ = even_shares(sorted(groups))[2]
            done = int(100 * self.migration_percent / 100)
            for s in range(first, first + done):
                owners[s] = 1
            if done < 100:
                targets[first + done] = 1
            task = MigrationTask(
                "m12-1",
                ((first, first + 99),),
                2,
                1,
                RUNNING,
                owner="ctl-1",
                current=first + done if done < 100 else None,
                keys_moved=done * 412,
                bytes_moved=done * 412 * 96,
                slots_done=done,
                rate_keys=1830.0,
                eta_s=(100 - done) * 412 / 1830.0,
                created=self.ts - 60,
                updated=self.ts - 1,
            )
            migrations[task.id] = task
        slots = SlotMap.from_slots(owners, 9, targets)
        proxies = {
            f"p{i + 1}": Proxy(f"p{i + 1}", self.proxy_addr(i), 4000 + i, self.ts - 3600, 9)
            for i in range(self.proxies)
        }
        return Topology(
            self.name,
            120,
            Meta(self.name, self.ts - 86400),
            9,
            groups,
            slots,
            proxies,
            migrations,
            leader=self.leader,
        )

    def event_list(self) -> tuple[Event, ...]:
        out = [
            Event("e1", 10, self.ts - 3000, "console", "init", f"create cluster {self.name!r}"),
            Event("e2", 20, self.ts - 2990, "console", "assign", "assign all 16384 slots evenly"),
            Event(
                "e3", 30, self.ts - 600, "console", "add-node", f"add {self.addr(1, 1)} to group 1"
            ),
        ]
        if self.failover:
            out.append(
                Event(
                    "e4",
                    40,
                    self.ts - 90,
                    "failover",
                    "failover",
                    f"group 2: master {self.addr(2, 0)} missed 3 checks; promoted {self.addr(2, 1)} "
                    "(highest LogID 18211), old master fenced at epoch 9",
                )
            )
        if self.migration_percent is not None:
            out.append(
                Event(
                    "e5",
                    50,
                    self.ts - 60,
                    "console",
                    "migrate",
                    "migrate slots 5462-5561 to group 1",
                )
            )
        return tuple(out[-self.events :])

    def sample(self, step: int = 0, prev: ClusterSample | None = None) -> ClusterSample:
        """The sample at ``step`` refreshes after the frozen "now" (2 s apart)."""
        rng = random.Random(self.seed * 1000 + step)
        ts = self.ts + 2.0 * step
        topo = self.topology()
        nodes: dict[str, NodeSample] = {}
        for g in topo.groups.values():
            log_id = 18000 + g.id * 100 + step * 7
            links = [(r, rng.randint(0, 30), rng.randint(0, 40)) for r in g.replicas]
            for i, addr in enumerate(g.members):
                before = prev.nodes.get(addr) if prev else None
                role = "master" if i == 0 else "replica"
                text = _server_info(
                    rng,
                    role,
                    int(addr.rpartition(":")[2]),
                    50_000 + g.id * 1000 + step * 10,
                    links if i == 0 else [],
                    g.master if i else None,
                    log_id,
                    86_000 + g.id,
                )
                nodes[addr] = node_from_info(addr, ts, text, before)
                if addr in self.stale:  # what it said last, marked stale now
                    nodes[addr] = (before or nodes[addr]).gone_stale(ts, "no answer in time")
        proxies: dict[str, ProxySample] = {}
        for p in topo.proxies.values():
            if p.addr in self.stale:
                proxies[p.addr] = ProxySample(
                    p.addr, ts, p.id, stale=True, error="no answer in time"
                )
                continue
            text = (
                f"# Server\r\nledis_version:0.1.0\r\nproxy_id:{p.id}\r\nuptime_in_seconds:3600\r\n"
                f"# Clients\r\nconnected_clients:{rng.randint(10, 90)}\r\n"
                f"# Stats\r\ninstantaneous_ops_per_sec:{rng.randint(5000, 20000)}\r\n"
                f"# Proxy\r\nslot_map_epoch:9\r\netcd_state:ok\r\nlatency_p50_us:{rng.randint(80, 140)}\r\n"
                f"latency_p99_us:{rng.randint(300, 900)}\r\nlatency_p999_us:{rng.randint(1000, 3000)}\r\n"
            )
            counts = [[s, int(2.0 * step * r)] for s, r in enumerate(self._rates) if step]
            proxies[p.addr] = proxy_from_info(p.addr, ts, text, p.id, counts)
        return ClusterSample(
            ts,
            self.name,
            ("127.0.0.1:7000",),
            topo,
            True,
            None,
            self.event_list(),
            nodes,
            proxies,
            slot_ops=slot_rates(prev.proxies, proxies) if prev else None,
        )

    @property
    def _rates(self) -> tuple[int, ...]:
        global _RATES
        if _RATES is None:
            _RATES = tuple(fake_slot_rate(s) for s in range(SLOT_COUNT))
        return _RATES


class FakeSource:
    """Samples of a ``FakeCluster``, one refresh further each call (the frozen clock moves
    2 s per refresh and nothing else moves it)."""

    live = False

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.step = 0

    async def sample(self, prev: ClusterSample | None) -> ClusterSample:
        s = self.cluster.sample(self.step, prev)
        self.step += 1
        return s

    async def call(self, addr: str, *args: str) -> object:
        """Canned replies: a slow log of two entries, a binlog tail, PONG, else an error."""
        name = " ".join(args[:2]).upper()
        if name == "SLOWLOG GET":
            ts = int(self.cluster.ts)
            return [
                [2, ts - 30, 15300, [b"HGETALL", b"user:1001"], b"127.0.0.1:51000", b""],
                [1, ts - 95, 12100, [b"LRANGE", b"queue", b"0", b"-1"], b"127.0.0.1:51002", b""],
            ]
        if name == "BINLOG SHOW":
            after = int(args[2]) if len(args) > 2 else 0
            return [
                [
                    after + i + 1,
                    int(self.cluster.ts * 1000) - 1000 * (5 - i),
                    [f"SET k{i} v{i}".encode()],
                ]
                for i in range(5)
            ]
        if name == "BINLOG INFO":
            return [1, 18250, 40960]
        if args and args[0].upper() == "PING":
            return b"PONG"
        raise RuntimeError(f"the fake cluster does not answer {' '.join(args)}")

    async def switchover_basis(self, group_id: int) -> SwitchoverBasis:
        """The model as it is now (its stale set included), as a fresh read sees it: no
        workflow under way, each server as a probe would describe it."""
        now = self.cluster.sample(self.step)
        return SwitchoverBasis(now.topology or self.cluster.topology(), None, node_states(now))

    async def close(self) -> None:
        pass


def node_states(sample: ClusterSample) -> dict[str, NodeState]:
    """What a sample's servers said, as a probe would say it (a stale one: no answer)."""
    return {
        a: NodeState(a, False, error=n.error or "no answer")
        if n.stale
        else NodeState(a, True, n.role, n.master, n.link, n.log_id, n.keys)
        for a, n in sample.nodes.items()
    }


def with_stale(sample: ClusterSample, addr: str) -> ClusterSample:
    """``sample`` with one node marked stale (its values kept)."""
    nodes = dict(sample.nodes)
    nodes[addr] = nodes[addr].gone_stale(sample.ts, "no answer in time")
    return replace(sample, nodes=nodes)
