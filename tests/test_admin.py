"""Server and connection administration through redis-py: INFO, CLIENT, SLOWLOG, LATENCY, ..."""

from __future__ import annotations

import threading
import time

import redis

from .respclient import RawClient
from .servers import LedisServer


def test_info_sections(r: redis.Redis) -> None:
    r.set("a", "1", ex=100)
    r.set("b", "2")
    r.get("a")
    r.get("missing")
    info = r.info()
    for field in ("redis_version", "ledis_version", "connected_clients", "used_memory",
                  "total_commands_processed", "role", "used_cpu_user", "keyspace_hits"):
        assert field in info, field
    assert info["db0"] == {"keys": 2, "expires": 1, "avg_ttl": 0}
    assert info["keyspace_hits"] >= 1 and info["keyspace_misses"] >= 1
    stats = r.info("commandstats")
    assert stats["cmdstat_set"]["calls"] >= 2
    everything = r.info("everything")
    assert "cmdstat_get" in everything and "redis_version" in everything
    assert r.info("nosuchsection") == {}


def test_client_commands(r: redis.Redis, ledis_server: LedisServer) -> None:
    other = RawClient(ledis_server.port)
    assert other.call("CLIENT", "SETNAME", "worker-1") == b"+OK\r\n"
    assert other.call("CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"
    my_id = r.client_id()
    assert isinstance(my_id, int)
    names = {c["name"] for c in r.client_list()}
    assert "worker-1" in names
    info = r.client_info()
    assert info["id"] == my_id and info["db"] == 0
    victim = next(c for c in r.client_list() if c["name"] == "worker-1")
    assert r.client_kill_filter(_id=victim["id"]) == 1
    assert other.read_until_closed() == (b"", True)
    assert r.client_kill_filter(_id=victim["id"]) == 0


def test_slowlog(r: redis.Redis) -> None:
    r.config_set("slowlog-log-slower-than", "0")
    try:
        r.slowlog_reset()
        r.set("slow", "x" * 300)
        entries = r.slowlog_get(5)
        assert any(e["command"].startswith(b"SET slow") for e in entries)
        long_arg = next(e for e in entries if e["command"].startswith(b"SET slow"))["command"]
        assert b"more bytes" in long_arg
        assert r.slowlog_len() >= 1
    finally:
        r.config_set("slowlog-log-slower-than", "10000")
        r.slowlog_reset()


def test_latency_monitor(r: redis.Redis) -> None:
    r.config_set("latency-monitor-threshold", "5")
    try:
        r.execute_command("LATENCY", "RESET")
        r.execute_command("DEBUG", "SLEEP", "0.02")
        latest = r.execute_command("LATENCY", "LATEST")
        assert latest and latest[0][0] == b"command" and latest[0][2] >= 20
        assert r.execute_command("LATENCY", "HISTORY", "command")
        assert r.execute_command("LATENCY", "RESET") == 1
    finally:
        r.config_set("latency-monitor-threshold", "0")


def test_client_pause_write_holds_writes_not_reads(r: redis.Redis, ledis_server: LedisServer) -> None:
    writer = RawClient(ledis_server.port)
    reader = RawClient(ledis_server.port)
    assert r.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    try:
        writer.send(b"SET paused 1\r\n")
        assert reader.call("GET", "paused") == b"$-1\r\n"  # reads go on
        assert r.execute_command("CLIENT", "UNPAUSE")
        assert writer.read_reply() == b"+OK\r\n"
        assert reader.call("GET", "paused") == b"$1\r\n1\r\n"
    finally:
        r.execute_command("CLIENT", "UNPAUSE")


def test_client_pause_expires(r: redis.Redis, ledis_server: LedisServer) -> None:
    c = RawClient(ledis_server.port)
    start = time.monotonic()
    r.execute_command("CLIENT", "PAUSE", "100", "ALL")
    assert c.call("PING") == b"+PONG\r\n"  # held until the pause ends
    assert time.monotonic() - start >= 0.09


def test_swapdb_and_flushall(r: redis.Redis, ledis_server: LedisServer) -> None:
    r.set("in0", "a")
    other = ledis_server.client(db=1)
    other.set("in1", "b")
    assert r.swapdb(0, 1)
    assert r.get("in1") == b"b" and r.get("in0") is None
    assert other.get("in0") == b"a"
    assert r.flushall(asynchronous=False)
    assert r.dbsize() == 0 and other.dbsize() == 0


def test_time_and_lastsave(r: redis.Redis) -> None:
    secs, usecs = r.time()
    assert abs(secs - time.time()) < 5 and 0 <= usecs < 1_000_000
    assert abs(r.lastsave().timestamp() - time.time()) < 3600


def test_many_clients_do_not_disturb_each_other(r: redis.Redis, ledis_server: LedisServer) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            c = ledis_server.client()
            for i in range(200):
                c.set(f"t{n}:{i}", i)
                assert c.get(f"t{n}:{i}") == str(i).encode()
            c.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert r.dbsize() == 1600


def test_object_and_debug(r: redis.Redis) -> None:
    r.set("n", "12")
    assert r.object("encoding", "n") == b"int"
    assert r.object("idletime", "n") == 0
    assert r.execute_command("DEBUG", "OBJECT", "n")
    raw = r.execute_command("DEBUG", "OBJECT", "n", NEVER_DECODE=True)
    assert "encoding:int" in str(raw)


def test_pttl_and_expiretime(r: redis.Redis) -> None:
    r.set("k", "v", px=100_000)
    assert 99_000 < r.pttl("k") <= 100_000
    now_ms = time.time() * 1000
    assert abs(r.pexpiretime("k") - (now_ms + 100_000)) < 2000
    assert r.expiretime("k") == (r.pexpiretime("k") + 500) // 1000  # rounded, as Redis
