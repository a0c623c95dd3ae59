"""ledis-server against real redis-server, side by side, with redis-benchmark.

Both servers run on this machine in the same run; rounds are interleaved so that a busy
neighbour hurts both alike. For every test and pipeline depth it prints ops/s, the server's CPU
time per operation (from /proc; steadier than ops/s on a shared machine) and the ratio
ledis/redis. Results are also written as JSON to bench/results/.

    python -m bench.server_bench                 # the issue's run: -c 50 -n 200000 -r 100000
    python -m bench.server_bench --quick         # a smaller, faster run
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    samples: dict[tuple[str, int], list[tuple[float, float]]] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_redis(workdir: Path, aof: bool) -> Target:
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", str(workdir)]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return Target("redis", port, proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def start_ledis(workdir: Path, extra: list[str]) -> Target:
    ready = workdir / "ready"
    log = open(workdir / "ledis.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.server.main", "--port", "0", "--data-dir",
         str(workdir / "data"), "--ready-file", str(ready), *extra],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            return Target("ledis", int(ready.read_text()), proc)
        if proc.poll() is not None:
            raise SystemExit(f"ledis-server exited; see {workdir / 'ledis.log'}")
        time.sleep(0.05)
    raise SystemExit("ledis-server did not start")


def redis_benchmark(port: int, name: str, test: str, pipeline: int, opts: argparse.Namespace) -> float:
    """One redis-benchmark run (``opts``: clients, requests, keyspace); its ops/s."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(opts.clients), "-n",
         str(opts.requests), "-r", str(opts.keyspace), "-t", test, "-P", str(pipeline), "--csv"],
        capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"redis-benchmark failed against {name}: {out.stderr}")
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    if not rows:
        raise SystemExit(f"no result from redis-benchmark: {out.stdout!r} {out.stderr!r}")
    return float(rows[0][1])


def run_benchmark(target: Target, test: str, pipeline: int, opts: argparse.Namespace) -> None:
    before = cpu_seconds(target.proc.pid)
    rps = redis_benchmark(target.port, target.name, test, pipeline, opts)
    cpu = cpu_seconds(target.proc.pid) - before
    target.samples.setdefault((test, pipeline), []).append((rps, cpu / opts.requests * 1e6))


def add_options(parser: argparse.ArgumentParser, tests: str) -> None:
    """The redis-benchmark options every benchmark here takes."""
    parser.add_argument("--tests", default=tests)
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("--requests", "-n", type=int, default=200_000)
    parser.add_argument("--clients", "-c", type=int, default=50)
    parser.add_argument("--keyspace", "-r", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="-n 50000, one round")


def checked(opts: argparse.Namespace) -> tuple[list[str], list[int]]:
    """``--quick`` applied, the tools there; the tests and pipeline depths to run."""
    if opts.quick:
        opts.requests, opts.rounds = 50_000, 1
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run `make setup` (Debian's redis-tools)")
    return opts.tests.split(","), [int(p) for p in opts.pipelines.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, "set,get,incr,mset")
    parser.add_argument("--redis-aof", action="store_true",
                        help="run Redis with appendonly yes / everysec (durability like ours)")
    parser.add_argument("--ledis-arg", action="append", default=[],
                        help="extra ledis-server flag (repeatable), e.g. --ledis-arg=--appendfsync=always")
    opts = parser.parse_args(argv)
    tests, pipelines = checked(opts)
    with tempfile.TemporaryDirectory(prefix="ledis-bench-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        (root / "ledis").mkdir()
        redis = start_redis(root / "redis", opts.redis_aof)
        ledis = start_ledis(root / "ledis", opts.ledis_arg)
        try:
            for rnd in range(opts.rounds):
                for pipeline in pipelines:
                    for test in tests:
                        order = (redis, ledis) if rnd % 2 == 0 else (ledis, redis)
                        for target in order:
                            print(f"round {rnd + 1}/{opts.rounds}: {test} -P {pipeline} "
                                  f"on {target.name} ...", file=sys.stderr, flush=True)
                            run_benchmark(target, test, pipeline, opts)
        finally:
            redis.stop()
            ledis.stop()
    report(redis, ledis, tests, pipelines, opts)
    return 0


def report(redis: Target, ledis: Target, tests: list[str], pipelines: list[int],
           opts: argparse.Namespace) -> None:
    cmd = (f"redis-benchmark -c {opts.clients} -n {opts.requests} -r {opts.keyspace} "
           f"-t {opts.tests} -P {{{opts.pipelines}}}; median of {opts.rounds} round(s)")
    print(f"\n{cmd}\n")
    header = (f"{'test':<11}{'-P':>4}{'redis ops/s':>14}{'ledis ops/s':>14}{'ratio':>8}"
              f"{'redis us/op':>13}{'ledis us/op':>13}{'cpu ratio':>11}")
    print(header)
    print("-" * len(header))
    results = []
    for pipeline in pipelines:
        for test in tests:
            r_rps = statistics.median(s[0] for s in redis.samples[(test, pipeline)])
            l_rps = statistics.median(s[0] for s in ledis.samples[(test, pipeline)])
            r_cpu = statistics.median(s[1] for s in redis.samples[(test, pipeline)])
            l_cpu = statistics.median(s[1] for s in ledis.samples[(test, pipeline)])
            # Each round runs the two servers back to back: the median of the per-round ratios
            # cancels the drift of a shared machine better than a ratio of medians.
            ratio = statistics.median(
                lo[0] / re[0]
                for lo, re in zip(ledis.samples[(test, pipeline)],
                                  redis.samples[(test, pipeline)], strict=True)
            )
            print(f"{test:<11}{pipeline:>4}{r_rps:>14,.0f}{l_rps:>14,.0f}{ratio:>8.2f}"
                  f"{r_cpu:>13.2f}{l_cpu:>13.2f}{r_cpu / l_cpu if l_cpu else 0:>11.2f}")
            results.append({"test": test, "pipeline": pipeline, "redis_rps": r_rps,
                            "ledis_rps": l_rps, "ratio": ratio,
                            "redis_cpu_us_per_op": r_cpu, "ledis_cpu_us_per_op": l_cpu})
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"server-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"command": cmd, "results": results}, indent=2))
    print(f"\n(ops/s and us/op: medians; ratio = median over rounds of ledis/redis ops/s; "
          f"cpu ratio = redis/ledis CPU per op; saved to {path})")


if __name__ == "__main__":
    sys.exit(main())
