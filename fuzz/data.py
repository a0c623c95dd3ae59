"""Bytes from a fuzzer turned into choices, the same way for every driver."""

from __future__ import annotations


class Stream:
    """Consumes fuzzer bytes as small integers and byte strings; zeros once exhausted."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def number(self, bound: int) -> int:
        """An integer in ``range(bound)`` from one or two bytes."""
        if bound <= 1:
            return 0
        n = self.byte() if bound <= 256 else self.byte() << 8 | self.byte()
        return n % bound

    def pick(self, items: list[bytes] | tuple[bytes, ...]) -> bytes:
        return items[self.number(len(items))]

    def chunk(self, most: int) -> bytes:
        n = min(self.number(most + 1), self.left())
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out
