"""Slot migration: how fast keys move, and what other clients see meanwhile.

    python -m bench.migration_bench [--keys 200000] [--slots 64] [--members 500000]
        [--repeat N] [--before REV] [--no-big] [--no-probes] [--rate N]

Two ledis-servers (a source and a target) and, as the peer, two redis-servers moving the same
data with MIGRATE (Redis's own way of moving keys between nodes), in the same run:

1. Small keys: ``--keys`` strings of 32 bytes in ``--slots`` slots. ledis: SLOTSMGRTTAGSLOT
   (batches of 500) until every slot is empty, as fast as it goes and again throttled to
   ``--rate`` keys a second (the engine's ``--rate``, by default its default; with
   ``--before``, both trees); Redis: MIGRATE ... KEYS with 500 keys
   a call. Keys/s and MB/s (payload), and the ratio ledis / Redis.
2. Big collections: a hash, a sorted set and a list of ``--members`` members each, one key
   at a time (ledis sends them in parts of at most 1000 entries; Redis's MIGRATE sends the
   whole value in one reply). Members/s and MB/s.
3. Another client's GET latency on the source (a separate process, one GET at a time) before
   the migration and during it (small keys, then the big hash): p50 / p99 / max, and the
   ratio p99 during / p99 before (target: at most 2), for ledis and for Redis; for small
   keys the same for such a client of the target (its "before" measured beside the
   source's, in the same 3 s).

CPU: the seconds of CPU each server process (source, target) used during the move, from
/proc/PID/stat (utime + stime, every thread), per 100k keys moved (``src cpu`` / ``dst cpu``
columns; with the other clients running, it includes serving their GETs: ``--no-probes``
moves without them, for the CPU of the move alone).

``--probe-rate N`` paces those clients (N GETs a second each, sent at their times) instead of
one GET after the other: two back-to-back clients keep most of a 2-CPU machine busy by
themselves, so there the ratio says more about the CPUs than about the move.

The machine's load swings these figures: ``--repeat N`` runs the small keys N times (each
run printed), and ``--before REV`` also runs the ledis-server of an older commit (its tree
taken with ``git archive``, the built C extension copied when its source is the same),
alternating with this one (small keys and big collections), so before and after are
measured side by side.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from stack.cluster.migration import DEFAULT_RATE
from stack.core.slots import key_slot

from .bigwrite_bench import ROOT, checkout
from .server_bench import Target, cpu_seconds, start_ledis, start_redis

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


def probe_main(port: int, seconds: float, rate: float = 0.0) -> None:
    """Run as a child process: GET in a loop for ``seconds`` (or until SIGTERM), one after
    the other, or ``rate`` a second (each sent at its time); print the latencies' figures."""
    stop = []
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.append(1))
    c = redis.Redis(port=port, protocol=2)
    c.set("probe:key", "v")
    print("ready", flush=True)
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    due = time.perf_counter()
    while time.monotonic() < deadline and not stop:
        if rate:
            due += 1 / rate
            ahead = due - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        t0 = time.perf_counter()
        c.get("probe:key")
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort() if samples else samples.append(0.0)
    print(json.dumps({"n": len(samples), "p50": statistics.median(samples),
                      "p99": samples[max(0, int(len(samples) * 0.99) - 1)], "max": samples[-1]}))  # fmt: skip


