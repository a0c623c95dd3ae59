"""A write far out in a string: ``BITFIELD bf SET u8 4294967288 1`` (the last byte of 512 MB).

For redis-server and ledis-server in the same run (and, with ``--before REV``, the ledis-server
of an older commit, taken with ``git archive``): how long the command takes as its client sees
it, another client's PING latency meanwhile (p50, p99, max; PINGs in a loop on their own
connection), the bytes the server process wrote (``wchar`` of /proc/PID/io: its log, its
binlog, its data files), the binlog bytes of the write (read back from the stopped server's
LevelDB) or Redis's AOF growth, and how long a restart takes afterwards.

    python -m bench.bigwrite_bench [--before b99a621] [--offset 4294967288]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import plyvel
import redis

from stack.server.storage import binlog as blog
from stack.server.storage import keyformat as kf

from .server_bench import Target, free_port

ROOT = Path(__file__).resolve().parent.parent


class Pinger(threading.Thread):
    """PING in a loop on its own connection, recording each latency in ms."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, protocol=2, socket_timeout=600)
        self.client.ping()
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.client.ping()
            self.samples.append((time.perf_counter() - t0) * 1000)


def wchar(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def start_redis(workdir: Path) -> tuple[Target, float]:
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
         str(workdir), "--appendonly", "yes", "--appendfsync", "everysec"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port, socket_timeout=600)
    while time.monotonic() - t0 < 600:
        try:
            if c.ping():
                return Target("redis", port, proc), time.monotonic() - t0
        except (redis.ConnectionError, redis.BusyLoadingError):
            time.sleep(0.02)
    raise SystemExit("redis-server did not start")


def start_ledis(name: str, root: Path, workdir: Path) -> tuple[Target, float]:
    ready = workdir / "ready"
    ready.unlink(missing_ok=True)
    log = open(workdir / "ledis.log", "ab")  # noqa: SIM115 - lives as long as the process
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.server.main", "--port", "0", "--data-dir",
         str(workdir / "data"), "--ready-file", str(ready)],
        cwd=root, stdout=log, stderr=subprocess.STDOUT)
    while time.monotonic() - t0 < 600:
        if ready.exists() and ready.read_text().strip():
            return Target(name, int(ready.read_text()), proc), time.monotonic() - t0
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited; see {workdir / 'ledis.log'}")
        time.sleep(0.02)
    raise SystemExit(f"{name} did not start")


def binlog_bytes(data_dir: Path, after: int) -> int:
    """Bytes of the binlog records after LogID ``after`` (the server must be stopped)."""
    total = 0
    with plyvel.DB(str(data_dir)) as db:
        for _k, v in db.iterator(start=blog.log_key(after + 1),
                                 stop=kf.prefix_end(blog.NS_BINLOG)):
            total += len(v)
    return total


def measure(name: str, workdir: Path, offset: int, root: Path | None) -> dict[str, float]:
    workdir.mkdir(parents=True)
    if root is None:
        target, _ = start_redis(workdir)
    else:
        target, _ = start_ledis(name, root, workdir)
    c = redis.Redis(port=target.port, protocol=2, socket_timeout=600)
    c.set("warm", "1")
    last_log = c.execute_command("BINLOG", "INFO")[1] if root is not None else 0
    aof_before = sum(p.stat().st_size for p in workdir.rglob("*.aof") if p.is_file())
    pinger = Pinger(target.port)
    pinger.start()
    time.sleep(0.3)  # a baseline of PINGs first
    written = wchar(target.proc.pid)
    t0 = time.perf_counter()
    c.execute_command("BITFIELD", "bf", "SET", "u8", str(offset), "1")
    command_s = time.perf_counter() - t0
    time.sleep(1.5)  # what the write leaves behind (a commit, an fsync) shows too
    pinger.stop.set()
    pinger.join()
    if root is not None:
        c.execute_command("DEBUG", "FLUSH-FSYNC")
    written = wchar(target.proc.pid) - written
    aof = sum(p.stat().st_size for p in workdir.rglob("*.aof") if p.is_file()) - aof_before
    target.stop()
    log_bytes = binlog_bytes(workdir / "data", last_log) if root is not None else aof
    if root is None:
        restarted, restart_s = start_redis(workdir)
    else:
        restarted, restart_s = start_ledis(name, root, workdir)
    check = redis.Redis(port=restarted.port, socket_timeout=600)
    assert check.execute_command("BITFIELD", "bf", "GET", "u8", str(offset)) == [1]
    restarted.stop()
    samples = sorted(pinger.samples)
    return {
        "command_s": command_s,
        "ping_p50_ms": statistics.median(samples),
        "ping_p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)],
        "ping_max_ms": samples[-1],
        "written_mb": written / 1e6,
        "log_mb": log_bytes / 1e6,
        "restart_s": restart_s,
    }


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (git archive), to run an older ledis-server side by side."""
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offset", type=int, default=4294967288, help="bit offset of the u8")
    parser.add_argument("--before", metavar="REV", help="also run ledis-server at this commit")
    opts = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ledis-bigwrite-") as tmp:
        base = Path(tmp)
        runs: list[tuple[str, Path | None]] = [("redis", None), ("ledis", ROOT)]
        if opts.before:
            runs.append((f"ledis@{opts.before[:9]}", checkout(opts.before, base / "before")))
        for name, root in runs:
            print(f"{name} ...", file=sys.stderr, flush=True)
            rows.append((name, measure(name, base / name.replace("@", "-"), opts.offset, root)))
    print(f"\nBITFIELD bf SET u8 {opts.offset} 1; another client's PING meanwhile\n")
    print(f"{'server':<18}{'command s':>10}{'PING p50 ms':>12}{'p99 ms':>9}{'max ms':>9}"
          f"{'written MB':>11}{'log MB':>9}{'restart s':>10}")
    for name, m in rows:
        print(f"{name:<18}{m['command_s']:>10.3f}{m['ping_p50_ms']:>12.3f}{m['ping_p99_ms']:>9.2f}"
              f"{m['ping_max_ms']:>9.1f}{m['written_mb']:>11.1f}{m['log_mb']:>9.3f}"
              f"{m['restart_s']:>10.2f}")
    print("\n(log MB: the binlog records of the write for ledis, the AOF's growth for Redis)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
