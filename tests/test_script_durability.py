"""A master killed with SIGKILL while a script writes many keys: its replica (and the master's
own store, once restarted) holds all of the script's writes or none of them, never a part: the
script's writes are one LevelDB batch and one binlog record, applied after it ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer, wait_until
from .test_replication import caught_up

N = 20_000
WRITE = "for i = 1, tonumber(ARGV[2]) do redis.call('set', ARGV[1] .. i, i) end"
WRITE_THEN_SPIN = WRITE + " while true do end"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LedisServer, LedisServer]]:
    master = LedisServer(tmp_path / "m", "--busy-reply-threshold", "100").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    yield master, replica
    for s in (master, replica):
        if s.proc is not None and s.proc.poll() is None:
            s.kill9()


def count(c: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in c.scan_iter(f"{prefix}*", count=5000))


def run_script(port: int, script: str, prefix: str, out: list[object]) -> threading.Thread:
    def go() -> None:
        try:
            out.append(redis.Redis(port=port, socket_timeout=120).eval(script, 0, prefix, N))
        except redis.ConnectionError as e:  # the master was killed under it
            out.append(e)

    t = threading.Thread(target=go)
    t.start()
    return t


def until_busy(port: int) -> None:
    other = RawClient(port, timeout=60)
    wait_until(lambda: other.call("PING").startswith(b"-BUSY"), timeout=60)


def restart_and_follow(master: LedisServer, replica: LedisServer) -> None:
    master.start()  # a new port: the replica is pointed at it
    r = replica.client()
    r.execute_command("REPLICAOF", "127.0.0.1", master.port)
    wait_until(lambda: caught_up(master.client(), r), timeout=120)


def test_killed_master_mid_script_replica_holds_all_or_none(
    pair: tuple[LedisServer, LedisServer],
) -> None:
    master, replica = pair
    m, r = master.client(), replica.client()
    m.set("before", "1")
    wait_until(lambda: caught_up(m, r), timeout=60)

    # 1. Killed once the script has written all its keys and spins: none of them anywhere.
    out: list[object] = []
    t = run_script(master.port, WRITE_THEN_SPIN, "spin:", out)
    until_busy(master.port)
    master.kill9()
    t.join(120)
    assert out and isinstance(out[0], redis.ConnectionError)
    assert count(r, "spin:") == 0 and r.get("before") == b"1"
    restart_and_follow(master, replica)
    assert count(master.client(), "spin:") == 0 and count(r, "spin:") == 0

    # 2. Killed while the script is still writing (it runs past the busy threshold).
    out = []
    t = run_script(master.port, WRITE, "mid:", out)
    until_busy(master.port)
    master.kill9()
    t.join(120)
    in_replica = count(r, "mid:")
    restart_and_follow(master, replica)
    in_master = count(master.client(), "mid:")
    if out and out[0] is None:  # it ended and replied just before the kill
        assert in_master == N
    assert in_replica in (0, N) and in_master in (0, N)
    assert count(r, "mid:") == in_master  # the replica caught up with the restarted master

    # 3. Killed right after the script's reply: the replica has all of it or none, never part.
    c = master.client()
    assert c.eval(WRITE, 0, "after:", N) is None
    master.kill9()
    in_replica = count(r, "after:")
    assert in_replica in (0, N)
    restart_and_follow(master, replica)
    assert count(master.client(), "after:") == N == count(r, "after:")
