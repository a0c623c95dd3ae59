"""Resource exhaustion, against a real server under real OS limits: file descriptors
(maxclients fits what the store leaves) and a store that cannot write (a failed batch leaves
nothing of itself in memory, is answered and reported, and the counts survive a restart)."""

from __future__ import annotations

import resource
import socket
from pathlib import Path

import pytest
import redis

from .respclient import RawClient, encode_command
from .servers import LedisServer

FD_LIMIT = 200
# descriptors.py: 48 reserved, and at least 64 for LevelDB's table files.
FITTING = FD_LIMIT - 48 - 64


@pytest.fixture
def few_fds(tmp_path: Path) -> LedisServer:
    return LedisServer(tmp_path, rlimits={resource.RLIMIT_NOFILE: (FD_LIMIT, FD_LIMIT)})


def test_maxclients_is_lowered_to_what_the_fd_limit_leaves(few_fds: LedisServer) -> None:
    server = few_fds.start()
    try:
        c = server.client()
        assert c.config_get("maxclients") == {"maxclients": str(FITTING)}
        assert c.info("clients")["maxclients"] == FITTING
        log = server.log()
        assert "You requested maxclients of 10000" in log
        assert f"maxclients has been reduced to {FITTING}" in log
        # Redis's answer to a CONFIG SET beyond what the OS allows.
        with pytest.raises(redis.ResponseError) as e:
            c.config_set("maxclients", 5000)
        assert str(e.value) == (
            "CONFIG SET failed (possibly related to argument 'maxclients') - The operating "
            f"system is not able to handle the specified number of clients, try with {FITTING}"
        )
        c.config_set("maxclients", FITTING - 10)
        c.config_set("maxclients", FITTING)
        # Every client up to maxclients is served; the next is told, then closed, and logged.
        others = [RawClient(server.port) for _ in range(FITTING - 1)]
        for o in others:
            assert o.call("PING") == b"+PONG\r\n"
        extra = RawClient(server.port)
        assert extra.read_until_closed() == (b"-ERR max number of clients reached\r\n", True)
        assert c.info("stats")["rejected_connections"] == 1
        assert "max number of clients reached" in server.log()
        # The store still opens what it needs: 150k writes (several LevelDB table files).
        value = b"v" * 100
        for start in range(0, 150_000, 10_000):
            pipe = c.pipeline(transaction=False)
            for i in range(start, start + 10_000):
                pipe.set(b"k%d" % i, value)
            assert pipe.execute() == [True] * 10_000
        assert c.dbsize() == len(c.keys("*")) == 150_000
        assert "Too many open files" not in server.log()
        for o in others:
            o.sock.close()
        server.kill9()
        server.start()
        c = server.client()
        assert c.dbsize() == len(c.keys("*")) == 150_000
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill9()


def test_a_batch_the_store_cannot_write_leaves_nothing_behind(tmp_path: Path) -> None:
    """The LevelDB log may not grow past 3 MB (RLIMIT_FSIZE: its writes fail with EFBIG, as
    with a full disk). Writes before that are acknowledged; the batch that fails is answered
    with -MISCONF for each of its writes and leaves nothing in memory: DBSIZE, KEYS and the
    data agree, at once and after a restart without the limit."""
    limited = LedisServer(tmp_path, rlimits={resource.RLIMIT_FSIZE: (3 << 20, 3 << 20)}).start()
    acknowledged: list[bytes] = []
    refused: list[bytes] = []
    try:
        c = limited.client()
        raw = RawClient(limited.port)
        n = 0
        while len(refused) < 300:
            assert n < 200_000, "the store never failed"
            keys = [b"key:%d" % i for i in range(n, n + 100)]
            n += 100
            raw.send(b"".join(encode_command(("SET", k, b"v" * 20)) for k in keys))
            for k in keys:
                reply = raw.read_reply()
                if reply == b"+OK\r\n":
                    acknowledged.append(k)
                else:
                    assert reply.startswith(b"-MISCONF Errors writing to the data store, the "
                                            b"write was not applied: "), reply
                    refused.append(k)
        assert raw.call("INCR", "counter").startswith(b"-MISCONF")
        assert c.get(acknowledged[-1]) == b"v" * 20  # reads go on
        assert c.exists(*refused[:100]) == 0
        assert c.dbsize() == len(c.keys("*")) == len(acknowledged)
        persistence = c.info("persistence")
        assert persistence["aof_last_write_status"] == "err"
        assert persistence["ledis_failed_write_batches"] >= 1
        assert "could not be written" in limited.log()
    finally:
        limited.kill9()
    again = LedisServer(tmp_path).start()
    try:
        c = again.client()
        assert c.dbsize() == len(c.keys("*")) == len(acknowledged)
        assert c.exists(*acknowledged) == len(acknowledged)
        assert c.exists(*refused) == 0
        assert c.set("after", "1") and c.dbsize() == len(acknowledged) + 1
    finally:
        again.kill9()


def test_clients_refused_over_maxclients_are_answered(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--maxclients", "3"]
    fresh_server.start()
    held = [socket.create_connection(("127.0.0.1", fresh_server.port)) for _ in range(3)]
    try:
        for _ in range(5):
            extra = RawClient(fresh_server.port)
            assert extra.read_until_closed() == (b"-ERR max number of clients reached\r\n", True)
    finally:
        for s in held:
            s.close()
    assert fresh_server.log().count("max number of clients reached") == 1  # not one a client
