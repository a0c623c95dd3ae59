"""Memory after bursts, against a real server: INFO memory shows what the clients' buffers
hold and held at most, and what a burst took is given back to the system after it."""

from __future__ import annotations

import socket
import threading

import pytest
import redis

from stack.core.resp import RequestParser, encode_command
from stack.server import memory as memory_module

from .servers import LedisServer, wait_until

MB = 1 << 20


def partial_request(port: int, sent_mb: int) -> socket.socket:
    """A SET of a 100 MB value of which ``sent_mb`` MB were sent: it waits, unparsed."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n")
    chunk = b"x" * MB
    for _ in range(sent_mb):
        s.sendall(chunk)
    return s


def test_query_buffers_are_reported_and_their_memory_given_back(
    fresh_server: LedisServer,
) -> None:
    fresh_server.start()
    c = fresh_server.client()
    base = c.info("memory")["used_memory"]
    socks = [partial_request(fresh_server.port, 30) for _ in range(10)]
    wait_until(lambda: c.info("memory")["ledis_query_buffers"] >= 300 * MB)
    memory = c.info("memory")
    assert memory["mem_clients_normal"] >= 300 * MB
    assert memory["used_memory"] - base >= 300 * MB
    assert c.info("clients")["client_recent_max_input_buffer"] >= 30 * MB
    for s in socks:
        s.close()
    wait_until(lambda: c.info("memory")["ledis_query_buffers"] == 0)
    wait_until(lambda: c.info("memory")["used_memory"] - base < 100 * MB)
    memory = c.info("memory")
    assert memory["ledis_query_buffers_peak"] >= 300 * MB  # the peak stays on record
    assert memory["used_memory_peak"] >= base + 300 * MB


def test_a_burst_of_big_writes_is_given_back(fresh_server: LedisServer) -> None:
    """20 clients SET 40 MB values at once, then the keys go: glibc keeps much of the freed
    heap unless asked; the server asks after the burst (malloc_trim), and INFO memory says
    what it gave back. (used_memory is the process's own memory: LevelDB's mapped table files
    are page cache, counted in used_memory_rss.)"""
    fresh_server.start()
    c = fresh_server.client()
    base = c.info("memory")["used_memory"]

    def write(i: int) -> None:
        with socket.create_connection(("127.0.0.1", fresh_server.port)) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nb%02d\r\n$%d\r\n" % (i, 40 * MB))
            chunk = b"x" * MB
            for _ in range(40):
                s.sendall(chunk)
            s.sendall(b"\r\n")
            assert s.recv(16) == b"+OK\r\n"

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.dbsize() == 20
    c.delete(*[f"b{i:02d}" for i in range(20)])
    wait_until(lambda: c.info("memory")["ledis_memory_trims"] >= 1)
    # 800 MB came and went; a quarter of it left over is the bound, beside what the store holds
    # (its memtables keep the last values until later writes push them out): without the
    # trims the process stays near its peak
    def given_back() -> bool:
        memory = c.info("memory")
        return memory["used_memory"] - memory["ledis_store_memory"] - base < 200 * MB

    wait_until(given_back, "the burst's memory given back", timeout=90)
    assert c.info("memory")["ledis_memory_trimmed_bytes"] > 0
    assert c.ping()


def test_a_parser_keeps_only_the_unparsed_part() -> None:
    """After a 200 KB pipeline that ends mid-command, only that command's bytes are held."""
    parser = RequestParser()
    pipeline = encode_command(("SET", "k", "v" * 100)) * 1500
    parser.feed(pipeline + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
    assert len(parser.parse()) == 1500
    parser.compact()
    # the cut command's whole arguments are parsed already; of the buffer only the argument
    # not whole is left (the count says the command's bytes are still held)
    assert parser.buffered() == len(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc")
    assert parser._buf[parser._pos :] == b"$10\r\nabc"
    assert parser.unparsed() is None  # a command in progress is the parser's own
    parser.feed(b"defghij\r\n")
    assert parser.parse() == [[b"SET", b"k", b"abcdefghij"]]
    parser.compact()
    assert parser.unparsed() == (b"", 0)


def test_info_memory_fields_are_numbers(fresh_server: LedisServer) -> None:
    fresh_server.start()
    memory = redis.Redis(port=fresh_server.port).info("memory")
    for field in ("used_memory_peak", "mem_clients_normal", "mem_clients_slaves",
                  "ledis_query_buffers", "ledis_query_buffers_peak", "ledis_output_buffers",
                  "ledis_client_buffers_peak", "ledis_memory_trims",
                  "ledis_memory_trimmed_bytes"):
        assert isinstance(memory[field], int), field


def test_disk_bytes_count_writes_not_yet_in_a_table(fresh_server: LedisServer) -> None:
    """ledis_disk_bytes is what the data directory holds, the write-ahead log included: a
    fresh write (still in the memtable, no table yet) shows at once."""
    fresh_server.start()
    r = redis.Redis(port=fresh_server.port)
    before = r.info("memory")["ledis_disk_bytes"]
    r.set("big", b"x" * 300_000)
    after = r.info("memory")["ledis_disk_bytes"]
    assert after - before >= 300_000, (before, after)
    assert r.info("memory")["ledis_disk_human"].endswith(("K", "M"))


def test_memory_freed_after_a_trim_without_the_process_growing_calls_for_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compaction of big values reuses the heap's free pages and frees them again after a
    trim: the process does not grow and glibc's count of free bytes stays where it was, but the
    memory resident beyond malloc's use grew: the cron trims again."""
    resident = 1000 * MB
    in_use = 900 * MB
    monkeypatch.setattr(memory_module, "anonymous_rss", lambda: resident)
    monkeypatch.setattr(memory_module, "_heap_in_use", lambda: lambda: in_use)
    monkeypatch.setattr(memory_module, "_malloc_trim", lambda: lambda pad: 0)
    clock = [1000.0]
    monkeypatch.setattr(memory_module.time, "monotonic", lambda: clock[0])
    mem = memory_module.Memory()
    mem.trim()  # the last trim: 100 MB resident beyond malloc's use
    clock[0] += memory_module.TRIM_EVERY + 1
    assert not mem.sample([])  # nothing changed
    in_use -= 300 * MB  # the compaction freed its buffers; the pages stay resident
    assert mem.sample([])


def test_network_totals_keep_what_clients_that_went_away_sent(fresh_server: LedisServer) -> None:
    """total_net_input_bytes / total_net_output_bytes count since the start (or CONFIG
    RESETSTAT), as Redis's: a client that leaves does not take its bytes with it."""
    fresh_server.start()
    c = fresh_server.client()
    other = redis.Redis(port=fresh_server.port)
    other.set("k", "v" * 10_000)
    assert other.get("k") == b"v" * 10_000
    stats = c.info("stats")
    assert stats["total_net_input_bytes"] >= 10_000 and stats["total_net_output_bytes"] >= 10_000
    other.close()
    wait_until(lambda: c.info("clients")["connected_clients"] == 1)
    after = c.info("stats")
    assert after["total_net_input_bytes"] >= stats["total_net_input_bytes"]
    assert after["total_net_output_bytes"] >= stats["total_net_output_bytes"]
    c.config_resetstat()
    assert c.info("stats")["total_net_input_bytes"] < 1_000
