"""ledis-server against redis-server and LedisDB, side by side, with redis-benchmark.

The servers run on this machine in the same run, each on a fresh data directory; rounds are
interleaved (the order of the servers rotates) so that a busy neighbour hurts all alike. For
every test and pipeline depth it prints ops/s, p99 latency, each server's CPU time per
operation (from /proc; steadier than ops/s on a shared machine) and the ratios here/Redis and
here/LedisDB (medians over rounds of the per-round ratios). Results also go to bench/results/.

LedisDB is the seed system (Go, goleveldb). It is not part of this repository: build it from
its public source (github.com/ledisdb/ledisdb, ``go build ./cmd/ledis-server``) outside the
tree and point ``LEDISDB_SERVER`` at the binary; without it the LedisDB columns are skipped
with a note.

    python -m bench.server_bench                     # the issue's tests, -P 1 and 16, 3 rounds
    python -m bench.server_bench --quick             # fewer requests, one round
    python -m bench.server_bench --tests set,get -d 1024

The issue's other targets are runs of the same script (p99 at -P 1 is in every table, from
redis-benchmark's CSV, beside Redis's):

    python -m bench.server_bench --tests set,get,lpush -d 1024 -n 50000 --rounds 2
    python -m bench.server_bench --tests set,get -d 16384 -n 20000 --rounds 2
    # a keyspace 10x the record cache: 10,000 entries (default 500,000) for -r 100000
    python -m bench.server_bench --tests set,get,incr,lpush,hset -r 100000 \
        --ledis-arg=--read-cache-entries=10000 -n 50000 --rounds 2
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


@dataclass(frozen=True)
class Sample:
    rps: float
    cpu_us: float  # server CPU time per request (µs)
    p99_ms: float


@dataclass
class Target:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    samples: dict[tuple[str, int], list[Sample]] = field(default_factory=dict)
    unsupported: set[tuple[str, int]] = field(default_factory=set)  # tests it cannot run

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


LEDISDB_SOURCE = "https://github.com/ledisdb/ledisdb (go build ./cmd/ledis-server)"


def start_ledisdb(binary: str, workdir: Path) -> Target:
    """LedisDB on loopback with its default configuration (goleveldb), data in ``workdir``."""
    port = free_port()
    log = open(workdir / "ledisdb.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [binary, "-addr", f"127.0.0.1:{port}", "-data_dir", str(workdir / "data")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    return wait_for_ping(Target("ledisdb", port, proc), workdir / "ledisdb.log")


def wait_for_ping(target: Target, log: Path) -> Target:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if target.proc.poll() is not None:
            raise SystemExit(f"{target.name} exited; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", target.port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return target
        except OSError:
            time.sleep(0.05)
    target.stop()
    raise SystemExit(f"{target.name} did not start; see {log}")


def start_ledis(workdir: Path, extra: list[str], tree: Path | None = None,
                name: str = "ledis") -> Target:
    """ledis-server from this checkout, or from another ``tree`` (a copy of an older version,
    for a before/after comparison)."""
    ready = workdir / "ready"
    log = open(workdir / "ledis.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.server.main", "--port", "0", "--data-dir",
         str(workdir / "data"), "--ready-file", str(ready), *extra],
        stdout=log, stderr=subprocess.STDOUT, cwd=tree,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            return Target(name, int(ready.read_text()), proc)
        if proc.poll() is not None:
            raise SystemExit(f"ledis-server exited; see {workdir / 'ledis.log'}")
        time.sleep(0.05)
    raise SystemExit("ledis-server did not start")




# The tests, in an order where each pop finds what the pushes before it left.
DEFAULT_TESTS = (
    "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,"
    "lrange_100,lrange_300,lrange_600,mset"
)
# Long replies: fewer requests, so that one test takes seconds, not minutes, on the slowest.
REQUEST_DIVISOR = {"lrange_100": 4, "lrange_300": 10, "lrange_600": 20}


class Unsupported(Exception):
    """The server does not have the command a test runs (LedisDB has no SPOP, for one)."""


def redis_benchmark_rows(port: int, name: str, test: str, pipeline: int,
                         opts: argparse.Namespace, requests: int | None = None) -> list[list[str]]:
    """One redis-benchmark run (``opts``: clients, requests, keyspace, data size): its CSV
    rows (``-t lrange_N`` runs an LPUSH first to fill the list: two rows)."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-c", str(opts.clients), "-n",
         str(requests or opts.requests), "-r", str(opts.keyspace), "-d", str(opts.data_size),
         "-t", test, "-P", str(pipeline), "--csv"],
        capture_output=True, text=True, timeout=1800,
    )
    if out.returncode != 0:
        if "command not found" in out.stderr or "unknown command" in out.stderr:
            raise Unsupported(f"{name} has no {test.upper()}")
        raise SystemExit(f"redis-benchmark failed against {name}: {out.stderr}")
    rows = [r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test"]
    if not rows:
        raise SystemExit(f"no result from redis-benchmark: {out.stdout!r} {out.stderr!r}")
    return rows


def redis_benchmark(port: int, name: str, test: str, pipeline: int,
                    opts: argparse.Namespace) -> float:
    """One redis-benchmark run; its ops/s."""
    return float(redis_benchmark_rows(port, name, test, pipeline, opts)[0][1])


def run_benchmark(target: Target, test: str, pipeline: int, opts: argparse.Namespace) -> Sample:
    requests = max(1000, opts.requests // REQUEST_DIVISOR.get(test, 1))
    before = cpu_seconds(target.proc.pid)
    rows = redis_benchmark_rows(target.port, target.name, test, pipeline, opts, requests)
    cpu = cpu_seconds(target.proc.pid) - before
    # -t lrange_N runs an LPUSH first to fill the list: take the row of the test itself.
    row = next((r for r in rows if r[0].split(" ")[0].lower() == test), None)
    if row is None:
        raise SystemExit(f"no row for {test} from redis-benchmark: {rows!r}")
    # The CPU covers the filling LPUSH too: counted per request of both.
    total = requests * len(rows)
    sample = Sample(float(row[1]), cpu / total * 1e6, float(row[6]) if len(row) > 6 else 0.0)
    target.samples.setdefault((test, pipeline), []).append(sample)
    return sample


def add_options(parser: argparse.ArgumentParser, tests: str) -> None:
    """The redis-benchmark options every benchmark here takes."""
    parser.add_argument("--tests", default=tests)
    parser.add_argument("--pipelines", default="1,16")
    parser.add_argument("--requests", "-n", type=int, default=200_000)
    parser.add_argument("--clients", "-c", type=int, default=50)
    parser.add_argument("--keyspace", "-r", type=int, default=100_000)
    parser.add_argument("--data-size", "-d", type=int, default=3)
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
    add_options(parser, DEFAULT_TESTS)
    parser.set_defaults(requests=100_000, rounds=3)  # 16 tests, 2 depths, 3 servers
    parser.add_argument("--redis-aof", action="store_true",
                        help="run Redis with appendonly yes / everysec (durability like ours)")
    parser.add_argument("--no-ledisdb", action="store_true", help="leave LedisDB out")
    parser.add_argument("--ledis-arg", action="append", default=[],
                        help="extra ledis-server flag (repeatable), e.g. "
                        "--ledis-arg=--read-cache-entries=10000")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a directory holding another version's stack/ (e.g. from git "
                        "archive): run it too, as 'before'")
    opts = parser.parse_args(argv)
    tests, pipelines = checked(opts)
    ledisdb_bin = "" if opts.no_ledisdb else os.environ.get("LEDISDB_SERVER", "")
    if not opts.no_ledisdb and not (ledisdb_bin and os.access(ledisdb_bin, os.X_OK)):
        print(f"note: LEDISDB_SERVER is not set to an executable: LedisDB left out (build it "
              f"from {LEDISDB_SOURCE}, outside this tree)", file=sys.stderr)
        ledisdb_bin = ""
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="ledis-bench-") as tmp:
        root = Path(tmp)
        try:
            for name in ("redis", "ledisdb", "before", "ledis"):
                if (name == "ledisdb" and not ledisdb_bin) or (
                    name == "before" and opts.baseline is None
                ):
                    continue
                (root / name).mkdir()
                if name == "redis":
                    targets.append(start_redis(root / name, opts.redis_aof))
                elif name == "ledisdb":
                    targets.append(start_ledisdb(ledisdb_bin, root / name))
                elif name == "before":
                    targets.append(start_ledis(root / name, opts.ledis_arg,
                                               opts.baseline.resolve(), "before"))
                else:
                    targets.append(start_ledis(root / name, opts.ledis_arg))
            for rnd in range(opts.rounds):
                for pipeline in pipelines:
                    for test in tests:
                        shift = rnd % len(targets)
                        for target in targets[shift:] + targets[:shift]:
                            if (test, pipeline) in target.unsupported:
                                continue
                            try:
                                s = run_benchmark(target, test, pipeline, opts)
                            except Unsupported as e:
                                print(f"note: {e}: left out of that column", file=sys.stderr)
                                target.unsupported.add((test, pipeline))
                                continue
                            print(f"round {rnd + 1}/{opts.rounds}: {test} -P {pipeline} on "
                                  f"{target.name}: {s.rps:,.0f}/s {s.cpu_us:.2f} us/op "
                                  f"p99 {s.p99_ms:.3f} ms", file=sys.stderr, flush=True)
        finally:
            for t in targets:
                t.stop()
    report(targets, tests, pipelines, opts)
    return 0


