"""WATCH across clients, and EXEC applied as one batch."""

from __future__ import annotations

import time

import redis

from .servers import LedisServer


def test_watch_aborts_when_another_client_writes(r: redis.Redis, ledis_server: LedisServer) -> None:
    other = ledis_server.client()
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        other.incrby("balance", 5)
        pipe.multi()
        pipe.set("balance", 0)
        try:
            pipe.execute()
            raise AssertionError("EXEC ran although the watched key changed")
        except redis.WatchError:
            pass
    assert r.get("balance") == b"15"


def test_watch_succeeds_when_untouched(r: redis.Redis) -> None:
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        current = int(pipe.get("balance") or 0)
        pipe.multi()
        pipe.set("balance", current - 3)
        assert pipe.execute() == [True]
    assert r.get("balance") == b"7"


def test_watch_sees_expiry_deletion_and_flush(r: redis.Redis, ledis_server: LedisServer) -> None:
    other = ledis_server.client()
    for spoil in (
        lambda: time.sleep(0.15),  # the key's TTL runs out
        lambda: other.delete("w"),
        lambda: other.flushdb(),
        lambda: other.swapdb(0, 1),
    ):
        r.set("w", "1", px=100)
        with r.pipeline() as pipe:
            pipe.watch("w")
            spoil()
            pipe.multi()
            pipe.set("x", "1")
            try:
                pipe.execute()
                raise AssertionError(f"EXEC ran after {spoil}")
            except redis.WatchError:
                pass
        r.flushall()


def test_exec_is_atomic_and_ordered(r: redis.Redis, ledis_server: LedisServer) -> None:
    pipe = r.pipeline(transaction=True)
    for i in range(500):
        pipe.set(f"k{i}", i)
    pipe.keys("k*")
    pipe.dbsize()
    replies = pipe.execute()
    assert len(replies[-2]) == 500  # range reads inside EXEC see the writes before them
    assert replies[-1] == 500
