"""One client's load never stalls the others (DESIGN.md decision 10), against a real server.

A client's commands run in turns of bounded length; between two turns the batch is committed,
the replies go out and other clients run. A client that does not read its replies is not read
either (backpressure), so its pending output stays bounded.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .respclient import RawClient, encode_command
from .servers import LedisServer, wait_until


@pytest.fixture(params=["lane", "python"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedisServer]:
    env = {"LEDIS_FASTLANE": "0"} if request.param == "python" else None
    s = LedisServer(tmp_path, env=env).start()
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.kill9()


class Drain(threading.Thread):
    """Reads and discards everything the server sends on ``sock``."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.bytes = 0

    def run(self) -> None:
        try:
            while chunk := self.sock.recv(1 << 20):
                self.bytes += len(chunk)
        except OSError:
            pass


def test_a_client_waiting_on_a_mass_insertion_runs_within_one_turn(server: LedisServer) -> None:
    """B blocks on a list that A pushes to halfway through 200k SETs. B's next command (queued
    behind its BLPOP) runs right after the turn in which A pushed, so the keys A set by then
    are the ones before the push plus at most one turn's worth. (Without turns, B waited for
    everything the server had read of A: up to 8 MB, ~160k SETs, at a time.)"""
    c = server.client()
    n, half = 200_000, 100_000
    sets = [encode_command(("SET", f"k{i}", "v")) for i in range(n)]
    payload = b"".join(sets[:half]) + encode_command(("LPUSH", "q", "x")) + b"".join(sets[half:])
    b = RawClient(server.port)
    b.send(encode_command(("BLPOP", "q", "0")) + encode_command(("DBSIZE",)))
    wait_until(lambda: c.info("clients")["blocked_clients"] == 1)
    a = socket.create_connection(("127.0.0.1", server.port))
    drain = Drain(a)
    drain.start()
    a.sendall(payload)
    assert b.read_reply() == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
    seen = int(b.read_reply()[1:])
    assert half <= seen < half + 20_000
    wait_until(lambda: c.dbsize() == n)
    a.close()


def test_a_client_that_reads_nothing_is_not_read_either(server: LedisServer) -> None:
    """1000 GETs of a 100 KB value (100 MB of replies) from a client that never reads: the
    server runs a few turns of them, then stops reading the client until it catches up; its
    memory does not follow. When the client reads, every reply arrives, in order."""
    c = server.client()
    value = b"x" * 100_000
    c.set("big", value)
    rss_before = c.info("memory")["used_memory_rss"]
    n = 1000
    a = RawClient(server.port)
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    a.send(encode_command(("GET", "big")) * n)

    def gets() -> int:
        return int(c.info("commandstats").get("cmdstat_get", {}).get("calls", 0))

    wait_until(lambda: gets() > 0)
    # It stops: what the kernel's socket buffers hold and a few turns, not 1000 GETs.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert gets() < n // 2
        assert c.info("memory")["used_memory_rss"] - rss_before < 60 * 1024 * 1024
        time.sleep(0.05)
    mine = [x for x in c.client_list() if int(x["id"]) != c.client_id()]
    assert len(mine) == 1 and int(mine[0]["qbuf"]) > 0  # its commands wait unread/unrun
    reply = b"$100000\r\n" + value + b"\r\n"
    for _ in range(n):
        assert a.read_reply() == reply
    assert gets() == n
    assert c.ping()


def test_pipelines_of_several_clients_interleave_and_all_complete(server: LedisServer) -> None:
    """Three clients pipeline INCRs of one counter at once: every reply is a distinct value
    and the counter ends at the total (turns interleave, nothing is lost or repeated)."""
    per = 30_000
    clients = [RawClient(server.port, timeout=60) for _ in range(3)]
    payload = encode_command(("INCR", "n")) * per
    senders = [threading.Thread(target=rc.send, args=(payload,)) for rc in clients]
    for t in senders:
        t.start()
    seen: set[int] = set()
    for rc in clients:
        for _ in range(per):
            seen.add(int(rc.read_reply()[1:]))
    for t in senders:
        t.join()
    assert seen == set(range(1, 3 * per + 1))
    assert int(redis.Redis(port=server.port).get("n") or 0) == 3 * per
