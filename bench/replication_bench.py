"""Replication: lag under load, full-sync throughput, and semi-sync cost.

    python -m bench.replication_bench [--requests 200000] [--full-sync-mb 1024]

1. A master and one replica; `redis-benchmark -t set -P 16` at full rate against the master
   while a sampler reads both offsets every 20 ms: lag in LogIDs and in milliseconds (how long
   the replica took to reach each sampled master offset).
2. Full sync: a dataset of N MB on the master, then a new replica; MB/s until it caught up.
3. Semi-sync: SET throughput with min-replicas-to-write 1 as a ratio to asynchronous.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from .server_bench import Target, start_ledis


def offsets(m: redis.Redis, r: redis.Redis) -> tuple[int, int]:
    return (int(m.info("replication")["master_repl_offset"]),
            int(r.info("replication")["slave_repl_offset"]))


def benchmark(port: int, requests: int, pipeline: int = 16) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(requests), "-r", "100000",
         "-t", "set", "-P", str(pipeline), "--csv"], capture_output=True, text=True, timeout=900)
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    return float(rows[0][1])


def replica_of(root: Path, master: Target, name: str) -> Target:
    return start_ledis(
        root / name, ["--replicaof", "127.0.0.1", str(master.port), "--enable-debug-command", "yes"]
    )


def wait_caught_up(m: redis.Redis, r: redis.Redis, limit: float = 1800) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        mo, ro = offsets(m, r)
        if ro >= mo and r.info("replication")["master_link_status"] == "up":
            return
        time.sleep(0.05)
    raise SystemExit("replica did not catch up")


def lag_under_load(root: Path, requests: int) -> None:
    master = start_ledis(root / "lag-m", [])
    replica = replica_of(root, master, "lag-r")
    m, r = redis.Redis(port=master.port, protocol=2), redis.Redis(port=replica.port, protocol=2)
    try:
        wait_caught_up(m, r)
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                mo, ro = offsets(m, r)
                samples.append((time.monotonic(), mo, ro))
                time.sleep(0.02)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        rps = benchmark(master.port, requests)
        wait_caught_up(m, r)
        time.sleep(0.1)
        stop.set()
        t.join()
        ids = sorted(mo - ro for _t, mo, ro in samples)
        ms: list[float] = []
        for i, (ti, mo, _ro) in enumerate(samples):
            for tj, _mo, ro in samples[i:]:
                if ro >= mo:
                    ms.append((tj - ti) * 1000)
                    break
        ms.sort()
        print(f"lag while redis-benchmark -t set -P 16 ran at {rps:,.0f} SET/s: "
              f"p50 {statistics.median(ids)} / p99 {ids[int(len(ids) * .99) - 1]} LogIDs, "
              f"p50 {statistics.median(ms):.0f} / p99 {ms[int(len(ms) * .99) - 1]:.0f} ms "
              f"({len(samples)} samples)")
    finally:
        replica.stop()
        master.stop()


def full_sync(root: Path, megabytes: int) -> None:
    master = start_ledis(root / "fs-m", ["--enable-debug-command", "yes"])
    m = redis.Redis(port=master.port, protocol=2)
    try:
        value = b"v" * 1000
        pipe = m.pipeline(transaction=False)
        for i in range(megabytes * 1000):
            pipe.set(f"key:{i}", value)
            if len(pipe) >= 1000:
                pipe.execute()
        pipe.execute()
        start = time.monotonic()
        replica = replica_of(root, master, "fs-r")
        r = redis.Redis(port=replica.port, protocol=2)
        try:
            wait_caught_up(m, r)
            took = time.monotonic() - start
            same = m.execute_command("DEBUG", "DIGEST") == r.execute_command("DEBUG", "DIGEST")
            print(f"full sync of {megabytes} MB of values ({megabytes * 1000} keys): "
                  f"{took:.1f} s, {megabytes / took:.1f} MB/s, digests equal: {same}")
        finally:
            replica.stop()
    finally:
        master.stop()


def semi_sync_cost(root: Path, requests: int) -> None:
    results = {}
    for mode in ("0", "1"):
        master = start_ledis(root / f"ss{mode}-m", ["--min-replicas-to-write", mode])
        replica = replica_of(root, master, f"ss{mode}-r")
        m = redis.Redis(port=master.port, protocol=2)
        r = redis.Redis(port=replica.port, protocol=2)
        try:
            wait_caught_up(m, r)
            results[mode] = (benchmark(master.port, requests, 16), benchmark(master.port,
                                                                             requests // 4, 1))
        finally:
            replica.stop()
            master.stop()
    (a16, a1), (s16, s1) = results["0"], results["1"]
    print(f"semi-sync SET: -P 16 {s16:,.0f}/s vs async {a16:,.0f}/s (ratio {s16 / a16:.2f}); "
          f"-P 1 {s1:,.0f}/s vs {a1:,.0f}/s (ratio {s1 / a1:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--full-sync-mb", type=int, default=1024)
    opts = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ledis-repl-bench-") as tmp:
        root = Path(tmp)
        for sub in ("lag-m", "lag-r", "fs-m", "fs-r", "ss0-m", "ss0-r", "ss1-m", "ss1-r"):
            (root / sub).mkdir()
        lag_under_load(root, opts.requests)
        semi_sync_cost(root, opts.requests)
        full_sync(root, opts.full_sync_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
