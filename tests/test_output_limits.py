"""client-output-buffer-limit per client class, as Redis, against a real server (and the real
Redis in the same run): the setting's replies, a subscriber that never reads, a frozen replica.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
import redis

from .respclient import RawClient, encode_command
from .servers import LedisServer, RedisServer, wait_until

SETTING = "client-output-buffer-limit"
SEQUENCE = [
    "pubsub 1mb 2k 5",
    "replica 1mb 2k 5 normal 1 2 3",
    "SLAVE 3gb 1GB 7",
    "",
    "foo 1mb 2k 5",
    "pubsub 1mb 2k",
    "pubsub 1mb 2k x",
    "pubsub 1xb 2k 4",
    "pubsub -1 2k 4",
    "pubsub 1 2k -4",
    "normal 1 1 1 master 1 1 1",
    "normal 1 1 1 pubsub 1 1",
    "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60",
]


def config_replies(client: RawClient) -> list[bytes]:
    out = [client.call("CONFIG", "GET", SETTING)]
    for value in SEQUENCE:
        out.append(client.call("CONFIG", "SET", SETTING, value))
        out.append(client.call("CONFIG", "GET", SETTING))
    return out


def test_the_setting_reads_and_changes_as_in_redis(
    ledis_server: LedisServer, redis_server: RedisServer
) -> None:
    ours = config_replies(RawClient(ledis_server.port))
    theirs = config_replies(RawClient(unix=str(redis_server.socket)))
    assert ours == theirs
    assert ours[0] == (b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$67\r\nnormal 0 0 0 slave "
                       b"268435456 67108864 60 pubsub 33554432 8388608 60\r\n")


def endpoint(target: str, fresh_server: LedisServer, redis_server: RedisServer,
             real: redis.Redis) -> tuple[redis.Redis, dict[str, object]]:
    """A client of the server under test, and where to connect raw sockets to it."""
    if target == "ledis":
        fresh_server.start()
        return fresh_server.client(), {"port": fresh_server.port}
    return real, {"unix": str(redis_server.socket)}


class Subscriber:
    """A subscriber that never reads what it is sent."""

    def __init__(self, port: int | None = None, unix: str | None = None) -> None:
        family = socket.AF_UNIX if unix else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.connect(unix if unix else ("127.0.0.1", port))
        self.sock.sendall(encode_command(("SUBSCRIBE", "news")))


def publish_until_dropped(publisher: redis.Redis, size: int, pause: float = 0.0,
                          limit: int = 512 << 20) -> tuple[int, float]:
    """PUBLISH messages of ``size`` bytes until no subscriber receives them: (bytes
    published while one did, seconds it took)."""
    message = b"m" * size
    sent = 0
    started = time.monotonic()
    while publisher.publish("news", message) == 1:
        sent += size
        assert sent < limit, "the subscriber was never dropped"
        if pause:
            time.sleep(pause)
    return sent, time.monotonic() - started


@pytest.mark.parametrize("target", ["ledis", "redis"])
def test_a_subscriber_that_never_reads_is_dropped_at_the_pubsub_hard_limit(
    target: str, fresh_server: LedisServer, redis_server: RedisServer, real: redis.Redis
) -> None:
    """The default pubsub class: 32 MB hard (it held up to 256 MB before)."""
    publisher, where = endpoint(target, fresh_server, redis_server, real)
    sub = Subscriber(**where)  # type: ignore[arg-type]
    wait_until(lambda: publisher.pubsub_numsub("news")[0][1] == 1)
    rss = publisher.info("memory")["used_memory_rss"]
    sent, _ = publish_until_dropped(publisher, 64 * 1024)
    # What the kernel's socket buffers took, then 32 MB in the server.
    assert 32 << 20 <= sent < 64 << 20
    assert publisher.info("memory")["used_memory_rss"] - rss < 80 << 20
    assert publisher.pubsub_numsub("news")[0][1] == 0
    if target == "ledis":
        assert publisher.info("stats")["ledis_output_limit_disconnections"] == 1
        assert "pubsub" in fresh_server.log()
    sub.sock.close()


@pytest.mark.parametrize("target", ["ledis", "redis"])
def test_the_soft_limit_gives_its_seconds(
    target: str, fresh_server: LedisServer, redis_server: RedisServer, real: redis.Redis
) -> None:
    """pubsub 0 1mb 1: over 1 MB for more than a second, then dropped (not before)."""
    publisher, where = endpoint(target, fresh_server, redis_server, real)
    sub = Subscriber(**where)  # type: ignore[arg-type]
    publisher.config_set(SETTING, "pubsub 0 1mb 1")
    try:
        wait_until(lambda: publisher.pubsub_numsub("news")[0][1] == 1)
        sent, seconds = publish_until_dropped(publisher, 16 * 1024, pause=0.002)
        assert sent > 1 << 20 and seconds > 1
    finally:
        publisher.config_set(SETTING, "pubsub 32mb 8mb 60")
        sub.sock.close()


def test_a_frozen_replica_is_not_fed_more_than_its_limits_allow(tmp_path: Path) -> None:
    """The master sends a replica records from its binlog only while the link holds less
    than half its class's limits: a frozen replica costs the master no memory and is not
    dropped; thawed, it catches up."""
    master = LedisServer(tmp_path / "m", "--client-output-buffer-limit",
                         "replica 4mb 2mb 1").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        m = master.client()
        wait_until(lambda: m.info("replication")["connected_slaves"] == 1)
        assert m.config_get(SETTING)[SETTING].startswith("normal 0 0 0 slave 4194304 2097152 1 ")
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        value = "x" * 1000
        for start in range(0, 30_000, 1000):  # 30 MB of records
            pipe = m.pipeline(transaction=False)
            for i in range(start, start + 1000):
                pipe.set(f"k{i}", value)
            pipe.execute()
            (link,) = m.client_list(_type="replica")
            # below half the hard limit, give or take the one send that crossed it
            assert int(link["omem"]) < (2 << 20) + (256 << 10)
        time.sleep(1.5)  # longer than the soft limit's second: it stays connected
        assert m.info("stats")["ledis_output_limit_disconnections"] == 0
        replica.proc.send_signal(signal.SIGCONT)
        r = replica.client()
        wait_until(lambda: r.info("replication")["slave_repl_offset"]
                   == m.info("replication")["master_repl_offset"], timeout=60)
        assert r.execute_command("DEBUG", "DIGEST") == m.execute_command("DEBUG", "DIGEST")
        assert m.info("replication")["ledis_full_syncs"] == 1
    finally:
        for s in (master, replica):
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(signal.SIGCONT)
                s.kill9()


def test_a_record_beyond_the_replica_hard_limit_drops_the_link(tmp_path: Path) -> None:
    """One record (a 3 MB value) is more than 'replica 1mb 0 0' allows: the link is closed,
    as Redis closes it (the replica comes back, and catches up once it can)."""
    master = LedisServer(tmp_path / "m", "--client-output-buffer-limit",
                         "replica 1mb 0 0").start()
    replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    try:
        m = master.client()
        wait_until(lambda: m.info("replication")["connected_slaves"] == 1)
        m.set("big", "x" * (3 << 20))
        wait_until(lambda: m.info("stats")["ledis_output_limit_disconnections"] >= 1)
        assert "(replica)" in master.log()
        m.config_set(SETTING, "replica 256mb 64mb 60")
        r = replica.client()
        wait_until(lambda: r.info("replication")["slave_repl_offset"]
                   == m.info("replication")["master_repl_offset"], timeout=60)
        assert r.strlen("big") == 3 << 20
    finally:
        master.kill9()
        replica.kill9()


@pytest.mark.parametrize("target", ["ledis", "redis"])
def test_a_reply_beyond_the_normal_hard_limit_closes_the_client(
    target: str, fresh_server: LedisServer, redis_server: RedisServer, real: redis.Redis
) -> None:
    """normal 1mb 0 0: a 2 MB reply is never sent, however fast the client reads (the limit
    is on what is held before the socket, as in Redis); a 100 KB one is."""
    c, where = endpoint(target, fresh_server, redis_server, real)
    raw = RawClient(**where)  # type: ignore[arg-type]
    c.set("small", "x" * 100_000)
    c.set("big", "x" * (2 << 20))
    c.config_set(SETTING, "normal 1mb 0 0")
    try:
        assert raw.call("STRLEN", "big") == b":2097152\r\n"
        assert len(raw.call("GET", "small")) == 100_000 + 11
        raw.send(encode_command(("GET", "big")))
        assert raw.read_until_closed() == (b"", True)
    finally:
        c.config_set(SETTING, "normal 0 0 0")
