"""ledis-cli responsiveness: time from start to the first prompt, and the work done on every
keystroke (completions, hint, toolbar, highlighting) with a command table of 200 commands.

    python -m bench.cli_bench
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from console.cli.completion import hint, suggest, toolbar
from console.cli.lexer import classify
from stack.core.commands import TABLE, CommandTable

LINES = [
    "SET user:1000 hello EX 100 NX GET",
    "GETEX session:abc PERSIST",
    "CLIENT KILL TYPE normal SKIPME yes",
    "BITFIELD bits OVERFLOW SAT INCRBY u8 0 10 GET i8 8",
    "SCAN 0 MATCH user:* COUNT 100 TYPE string",
    "CONFIG SET maxclients 100 timeout 5",
    "LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN",
    "EXPIRE k 100 XX GT",
]


def table_of(size: int) -> CommandTable:
    """The real table, padded with renamed copies of its commands up to ``size`` commands."""
    specs = list(TABLE)
    n = 0
    while len(specs) < size:
        base = list(TABLE)[n % len(TABLE)]
        specs.append(dataclasses.replace(base, name=f"{base.name}x{n}", subcommands=()))
        n += 1
    return CommandTable(tuple(specs))


def keystroke_latencies(table: CommandTable) -> list[float]:
    samples = []
    for line in LINES:
        for i in range(1, len(line) + 1):
            text = line[:i]
            t0 = time.perf_counter()
            suggest(text, table)
            hint(text, table)
            toolbar(text, table)
            classify(text, table)
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def time_to_prompt(port_file: Path | None = None, runs: int = 10) -> list[float]:
    import pexpect

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        child = pexpect.spawn(sys.executable, ["-m", "console.cli.main", "-p", "1",
                                               "--history-file", "", "--config", "/nonexistent"],
                              dimensions=(30, 120), timeout=20)
        child.expect(["not connected>", "127.0.0.1:1>"])
        times.append((time.perf_counter() - t0) * 1000)
        child.sendcontrol("d")
        child.close(force=True)
    return times


def main() -> int:
    table = table_of(200)
    samples = keystroke_latencies(table)
    samples += keystroke_latencies(table)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"keystroke work with {len(table)} commands: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
          f"max {samples[-1]:.2f} ms over {len(samples)} keystrokes (target p99 < 10 ms)")
    with tempfile.TemporaryDirectory():
        starts = time_to_prompt()
    print(f"start to first prompt: median {statistics.median(starts):.0f} ms, "
          f"max {max(starts):.0f} ms over {len(starts)} starts (target < 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
