"""The dashboard's data layer, without a terminal: INFO parsing, stale nodes, the slot grid,
event filters, recording bounds and replay, settings, and actions through the plans."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from console.config import ConfigError
from console.dashboard import actions, percentiles
from console.dashboard.events_pane import event_rows
from console.dashboard.fake_cluster import FakeCluster
from console.dashboard.poller import Poller
from console.dashboard.recording import Recorder, RecordingError, ReplaySource, load
from console.dashboard.sample import ClusterSample, NodeSample, node_from_info, parse_info
from console.dashboard.settings import load_dashboard
from console.dashboard.slot_grid import MOVING, UNASSIGNED, grid_cells
from console.dashboard.units import sparkline
from stack.cluster.model import RUNNING, SlotMap
from stack.cluster.plans import PlanError

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
    assert 0 < len(back) < 60 and back[-1] == samples[-1]  # the newest are kept, exactly
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
