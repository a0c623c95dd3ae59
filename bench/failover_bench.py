"""Failover time: kill -9 of a group's master to the first successful write through the proxy.

Starts a real etcd, one group (a master and two replicas, semi-sync ``min-replicas-to-write
1`` unless ``--async``), a ledis-proxy and a ledis-failover with its default settings (or the
flags given after ``--``). A writer writes unique keys through the proxy all along. Each run
kills the master with SIGKILL, times the first write sent after the kill that succeeds,
restarts the old node (it rejoins as a replica), waits until every replica caught up, and goes
on. At the end every acknowledged key is looked up on the last master: writes lost.

    python -m bench.failover_bench                 # 20 runs, default controller settings
    python -m bench.failover_bench --runs 5 -- --down-after 1.5 --tick 0.3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from stack.cluster.etcd_server import EtcdServer
from tests.failover_kit import ControllerProcess, FailoverCluster
from tests.servers import wait_until


class Writer(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acked: list[tuple[float, float, str]] = []  # (sent, acked, key)
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=10)
        i = 0
        while not self.stop.is_set():
            key = f"b:{i}"
            i += 1
            sent = time.monotonic()
            try:
                client.set(key, key)
            except redis.RedisError:
                self.errors += 1
                time.sleep(0.005)
                continue
            self.acked.append((sent, time.monotonic(), key))

    def first_after(self, t0: float) -> float | None:
        """When the first write sent at or after ``t0`` was acknowledged (None: not yet)."""
        first = None
        for sent, acked, _ in reversed(self.acked):
            if sent < t0:
                break
            first = acked
        return first


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bench.failover_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--async", dest="asynchronous", action="store_true",
                        help="no semi-sync (min-replicas-to-write 0)")  # fmt: skip
    args = parser.parse_args(argv)
    semi = () if args.asynchronous else ("--min-replicas-to-write", "1")
    root = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    etcd = EtcdServer.on_free_ports(root / "etcd", no_fsync=True)
    fc: FailoverCluster | None = None
    times: list[float] = []
    try:
        fc = FailoverCluster(root, etcd, "bench", replicas=2, server_args=semi)
        proxy = fc.proxy()
        fc.controllers.append(
            ControllerProcess(root / "ctl", etcd.endpoint, "bench", "c1", *extra).start()
        )
        fc.wait_leader()
        fc.wait_views(2)
        writer = Writer(proxy.port)
        writer.start()
        wait_until(lambda: len(writer.acked) > 100, "writes through the proxy", 60)
        for run in range(1, args.runs + 1):
            master = fc.master_of()
            t0 = time.monotonic()
            fc.servers[master].kill9()
            wait_until(lambda t0=t0: writer.first_after(t0) is not None, "a write after the kill",
                       120)  # fmt: skip
            first = writer.first_after(t0)
            assert first is not None
            times.append(first - t0)
            new = fc.master_of()
            print(f"run {run}: {master} killed, {new} took over, first write after "
                  f"{first - t0:.2f} s", flush=True)  # fmt: skip
            fc.restart(master)
            others = [a for a in fc.servers if a != new]

            def caught_up(new: str = new, others: list[str] = others) -> bool:
                try:
                    want = fc.client(new).execute_command("ROLE")[1]
                    roles = [fc.client(a).execute_command("ROLE") for a in others]
                except (redis.RedisError, OSError):
                    return False
                return all(r[0] == b"slave" and r[3] == b"connected" and r[4] >= want - 50
                           for r in roles)  # fmt: skip

            wait_until(caught_up, "replicas caught up", 120)
        writer.stop.set()
        writer.join(30)
        master = fc.master_of()
        client = fc.client(master)
        keys = [k for _, _, k in writer.acked]
        lost = 0
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            lost += sum(1 for k, v in zip(chunk, client.mget(chunk), strict=True) if v is None)
        print()
        print(f"failover time, kill -9 to the first write through the proxy, {len(times)} runs "
              f"({'async' if args.asynchronous else 'semi-sync min-replicas-to-write 1'}; "
              f"controller flags: {' '.join(extra) or 'defaults'}):")  # fmt: skip
        print(f"  p50 {statistics.median(times):.2f} s   p99 {percentile(times, 99):.2f} s   "
              f"min {min(times):.2f} s   max {max(times):.2f} s   (target p99 <= 5 s)")  # fmt: skip
        print(f"  writes acknowledged {len(keys)}, lost {lost}, refused or failed {writer.errors}")
        return 0 if lost == 0 or args.asynchronous else 1
    finally:
        if fc is not None:
            fc.stop()
        etcd.stop()


if __name__ == "__main__":
    sys.exit(main())
