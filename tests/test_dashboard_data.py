"""The dashboard's data layer, without a terminal: INFO parsing, stale nodes, the slot grid,
event filters, recording bounds and replay, settings, and actions through the plans."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest
import redis

from console.config import ConfigError
from console.dashboard import actions, percentiles
from console.dashboard.events_pane import event_rows
from console.dashboard.fake_cluster import FakeCluster
from console.dashboard.poller import Poller
from console.dashboard.recording import Recorder, RecordingError, ReplaySource, load
from console.dashboard.sample import (
    ClusterSample,
    NodeSample,
    ProxySample,
    node_from_info,
    parse_info,
    parse_slotstats,
    slot_rates,
)
from console.dashboard.settings import load_dashboard
from console.dashboard.slot_counters import SlotCounterLink, SlotStatsError, parse_reply
from console.dashboard.slot_grid import (
    MOVING,
    UNASSIGNED,
    cell_rates,
    grid_cells,
    rate_levels,
)
from console.dashboard.units import sparkline
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import RUNNING, SlotMap
from stack.cluster.plans import PlanError
from stack.core.slots import key_slot

from .proxy_cluster import Cluster
from .servers import LedisServer

MASTER_INFO = (
    "# Server\r\nledis_version:0.1.0\r\nuptime_in_seconds:77\r\n\r\n"
    "# Stats\r\ninstantaneous_ops_per_sec:1234\r\n\r\n"
    "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"
    "slave0:ip=127.0.0.1,port=7003,state=online,offset=90,lag=0,lag_logids=10,lag_ms=25\r\n"
    "min_replicas_to_write:1\r\nledis_semisync_refused_writes:4\r\n"
    "ledis_semisync_unacked_writes:2\r\n\r\n"
    "# Persistence\r\nledis_binlog_last_id:100\r\n\r\n"
    "# Commandstats\r\ncmdstat_get:calls=10,usec=50,usec_per_call=5.00\r\n\r\n"
    "# Keyspace\r\ndb0:keys=7,expires=0,avg_ttl=0\r\ndb3:keys=5,expires=1,avg_ttl=0\r\n"
)


def test_info_parsed_into_a_node_sample() -> None:
    assert parse_info("junk\r\n# Server\r\na:1\r\nnocolon\r\n")["server"] == {"a": "1"}
    n = node_from_info("127.0.0.1:7002", 10.0, MASTER_INFO)
    assert (n.role, n.keys, n.ops_per_sec, n.log_id, n.uptime_s) == ("master", 12, 1234.0, 100, 77)
    assert [(r.addr, r.lag_logids, r.lag_ms) for r in n.replicas] == [("127.0.0.1:7003", 10, 25)]
    assert (n.min_replicas, n.refused_writes, n.unacked_writes) == (1, 4, 2)
    assert n.p99_us is None  # no latencystats
    timed = MASTER_INFO + (
        "\r\n# Latencystats\r\nlatency_percentiles_usec_get:p50=4.095,p99=16.383,p99.9=65.535\r\n"
    )
    n = node_from_info("127.0.0.1:7002", 10.0, timed)
    assert (n.p50_us, n.p99_us, n.p999_us) == (4.095, 16.383, 65.535)  # one command: its own
    # nothing since the previous poll: no figure (an idle node is not given its INFO's latency)
    idle = node_from_info("127.0.0.1:7002", 12.0, timed, n)
    assert idle.p99_us is None
    later = node_from_info(
        "127.0.0.1:7002", 12.0, timed.replace("calls=10,usec=50", "calls=30,usec=450"), n
    )
    assert later.p99_us == 16.383
    stale = later.gone_stale(14.0, "no answer in time")
    assert stale.stale and stale.keys == 12 and stale.ops_per_sec == 0 and stale.ts == 14.0


def test_percentiles_of_several_commands_weigh_each_by_its_recent_calls() -> None:
    stats = {
        "latency_percentiles_usec_get": "p50=2,p99=8,p99.9=16",
        "latency_percentiles_usec_set": "p50=100,p99=400,p99.9=800",
        "latency_percentiles_usec_info": "p50=300,p99=300,p99.9=300",
        "latency_percentiles_usec_bad": "p50=x,q=1",
    }
    points = percentiles.command_points(stats)
    assert set(points) == {"get", "set", "info"} and points["get"][1] == (99.0, 8.0)
    # 990 GETs and 10 SETs since the last poll: the SETs are the slowest 1%
    weights = percentiles.call_weights(
        {"get": 1990, "set": 20, "info": 99}, {"get": 1000, "set": 10, "info": 1}
    )
    assert weights == {"get": 990, "set": 10}  # the poll's own INFO left out
    p50, p99, p999 = percentiles.mixed(points, weights) or ()
    # GET is 99% of the calls: its p50 mass (at 2) ends just short of the node's median, so
    # the median is GET's next point (errs high, never low); the slowest 0.1% are SETs
    assert (p50, p99, p999) == (8.0, 16.0, 400.0)
    # a busy SET moves the median; a reset counter (CONFIG RESETSTAT) counts as all new
    p50, _, _ = (
        percentiles.mixed(points, percentiles.call_weights({"get": 5, "set": 50}, {"get": 1000}))
        or ()
    )
    assert p50 == 100.0
    assert percentiles.mixed(points, {}) is None and percentiles.mixed({}, {"get": 3}) is None


def test_node_percentiles_from_a_real_server(ledis_server: LedisServer) -> None:
    """Between two polls only GETs ran: the node's p50/p99/p99.9 are GET's own as the server
    reports them."""
    addr = f"127.0.0.1:{ledis_server.port}"
    topo = FakeCluster(groups=1, replicas=0, proxies=0).topology()
    topo = type(topo)(topo.cluster, topo.revision, topo.meta, topo.epoch,
                      {1: topo.groups[1].__class__(1, addr)}, topo.slots)  # fmt: skip
    client = ledis_server.client()
    client.set("pct:k", "v")

    async def poll_twice() -> NodeSample:
        poller = Poller(timeout=10.0)
        try:
            first, _ = await poller.poll(topo, None)
            for _ in range(300):
                await asyncio.to_thread(client.get, "pct:k")
            sample = ClusterSample(0.0, "t", (), topo, nodes=first)
            second, _ = await poller.poll(topo, sample)
            return second[addr]
        finally:
            await poller.close()

    n = asyncio.run(poll_twice())
    get = client.info("latencystats")["latency_percentiles_usec_get"]
    client.close()
    assert not n.stale and (n.p50_us, n.p99_us, n.p999_us) == (get["p50"], get["p99"], get["p99.9"])
    assert 0 < n.p50_us <= n.p99_us <= n.p999_us  # type: ignore[operator]


def test_slot_rates_from_proxy_counters() -> None:
    assert parse_slotstats([[5, 10], [16384, 1], [-1, 2], ["x", 1], [7], 3, [9, 4]]) == {
        5: 10,
        9: 4,
    }
    assert parse_slotstats(b"ERR unknown") == {}
    before = {
        "a": ProxySample("a", 10.0, slot_counts={1: 100, 2: 50}),
        "b": ProxySample("b", 10.0, slot_counts={1: 10}),
        "c": ProxySample("c", 10.0, slot_counts={3: 5}),
    }
    now = {
        "a": ProxySample("a", 12.0, slot_counts={1: 140, 2: 50, 4: 8}),
        "b": ProxySample("b", 14.0, slot_counts={1: 4}),  # went down: reset, 4 new
        "c": ProxySample("c", 12.0, stale=True),  # no answer: not counted
        "d": ProxySample("d", 12.0, slot_counts={1: 1000}),  # new: no rate yet
    }
    assert slot_rates(before, now) == {1: 20.0 + 1.0, 4: 4.0}
    assert slot_rates({}, now) is None and slot_rates(before, {}) is None
    # the grid: a shade per cell by thirds of the busiest, none drawn as the lightest
    assert rate_levels([0.0, 1.0, 40.0, 70.0, 100.0]) == [0, 1, 2, 3, 3]
    owners: list[int | None] = [1] * 16384
    levels = rate_levels(cell_rates({3: 100.0, 4: 30.0}, 1))
    _, cells = grid_cells(owners, {}, {1: 1.0}, 16384, levels)
    assert [c for c, _ in cells[:6]] == ["░", "░", "░", "█", "▒", "░"]


def test_slot_counter_replies_are_read_whole_and_checked() -> None:
    good = b"*2\r\n*2\r\n:5\r\n:10\r\n*2\r\n:16383\r\n:7\r\n"
    assert parse_reply(good) == {5: 10, 16383: 7} and parse_reply(b"*0\r\n") == {}
    for bad in (
        b"*3\r\n*2\r\n:5\r\n:10\r\n",  # fewer pairs than said
        b"*1\r\n*2\r\n:16384\r\n:1\r\n",  # no such slot
        b"*1\r\n*2\r\n:-1\r\n:1\r\n",
        b"*1\r\n*2\r\n:1\r\n:1_0\r\n",
        b"*1\r\n*3\r\n:1\r\n:1\r\n",
        b"*2\r\n*2\r\n:1\r\n:1\r\n*2\r\n:1\r\n:2\r\n",  # a slot twice
        b"*16385\r\n",
        b"$3\r\nabc\r\n",
    ):
        with pytest.raises(SlotStatsError):
            parse_reply(bad)

    async def run() -> None:
        seen: list[bytes] = []

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                seen.append(line)
                if line.strip() == b"pw":
                    writer.write(b"+OK\r\n")
                elif line.strip() == b"SLOTSTATS":
                    if seen.count(line) > 1:  # the second read: an error
                        writer.write(b"-ERR unknown subcommand\r\n")
                        continue
                    for i in range(len(good)):  # a byte at a time: CRLFs cut in two
                        writer.write(good[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(0)

        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = SlotCounterLink(f"127.0.0.1:{port}", "pw", 5.0)
        try:
            assert await link.read() == {5: 10, 16383: 7}
            assert b"AUTH\r\n" in seen
            with pytest.raises(SlotStatsError, match="unknown subcommand"):
                await link.read()
        finally:
            await link.close()
            server.close()

    asyncio.run(run())


def test_proxy_slot_counters_from_a_real_proxy(
    tmp_path: Path, etcd: EtcdServer, cluster_name: str
) -> None:
    """A real proxy: the ops routed to a slot between two polls are its rate over the span."""
    cluster = Cluster(tmp_path, etcd, cluster_name, groups=1)
    try:
        proxy = cluster.proxy()
        deadline = time.monotonic() + 60
        while not cluster.store.load().proxies:  # the proxy registers itself
            assert time.monotonic() < deadline, "the proxy never registered"
            time.sleep(0.05)
        topo = cluster.store.load()
        client = redis.Redis(port=proxy.port)

        async def two_polls() -> tuple[dict[str, ProxySample], dict[str, ProxySample]]:
            poller = Poller(timeout=10.0)
            try:
                _, first = await poller.poll(topo, None)
                for _ in range(50):
                    await asyncio.to_thread(client.get, "heat:a")
                for _ in range(20):
                    await asyncio.to_thread(client.set, "heat:b", "v")
                sample = ClusterSample(0.0, "t", (), topo, proxies=first)
                _, second = await poller.poll(topo, sample)
                return first, second
            finally:
                await poller.close()

        first, second = asyncio.run(two_polls())
        client.close()
        addr = f"127.0.0.1:{proxy.port}"
        a, b = key_slot(b"heat:a"), key_slot(b"heat:b")
        p1, p2 = first[addr], second[addr]
        assert not p2.stale and p2.slot_counts[a] - p1.slot_counts.get(a, 0) == 50
        rates = slot_rates(first, second) or {}
        span = p2.ts - p1.ts
        assert rates[a] * span == pytest.approx(50) and rates[b] * span == pytest.approx(20)
        assert set(rates) == {a, b}
    finally:
        cluster.stop()


def test_a_node_that_does_not_answer_is_stale_in_that_very_poll() -> None:
    async def run() -> None:
        silent_conns = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            silent_conns.append(writer)  # accepts, reads, never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        topo = FakeCluster(groups=1, replicas=0, proxies=0).topology()
        topo = type(topo)(topo.cluster, topo.revision, topo.meta, topo.epoch,
                          {1: topo.groups[1].__class__(1, f"127.0.0.1:{port}")}, topo.slots)  # fmt: skip
        poller = Poller(timeout=0.3)
        try:
            nodes, proxies = await asyncio.wait_for(poller.poll(topo, None), 30)
        finally:
            await poller.close()
            server.close()
            for w in silent_conns:
                w.close()
        n = nodes[f"127.0.0.1:{port}"]
        assert n.stale and n.error and not proxies

    asyncio.run(run())


def test_grid_marks_migrating_and_unassigned_slots() -> None:
    owners: list[int | None] = [1] * 8192 + [2] * 8000 + [None] * 192
    per, cells = grid_cells(owners, {100: 2}, {1: 1.0, 2: 0.1}, 16384)
    assert per == 1 and len(cells) == 16384
    assert cells[100][0] == MOVING and "green" in cells[100][1]  # the target's colour
    assert cells[0][0] == "█" and cells[9000][0] == "░" and cells[16383][0] == UNASSIGNED
    per, cells = grid_cells(owners, {100: 2}, {}, 100)
    assert per == 164 and cells[0][0] == MOVING and len(cells) == 100
    assert SlotMap.empty().owners().count(None) == 16384


def test_events_newest_first_and_filtered() -> None:
    sample = FakeCluster(failover=True, migration_percent=40).sample()
    rows = event_rows(sample.events, sample.ts, "")
    assert [k for k, _ in rows][:2] == ["e5", "e4"]
    only = event_rows(sample.events, sample.ts, "FAILOVER promoted")
    assert [k for k, _ in only] == ["e4"]
    assert event_rows(sample.events, sample.ts, "nothing-like-this") == []
    assert sparkline([0, 5, 10]) == "▁▅█" and sparkline([]) == ""


def test_recording_is_bounded_and_replays_with_seek(tmp_path: Path) -> None:
    fake = FakeCluster(migration_percent=40)
    path = tmp_path / "rec.jsonl"
    rec = Recorder(path, max_bytes=120_000)
    samples, prev = [], None
    for step in range(60):
        prev = fake.sample(step, prev)
        samples.append(prev)
        rec.write(prev)
    rec.close()
    older = tmp_path / "rec.jsonl.1"
    assert path.stat().st_size + older.stat().st_size <= 120_000
    back = load(path)
    # the newest are kept, exactly but for the per-slot rates, kept by 16 slots
    assert 0 < len(back) < 60
    assert dataclasses.replace(back[-1], slot_ops=None) == dataclasses.replace(
        samples[-1], slot_ops=None
    )
    rates = samples[-1].slot_ops or {}
    assert back[-1].slot_ops == {
        b: round(sum(rates.get(s, 0.0) for s in range(b, b + 16)), 1) for b in range(0, 16384, 16)
    }
    assert back[-1].topology == samples[-1].topology and back[-1].nodes == samples[-1].nodes
    replay = ReplaySource(back)
    first = asyncio.run(replay.sample(None))
    assert first == back[0] and replay.seek(1000) == back[-1] and replay.seek(-1) == back[-2]
    assert replay.seek_to(0) == back[0]
    (tmp_path / "bad").write_text("not json\n")
    with pytest.raises(RecordingError, match="not a dashboard recording"):
        load(tmp_path / "bad")


def test_dashboard_settings(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[dashboard]\ninterval = 5\ntheme = "ansi-light"\n')
    s = load_dashboard(f)
    assert (s.interval, s.theme) == (5, "ansi-light")
    for bad, what in (("interval = 0", "dashboard.interval"), ("speed = 1", "unknown setting"),
                      ('theme = "pink"', "dashboard.theme"), ("interval = true", "interval")):  # fmt: skip
        f.write_text(f"[dashboard]\n{bad}\n")
        with pytest.raises(ConfigError, match=what):
            load_dashboard(f)


def test_actions_make_the_cluster_plans() -> None:
    topo = FakeCluster(groups=3, migration_percent=40).topology()
    plan = actions.preview(actions.ACTIONS["migrate"], topo, {"slots": "0-9", "target": "3"})
    assert plan.kind == "migrate" and len(plan.tasks) == 1 and plan.tasks[0].target == 3
    pause = actions.preview(actions.ACTIONS["pause"], topo, {"task": "m12-1"})
    assert "running -> paused" in pause.summary
    with pytest.raises(PlanError, match="already part of migration"):
        actions.preview(actions.ACTIONS["migrate"], topo, {"slots": "5470", "target": "3"})
    with pytest.raises(actions.ActionError, match="target"):
        actions.preview(actions.ACTIONS["migrate"], topo, {"slots": "0", "target": "x"})
    with pytest.raises(PlanError, match="not finished"):
        actions.preview(actions.ACTIONS["rebalance"], topo, {})
    assert topo.migrations["m12-1"].state == RUNNING
