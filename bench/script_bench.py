"""EVALSHA of a small script (INCRBY of a key, then GET) against redis-server in the same run,
with redis-benchmark: ops/s, CPU per call (from /proc), and the ratio (median of per-round
ratios).

    python -m bench.script_bench [--requests 50000] [--clients 50] [--rounds 3] [--pipeline 1]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import statistics
import subprocess
import tempfile
from pathlib import Path

from .server_bench import Target, cpu_seconds, start_ledis, start_redis

SCRIPT = "redis.call('incrby', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


def one_run(target: Target, opts: argparse.Namespace) -> tuple[float, float]:
    subprocess.run(["redis-cli", "-p", str(target.port), "SCRIPT", "LOAD", SCRIPT],
                   check=True, capture_output=True)
    before = cpu_seconds(target.proc.pid)
    out = subprocess.run(
        ["redis-benchmark", "-p", str(target.port), "-c", str(opts.clients), "-n",
         str(opts.requests), "-r", "100000", "-P", str(opts.pipeline), "--csv",
         "EVALSHA", SHA, "1", "key:__rand_int__", "1"],
        capture_output=True, text=True, timeout=1800, check=True,
    )
    cpu = cpu_seconds(target.proc.pid) - before
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    return float(rows[0][1]), cpu / opts.requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=50_000)
    parser.add_argument("--clients", "-c", type=int, default=50)
    parser.add_argument("--pipeline", "-P", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "redis").mkdir()
        (Path(tmp) / "ledis").mkdir()
        redis = start_redis(Path(tmp) / "redis", aof=False)
        ledis = start_ledis(Path(tmp) / "ledis", [])
        try:
            ratios = []
            print(f"EVALSHA (INCRBY + GET), -c {opts.clients} -P {opts.pipeline}")
            for n in range(opts.rounds):
                r_ops, r_cpu = one_run(redis, opts)
                l_ops, l_cpu = one_run(ledis, opts)
                ratios.append(l_ops / r_ops)
                print(f"round {n + 1}: redis {r_ops:,.0f} ops/s {r_cpu:.2f} us/op   "
                      f"ledis {l_ops:,.0f} ops/s {l_cpu:.2f} us/op   ratio {l_ops / r_ops:.2f}")
            print(f"ratio (median of rounds): {statistics.median(ratios):.2f}")
        finally:
            redis.stop()
            ledis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
