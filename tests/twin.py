"""Connections opened in pairs, one to the real Redis and one to ledis-server, driven alike.

For behaviour that spans several connections (invalidation pushes, MONITOR lines, CLIENT LIST):
each ``Twin`` connection sends the same commands to both servers and reads what each sends
back, so a test compares the bytes. A client id in a command is written ``Id("name")`` and
becomes each server's own id of the connection opened under that name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from stack.core.resp import encode_command

from .respclient import RawClient
from .servers import LedisServer, RedisServer


@dataclass(frozen=True)
class Id:
    """The client id, on each server, of the twin connection opened as ``name``."""

    name: str


Arg = str | bytes | int | Id
NUMBERS = re.compile(rb":\d+\r\n")


def no_numbers(reply: bytes) -> bytes:
    """A reply with its integers hidden (client ids differ between the servers)."""
    return NUMBERS.sub(b":N\r\n", reply)


class Twins:
    """Named pairs of connections to a real Redis and a ledis-server."""

    def __init__(self, ledis: LedisServer, real: RedisServer) -> None:
        self.ledis, self.real = ledis, real
        self.pairs: dict[str, tuple[RawClient, RawClient]] = {}
        self.ids: dict[str, tuple[int, int]] = {}

    def open(self, name: str, resp: int = 2) -> Twin:
        pair = (RawClient(unix=str(self.real.socket)), RawClient(self.ledis.port))
        self.pairs[name] = pair
        ids = []
        for c in pair:
            if resp == 3:
                assert c.call("HELLO", 3).startswith(b"%")
            ids.append(int(c.call("CLIENT", "ID")[1:-2]))
        self.ids[name] = (ids[0], ids[1])
        return Twin(self, name)

    def close(self) -> None:
        for pair in self.pairs.values():
            for c in pair:
                c.close()


class Twin:
    def __init__(self, twins: Twins, name: str) -> None:
        self.twins = twins
        self.name = name

    @property
    def clients(self) -> tuple[RawClient, RawClient]:
        return self.twins.pairs[self.name]

    def _args(self, args: Sequence[Arg], side: int) -> list[bytes | str | int]:
        return [self.twins.ids[a.name][side] if isinstance(a, Id) else a for a in args]

    def send(self, *commands: Sequence[Arg]) -> None:
        """Send commands (as one pipeline) to both servers."""
        for side, c in enumerate(self.clients):
            c.send(b"".join(encode_command(self._args(cmd, side)) for cmd in commands))

    def read(self, n: int = 1, norm: Callable[[bytes], bytes] | None = None) -> list[bytes]:
        """The next ``n`` replies (or pushes) from both servers, which must be the same."""
        theirs, ours = ([c.read_reply() for _ in range(n)] for c in self.clients)
        if norm is not None:
            theirs, ours = [norm(r) for r in theirs], [norm(r) for r in ours]
        assert ours == theirs, f"{self.name}: redis {theirs!r} != ledis {ours!r}"
        return ours

    def call(self, *args: Arg, norm: Callable[[bytes], bytes] | None = None) -> bytes:
        self.send(args)
        return self.read(1, norm)[0]

    def run(
        self, *commands: Sequence[Arg], norm: Callable[[bytes], bytes] | None = None
    ) -> list[bytes]:
        """Send commands as one pipeline and read as many replies."""
        self.send(*commands)
        return self.read(len(commands), norm)

    def quiet(self) -> None:
        """Nothing more is waiting on this connection: a PING answers next on both."""
        assert self.call("PING", "quiet?") == b"$6\r\nquiet?\r\n"


def twins_fixture(ledis: LedisServer, real: RedisServer) -> Iterator[Twins]:
    t = Twins(ledis, real)
    setup = t.open("setup")
    setup.call("FLUSHALL")
    try:
        yield t
    finally:
        t.close()


def raw_pair(ledis: LedisServer, real: RedisServer, resp: int) -> tuple[RawClient, RawClient]:
    """One connection to each server (the real Redis first), speaking RESP ``resp``."""
    pair = (RawClient(unix=str(real.socket)), RawClient(ledis.port))
    for c in pair:
        c.call("HELLO", resp)
    return pair
