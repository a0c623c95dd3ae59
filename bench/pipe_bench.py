"""Mass insertion with ``redis-cli --pipe``, and what another client sees meanwhile.

For ledis-server and redis-server, in the same run and alternating rounds: the time
``redis-cli --pipe`` takes to send N SETs (1M by default) and read every reply, the server's
CPU time for it, and the latency of another client's PINGs (one at a time, on its own
connection) while it runs: p50, p99 and max. Ratios are ledis / redis.

    python -m bench.pipe_bench                    # 1M SETs, 3 rounds
    python -m bench.pipe_bench --sets 200000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .server_bench import Target, cpu_seconds, start_ledis, start_redis


def write_payload(path: Path, sets: int) -> None:
    """N ``SET key:<i> value:<i>`` commands in RESP, as a file for redis-cli --pipe."""
    with open(path, "wb") as f:
        parts: list[bytes] = []
        for i in range(sets):
            k, v = b"key:%d" % i, b"value:%d" % i
            parts.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(k), k, len(v), v))
            if len(parts) >= 10_000:
                f.write(b"".join(parts))
                parts = []
        f.write(b"".join(parts))


class Pinger(threading.Thread):
    """PING, wait for PONG, again, on one connection, recording each round trip (ms)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.sock.sendall(b"PING\r\n")
            got = b""
            while not got.endswith(b"\r\n"):
                got += self.sock.recv(64)
            self.samples.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.001)
        self.sock.close()


@dataclass
class Round:
    seconds: float
    cpu: float
    p50: float
    p99: float
    max: float


@dataclass
class Results:
    rounds: dict[str, list[Round]] = field(default_factory=dict)

    def median(self, name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds[name])


def one_round(target: Target, payload: Path, sets: int) -> Round:
    pinger = Pinger(target.port)
    pinger.start()
    cpu0 = cpu_seconds(target.proc.pid)
    t0 = time.perf_counter()
    with open(payload, "rb") as f:
        out = subprocess.run(["redis-cli", "-p", str(target.port), "--pipe"], stdin=f,
                             capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(target.proc.pid) - cpu0
    pinger.stop.set()
    pinger.join()
    if out.returncode != 0 or f"replies: {sets}" not in out.stdout:
        raise SystemExit(f"redis-cli --pipe against {target.name}: {out.stdout} {out.stderr}")
    lat = sorted(pinger.samples)
    return Round(seconds, cpu, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1])


def flush(target: Target) -> None:
    with socket.create_connection(("127.0.0.1", target.port)) as s:
        s.sendall(b"FLUSHALL\r\n")
        s.recv(16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ledis-args", default="", help="extra ledis-server flags")
    opts = parser.parse_args(argv)
    results = Results()
    with tempfile.TemporaryDirectory(prefix="pipe-bench-") as tmp:
        work = Path(tmp)
        payload = work / "sets.resp"
        write_payload(payload, opts.sets)
        for n in range(opts.rounds):
            # A fresh server each round: every round inserts new keys into an empty store.
            for name in ("redis", "ledis"):
                d = work / f"{name}{n}"
                d.mkdir()
                target = start_redis(d, aof=False) if name == "redis" else start_ledis(
                    d, opts.ledis_args.split())
                try:
                    r = one_round(target, payload, opts.sets)
                finally:
                    target.stop()
                results.rounds.setdefault(name, []).append(r)
                print(f"round {n + 1} {name:5}: {r.seconds:6.2f} s (cpu {r.cpu:5.2f} s)  PING "
                      f"p50 {r.p50:6.2f} p99 {r.p99:7.2f} max {r.max:7.1f} ms", flush=True)
    print(f"\nredis-cli --pipe, {opts.sets} SETs; medians of {opts.rounds} rounds")
    print(f"{'':22}{'redis':>10}{'ledis':>10}{'ledis/redis':>13}")
    summary = {}
    for attr, label in (("seconds", "insertion time (s)"), ("cpu", "server CPU (s)"),
                        ("p50", "PING p50 (ms)"), ("p99", "PING p99 (ms)"),
                        ("max", "PING max (ms)")):
        a, b = results.median("redis", attr), results.median("ledis", attr)
        summary[attr] = {"redis": a, "ledis": b, "ratio": b / a if a else None}
        print(f"{label:22}{a:10.2f}{b:10.2f}{b / a if a else float('nan'):13.2f}")
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "pipe_bench.json").write_text(json.dumps(
        {"sets": opts.sets, "rounds": opts.rounds, "summary": summary,
         "all": {k: [vars(r) for r in v] for k, v in results.rounds.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
