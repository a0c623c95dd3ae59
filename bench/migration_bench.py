"""Slot migration: how fast keys move, and what other clients see meanwhile.

    python -m bench.migration_bench [--keys 200000] [--slots 64] [--members 500000]

Two ledis-servers (a source and a target) and, as the peer, two redis-servers moving the same
data with MIGRATE (Redis's own way of moving keys between nodes), in the same run:

1. Small keys: ``--keys`` strings of 32 bytes in ``--slots`` slots. ledis: SLOTSMGRTTAGSLOT
   (batches of 500) until every slot is empty, as fast as it goes and again throttled to
   ``--rate`` keys a second (the engine's ``--rate``); Redis: MIGRATE ... KEYS with 500 keys
   a call. Keys/s and MB/s (payload), and the ratio ledis / Redis.
2. Big collections: a hash, a sorted set and a list of ``--members`` members each, one key
   at a time (ledis sends them in parts of at most 1000 entries; Redis's MIGRATE sends the
   whole value in one reply). Members/s and MB/s.
3. Another client's GET latency on the source (a separate process, one GET at a time) before
   the migration and during it (small keys, then the big hash): p50 / p99 / max, and the
   ratio p99 during / p99 before (target: at most 2), for ledis and for Redis.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from stack.core.slots import key_slot

from .server_bench import Target, start_ledis, start_redis

BATCH = 500


def keys_in_slots(n: int, slots: int) -> list[str]:
    """``n`` key names spread over the first ``slots`` slots (by hash tags)."""
    tags: list[str] = []
    seen: set[int] = set()
    i = 0
    while len(tags) < slots:
        tag = f"t{i}"
        s = key_slot(tag.encode())
        if s not in seen:
            seen.add(s)
            tags.append(tag)
        i += 1
    return [f"{{{tags[i % slots]}}}:{i}" for i in range(n)]


def fill_strings(c: redis.Redis, keys: list[str]) -> None:
    pipe = c.pipeline(transaction=False)
    for i, k in enumerate(keys):
        pipe.set(k, f"{i:032d}")
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


def fill_big(c: redis.Redis, members: int) -> None:
    pipe = c.pipeline(transaction=False)
    for start in range(0, members, 1000):
        names = [f"member:{i}" for i in range(start, min(start + 1000, members))]
        pipe.hset("big:hash", mapping=dict.fromkeys(names, "value-of-16-bytes"))
        pipe.zadd("big:zset", {n: i for i, n in enumerate(names, start)})
        pipe.rpush("big:list", *names)
        if len(pipe) >= 30:
            pipe.execute()
    pipe.execute()


# -- the other client --------------------------------------------------------------------


def probe_main(port: int, seconds: float) -> None:
    """Run as a child process: GET in a loop for ``seconds`` (or until SIGTERM); print the
    latencies' figures."""
    stop = []
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.append(1))
    c = redis.Redis(port=port, protocol=2)
    c.set("probe:key", "v")
    print("ready", flush=True)
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop:
        t0 = time.perf_counter()
        c.get("probe:key")
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort() if samples else samples.append(0.0)
    print(json.dumps({"n": len(samples), "p50": statistics.median(samples),
                      "p99": samples[max(0, int(len(samples) * 0.99) - 1)], "max": samples[-1]}))  # fmt: skip


class Probe:
    def __init__(self, port: int, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.migration_bench", "--probe", str(port), str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"  # it measures from now on

    def result(self) -> dict[str, float]:
        out, _ = self.proc.communicate(timeout=3600)
        return json.loads(out)  # type: ignore[no-any-return]


# -- moving ------------------------------------------------------------------------------


def ledis_move_slots(
    src: redis.Redis, dst: Target, slots: list[int], rate: float = 0.0
) -> tuple[int, int]:
    """SLOTSMGRTTAGSLOT until the slots are empty, at most ``rate`` keys a second (0: as
    fast as it goes), as the migration engine's throttle does."""
    keys = nbytes = 0
    start = time.perf_counter()
    for slot in slots:
        while True:
            moved, remaining, sent = src.execute_command(
                "SLOTSMGRTTAGSLOT", "127.0.0.1", dst.port, 30000, slot, "MAXKEYS", BATCH, "WITHBYTES"
            )
            keys += moved
            nbytes += sent
            if rate:
                ahead = keys / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
            if remaining == 0:
                break
    return keys, nbytes


def redis_move_keys(src: redis.Redis, dst: Target, keys: list[str]) -> int:
    nbytes = 0
    for i in range(0, len(keys), BATCH):
        batch = keys[i : i + BATCH]
        nbytes += sum(len(k) + 32 for k in batch)
        src.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 30000, "KEYS", *batch)
    return nbytes


