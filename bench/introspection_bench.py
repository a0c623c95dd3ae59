"""What introspection costs: per-command latency histograms, a MONITOR attached, a client
with CLIENT TRACKING on; ledis-server and redis-server side by side in the same run.

For each setting it runs redis-benchmark against both servers (rounds interleaved) and prints
the server's CPU time per operation (from /proc: steadier than ops/s on a shared machine), with
the setting off and on, and the cost ratio (on / off) of each server:

- ``histograms``: ``latency-tracking no`` vs ``yes`` (the default of both); see the column of
  ledis on the Python path (LEDIS_FASTLANE=0), where each call is recorded on its own.
- ``monitor``: no monitor vs one MONITOR client reading everything.
- ``tracking``: no tracking client vs one RESP3 client in CLIENT TRACKING BCAST mode (every
  write is then announced to it; the C lane stands aside meanwhile).

    python -m bench.introspection_bench            # -n 100000 -c 50 -P 16, 3 rounds
    python -m bench.introspection_bench --quick    # -n 50000, one round
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from .server_bench import Target, add_options, checked, run_benchmark, start_ledis, start_redis


class Reader(threading.Thread):
    """A client that sends a few commands and then reads whatever comes (a monitor, a
    tracking client), so the server's output to it never backs up."""

    def __init__(self, port: int, commands: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"".join(commands))
        self.bytes = 0

    def run(self) -> None:
        try:
            while data := self.sock.recv(1 << 20):
                self.bytes += len(data)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def _cmd(*args: str) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)


def config_set(port: int, name: str, value: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_cmd("CONFIG", "SET", name, value))
        assert s.recv(64).startswith(b"+OK")


SETTINGS = ("histograms", "monitor", "tracking")


def switch(setting: str, on: bool, target: Target, readers: dict[str, Reader]) -> None:
    if setting == "histograms":
        config_set(target.port, "latency-tracking", "yes" if on else "no")
        return
    key = f"{target.name}:{setting}"
    if not on:
        if key in readers:
            readers.pop(key).close()
        return
    if setting == "monitor":
        commands = [_cmd("MONITOR")]
    else:
        commands = [_cmd("HELLO", "3"), _cmd("CLIENT", "TRACKING", "on", "BCAST")]
    reader = Reader(target.port, commands)
    reader.start()
    readers[key] = reader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(parser, "set,lpush")
    parser.set_defaults(pipelines="16", requests=100_000, rounds=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    opts = parser.parse_args(argv)
    tests, pipelines = checked(opts)
    opts.pipeline = pipelines[0]
    settings = opts.settings.split(",")
    readers: dict[str, Reader] = {}
    samples: dict[tuple[str, str, str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ledis-bench-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        (root / "ledis").mkdir()
        (root / "ledis-py").mkdir()
        targets = [start_redis(root / "redis", aof=False), start_ledis(root / "ledis", [])]
        os.environ["LEDIS_FASTLANE"] = "0"  # the Python path, where each call is timed
        try:
            python_path = start_ledis(root / "ledis-py", [])
        finally:
            del os.environ["LEDIS_FASTLANE"]
        python_path.name = "ledis-py"
        targets.append(python_path)
        try:
            for rnd in range(opts.rounds):
                for setting in settings:
                    for test in tests:
                        for on in (False, True) if rnd % 2 == 0 else (True, False):
                            for target in targets if rnd % 2 == 0 else targets[::-1]:
                                switch(setting, on, target, readers)
                                print(
                                    f"round {rnd + 1}/{opts.rounds}: {setting} "
                                    f"{'on' if on else 'off'} {test} on {target.name}",
                                    file=sys.stderr,
                                    flush=True,
                                )
                                cpu = run_benchmark(target, test, opts.pipeline, opts).cpu_us
                                samples.setdefault((setting, test, target.name, on), []).append(cpu)
                                switch(setting, False, target, readers)
                        for target in targets:
                            switch("histograms", True, target, readers)  # back to the default
        finally:
            for reader in readers.values():
                reader.close()
            for target in targets:
                target.stop()
    print(
        f"\nredis-benchmark -c {opts.clients} -n {opts.requests} -r {opts.keyspace} "
        f"-P {opts.pipeline} -t {opts.tests}; ledis-py: LEDIS_FASTLANE=0; CPU µs per "
        f"operation, median of {opts.rounds} round(s)\n"
    )
    header = f"{'setting':<12}{'test':<8}" + "".join(
        f"{n + ' off':>13}{n + ' on':>12}{'cost':>7}" for n in ("redis", "ledis", "ledis-py")
    )
    print(header)
    print("-" * len(header))
    for setting in settings:
        for test in tests:
            row = [f"{setting:<12}{test:<8}"]
            for name in ("redis", "ledis", "ledis-py"):
                off = statistics.median(samples[(setting, test, name, False)])
                on = statistics.median(samples[(setting, test, name, True)])
                row.append(f"{off:>13.2f}{on:>12.2f}{on / off if off else 0:>7.2f}")
            print("".join(row))
    print("\n(cost = CPU per operation with the setting on / off, for each server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