def _ratio(a: Target, b: Target | None, key: tuple[str, int]) -> float | None:
    """The median over rounds of a/b ops/s (each round runs the servers back to back, so the
    per-round ratio cancels the drift of a shared machine better than a ratio of medians)."""
    if b is None or key not in a.samples or key not in b.samples:
        return None
    return statistics.median(x.rps / y.rps for x, y in zip(a.samples[key], b.samples[key],
                                                            strict=True))


def _spread(t: Target, key: tuple[str, int]) -> float:
    """(max - min) / median of the rounds' ops/s: how far figures moved between runs."""
    rps = [s.rps for s in t.samples[key]]
    return (max(rps) - min(rps)) / statistics.median(rps) if len(rps) > 1 else 0.0


def report(targets: list[Target], tests: list[str], pipelines: list[int],
           opts: argparse.Namespace) -> None:
    by = {t.name: t for t in targets}
    redis, ledisdb, ledis = by["redis"], by.get("ledisdb"), by["ledis"]
    before = by.get("before")
    cmd = (f"redis-benchmark -c {opts.clients} -n {opts.requests} -r {opts.keyspace} "
           f"-d {opts.data_size} -P {{{opts.pipelines}}}; median of {opts.rounds} round(s)")
    print(f"\n{cmd}; {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"{os.uname().machine}\n")
    cols = ["test", "-P", "Redis", "LedisDB", "here", "here/Redis", "here/LedisDB",
            "µs/op R", "µs/op L", "µs/op here", "p99 R", "p99 here", "spread here"]
    if before is not None:
        cols += ["here/before", "µs/op before"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    results = []

    def med(t: Target | None, key: tuple[str, int], attr: str) -> float | None:
        if t is None or key not in t.samples:
            return None
        return statistics.median(getattr(s, attr) for s in t.samples[key])

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for pipeline in pipelines:
        for test in tests:
            key = (test, pipeline)
            row = {
                "test": test, "pipeline": pipeline,
                "redis_rps": med(redis, key, "rps"), "ledisdb_rps": med(ledisdb, key, "rps"),
                "ledis_rps": med(ledis, key, "rps"),
                "vs_redis": _ratio(ledis, redis, key), "vs_ledisdb": _ratio(ledis, ledisdb, key),
                "redis_cpu_us": med(redis, key, "cpu_us"),
                "ledisdb_cpu_us": med(ledisdb, key, "cpu_us"),
                "ledis_cpu_us": med(ledis, key, "cpu_us"),
                "redis_p99_ms": med(redis, key, "p99_ms"), "ledis_p99_ms": med(ledis, key, "p99_ms"),
                "ledis_spread": _spread(ledis, key),
            }
            results.append(row)
            cells = [test.upper(), str(pipeline), fmt(row["redis_rps"], ",.0f"),
                     fmt(row["ledisdb_rps"], ",.0f"), fmt(row["ledis_rps"], ",.0f"),
                     fmt(row["vs_redis"], ".2f"), fmt(row["vs_ledisdb"], ".2f"),
                     fmt(row["redis_cpu_us"], ".1f"), fmt(row["ledisdb_cpu_us"], ".1f"),
                     fmt(row["ledis_cpu_us"], ".1f"), fmt(row["redis_p99_ms"], ".2f"),
                     fmt(row["ledis_p99_ms"], ".2f"), f"±{row['ledis_spread'] * 50:.0f}%"]
            if before is not None:
                row["vs_before"] = _ratio(ledis, before, key)
                row["before_cpu_us"] = med(before, key, "cpu_us")
                cells += [fmt(row["vs_before"], ".2f"), fmt(row["before_cpu_us"], ".1f")]
            print("| " + " | ".join(cells) + " |")
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"server-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"command": cmd, "results": results}, indent=2))
    print(f"\n(ops/s, µs/op (server CPU per request, from /proc) and p99 (ms): medians; ratios: "
          f"medians over rounds of the per-round ratios; spread: half the range of this "
          f"server's ops/s over rounds, of the median; saved to {path})")


if __name__ == "__main__":
    sys.exit(main())
