"""Failover time: kill -9 of a group's master to the first successful write through the proxy.

Starts a real etcd, one group (a master and two replicas, semi-sync ``min-replicas-to-write
1`` unless ``--async``), a ledis-proxy and a ledis-failover with its default settings (or the
flags given after ``--``). A writer writes unique keys through the proxy all along. Each run
kills the master with SIGKILL, times the first write sent after the kill that succeeds,
restarts the old node (it rejoins as a replica), waits until every replica caught up, and goes
on. At the end every acknowledged key is looked up on the last master: writes lost.

    python -m bench.failover_bench                 # 20 runs, default controller settings
    python -m bench.failover_bench --runs 5 -- --down-after 1.5 --tick 0.3
    python -m bench.failover_bench --switchover    # planned switchovers instead

``--switchover``: each run is ``ledis-console failover 1 --yes`` (the best replica takes over)
instead of a kill; it reports the longest a write was held (sent to acknowledged) during the
switchover, p50 and p99, and the writes refused or failed meanwhile (target 0: the proxy sends
the writes the old master's fence refused to the new master).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import redis

from console.main import run as console_run
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

    def held(self, t0: float, t1: float) -> float:
        """The longest a write acknowledged after ``t0`` and sent before ``t1`` waited."""
        return max(
            (acked - sent for sent, acked, _ in self.acked if acked >= t0 and sent <= t1),
            default=0.0,
        )

    def wrote_after(self, t0: float) -> bool:
        return self.first_after(t0) is not None

    def first_after(self, t0: float) -> float | None:
        """When the first write sent at or after ``t0`` was acknowledged (None: not yet)."""
        first = None
        for sent, acked, _ in reversed(self.acked):
            if sent < t0:
                break
            first = acked
        return first


def caught_up(fc: FailoverCluster, new: str, others: list[str]) -> bool:
    try:
        want = fc.client(new).execute_command("ROLE")[1]
        roles = [fc.client(a).execute_command("ROLE") for a in others]
    except (redis.RedisError, OSError):
        return False
    return all(r[0] == b"slave" and r[3] == b"connected" and r[4] >= want - 50 for r in roles)


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
    parser.add_argument("--switchover", action="store_true",
                        help="planned switchovers (ledis-console failover) instead of kill -9")  # fmt: skip
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
        console = root / "ledis-console.toml"
        console.write_text(f'[cluster]\nname = "bench"\netcd = ["{etcd.endpoint}"]\n')
        errors_during = 0
        for run in range(1, args.runs + 1):
            master = fc.master_of()
            if args.switchover:
                errors = writer.errors
                t0 = time.monotonic()
                with contextlib.redirect_stdout(io.StringIO()):
                    code = console_run(["--config", str(console), "failover", "1", "--yes"])
                t1 = time.monotonic()
                wait_until(partial(writer.wrote_after, t1), "a write after the switchover", 120)
                errors_during += writer.errors - errors
                times.append(writer.held(t0, t1))
                new = fc.master_of()
                print(f"run {run}: switchover {master} -> {new} (exit {code}) in {t1 - t0:.2f} s, "
                      f"a write held at most {times[-1]:.2f} s, "
                      f"{writer.errors - errors} refused or failed", flush=True)  # fmt: skip
                others = [a for a in fc.servers if a != new]
                wait_until(partial(caught_up, fc, new, others), "replicas caught up", 120)
                continue
            t0 = time.monotonic()
            fc.servers[master].kill9()
            wait_until(partial(writer.wrote_after, t0), "a write after the kill", 120)
            first = writer.first_after(t0)
            assert first is not None
            times.append(first - t0)
            new = fc.master_of()
            print(f"run {run}: {master} killed, {new} took over, first write after "
                  f"{first - t0:.2f} s", flush=True)  # fmt: skip
            fc.restart(master)
            others = [a for a in fc.servers if a != new]
            wait_until(partial(caught_up, fc, new, others), "replicas caught up", 120)
        writer.stop.set()
        writer.join(30)
        master = fc.master_of()
        client = fc.client(master)
        keys = [k for _, _, k in writer.acked]
        lost = 0
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            pipe = client.pipeline(transaction=False)  # GETs: a node with a map refuses a
            for k in chunk:  # cross-slot MGET
                pipe.get(k)
            lost += sum(1 for v in pipe.execute() if v is None)
        print()
        if args.switchover:
            print(f"planned switchovers (ledis-console failover), {len(times)} runs "
                  f"({'async' if args.asynchronous else 'semi-sync min-replicas-to-write 1'}; "
                  f"controller flags: {' '.join(extra) or 'defaults'}):")  # fmt: skip
            print(f"  longest write held: p50 {statistics.median(times):.2f} s   p99 "
                  f"{percentile(times, 99):.2f} s   max {max(times):.2f} s")  # fmt: skip
            print(f"  writes acknowledged {len(keys)}, lost {lost}, refused or failed during "
                  f"the switchovers {errors_during} (target 0), in all {writer.errors}")  # fmt: skip
            return 0 if lost == 0 and errors_during == 0 else 1
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
