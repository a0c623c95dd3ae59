"""ledis-proxy against straight to one ledis-server, with real Redis in the same run.

Starts a real etcd, one ledis-server that owns all 16384 slots (a one-group cluster, so the
proxy adds exactly one hop), a ledis-proxy in front of it, and a redis-server. Then runs
``redis-benchmark -t set,get`` at ``-P 1`` and ``-P 16`` against each, rounds interleaved,
and prints ops/s, each process's CPU time per operation (from /proc) and the ratios:
proxy/direct (the target: >= 0.8 at -P 16) and direct/redis.

    python -m bench.proxy_bench                    # -c 50 -n 200000 -r 100000, 3 rounds
    python -m bench.proxy_bench --quick            # -n 50000, one round
    python -m bench.proxy_bench --groups 2         # two groups behind the proxy (two servers)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.server_bench import (
    add_options,
    checked,
    cpu_seconds,
    redis_benchmark,
    start_ledis,
    start_redis,
)
from stack.cluster import plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.store import Store

CLUSTER = "bench"


@dataclass
class Run:
    name: str
    port: int
    pids: list[int]  # whose CPU counts (the proxy and its servers for the proxy run)
    samples: dict[tuple[str, int], list[tuple[float, list[float]]]] = field(default_factory=dict)


def start_proxy(workdir: Path, etcd: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    ready = workdir / "ready"
    log = open(workdir / "proxy.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.proxy.main", "--etcd", etcd, "--cluster", CLUSTER,
         "--port", "0", "--ready-file", str(ready), "--log-level", "warning", *extra],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            return proc, int(ready.read_text())
        if proc.poll() is not None:
            raise SystemExit(f"ledis-proxy exited; see {workdir / 'proxy.log'}")
        time.sleep(0.05)
    raise SystemExit("ledis-proxy did not start")


def make_cluster(etcd: str, masters: list[int]) -> None:
    with Store([etcd], CLUSTER) as store:
        plans.apply_fresh(store, plans.plan_init)
        for gid, port in enumerate(masters, 1):
            plans.apply_fresh(
                store, lambda t, p=port, g=gid: plans.plan_add_group(t, f"127.0.0.1:{p}", g)
            )
        plans.apply_fresh(store, plans.plan_assign_even)


def bench(run: Run, test: str, pipeline: int, opts: argparse.Namespace) -> None:
    before = [cpu_seconds(p) for p in run.pids]
    rps = redis_benchmark(run.port, run.name, test, pipeline, opts)
    cpu = [(cpu_seconds(p) - b) / opts.requests * 1e6 for p, b in zip(run.pids, before, strict=True)]
    run.samples.setdefault((test, pipeline), []).append((rps, cpu))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(ap, "set,get")
    ap.set_defaults(rounds=3)
    ap.add_argument("--groups", type=int, default=1, help="groups behind the proxy")
    ap.add_argument("--proxy-arg", action="append", default=[], help="extra ledis-proxy flag")
    opts = ap.parse_args(argv)
    tests, pipelines = checked(opts)
    with tempfile.TemporaryDirectory(prefix="ledis-proxy-bench-") as tmp:
        root = Path(tmp)
        for d in ("redis", "proxy", *(f"ledis{g}" for g in range(opts.groups))):
            (root / d).mkdir()
        etcd = EtcdServer.on_free_ports(root / "etcd" / "data", no_fsync=True)
        redis = start_redis(root / "redis", aof=False)
        ledis = [start_ledis(root / f"ledis{g}", []) for g in range(opts.groups)]
        proxy_proc = None
        try:
            make_cluster(etcd.endpoint, [t.port for t in ledis])
            proxy_proc, proxy_port = start_proxy(root / "proxy", etcd.endpoint, opts.proxy_arg)
            runs = [
                Run("redis", redis.port, [redis.proc.pid]),
                Run("direct", ledis[0].port, [ledis[0].proc.pid]),
                Run("proxy", proxy_port, [proxy_proc.pid, *(t.proc.pid for t in ledis)]),
            ]
            for rnd in range(opts.rounds):
                for pipeline in pipelines:
                    for test in tests:
                        order = runs if rnd % 2 == 0 else runs[::-1]
                        for run in order:
                            print(f"round {rnd + 1}/{opts.rounds}: {test} -P {pipeline} on "
                                  f"{run.name} ...", file=sys.stderr, flush=True)  # fmt: skip
                            bench(run, test, pipeline, opts)
        finally:
            if proxy_proc is not None:
                proxy_proc.terminate()
                proxy_proc.wait(30)
            for t in [redis, *ledis]:
                t.stop()
            etcd.stop()
    report(runs, tests, pipelines, opts)
    return 0


def _median_ratio(a: list[tuple[float, list[float]]], b: list[tuple[float, list[float]]]) -> float:
    """Median over rounds of a's ops/s over b's (each round ran both back to back)."""
    return statistics.median(x[0] / y[0] for x, y in zip(a, b, strict=True))


def report(runs: list[Run], tests: list[str], pipelines: list[int], opts: argparse.Namespace) -> None:
    redis, direct, proxy = runs
    cmd = (
        f"redis-benchmark -c {opts.clients} -n {opts.requests} -r {opts.keyspace} -t {opts.tests} "
        f"-P {{{opts.pipelines}}}; {opts.groups} group(s) behind the proxy; "
        f"median of {opts.rounds} round(s)"
    )
    print(f"\n{cmd}\n")
    header = (
        f"{'test':<6}{'-P':>4}{'redis ops/s':>13}{'direct ops/s':>14}{'proxy ops/s':>13}"
        f"{'proxy/direct':>14}{'direct/redis':>14}{'direct us/op':>14}{'proxy us/op':>13}"
        f"{'server us/op':>14}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for pipeline in pipelines:
        for test in tests:
            key = (test, pipeline)
            rps = {r.name: statistics.median(s[0] for s in r.samples[key]) for r in runs}
            d_cpu = statistics.median(s[1][0] for s in direct.samples[key])
            p_cpu = statistics.median(s[1][0] for s in proxy.samples[key])
            s_cpu = statistics.median(sum(s[1][1:]) for s in proxy.samples[key])
            pd = _median_ratio(proxy.samples[key], direct.samples[key])
            dr = _median_ratio(direct.samples[key], redis.samples[key])
            print(
                f"{test:<6}{pipeline:>4}{rps['redis']:>13,.0f}{rps['direct']:>14,.0f}"
                f"{rps['proxy']:>13,.0f}{pd:>14.2f}{dr:>14.2f}{d_cpu:>14.2f}{p_cpu:>13.2f}"
                f"{s_cpu:>14.2f}"
            )
            results.append(
                {"test": test, "pipeline": pipeline, **{f"{k}_rps": v for k, v in rps.items()},
                 "proxy_over_direct": pd, "direct_over_redis": dr, "direct_cpu_us_per_op": d_cpu,
                 "proxy_cpu_us_per_op": p_cpu, "servers_cpu_us_per_op_via_proxy": s_cpu}
            )  # fmt: skip
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"command": cmd, "results": results}, indent=2))
    print(
        "\n(ops/s: medians; ratios: median over rounds; direct us/op: the ledis-server's CPU "
        "per operation without the proxy; proxy us/op: the proxy's; server us/op: the "
        "ledis-servers' behind the proxy; "
        f"saved to {path})"
    )


if __name__ == "__main__":
    sys.exit(main())
