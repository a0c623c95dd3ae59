"""The in-process cost of one command through the dispatcher (no network), this tree against
another checkout of ledis in the same run: what the Python path pays per call for argument
checks, keyspace notifications, WATCH and blocking bookkeeping; and EVALSHA of a small script
(its two redis.call through the same dispatcher).

Each side runs in its own process (``PYTHONPATH`` pointing at its tree), commands interleaved
side by side, best of ``--rounds`` rounds of ``--calls`` calls each, the write batch
committed every 100 calls as the server's group commit would; CPU time of the process, which a
busy neighbour disturbs less than wall time.

    git worktree add /tmp/ledis-main main      # or: git archive main | tar -x -C /tmp/ledis-main
    python -m bench.dispatch_bench --against /tmp/ledis-main
    python -m bench.dispatch_bench --against /tmp/ledis-main --notify KEA   # events on
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Each command as a template: {n} is the call's number (keys and values vary per call).
COMMANDS: dict[str, list[str]] = {
    "SET": ["SET", "k{n}", "v"],
    "SET PX": ["SET", "k{n}", "v", "PX", "100000"],
    "INCR": ["INCR", "counter"],
    "LPUSH": ["LPUSH", "list", "e{n}"],
    "LPOP": ["LPOP", "list"],
    "HSET": ["HSET", "hash", "f{n}", "v"],
    "SADD": ["SADD", "set", "m{n}"],
    "ZADD": ["ZADD", "zset", "{n}", "m{n}"],
    "EXPIRE": ["EXPIRE", "k{n}", "100"],
    "DEL": ["DEL", "k{n}"],
    "GET": ["GET", "k{n}"],
    "EVALSHA": ["EVALSHA", "{sha}", "1", "k{n}", "1"],  # INCRBY + GET from Lua (SCRIPT below)
}
SCRIPT = "redis.call('incrby', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()


def measure(calls: int, rounds: int, notify: str) -> dict[str, float]:
    """Microseconds per call of each command, best of ``rounds`` (runs in the tree under
    test: imports ``stack`` from ``PYTHONPATH``)."""
    import asyncio

    from stack.server.client import Client
    from stack.server.config import Config
    from stack.server.server import Server

    workdir = tempfile.TemporaryDirectory(prefix="ledis-dispatch-bench-")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = Server(Config({"dir": workdir.name, "notify-keyspace-events": notify}))
    client = Client(server)
    execute = server.dispatcher.execute
    engine = server.engine
    execute(client, [b"SCRIPT", b"LOAD", SCRIPT.encode()])
    best: dict[str, float] = {}
    for _round in range(rounds):
        for name, template in COMMANDS.items():
            calls_args = [
                [part.format(n=n, sha=SHA).encode() for part in template] for n in range(calls)
            ]
            start = time.process_time()  # CPU time: steadier than wall time when shared
            for n, args in enumerate(calls_args):
                execute(client, args)
                if n % 100 == 99:
                    engine.commit()
            elapsed = time.process_time() - start
            engine.commit()
            us = elapsed / calls * 1e6
            best[name] = min(best.get(name, us), us)
    engine.close()
    workdir.cleanup()
    return best


def _run_side(tree: Path, calls: int, rounds: int, notify: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", "--calls", str(calls),
         "--rounds", str(rounds), "--notify", notify],
        env=env, cwd=tree, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", type=Path, help="another ledis checkout (e.g. main)")
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--notify", default="", help="notify-keyspace-events for both sides")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.measure:
        print(json.dumps(measure(opts.calls, opts.rounds, opts.notify)))
        return 0
    here = Path(__file__).resolve().parent.parent
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    for _ in range(3):  # sides interleaved, so a busy neighbour hurts both alike
        for side, tree in ((ours, here), (theirs, opts.against)):
            if tree is None:
                continue
            for name, us in _run_side(tree, opts.calls, opts.rounds, opts.notify).items():
                side.setdefault(name, []).append(us)
    print(f"{'command':10} {'this tree us':>13} {'other us':>10} {'ratio':>7}")
    for name in COMMANDS:
        a = min(ours[name])
        if name in theirs:
            b = min(theirs[name])
            print(f"{name:10} {a:13.2f} {b:10.2f} {a / b:7.2f}")
        else:
            print(f"{name:10} {a:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
