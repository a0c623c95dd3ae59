"""A small seeded mutation fuzzer over the in-process targets (no coverage guidance).

Used where atheris is not installed, and by the test suite for short runs that are the same on
every machine: the same seed gives the same inputs.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .targets import TARGETS, Finding

if TYPE_CHECKING:
    from .run import Part

INTERESTING = (b"\r\n", b"*", b"$", b"\x00", b"\xff", b"-1", b"9223372036854775808", b" ", b'"')


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and out:
            del out[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            out[pos:pos] = rng.choice(INTERESTING)
        elif op == 4:
            other = rng.choice(corpus)
            start = rng.randrange(len(other) + 1)
            out[pos:pos] = other[start : start + rng.randint(1, 32)]
        else:
            out[pos:pos] = bytes(out[pos : pos + rng.randint(1, 16)])
    return bytes(out[:4096])


def fuzz(name: str, seconds: float, seeds: Path | None = None, seed: int = 0) -> Part:
    from .run import Part

    part = Part(name)
    target = TARGETS[name]
    rng = random.Random(seed)
    corpus = [p.read_bytes() for p in sorted(seeds.iterdir())] if seeds else []
    corpus = corpus or [b"\x00"]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(100):
            data = mutate(rng, rng.choice(corpus), corpus)
            part.inputs += 1
            try:
                target(data)
            except Finding as e:
                part.crashes += 1
                part.hangs += "no answer within" in str(e)
                part.findings.setdefault(str(e)[:300], data.hex())
    return part
