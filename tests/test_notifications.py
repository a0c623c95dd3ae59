"""Keyspace notifications against real Redis in the same run: every write command of the
table (generated, ``notify_sweep.py``), keymiss on every read command, and by hand the
events that come from transactions, expiry (lazy and active), blocked clients being served,
other databases, RESP3 subscribers and LedisDB's own commands."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import pytest

from . import notify_sweep
from .respclient import RawClient
from .servers import LedisServer, RedisServer, wait_until

pytestmark = pytest.mark.differential

Cmd = Sequence[str | bytes | int]


@pytest.mark.parametrize("resp", [2, 3], ids=["resp2", "resp3"])
def test_every_write_command_announces_what_redis_does(
    ledis_server: LedisServer, redis_server: RedisServer, resp: int
) -> None:
    """Every write command, every way of calling it, on keys of every type (KEA + n): the
    same events in the same order as Redis, each case within the deadline (the listener
    over RESP2 and over RESP3)."""
    result = notify_sweep.run(ledis_server.port, str(redis_server.socket), deadline=30.0,
                              resp=resp)
    assert result.hung is None, result.hung
    assert not result.mismatches, "\n".join(result.mismatches[:30])
    assert result.cases > 1000


def test_every_read_command_announces_keymiss_as_redis(
    ledis_server: LedisServer, redis_server: RedisServer
) -> None:
    result = notify_sweep.run(
        ledis_server.port,
        str(redis_server.socket),
        deadline=30.0,
        flags=b"KEm",
        specs=notify_sweep.read_specs(),
    )
    assert result.hung is None, result.hung
    assert not result.mismatches, "\n".join(result.mismatches[:30])
    assert result.cases > 500


def test_the_sweep_reaches_every_write_command() -> None:
    swept = {c.spec.name for c in notify_sweep.cases()}
    assert {s.name for s in notify_sweep.write_specs()} == swept
    assert {"set", "lmove", "blmove", "restore", "sort", "zunionstore", "bitfield", "copy",
            "move", "smove", "getex", "spop"} <= swept


# --- by hand ------------------------------------------------------------------------------------


class Side:
    """One server: a connection that writes and one that listens to every keyspace channel."""

    def __init__(self, writer: RawClient, listener: RawClient, resp: int) -> None:
        self.writer = writer
        self.listener = listener
        self.marks = 0
        listener.call("HELLO", resp)
        listener.send(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$10\r\n__key*__:*\r\n")
        listener.read_reply()
        listener.call("SUBSCRIBE", "mark")

    def events(self) -> list[bytes]:
        """What was announced since the last call: publishes a marker and reads up to it."""
        self.marks += 1
        mark = b"%d" % self.marks
        self.writer.call("PUBLISH", "mark", mark)
        out = []
        while True:
            message = self.listener.read_reply()
            parts = message.split(b"\r\n")
            if parts[2] == b"pmessage":
                out.append(parts[6] + b" " + parts[8])
            elif parts[2] == b"message" and parts[6] == mark:
                return out


class Both:
    def __init__(self, ledis: LedisServer, real: RedisServer, resp: int) -> None:
        self.made: list[RawClient] = []
        self.port, self.unix = ledis.port, str(real.socket)
        self.ours = Side(self.connect()[0], self.connect()[0], resp)
        self.theirs = Side(self.connect()[1], self.connect()[1], resp)
        for side in self.sides:
            side.writer.call("HELLO", resp)
            side.writer.call("FLUSHALL")
        self.flags("KEAn")

    def connect(self) -> tuple[RawClient, RawClient]:
        """A new connection to each: (ledis, redis)."""
        pair = (RawClient(self.port), RawClient(unix=self.unix))
        self.made += pair
        return pair

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.ours, self.theirs

    def flags(self, flags: str) -> None:
        for side in self.sides:
            assert side.writer.call("CONFIG", "SET", "notify-keyspace-events", flags) == b"+OK\r\n"

    def call(self, cmd: Cmd) -> None:
        """Run one command on both; the replies must be the same."""
        theirs, ours = (side.writer.call(*cmd) for side in (self.theirs, self.ours))
        assert ours == theirs, f"{cmd!r}: redis {theirs!r} != ledis {ours!r}"

    def run(self, commands: Sequence[Cmd]) -> list[bytes]:
        """Run ``commands`` on both; the replies, and then the events since the last time,
        must be Redis's."""
        for cmd in commands:
            self.call(cmd)
        theirs_events, ours_events = self.theirs.events(), self.ours.events()
        assert ours_events == theirs_events
        return theirs_events

    def close(self) -> None:
        for side in self.sides:
            side.writer.call("CONFIG", "SET", "notify-keyspace-events", "")
            side.writer.call("FLUSHALL")
        for c in self.made:
            c.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def both(request: pytest.FixtureRequest, ledis_server: LedisServer,
         redis_server: RedisServer) -> Iterator[Both]:
    b = Both(ledis_server, redis_server, request.param)
    yield b
    b.close()


