"""Several connections to ledis-server and to the real Redis at once, every step run on both
and every reply held to Redis's bytes (blocking commands, transactions across clients)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .respclient import RawClient, encode_command
from .servers import LedisServer, RedisServer, wait_until


class Clients:
    """Connections to both servers, numbered: client 0 is the one that writes."""

    def __init__(self, ledis: LedisServer, real: RedisServer, resp: int, n: int = 4) -> None:
        self.resp = resp
        self.ours = [RawClient(ledis.port) for _ in range(n)]
        self.theirs = [RawClient(unix=str(real.socket)) for _ in range(n)]
        for side in (self.ours, self.theirs):
            for c in side:
                c.call("HELLO", resp)
            side[0].call("FLUSHALL")

    def pairs(self, i: int) -> tuple[RawClient, RawClient]:
        return self.ours[i], self.theirs[i]

    def call(self, i: int, *cmd: str | bytes | int) -> bytes:
        ours, theirs = (c.call(*cmd) for c in self.pairs(i))
        assert ours == theirs, f"{cmd!r}: redis {theirs!r} != ledis {ours!r}"
        return theirs

    def send(self, i: int, *cmd: str | bytes | int) -> None:
        for c in self.pairs(i):
            c.send(encode_command(cmd))

    def read(self, i: int) -> bytes:
        ours, theirs = (c.read_reply() for c in self.pairs(i))
        assert ours == theirs, f"client {i}: redis {theirs!r} != ledis {ours!r}"
        return theirs

    def blocked(self, n: int) -> None:
        """Wait until ``n`` clients are blocked on both (a sent command has arrived)."""
        for side in (self.ours, self.theirs):
            wait_until(lambda s=side: blocked_clients(s[0]) == n, f"{n} blocked clients")

    def still_blocked(self, n: int) -> None:
        for side in (self.ours, self.theirs):
            assert blocked_clients(side[0]) == n

    def client_id(self, i: int) -> tuple[int, int]:
        ours, theirs = (int(c.call("CLIENT", "ID")[1:-2]) for c in self.pairs(i))
        return ours, theirs

    def close(self) -> None:
        for c in self.ours + self.theirs:
            c.close()


def blocked_clients(c: RawClient) -> int:
    info = c.call("INFO", "clients")
    line = next(x for x in info.split(b"\r\n") if x.startswith(b"blocked_clients:"))
    return int(line.split(b":")[1])


@pytest.fixture(name="clients", params=[2, 3], ids=["resp2", "resp3"])
def clients_fixture(request: pytest.FixtureRequest, ledis_server: LedisServer,
            redis_server: RedisServer) -> Iterator[Clients]:
    """Four connections to each server over RESP2 or RESP3; afterwards nobody is left blocked
    and both servers are empty."""
    c = Clients(ledis_server, redis_server, request.param)
    yield c
    c.close()
    for server in (ledis_server, redis_server):
        probe = server.client()
        wait_until(lambda p=probe: p.info("clients")["blocked_clients"] == 0, "no one blocked")
        probe.flushall()
        probe.close()
