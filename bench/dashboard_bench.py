"""The dashboard's cost: frame time and CPU per refresh with 100 nodes and 16384 slots (a
fake cluster, headless), and the load the poller puts on one real ledis-server.

    python -m bench.dashboard_bench [--refreshes 20] [--seconds 10] [--interval 0.5]

1. Per tab, N refreshes of a 50-group x (master + replica) + 4-proxy fake cluster in a
   200x60 headless terminal: wall time from a new sample to the screen drawn (median, max)
   and the dashboard process's CPU per refresh. The slot grid shades by ops per slot, which
   the proxies' counters change every refresh (a grid rebuild each time).
2. A proxy's PROXY SLOTSTATS reply with every slot (16384 pairs) made into {slot: ops}: by
   the RESP client's parser and by slot_counters.parse_reply (best of 5, CPU only).
3. One real ledis-server polled as the dashboard polls it (INFO default commandstats
   latencystats, the next poll when the last one ended, every --interval s) for --seconds:
   INFO calls/s the server saw (its own cmdstat_info), and the server's CPU per second with
   the poller against the same span idle (the ratio is the poller's extra load).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import redis

from console.config import ClusterSettings
from console.dashboard.app import Dashboard
from console.dashboard.fake_cluster import FakeCluster, FakeSource
from console.dashboard.poller import Poller
from console.dashboard.sample import parse_slotstats
from console.dashboard.slot_counters import parse_reply
from stack.cluster.model import Group, Meta, SlotMap, Topology
from stack.core.reply_parser import ReplyParser

from .server_bench import start_ledis


async def frames(refreshes: int) -> None:
    cluster = FakeCluster(groups=50, replicas=1, proxies=4, migration_percent=40)
    source = FakeSource(cluster)
    app = Dashboard(source, ClusterSettings(name="bench"), interval=3600)
    async with app.run_test(size=(200, 60)) as pilot:
        while not app.samples_shown:
            await asyncio.sleep(0.01)
        print(f"{len(cluster.topology().groups) * 2} nodes, 4 proxies, 16384 slots, 200x60")
        print(f"{'tab':12} {'frame median':>13} {'frame max':>10} {'CPU/refresh':>12}")
        for tab in ("overview", "slots", "replication", "nodes", "events"):
            app.action_tab(tab)
            await pilot.pause()
            walls, cpus = [], []
            prev = app.sample
            for _ in range(refreshes):
                sample = await source.sample(prev)
                prev = sample
                w0, c0 = time.perf_counter(), time.process_time()
                app.show(sample)
                await pilot.pause()  # until the screen has been refreshed
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            print(f"{tab:12} {statistics.median(walls) * 1000:>10.1f} ms {max(walls) * 1000:>7.1f} ms"
                  f" {statistics.median(cpus) * 1000:>9.1f} ms")


def slotstats_parse() -> None:
    data = b"*16384\r\n" + b"".join(
        b"*2\r\n:%d\r\n:%d\r\n" % (s, 1_000_000 + s) for s in range(16384)
    )
    resp = fast = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        p = ReplyParser()
        p.feed(data)
        parse_slotstats(p.get())
        t1 = time.perf_counter()
        parse_reply(data)
        t2 = time.perf_counter()
        resp, fast = min(resp, t1 - t0), min(fast, t2 - t1)
    print(f"\nPROXY SLOTSTATS, 16384 pairs ({len(data) // 1024} KB): RESP parser {resp * 1000:.1f} ms, "
          f"slot_counters.parse_reply {fast * 1000:.1f} ms ({resp / fast:.0f}x)")


def server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def poll_for(port: int, seconds: float, interval: float) -> int:
    addr = f"127.0.0.1:{port}"
    topo = Topology("bench", 1, Meta("bench", 0.0), 1, {1: Group(1, addr)},
                    SlotMap.empty())  # fmt: skip
    poller = Poller(timeout=2.0)
    polls = 0
    prev = None
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            await poller.poll(topo, prev)
            polls += 1
            await asyncio.sleep(interval)
    finally:
        await poller.close()
    return polls


def server_load(seconds: float, interval: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = start_ledis(Path(tmp), [])
        try:
            r = redis.Redis(port=target.port)
            c0 = server_cpu(r)
            time.sleep(seconds)
            idle = (server_cpu(r) - c0) / seconds
            calls0 = r.info("commandstats").get("cmdstat_info", {}).get("calls", 0)
            c0 = server_cpu(r)
            t0 = time.monotonic()
            polls = asyncio.run(poll_for(target.port, seconds, interval))
            span = time.monotonic() - t0
            busy = (server_cpu(r) - c0) / span
            calls = r.info("commandstats").get("cmdstat_info", {}).get("calls", 0) - calls0 - 1
            print(f"\none ledis-server polled every {interval:g}s for {span:.1f}s: {polls} polls")
            print(f"INFO calls/s on the server: {calls / span:.2f}")
            print(f"server CPU: idle {idle * 1000:.1f} ms/s, polled {busy * 1000:.1f} ms/s "
                  f"(extra {(busy - idle) * 1000:.1f} ms/s = {(busy - idle) * 100:.2f}% of one core)")
        finally:
            target.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refreshes", type=int, default=20)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--interval", type=float, default=0.5)
    args = p.parse_args(argv)
    asyncio.run(frames(args.refreshes))
    slotstats_parse()
    server_load(args.seconds, args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