def test_events_inside_multi_exec(both: Both) -> None:
    events = both.run([
        ("MULTI",), ("LPUSH", "l", "a"), ("RPUSH", "l", "b"), ("LPOP", "l"), ("RPOP", "l"),
        ("SET", "s", "1", "EX", "100"), ("INCR", "s"), ("RENAME", "s", "t"), ("EXEC",),
    ])
    assert b"__keyevent@0__:del l" in events and b"__keyevent@0__:rename_to t" in events


def test_a_queued_error_announces_nothing(both: Both) -> None:
    assert both.run([("MULTI",), ("SET", "k", "v"), ("NOSUCH",), ("EXEC",)]) == []


def test_expired_lazily_and_then_created_again(both: Both) -> None:
    """One key at a time (which of two keys an active sweep finds first is not defined); the
    events are compared once, after the expiry, so whichever path finds the key first (a
    command or the active sweep) the stream is the same."""
    for setup, after, event in (
        (("SET", "k", "v"), ("SET", "k", "again"), b"set"),
        (("HSET", "h", "f", "v"), ("HSET", "h", "g", "v"), b"hset"),
    ):
        key = setup[1].encode()
        both.call(setup)
        both.call(("PEXPIRE", key, "20"))
        time.sleep(0.1)  # its time has run out on both
        events = both.run([("EXISTS", key), after])
        assert [e.split(b":", 1)[1] for e in events if e.startswith(b"__keyevent")] == [
            b"new " + key, event + b" " + key, b"expire " + key, b"expired " + key,
            b"new " + key, event + b" " + key,
        ]


def test_expired_by_the_active_sweep(ledis_server: LedisServer) -> None:
    """Nobody reads the key: the background sweep expires it and announces it."""
    admin, listener = RawClient(ledis_server.port), RawClient(ledis_server.port)
    try:
        admin.call("FLUSHALL")
        admin.call("CONFIG", "SET", "notify-keyspace-events", "Ex")
        listener.call("SUBSCRIBE", "__keyevent@0__:expired")
        admin.call("SET", "soon", "v", "PX", "30")
        assert listener.read_reply() == (
            b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$4\r\nsoon\r\n"
        )
    finally:
        admin.call("CONFIG", "SET", "notify-keyspace-events", "")
        admin.close()
        listener.close()


def test_a_past_expiry_stores_the_key_until_it_is_found_expired(both: Both) -> None:
    both.run([("SET", "k", "v", "EXAT", "1"), ("GETEX", "k"), ("SET", "j", "v"),
              ("GETEX", "j", "PXAT", "1"), ("EXISTS", "j")])


def test_other_databases(both: Both) -> None:
    both.run([
        ("RPUSH", "q", "1", "2"), ("MOVE", "q", "1"), ("SELECT", "1"), ("COPY", "q", "r", "DB", "0"),
        ("RENAME", "q", "r"), ("SELECT", "0"), ("SWAPDB", "0", "1"), ("DEL", "q", "r"),
        ("FLUSHALL",),
    ])


