"""Deleting a big collection: how long DEL takes, and what other clients see meanwhile.

For a hash, a set and a sorted set of N members (1M by default) on ledis-server and on
redis-server: the time DEL takes as its client sees it, the p50/p99/max latency of another
client's GETs while the key is deleted and (on ledis) its members reclaimed in the background,
and how long the reclaim takes.

    python -m bench.bigkey_bench [--members 1000000]
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

from .server_bench import start_ledis, start_redis

BATCH = 1000


def fill(c: redis.Redis, kind: str, key: str, members: int) -> None:
    pipe = c.pipeline(transaction=False)
    for start in range(0, members, BATCH):
        names = [f"m{i}" for i in range(start, min(start + BATCH, members))]
        if kind == "hash":
            pipe.hset(key, mapping=dict.fromkeys(names, "v"))
        elif kind == "set":
            pipe.sadd(key, *names)
        else:
            pipe.zadd(key, {n: i for i, n in enumerate(names, start)})
        if len(pipe) >= 20:
            pipe.execute()
    pipe.execute()


class Prober(threading.Thread):
    """GETs in a loop on its own connection, recording each latency (bounded duration)."""

    def __init__(self, port: int, limit_s: float) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, protocol=2)
        self.client.set("probe", "v")
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.limit_s = limit_s

    def run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            t0 = time.perf_counter()
            self.client.get("probe")
            self.samples.append((time.perf_counter() - t0) * 1000)


def measure(port: int, kind: str, members: int, is_ledis: bool) -> dict[str, float]:
    c = redis.Redis(port=port, protocol=2, socket_timeout=600)
    c.delete("big")
    fill(c, kind, "big", members)
    prober = Prober(port, 120)
    prober.start()
    time.sleep(0.2)  # a baseline of GETs before the delete
    t0 = time.perf_counter()
    c.delete("big")
    del_ms = (time.perf_counter() - t0) * 1000
    reclaim_s = 0.0
    if is_ledis:
        t1 = time.monotonic()
        while c.info("persistence")["ledis_reclaim_pending_collections"] and \
                time.monotonic() - t1 < 110:
            time.sleep(0.05)
        reclaim_s = time.monotonic() - t1
    else:
        time.sleep(0.2)
    prober.stop.set()
    prober.join()
    samples = sorted(prober.samples)
    return {
        "del_ms": del_ms,
        "reclaim_s": reclaim_s,
        "get_p50_ms": statistics.median(samples),
        "get_p99_ms": samples[int(len(samples) * 0.99) - 1],
        "get_max_ms": samples[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--types", default="hash,set,zset")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ledis-bigkey-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        (root / "ledis").mkdir()
        redis_target = start_redis(root / "redis", aof=False)
        ledis_target = start_ledis(root / "ledis", [])
        rows = []
        try:
            for kind in opts.types.split(","):
                for target, is_ledis in ((redis_target, False), (ledis_target, True)):
                    print(f"{kind} of {opts.members} members on {target.name} ...",
                          file=sys.stderr, flush=True)
                    rows.append((kind, target.name,
                                 measure(target.port, kind, opts.members, is_ledis)))
        finally:
            redis_target.stop()
            ledis_target.stop()
    print(f"\nDEL of a {opts.members}-member collection; GET latency of another client meanwhile\n")
    print(f"{'type':<6}{'server':<8}{'DEL ms':>10}{'reclaim s':>11}{'GET p50 ms':>12}"
          f"{'GET p99 ms':>12}{'GET max ms':>12}")
    for kind, name, m in rows:
        print(f"{kind:<6}{name:<8}{m['del_ms']:>10.2f}{m['reclaim_s']:>11.1f}"
              f"{m['get_p50_ms']:>12.3f}{m['get_p99_ms']:>12.3f}{m['get_max_ms']:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