class Probe:
    rate = 0.0  # GETs a second (0: one after the other): --probe-rate
    off = False  # --no-probes: no other clients (nothing measured, zeros reported)

    def __init__(self, port: int, seconds: float) -> None:
        self.proc: subprocess.Popen[str] | None = None
        if self.off:
            return
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.migration_bench", "--probe", str(port), str(seconds),
             str(self.rate)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"  # it measures from now on

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()

    def result(self) -> dict[str, float]:
        if self.proc is None:
            return dict.fromkeys(("n", "p50", "p99", "max"), float("nan"))
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
    print(f"{'server':<22}{'seconds':>8}{'keys/s':>8}{'MB/s':>6}{'GET p50':>8}{'p99 before':>11}"
          f"{'p99 during':>11}{'max during':>11}{'p99 ratio':>10}{'target p99':>11}"
          f"{'before':>8}{'ratio':>7}{'src cpu':>8}{'dst cpu':>8}   (cpu: s per 100k keys;"
          f" load {os.getloadavg()[0]:.1f})")  # fmt: skip
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    target_ratios: dict[str, list[float]] = {}
    cpus: dict[str, list[tuple[float, float]]] = {}
    runs = [(name, pair, 0.0) for name, pair in targets.items()]
    runs += [(name, pair, opts.rate) for name, pair in targets.items() if name.startswith("ledis")]
    for _ in range(opts.repeat):
        for name, (src_t, dst_t), rate in runs:
            label = f"{name}@{rate:.0f}/s" if rate else name
            src = redis.Redis(port=src_t.port, protocol=2, socket_timeout=600)
            src.flushall()
            redis.Redis(port=dst_t.port, protocol=2).flushall()
            fill_strings(src, keys)
            before_probes = Probe(src_t.port, 3), Probe(dst_t.port, 3)  # side by side
            before, target_before = (p.result() for p in before_probes)
            probe, target_probe = Probe(src_t.port, 3600), Probe(dst_t.port, 3600)
            cpu0 = cpu_seconds(src_t.proc.pid), cpu_seconds(dst_t.proc.pid)
            t0 = time.perf_counter()
            if name.startswith("ledis"):
                moved, nbytes = ledis_move_slots(src, dst_t, slots, rate)
            else:
                nbytes, moved = redis_move_keys(src, dst_t, keys), len(keys)
            elapsed = time.perf_counter() - t0
            src_cpu = (cpu_seconds(src_t.proc.pid) - cpu0[0]) / moved * 100_000
            dst_cpu = (cpu_seconds(dst_t.proc.pid) - cpu0[1]) / moved * 100_000
            probe.stop()
            target_probe.stop()
            during, at_target = probe.result(), target_probe.result()
            assert moved == len(keys), (name, moved)
            rates.setdefault(label, []).append(moved / elapsed)
            ratios.setdefault(label, []).append(during["p99"] / before["p99"])
            target_ratios.setdefault(label, []).append(at_target["p99"] / target_before["p99"])
            cpus.setdefault(label, []).append((src_cpu, dst_cpu))
            print(f"{label:<22}{elapsed:>8.2f}{moved / elapsed:>8.0f}{nbytes / elapsed / 1e6:>6.2f}"
                  f"{during['p50']:>8.3f}{before['p99']:>11.3f}{during['p99']:>11.3f}"
                  f"{during['max']:>11.2f}{ratios[label][-1]:>10.2f}{at_target['p99']:>11.3f}"
                  f"{target_before['p99']:>8.3f}{target_ratios[label][-1]:>7.2f}"
                  f"{src_cpu:>8.2f}{dst_cpu:>8.2f}   load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
    print("\nmedians:")
    for label in rates:
        print(f"  {label:<22}{statistics.median(rates[label]):>8.0f} keys/s, "
              f"p99 ratio {statistics.median(ratios[label]):.2f} "
              f"(target's {statistics.median(target_ratios[label]):.2f}), CPU per 100k keys: "
              f"source {statistics.median(c[0] for c in cpus[label]):.2f} s, target "
              f"{statistics.median(c[1] for c in cpus[label]):.2f} s")  # fmt: skip
    ledis = statistics.median(rates["ledis"])
    print(f"ledis / redis keys/s: {ledis / statistics.median(rates['redis']):.2f}x "
          f"(target: at least 20000 keys/s on ledis: {ledis:.0f})")  # fmt: skip


def big_keys(opts: argparse.Namespace, targets: dict[str, tuple[Target, Target]]) -> None:
    print(f"\n2. Big collections of {opts.members} members, one key at a time\n")
    print(f"{'server':<18}{'key':<10}{'seconds':>9}{'members/s':>12}{'MB/s':>8}"
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
            if name.startswith("ledis"):
                info0 = src.info("slots")["ledis_migrate_bytes_moved"]
                assert src.execute_command("SLOTSMGRTONE", "127.0.0.1", dst_t.port, 600_000, key) == 1
                nbytes = src.info("slots")["ledis_migrate_bytes_moved"] - info0
            else:
                src.execute_command("MIGRATE", "127.0.0.1", dst_t.port, key, 0, 600_000)
                nbytes = size or 0
            elapsed = time.perf_counter() - t0
            probe.stop()
            during = probe.result()
            print(f"{name:<18}{key:<10}{elapsed:>9.2f}{opts.members / elapsed:>12.0f}"
                  f"{nbytes / elapsed / 1e6:>8.2f}{during['p99']:>9.3f}{during['max']:>9.2f}")  # fmt: skip


def older_tree(rev: str, into: Path) -> Path:
    """The tree of ``rev``, with this checkout's built C extension when its source is the
    same there (else it runs on the Python path)."""
    tree = checkout(rev, into)
    server = ROOT / "stack" / "server"
    if filecmp.cmp(server / "_fastlane.c", tree / "stack" / "server" / "_fastlane.c", False):
        for built in server.glob("_fastlane*.so"):
            shutil.copy(built, tree / "stack" / "server")
    return tree


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--probe":
        probe_main(int(args[1]), float(args[2]), float(args[3]) if len(args) > 3 else 0.0)
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.migration_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--keys", type=int, default=200_000)
    p.add_argument("--slots", type=int, default=64)
    p.add_argument("--members", type=int, default=500_000)
    p.add_argument("--rate", type=float, default=DEFAULT_RATE,
                   help="keys/s of the throttled ledis pass (default: the engine's default rate)")  # fmt: skip
    p.add_argument("--repeat", type=int, default=1, help="runs of the small keys")
    p.add_argument("--before", metavar="REV", help="also run the ledis-server of this commit")
    p.add_argument("--no-big", action="store_true", help="skip the big collections")
    p.add_argument("--no-probes", action="store_true",
                   help="no other clients during the moves (their columns are then empty):"
                        " the CPU columns are the move's alone")  # fmt: skip
    p.add_argument("--probe-rate", type=float, default=0.0,
                   help="GETs a second of the other clients (default 0: one after the other; "
                        "a paced client leaves the 2 CPUs of a small machine some room)")  # fmt: skip
    opts = p.parse_args(args)
    Probe.rate = opts.probe_rate
    Probe.off = opts.no_probes
    with tempfile.TemporaryDirectory(prefix="migration-bench-") as tmp:
        root = Path(tmp)
        started: list[Target] = []
        try:
            for d in ("ls", "lt", "rs", "rt", "bs", "bt"):
                (root / d).mkdir()
            ls, lt = start_ledis(root / "ls", []), start_ledis(root / "lt", [])
            rs, rt = start_redis(root / "rs", aof=False), start_redis(root / "rt", aof=False)
            started += [ls, lt, rs, rt]
            targets = {"ledis": (ls, lt), "redis": (rs, rt)}
            if opts.before:
                tree = older_tree(opts.before, root / "tree")
                bs, bt = (start_ledis(root / d, [], tree, "ledis-before") for d in ("bs", "bt"))
                started += [bs, bt]
                targets = {"ledis": (ls, lt), f"ledis@{opts.before[:9]}": (bs, bt),
                           "redis": (rs, rt)}  # fmt: skip
            small_keys(opts, targets)
            if not opts.no_big:
                big_keys(opts, targets)
        finally:
            for t in started:
                t.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
