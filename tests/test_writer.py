"""Batches are written by a writer thread (storage/engine.py, server.py): while LevelDB writes
one (or waits for room in its memtable, which took 40-430 ms under mass insertion), the event
loop goes on. A reply that depends on a write waits until that write is in LevelDB; a reply
that does not (PING, a read of other keys) goes out at once.

The writer thread is held here on purpose (an Event) in a real server running in this process,
so that "LevelDB is slow" is exact rather than hoped for.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.server.storage import engine as engine_module

from .inprocess import InProcess
from .respclient import RawClient, encode_command


class HeldWriter:
    """Holds every batch the writer thread writes until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.writing = threading.Event()
        original = engine_module._write

        def held(flight: engine_module.Flight) -> None:
            if threading.current_thread().name.startswith("leveldb-writer"):
                self.writing.set()
                assert self.release.wait(60)
            original(flight)

        monkeypatch.setattr(engine_module, "_write", held)


@pytest.fixture
def held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HeldWriter, int]]:
    writer = HeldWriter(monkeypatch)
    writer.release.set()  # not held while the server starts
    proc = InProcess(tmp_path / "data")
    server = proc.start()
    r = redis.Redis(port=server.port)
    r.set("old", "committed")
    r.close()
    writer.release.clear()
    server.engine.threaded_until = float("inf")  # as after a slow write: the thread writes
    yield writer, server.port
    writer.release.set()
    proc.stop()


def _pending(sock: socket.socket) -> bytes:
    """What the server has sent on sock so far, without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def test_unrelated_replies_do_not_wait_for_a_slow_write(held: tuple[HeldWriter, int]) -> None:
    writer, port = held
    a, b = RawClient(port), RawClient(port)
    try:
        a.send(encode_command(("SET", "new", "v")))
        assert writer.writing.wait(30)  # its batch is with LevelDB, held there
        # Another client's PING, and its reads of what is written already, go out now.
        assert b.call("PING") == b"+PONG\r\n"
        assert b.call("GET", "old") == b"$9\r\ncommitted\r\n"
        assert b.call("HGET", "nohash", "f") == b"$-1\r\n"
        # A read of the write in flight waits for it: nothing is acknowledged, or shown to
        # anyone, before it is in LevelDB.
        b.send(encode_command(("GET", "new")))
        c = RawClient(port)
        assert c.call("PING") == b"+PONG\r\n"  # (the loop is not blocked meanwhile)
        assert _pending(a.sock) == b""
        assert _pending(b.sock) == b""
        # A write made while the first is in flight goes in the next batch, after it.
        c.send(encode_command(("INCR", "n")))
        assert RawClient(port).call("PING") == b"+PONG\r\n"
        assert _pending(c.sock) == b""
        writer.release.set()
        assert a.read_reply() == b"+OK\r\n"
        assert b.read_reply() == b"$1\r\nv\r\n"
        assert c.read_reply() == b":1\r\n"
        c.sock.close()
        r = redis.Redis(port=port)
        assert r.get("n") == b"1"
        assert r.get("new") == b"v"
        r.close()
    finally:
        writer.release.set()
        a.sock.close()
        b.sock.close()


def test_a_client_with_replies_waiting_keeps_their_order(held: tuple[HeldWriter, int]) -> None:
    """A PING behind the client's own write waits for that write: replies never overtake."""
    writer, port = held
    a = RawClient(port)
    try:
        a.send(encode_command(("SET", "k", "1")))
        assert writer.writing.wait(30)
        a.send(encode_command(("PING",)))
        other = RawClient(port)
        assert other.call("PING") == b"+PONG\r\n"  # the server has run a's PING by now, or will
        other.sock.close()
        assert _pending(a.sock) == b""
        writer.release.set()
        assert a.read_reply() == b"+OK\r\n"
        assert a.read_reply() == b"+PONG\r\n"
    finally:
        writer.release.set()
        a.sock.close()


def test_a_slow_write_sends_the_next_ones_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quick writes are written at once (a thread's handoffs cost more); one that took
    SLOW_WRITE or more (LevelDB waiting for room) sends those of the next seconds to the
    writer thread, and they stay readable while it writes them."""
    original = engine_module._write
    slow = threading.Event()
    preempted = threading.Event()  # slow only because the machine is busy: no wait in it

    def write(flight: engine_module.Flight) -> None:
        original(flight)
        if slow.is_set():  # as if LevelDB had waited for room in its memtable
            flight.seconds += engine_module.SLOW_WRITE * 2
            flight.waited = not preempted.is_set()

    monkeypatch.setattr(engine_module, "_write", write)
    eng = engine_module.Engine(tmp_path / "db")
    try:
        eng.put(b"\x01a", b"1")
        assert eng.start_commit() is None  # written here
        assert eng.flight is None and eng.db.get(b"\x01a") == b"1"
        assert eng.threaded_until == 0.0
        slow.set()
        preempted.set()
        eng.put(b"\x01p", b"0")
        assert eng.start_commit() is None
        assert eng.threaded_until == 0.0  # not LevelDB's doing: the loop goes on writing
        preempted.clear()
        eng.put(b"\x01b", b"2")
        assert eng.start_commit() is None
        assert eng.threaded_until > 0.0  # that one was slow
        slow.clear()
        eng.put(b"\x01c", b"3")
        future = eng.start_commit()
        assert future is not None and eng._writer is not None  # the thread writes it
        assert eng.get(b"\x01c") == b"3"  # readable meanwhile (cache, or the overlay)
        future.result(30)
        eng.finish_commit()
        assert eng.db.get(b"\x01c") == b"3"
        assert eng.threaded_commits == 1
    finally:
        eng.close()


class _SleepingBatch:
    """A write batch whose write waits (as LevelDB does for room in its memtable)."""

    def write(self) -> None:
        threading.Event().wait(engine_module.SLOW_WRITE * 2)


def test_a_write_that_waited_says_so() -> None:
    """``Flight.waited``: the writing thread gave up the CPU during the write (a voluntary
    context switch): LevelDB stalled, not only the machine being busy."""
    flight = engine_module.Flight({}, _SleepingBatch(), [], None, 0, False, (0, 0))  # type: ignore[arg-type]
    engine_module._write(flight)
    assert flight.seconds >= engine_module.SLOW_WRITE * 2 and flight.waited

class _Busy:
    """A write batch whose write costs CPU on the calling thread (as LevelDB inserting a
    20,000-record batch into its memtable: 7-13 ms of thread CPU measured here), no wait."""

    def __init__(self, batch: object) -> None:
        self.batch = batch

    def write(self) -> None:
        end = time.thread_time() + engine_module.SLOW_WRITE * 2
        while time.thread_time() < end:
            pass
        self.batch.write()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.batch, name)


class _Db:
    def __init__(self, db: object) -> None:
        self.db = db

    def write_batch(self, **kw: object) -> _Busy:
        return _Busy(self.db.write_batch(**kw))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_cpu_heavy_slow_write_sends_the_next_ones_to_the_thread(tmp_path: Path) -> None:
    eng = engine_module.Engine(tmp_path / "db")
    real = eng.db
    eng.db = _Db(real)  # type: ignore[assignment]
    try:
        eng.put(b"\x01a", b"1")
        assert eng.start_commit() is None
        assert eng.commits == 1 and eng.threaded_commits == 0  # written on the loop
        # it took >= 2 * SLOW_WRITE of the loop's own CPU: not a preemption
        assert eng.threaded_until > 0.0, "a CPU-heavy slow write keeps the loop writing"
    finally:
        eng.db = real
        eng.close()
