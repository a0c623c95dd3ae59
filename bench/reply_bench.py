"""The reply parser against hiredis (redis-py's C parser), on the same bytes in the same run.

Shapes: one big array (LRANGE/HGETALL of N elements) fed in 16 KB pieces, at two sizes (the
ratio between them shows the cost is linear), and many small replies (a deep pipeline). Prints
seconds (best of --rounds) and the ratio ours/hiredis.

    python -m bench.reply_bench
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import hiredis

from stack.core.reply_parser import ReplyParser

PIECE = 16 * 1024


def big_array(n: int) -> bytes:
    return b"*%d\r\n" % n + b"".join(b"$10\r\nelement%03d\r\n" % (i % 1000) for i in range(n))


def small_replies(n: int) -> bytes:
    return (b"+OK\r\n" + b":12345\r\n" + b"$5\r\nvalue\r\n") * (n // 3)


def ours(data: bytes) -> int:
    p = ReplyParser()
    count = 0
    for i in range(0, len(data), PIECE):
        p.feed(data[i : i + PIECE])
        count += sum(1 for _ in p)
    return count


def theirs(data: bytes) -> int:
    r = hiredis.Reader()
    count = 0
    for i in range(0, len(data), PIECE):
        r.feed(data[i : i + PIECE])
        while r.gets() is not False:
            count += 1
    return count


def best(fn: Callable[[bytes], int], data: bytes, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    opts = ap.parse_args()
    cases = [
        ("array of 20k, 16 KB pieces", big_array(20_000)),
        ("array of 80k, 16 KB pieces", big_array(80_000)),
        ("300k small replies", small_replies(300_000)),
    ]
    print(f"{'case':32} {'ours s':>9} {'hiredis s':>10} {'ours/hiredis':>13}")
    results = {}
    for name, data in cases:
        assert ours(data) == theirs(data)
        a, b = best(ours, data, opts.rounds), best(theirs, data, opts.rounds)
        results[name] = a
        print(f"{name:32} {a:9.4f} {b:10.4f} {a / b:13.1f}")
    growth = results["array of 80k, 16 KB pieces"] / results["array of 20k, 16 KB pieces"]
    print(f"80k / 20k time: {growth:.1f} (4.0 is linear; the old parser took 7.7 s / 0.5 s = 15)")


if __name__ == "__main__":
    main()