def small_keys(opts: argparse.Namespace, targets: dict[str, tuple[Target, Target]]) -> None:
    keys = keys_in_slots(opts.keys, opts.slots)
    slots = sorted({key_slot(k.encode()) for k in keys})
    print(f"\n1. {opts.keys} small keys (32-byte strings) in {len(slots)} slots\n")
    print(f"{'server':<14}{'seconds':>9}{'keys/s':>11}{'MB/s':>8}{'GET p50':>9}{'p99 before':>12}"
          f"{'p99 during':>12}{'max during':>12}{'p99 ratio':>11}")  # fmt: skip
    rates = {}
    runs = [(name, pair, 0.0) for name, pair in targets.items()]
    runs.append(("ledis", targets["ledis"], opts.rate))
    for name, (src_t, dst_t), rate in runs:
        src = redis.Redis(port=src_t.port, protocol=2, socket_timeout=600)
        src.flushall()
        redis.Redis(port=dst_t.port, protocol=2).flushall()
        fill_strings(src, keys)
        before = Probe(src_t.port, 3).result()
        probe = Probe(src_t.port, 3600)
        t0 = time.perf_counter()
        if name == "ledis":
            moved, nbytes = ledis_move_slots(src, dst_t, slots, rate)
        else:
            nbytes, moved = redis_move_keys(src, dst_t, keys), len(keys)
        elapsed = time.perf_counter() - t0
        probe.proc.terminate()
        during = probe.result()
        assert moved == len(keys), (name, moved)
        rates.setdefault(name, moved / elapsed)
        label = f"{name}@{rate:.0f}/s" if rate else name
        print(f"{label:<14}{elapsed:>9.2f}{moved / elapsed:>11.0f}{nbytes / elapsed / 1e6:>8.2f}"
              f"{during['p50']:>9.3f}{before['p99']:>12.3f}{during['p99']:>12.3f}"
              f"{during['max']:>12.2f}{during['p99'] / before['p99']:>11.2f}")  # fmt: skip
    print(f"\nledis / redis keys/s: {rates['ledis'] / rates['redis']:.2f}x "
          f"(target: at least 20000 keys/s on ledis: {rates['ledis']:.0f})")  # fmt: skip


def big_keys(opts: argparse.Namespace, targets: dict[str, tuple[Target, Target]]) -> None:
    print(f"\n2. Big collections of {opts.members} members, one key at a time\n")
    print(f"{'server':<8}{'key':<10}{'seconds':>9}{'members/s':>12}{'MB/s':>8}"
          f"{'GET p99':>9}{'max':>9}")  # fmt: skip
    for name, (src_t, dst_t) in targets.items():
        src = redis.Redis(port=src_t.port, protocol=2, socket_timeout=3600)
        src.flushall()
        redis.Redis(port=dst_t.port, protocol=2).flushall()
        fill_big(src, opts.members)
        for key in ("big:hash", "big:zset", "big:list"):
            size = src.memory_usage(key) if name == "redis" else None
            probe = Probe(src_t.port, 3600)
            t0 = time.perf_counter()
            if name == "ledis":
                info0 = src.info("slots")["ledis_migrate_bytes_moved"]
                assert src.execute_command("SLOTSMGRTONE", "127.0.0.1", dst_t.port, 600_000, key) == 1
                nbytes = src.info("slots")["ledis_migrate_bytes_moved"] - info0
            else:
                src.execute_command("MIGRATE", "127.0.0.1", dst_t.port, key, 0, 600_000)
                nbytes = size or 0
            elapsed = time.perf_counter() - t0
            probe.proc.terminate()
            during = probe.result()
            print(f"{name:<8}{key:<10}{elapsed:>9.2f}{opts.members / elapsed:>12.0f}"
                  f"{nbytes / elapsed / 1e6:>8.2f}{during['p99']:>9.3f}{during['max']:>9.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--probe":
        probe_main(int(args[1]), float(args[2]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.migration_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--slots", type=int, default=64)
    p.add_argument("--members", type=int, default=500_000)
    p.add_argument("--rate", type=float, default=5000, help="keys/s of the throttled ledis pass")
    opts = p.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="migration-bench-") as tmp:
        root = Path(tmp)
        started: list[Target] = []
        try:
            for d in ("ls", "lt", "rs", "rt"):
                (root / d).mkdir()
            ls, lt = start_ledis(root / "ls", []), start_ledis(root / "lt", [])
            rs, rt = start_redis(root / "rs", aof=False), start_redis(root / "rt", aof=False)
            started += [ls, lt, rs, rt]
            targets = {"ledis": (ls, lt), "redis": (rs, rt)}
            small_keys(opts, targets)
            big_keys(opts, targets)
        finally:
            for t in started:
                t.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