def test_a_served_blocked_client_announces_its_pop(both: Both) -> None:
    waiters = both.connect()
    for w in waiters:
        w.send(b"*6\r\n$6\r\nBLMOVE\r\n$3\r\nsrc\r\n$3\r\ndst\r\n$4\r\nLEFT\r\n$5\r\nRIGHT"
               b"\r\n$1\r\n0\r\n")
    for side in both.sides:
        wait_until(lambda s=side: b"blocked_clients:1" in s.writer.call("INFO", "clients"),
                   "the client to block")
    events = both.run([("RPUSH", "src", "x")])
    for w in waiters:
        assert w.read_reply() == b"$1\r\nx\r\n"
    assert events[-4:] == [b"__keyspace@0__:src lpop", b"__keyevent@0__:lpop src",
                           b"__keyspace@0__:src del", b"__keyevent@0__:del src"]


def test_keymiss_and_the_flags_as_redis_prints_them(both: Both) -> None:
    both.flags("Km")
    both.run([("GET", "nope"), ("MGET", "a", "b"), ("HGET", "h", "f"), ("SET", "k", "v"),
              ("GET", "k"), ("EXISTS", "x", "k")])
    for flags in ("KEAn", "Kg", "Ksmn", "Elz$h", "AKE", "gxE", "tdK", ""):
        both.flags(flags)
        both.run([("CONFIG", "GET", "notify-keyspace-events")])


def test_a_resp3_client_gets_its_own_events_before_its_reply(ledis_server: LedisServer,
                                                            redis_server: RedisServer) -> None:
    seen = []
    for c in (RawClient(ledis_server.port), RawClient(unix=str(redis_server.socket))):
        try:
            c.call("HELLO", 3)
            c.call("FLUSHALL")
            c.call("CONFIG", "SET", "notify-keyspace-events", "K$")
            c.call("SUBSCRIBE", "__keyspace@0__:k")
            c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
            seen.append((c.read_reply(), c.read_reply()))
            c.call("CONFIG", "SET", "notify-keyspace-events", "")
            c.call("DEL", "k")
        finally:
            c.close()
    assert seen[0] == seen[1]
    assert seen[0][1] == b"+OK\r\n"


# --- LedisDB's own commands (docs/notifications.md) ---------------------------------------------

LEDIS_EVENTS: list[tuple[Cmd, list[bytes]]] = [
    (("RPUSH", "l", "a", "b", "c"), [b"new l", b"rpush l"]),
    (("LTRIM_FRONT", "l", "1"), [b"ltrim l"]),
    (("LEXPIRE", "l", "100"), [b"expire l"]),
    (("LPERSIST", "l"), [b"persist l"]),
    (("LTRIM_BACK", "l", "5"), [b"ltrim l", b"del l"]),
    (("HSET", "h", "f", "v"), [b"new h", b"hset h"]),
    (("HEXPIREAT", "h", "1"), [b"del h"]),
    (("SADD", "s", "m"), [b"new s", b"sadd s"]),
    (("SCLEAR", "s"), [b"del s"]),
    (("ZADD", "z", "1", "m"), [b"new z", b"zadd z"]),
    (("ZMCLEAR", "z", "nope"), [b"del z"]),
    (("LCLEAR", "nope"), []),
    (("RPUSH", "x", "2", "1"), [b"new x", b"rpush x"]),
    (("XLSORT", "x", "STORE", "y"), [b"new y", b"sortstore y"]),
]


def test_ledis_commands_announce_their_redis_counterparts(ledis_server: LedisServer) -> None:
    writer, listener = RawClient(ledis_server.port), RawClient(ledis_server.port)
    try:
        writer.call("FLUSHALL")
        writer.call("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        side = Side(writer, listener, 2)
        for cmd, expected in LEDIS_EVENTS:
            assert not writer.call(*cmd).startswith(b"-")
            events = [e for e in side.events() if e.startswith(b"__keyevent@0__:")]
            assert [e.split(b":", 1)[1] for e in events] == expected, cmd
    finally:
        writer.call("CONFIG", "SET", "notify-keyspace-events", "")
        writer.call("FLUSHALL")
        writer.close()
        listener.close()

