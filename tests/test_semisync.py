"""Semi-synchronous replication tells the truth (DESIGN.md decision 5), with real processes.

``-NOREPLICAS`` means "not done": a write that arrives while too few good replicas are
connected is refused before it runs, with Redis's exact replies (held byte for byte to a real
Redis with no replica). ``-UNACKED`` means "done on the master, not acknowledged in time". Every
reply is held to what the data says afterwards, on the master and on the replica.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .respclient import RawClient, encode_command
from .servers import LedisServer, RedisServer, wait_until

NOREPLICAS = b"-NOREPLICAS Not enough good replicas to write.\r\n"
UNACKED = (b"-UNACKED Written on the master, but not acknowledged by enough replicas in time; a "
           b"failover may lose it\r\n")

# Writes of each kind the issue names, and the replies Redis gives without good replicas.
WRITES: list[tuple[str, ...]] = [
    ("SET", "s", "1"),
    ("INCR", "n"),
    ("LPUSH", "l", "a"),
    ("DEL", "s"),
    ("DEL", "absent"),
]
SEQUENCE: list[tuple[str, ...]] = [
    *WRITES,
    ("GET", "s"),
    ("EXISTS", "n", "l"),
    ("MULTI",),
    ("SET", "m", "1"),
    ("GET", "m"),
    ("EXEC",),
    ("MULTI",),
    ("GET", "s"),
    ("EXEC",),
    ("PING",),
    ("DBSIZE",),
]


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def caught_up(master: redis.Redis, replica: redis.Redis) -> bool:
    return bool(replica.info("replication")["slave_repl_offset"]
                == master.info("replication")["master_repl_offset"])


def replies(client: RawClient, commands: list[tuple[str, ...]]) -> list[bytes]:
    out = []
    for cmd in commands:
        client.send(encode_command(cmd))
        out.append(client.read_reply())
    return out


def test_no_replica_refuses_every_write_as_redis_does(
    fresh_server: LedisServer, redis_server: RedisServer, real: redis.Redis
) -> None:
    fresh_server.extra += ["--min-replicas-to-write", "1"]
    fresh_server.start()
    real.config_set("min-replicas-to-write", 1)
    try:
        c = fresh_server.client()
        c.config_set("min-replicas-to-write", 0)
        c.set("s", "before")
        c.config_set("min-replicas-to-write", 1)
        real.config_set("min-replicas-to-write", 0)
        real.set("s", "before")
        real.config_set("min-replicas-to-write", 1)
        ours = replies(RawClient(fresh_server.port), SEQUENCE)
        theirs = replies(RawClient(unix=str(redis_server.socket)), SEQUENCE)
        assert ours == theirs
        assert ours[:5] == [NOREPLICAS] * 5
        assert ours[8:11] == [NOREPLICAS, b"+QUEUED\r\n",
                              b"-EXECABORT Transaction discarded because of previous errors.\r\n"]
        # Nothing was applied: the data is as it was, and nothing went to the binlog.
        assert c.get("s") == b"before" and c.keys("*") == [b"s"]
        last = c.info("replication")["master_repl_offset"]
        assert c.info("replication")["ledis_semisync_refused_writes"] == 6
        assert c.info("replication")["ledis_semisync_unacked_writes"] == 0
        assert c.info("replication")["master_repl_offset"] == last
    finally:
        real.config_set("min-replicas-to-write", 0)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[LedisServer, LedisServer]]:
    master = LedisServer(tmp_path / "m", "--min-replicas-to-write", "1",
                         "--min-replicas-timeout", "200", "--min-replicas-max-lag", "1").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    m = master.client()
    wait_until(lambda: m.info("replication").get("min_slaves_good_slaves") == 1)
    yield master, replica
    for s in (master, replica):
        if s.proc is not None:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGCONT)
            s.kill9()


class Retrier:
    """A client that retries a write only when it was not done (-NOREPLICAS), as a client of
    Redis would, and keeps score of what each reply says happened."""

    def __init__(self, port: int) -> None:
        self.raw = RawClient(port)
        self.applied = 0  # +OK / :n / -UNACKED: on the master
        self.acked = 0
        self.unacked = 0
        self.refused = 0

    def incr(self, key: str) -> bytes:
        self.raw.send(encode_command(("INCR", key)))
        reply = self.raw.read_reply()
        if reply == NOREPLICAS:
            self.refused += 1
        elif reply == UNACKED:
            self.unacked += 1
            self.applied += 1
        else:
            assert reply.startswith(b":"), reply
            self.acked += 1
            self.applied += 1
        return reply


@pytest.mark.parametrize("how", ["sigstop", "kill", "stop"])
def test_every_reply_matches_the_data_when_the_replica_goes(
    pair: tuple[LedisServer, LedisServer], how: str
) -> None:
    master, replica = pair
    m = master.client()
    client = Retrier(master.port)
    for _ in range(20):
        assert client.incr("n").startswith(b":")
    assert replica.proc is not None
    if how == "sigstop":
        replica.proc.send_signal(signal.SIGSTOP)
    elif how == "kill":
        replica.kill9()
    else:
        assert replica.stop() == 0
    # Keep writing (retrying what was not done) until writes are refused up front.
    deadline = time.monotonic() + 60
    while client.refused < 5:
        assert time.monotonic() < deadline
        client.incr("n")
    if how == "sigstop":  # connected and good for up to min-replicas-max-lag: applied, unacked
        assert client.unacked >= 1
    assert int(m.get("n") or 0) == client.applied
    info = m.info("replication")
    assert info["ledis_semisync_unacked_writes"] == client.unacked
    assert info["ledis_semisync_refused_writes"] == client.refused
    with pytest.raises(redis.ResponseError, match=r"^NOREPLICAS Not enough good replicas"):
        m.set("refused", "x")
    assert m.exists("refused") == 0
    # The replica comes back: writes are acknowledged again, and it ends with exactly what
    # the master applied (the unacknowledged writes too, the refused ones not).
    if how == "sigstop":
        replica.proc.send_signal(signal.SIGCONT)
    else:
        replica.start()
    wait_until(lambda: m.info("replication").get("min_slaves_good_slaves") == 1)
    for _ in range(5):
        assert client.incr("n").startswith(b":")
    r = replica.client()
    wait_until(lambda: caught_up(m, r))
    assert int(m.get("n") or 0) == int(r.get("n") or 0) == client.applied
    assert r.exists("refused") == 0
    assert digest(r) == digest(m)


def test_exec_of_writes_is_aborted_when_the_replica_is_gone(
    pair: tuple[LedisServer, LedisServer],
) -> None:
    master, replica = pair
    m = master.client()
    m.set("n", 10)
    raw = RawClient(master.port)
    assert replies(raw, [("MULTI",), ("INCR", "n"), ("SET", "t", "1")]) == [
        b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n"]
    replica.kill9()
    wait_until(lambda: m.info("replication")["connected_slaves"] == 0)
    assert replies(raw, [("EXEC",), ("EXEC",), ("MULTI",), ("GET", "n"), ("EXEC",)]) == [
        b"-EXECABORT Transaction discarded because of: NOREPLICAS Not enough good replicas to "
        b"write.\r\n",
        b"-ERR EXEC without MULTI\r\n",  # the transaction was discarded
        b"+OK\r\n", b"+QUEUED\r\n", b"*1\r\n$2\r\n10\r\n",  # reads still run
    ]
    assert m.get("n") == b"10" and m.exists("t") == 0
    assert m.info("replication")["ledis_semisync_refused_writes"] == 1


def test_a_transaction_not_acknowledged_in_time_is_applied_whole(
    pair: tuple[LedisServer, LedisServer],
) -> None:
    master, replica = pair
    m = master.client()
    assert replica.proc is not None
    replica.proc.send_signal(signal.SIGSTOP)
    raw = RawClient(master.port)
    got = replies(raw, [("MULTI",), ("INCR", "n"), ("SET", "t", "1"), ("EXEC",)])
    assert got[3] in (UNACKED, NOREPLICAS.replace(b"-NOREPLICAS", b"-EXECABORT Transaction "
                                                  b"discarded because of: NOREPLICAS"))
    if got[3] == UNACKED:  # applied, both commands
        assert (m.get("n"), m.get("t")) == (b"1", b"1")
    else:  # the replica had already been silent too long: refused, neither
        assert (m.exists("n"), m.exists("t")) == (0, 0)
    replica.proc.send_signal(signal.SIGCONT)
    r = replica.client()
    wait_until(lambda: caught_up(m, r))
    assert digest(r) == digest(m)
