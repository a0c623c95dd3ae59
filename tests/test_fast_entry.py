"""The fast entry (Client.data_received, Gate.plain): a read from a client in its plain state
goes straight to the C lane, and what the lane does not take goes on down the Python path.

Held here to the Python path (a server with ``LEDIS_FASTLANE=0``): the same pipelines, cut at
random places, give the same replies, the same data, the same statistics; and to the rules of
docs/server-loop.md: a write's reply waits for its batch, MULTI, CLIENT PAUSE, AUTH and the
output limits apply as they do on the Python path.
"""

from __future__ import annotations

import gc
import re
import socket
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.core.resp import encode_command
from stack.server.client import Client
from stack.server.config import Config
from stack.server.server import Server

from .inprocess import InProcess
from .respclient import RawClient
from .servers import LedisServer
from .test_writer import HeldWriter, _pending

Cmd = Sequence[str]
Twin = tuple[LedisServer, redis.Redis]


# --- the lane against the Python path ----------------------------------------------------------


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Twin]]:
    """Two servers of their own, each with a connection that observes it: with the lane, and
    with every command on the Python path."""
    lane = LedisServer(tmp_path_factory.mktemp("entry-lane")).start()
    python = LedisServer(tmp_path_factory.mktemp("entry-python"), env={"LEDIS_FASTLANE": "0"})
    python.start()
    observers = [redis.Redis(port=s.port, single_connection_client=True) for s in (lane, python)]
    yield list(zip((lane, python), observers, strict=True))
    for o in observers:
        o.close()
    assert lane.stop() == 0, lane.log()
    assert python.stop() == 0, python.log()


KEYS = st.sampled_from(["a", "b", "l", "h", "s", "z"])
VALUES = st.sampled_from(["1", "x", "-5", "9223372036854775807", "", "vvvvv", "007"])
LANE = st.one_of(
    st.tuples(st.just("GET"), KEYS),
    st.tuples(st.sampled_from(["SET", "set"]), KEYS, VALUES),
    st.tuples(st.sampled_from(["INCR", "DECR"]), KEYS),
    st.tuples(st.just("MSET"), KEYS, VALUES, KEYS, VALUES),
    st.tuples(st.sampled_from(["LPUSH", "RPUSH", "SADD"]), KEYS, VALUES),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), KEYS),
    st.tuples(st.just("HSET"), KEYS, VALUES, VALUES),
    st.tuples(st.just("ZADD"), KEYS, st.sampled_from(["1", "-2.5", "7"]), VALUES),
    st.tuples(st.just("LRANGE"), KEYS, st.just("0"), st.sampled_from(["-1", "1"])),
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX", "zpopmin"]), KEYS),
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), KEYS, st.sampled_from(["1", "2"])),
)
SLOW = st.one_of(
    st.tuples(st.just("PING")),
    st.tuples(st.sampled_from(["TYPE", "DEL", "EXISTS", "TTL", "HGETALL", "SMEMBERS"]), KEYS),
    st.tuples(st.just("EXPIRE"), KEYS, st.just("1000")),
    st.tuples(st.just("SET"), KEYS, VALUES, st.just("NX")),
    st.tuples(st.just("APPEND"), KEYS, VALUES),
    st.tuples(st.just("HGET"), KEYS, VALUES),
    st.tuples(st.sampled_from(["MULTI", "EXEC", "DISCARD", "UNWATCH"])),
    st.tuples(st.just("WATCH"), KEYS),
    st.tuples(st.just("SELECT"), st.sampled_from(["0", "1"])),
    st.tuples(st.just("HELLO"), st.sampled_from(["2", "3"])),
)
COMMANDS = st.one_of(LANE, LANE, SLOW)
RESET: list[Cmd] = [("DISCARD",), ("UNWATCH",), ("HELLO", "2"), ("SELECT", "0")]


def _stats(r: redis.Redis, client_id: int) -> dict[str, object]:
    """What the lane must keep as the Python path does: data, counters, commandstats (without
    times), the client's last command (read while it is connected; its bytes in and out:
    test_client_counters_follow_the_entry)."""
    info = r.info("all")
    cmdstats = {
        k: {f: v for f, v in info[k].items() if "usec" not in f}
        for k in info
        if k.startswith("cmdstat_") and k not in ("cmdstat_info", "cmdstat_client|list")
    }
    (me,) = r.client_list(client_id=[client_id])
    stats = {
        "hits": info["keyspace_hits"],
        "misses": info["keyspace_misses"],
        "cmdstats": cmdstats,
        "cmd": me["cmd"],
        "data": [_contents(r, db) for db in (0, 1)],
    }
    r.execute_command("SELECT", 0)
    return stats


READ_ALL: dict[
    object, tuple[object, ...]
] = {  # each type's whole value, in an order that does not depend on the server
    b"string": ("GET",),
    b"list": ("LRANGE", 0, -1),
    b"hash": ("HGETALL",),
    b"set": ("SMEMBERS",),
    b"zset": ("ZRANGE", 0, -1, "WITHSCORES"),
}


def _contents(r: redis.Redis, db: int) -> dict[object, object]:
    """Every key of the database: its type, value and whether it expires."""
    r.execute_command("SELECT", db)
    out: dict[object, object] = {}
    for key in r.scan_iter():
        kind = r.type(key)
        command, *rest = READ_ALL[kind]
        value = r.execute_command(command, key, *rest)
        if isinstance(value, (dict, set)):
            value = sorted(value.items() if isinstance(value, dict) else value)
        out[key] = (kind, value, r.ttl(key) > 0)
    return out


def _run_and_observe(
    server: LedisServer, observer: redis.Redis, payload: bytes, count: int, cuts: Sequence[int]
) -> tuple[list[bytes], dict[str, object]]:
    """Send the payload cut at ``cuts`` on a new connection (after FLUSHALL and CONFIG
    RESETSTAT); its replies, and _stats while it is still connected."""
    observer.flushall()
    observer.config_resetstat()
    c = RawClient(server.port)
    try:
        client_id = int(c.call("CLIENT", "ID")[1:-2])
        start = 0
        for cut in sorted({*cuts, len(payload)}):
            c.send(payload[start:cut])
            start = cut
        replies = [c.read_reply() for _ in range(count)]
        return replies, _stats(observer, client_id)
    finally:
        c.sock.close()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(COMMANDS, min_size=1, max_size=40), st.data())
def test_pipelines_cut_anywhere_match_the_python_path(
    twins: list[Twin], commands: list[Cmd], data: st.DataObject
) -> None:
    """Pipelines mixing the lane's commands and the Python path's (MULTI, WATCH, SELECT,
    HELLO 3 among them), arriving in pieces cut anywhere: the same replies, data, counters,
    commandstats and bytes in and out as with every command on the Python path."""
    commands = [*commands, *RESET]
    payload = b"".join(encode_command(c) for c in commands)
    cuts = data.draw(st.lists(st.integers(1, len(payload)), max_size=6))
    results = [_run_and_observe(s, o, payload, len(commands), cuts) for s, o in twins]
    (lane_replies, lane_stats), (python_replies, python_stats) = results
    for cmd, ours, theirs in zip(commands, lane_replies, python_replies, strict=True):
        assert ours == theirs, f"{cmd!r}: lane {ours!r} != python path {theirs!r}"
    assert lane_stats == python_stats


def test_one_command_per_read_matches_the_python_path(twins: list[Twin]) -> None:
    """redis-benchmark's -P 1 shape: one command per read, each answered before the next."""
    commands: list[Cmd] = [
        ("SET", "k", "1"), ("GET", "k"), ("INCR", "k"), ("INCR", "k"), ("GET", "nokey"),
        ("LPUSH", "l", "a"), ("LPUSH", "l", "b"), ("RPOP", "l"), ("LRANGE", "l", "0", "-1"),
        ("HSET", "h", "f", "v"), ("HSET", "h", "g", "w"), ("SADD", "s", "m"), ("SADD", "s", "m"),
        ("MSET", "x", "1", "y", "2"), ("INCR", "x"), ("SET", "big", "v" * 5000), ("GET", "big"),
        ("GET", "h"), ("INCR", "big"), ("ZADD", "z", "1", "m"), ("ZADD", "z", "2", "n"),
    ]  # fmt: skip
    results = []
    for server, observer in twins:
        observer.flushall()
        observer.config_resetstat()
        c = RawClient(server.port)
        try:
            client_id = int(c.call("CLIENT", "ID")[1:-2])
            replies = [c.call(*cmd) for cmd in commands]
            results.append((replies, _stats(observer, client_id)))
        finally:
            c.sock.close()
    assert results[0] == results[1]


def test_pops_match_the_python_path_but_for_the_random_pick(twins: list[Twin]) -> None:
    """SPOP and ZPOPMIN/ZPOPMAX in the lane (a collection that keeps a member, a missing key)
    and on the Python path (the last member, a count, another type, a TTL), pipelined with
    the other commands: the same replies (SPOP's members as a set: the pick is random), data,
    counters and commandstats."""
    members = [f"m{i:03d}" for i in range(150)]  # over 128: a pick of a few seeks
    commands: list[Cmd] = [
        ("SADD", "s", *members), ("ZADD", "z", "1", "a", "2", "b", "3", "c"),
        ("SET", "str", "x"), ("SADD", "u", "p"),
        *[("SPOP", "s")] * 149, ("SPOP", "s"), ("SPOP", "s"), ("SPOP", "nos"),
        ("SPOP", "str"), ("SPOP", "u", "5"),
        ("ZADD", "tz", "1", "a", "2", "b", "3", "c"), ("EXPIRE", "tz", "1000"), ("ZPOPMIN", "tz"),
        ("ZPOPMAX", "tz"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z"), ("ZPOPMIN", "z"), ("ZPOPMIN", "z"),
        ("ZPOPMIN", "str"),
        ("HELLO", "3"), ("SPOP", "nos"), ("ZADD", "z", "1.5", "d", "-1", "e"), ("ZPOPMIN", "z"),
        ("ZPOPMAX", "z"), ("ZPOPMIN", "noz"), *RESET,
    ]  # fmt: skip
    payload = b"".join(encode_command(c) for c in commands)
    results = [_run_and_observe(s, o, payload, len(commands), []) for s, o in twins]
    (lane_replies, lane_stats), (python_replies, python_stats) = results
    picks = slice(4, 4 + 151)
    assert sorted(lane_replies[picks]) == sorted(python_replies[picks])
    assert sorted(lane_replies[picks])[1:] == [b"$4\r\n%s\r\n" % m.encode() for m in members]
    assert lane_replies[:4] + lane_replies[155:] == python_replies[:4] + python_replies[155:]
    assert lane_stats == python_stats


# --- in a server of this process: which path a read takes ---------------------------------------


class Spy:
    """Counts the reads the fast entry takes (the gate found the client plain, so that
    data_received ran the lane on the bytes as they came). Install it before clients
    connect: each takes the gate's predicate when it is made."""

    def __init__(self, server: Server) -> None:
        self.taken = 0
        gate = server.gate
        self.on = server.lane.on  # LEDIS_FASTLANE=0: no entry, everything on the Python path
        plain = gate.plain

        def counted(client: Client) -> bool:
            verdict = plain(client)
            self.taken += verdict
            return verdict

        gate.plain = counted  # type: ignore[method-assign]

    def took(self, n: int) -> bool:
        """Whether the entry took n reads so far (none without the lane)."""
        return self.taken == (n if self.on else 0)


@pytest.fixture
def inproc(tmp_path: Path) -> Iterator[Callable[..., tuple[Server, Spy]]]:
    procs: list[InProcess] = []

    def start(**config: object) -> tuple[Server, Spy]:
        proc = InProcess(tmp_path / f"data{len(procs)}")
        values: dict[str, object] = {"port": 0, "dir": str(proc.config["dir"])}
        proc.config = Config({**values, "bind": "127.0.0.1", **config})  # type: ignore[dict-item]
        procs.append(proc)
        server = proc.start()
        return server, Spy(server)

    yield start
    for p in procs:
        p.stop()


def test_plain_reads_take_the_entry_and_others_do_not(
    inproc: Callable[..., tuple[Server, Spy]],
) -> None:
    server, spy = inproc()
    c = RawClient(server.port)
    try:
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("GET", "k") == b"$1\r\nv\r\n"
        assert spy.took(2)  # the entry is what these tests hold to the Python path
        # A transaction: the lane's commands are queued, not run.
        c.send(b"".join(encode_command(x) for x in (("MULTI",), ("SET", "k", "w"), ("GET", "k"))))
        assert [c.read_reply() for _ in range(3)] == [b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n"]
        taken = spy.taken
        assert c.call("INCR", "n") == b"+QUEUED\r\n"
        assert spy.took(taken)
        assert c.call("EXEC") == b"*3\r\n+OK\r\n$1\r\nw\r\n:1\r\n"
        assert c.call("GET", "k") == b"$1\r\nw\r\n"
        assert spy.took(taken + 1)
    finally:
        c.sock.close()


def test_auth_comes_first(inproc: Callable[..., tuple[Server, Spy]]) -> None:
    server, spy = inproc(requirepass="pw")
    c = RawClient(server.port)
    try:
        assert c.call("SET", "k", "v").startswith(b"-NOAUTH")
        assert c.call("GET", "k").startswith(b"-NOAUTH")
        assert spy.took(0)
        assert c.call("AUTH", "pw") == b"+OK\r\n"
        assert c.call("SET", "k", "v") == b"+OK\r\n"
        assert c.call("GET", "k") == b"$1\r\nv\r\n"
        assert spy.took(2)
    finally:
        c.sock.close()


def test_client_pause_holds_the_lane_s_writes(inproc: Callable[..., tuple[Server, Spy]]) -> None:
    server, spy = inproc()
    a, b, other = RawClient(server.port), RawClient(server.port), RawClient(server.port)
    try:
        assert b.call("SET", "k", "old") == b"+OK\r\n"
        assert a.call("CLIENT", "PAUSE", "100000", "WRITE") == b"+OK\r\n"
        taken = spy.taken
        b.send(encode_command(("SET", "k", "new")) + encode_command(("GET", "k")))
        assert other.call("PING") == b"+PONG\r\n"  # the server has read b's commands
        assert other.call("GET", "k") == b"$3\r\nold\r\n"  # reads run meanwhile
        assert _pending(b.sock) == b""  # the write waits, and the read behind it
        assert spy.took(taken)
        assert a.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
        assert b.read_reply() == b"+OK\r\n"
        assert b.read_reply() == b"$3\r\nnew\r\n"
    finally:
        for c in (a, b, other):
            c.sock.close()


def test_output_limits_close_a_client_the_lane_answers(
    inproc: Callable[..., tuple[Server, Spy]],
) -> None:
    """A pipeline of GETs whose replies are over the normal class's hard limit, in one read:
    the lane answers them all in one go, and the client is closed with nothing of them sent
    (as Redis does). The Python path (LEDIS_FASTLANE=0) ends its turn at the limit instead and
    sends each turn's replies (beyond the 16 KB reply buffer they stay under the limit), so
    a client that reads gets them all: that difference is older than the entry."""
    server, spy = inproc()
    r = redis.Redis(port=server.port)
    try:
        r.config_set("client-output-buffer-limit", "normal 65536 0 0")
        r.set("v", "x" * 4000)
        c = RawClient(server.port)
        taken = spy.taken
        c.send(encode_command(("GET", "v")) * 40)  # 160 KB of replies, one read
        whole = 40 * len(b"$4000\r\n" + b"x" * 4000 + b"\r\n")
        c.sock.settimeout(30)
        received = b""
        try:  # until the server closes, or everything came
            while len(received) < whole and (chunk := c.sock.recv(1 << 16)):
                received += chunk
        except ConnectionResetError:
            pass
        c.sock.close()
        assert spy.took(taken + 1)
        closed = r.info("stats")["ledis_output_limit_disconnections"]
        assert (len(received), closed) == ((0, 1) if spy.on else (whole, 0))
    finally:
        r.close()


def test_a_write_s_reply_waits_for_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry keeps the commit rule: a write's reply, and a read of it, go out only once
    its batch is written; a read of other data goes out at once. (The writer thread is held
    as in test_writer.py; the server runs in this process, so the test knows when it has
    read a command.)"""
    writer = HeldWriter(monkeypatch)
    writer.release.set()
    proc = InProcess(tmp_path / "data")
    server = proc.start()
    spy = Spy(server)
    a, b, c, d = (RawClient(server.port) for _ in range(4))

    def served(sock: RawClient, *commands: Cmd) -> None:
        """Send the commands in one write and wait until the server has run them (their
        replies may wait)."""
        client = server.clients[ids[sock]]
        payload = b"".join(encode_command(command) for command in commands)
        expected = client.net_in + len(payload)
        sock.send(payload)
        deadline = time.monotonic() + 30
        while client.net_in < expected:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.call(lambda: None)  # data_received has returned

    try:
        ids = {x: int(x.call("CLIENT", "ID")[1:-2]) for x in (a, b, c, d)}
        for x in (a, b, c, d):
            assert x.call("SET", "old", "committed") == b"+OK\r\n"
        writer.release.clear()
        server.engine.threaded_until = float("inf")  # as after a slow write: the thread writes
        served(a, ("SET", "new", "v"))
        assert writer.writing.wait(30)  # its batch is with LevelDB, held there
        served(a, ("INCR", "n"))  # the next batch
        taken = spy.taken
        served(c, ("GET", "new"))  # the lane reads what is not written yet
        # ... and when the lane stops at a command of the Python path, in the same turn
        served(d, ("GET", "new"), ("PING",))
        assert spy.took(taken + 2)
        assert b.call("GET", "old") == b"$9\r\ncommitted\r\n"  # the lane: at once
        assert _pending(a.sock) == b""
        assert _pending(c.sock) == b""
        assert _pending(d.sock) == b""
        writer.release.set()
        assert a.read_reply() == b"+OK\r\n"
        assert a.read_reply() == b":1\r\n"
        assert c.read_reply() == b"$1\r\nv\r\n"
        assert d.read_reply() == b"$1\r\nv\r\n"
        assert d.read_reply() == b"+PONG\r\n"
    finally:
        writer.release.set()
        for x in (a, b, c, d):
            x.sock.close()
        proc.stop()


def test_a_read_cut_inside_a_command_is_joined(
    inproc: Callable[..., tuple[Server, Spy]],
) -> None:
    """The lane stops at a command cut by the end of a read; the rest arrives and the
    command runs once, whole, on the Python path's buffer."""
    server, _spy = inproc()
    c = RawClient(server.port)
    try:
        payload = encode_command(("SET", "k", "a" * 100)) + encode_command(("GET", "k"))
        for cut in (1, 5, 20, 60, len(payload) - 3):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(payload[:cut])
            c.call("PING")  # the server read the first part
            sock.sendall(payload[cut:])
            reader = RawClient.__new__(RawClient)
            reader.sock, reader.buf = sock, b""
            assert reader.read_reply() == b"+OK\r\n"
            assert reader.read_reply() == b"$100\r\n" + b"a" * 100 + b"\r\n"
            sock.close()
        info = c.call("INFO", "commandstats").decode()
        assert re.search(r"cmdstat_set:calls=5,", info), info
    finally:
        c.sock.close()


def test_client_counters_follow_the_entry(inproc: Callable[..., tuple[Server, Spy]]) -> None:
    """net_in, net_out, last_interaction and the last command of a client the entry serves
    (INFO's total_net_*, CLIENT LIST's idle and cmd)."""
    server, spy = inproc()
    c = RawClient(server.port)
    try:
        sent = received = 0
        for cmd in (("SET", "k", "1"), ("INCR", "k"), ("GET", "k"), ("LPUSH", "l", "a")):
            payload = encode_command(cmd)
            reply = c.call(*cmd)
            sent += len(payload)
            received += len(reply)
        c.send(encode_command(("GET", "k")) * 3)
        received += sum(len(c.read_reply()) for _ in range(3))
        sent += 3 * len(encode_command(("GET", "k")))
        assert spy.took(5)
        (client,) = [x for x in server.clients.values() if x.net_in]
        assert (client.net_in, client.net_out) == (sent + 0, received)
        assert client.last_command == "get"
        assert client.last_interaction > client.created
    finally:
        c.sock.close()


def test_a_client_served_by_the_entry_is_freed(inproc: Callable[..., tuple[Server, Spy]]) -> None:
    """The entry's C base (``_fastlane.Reader``) holds the gate's predicate, the server's
    after_commands and the lane's context: a closed client is still collected with them."""
    server, spy = inproc()
    c = RawClient(server.port)
    assert c.call("SET", "k", "v") == b"+OK\r\n"
    assert c.call("GET", "k") == b"$1\r\nv\r\n"
    assert spy.took(2)
    (client,) = server.clients.values()
    ref = weakref.ref(client)
    del client
    c.sock.close()
    deadline = time.monotonic() + 30
    while server.clients and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.clients
    while ref() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert ref() is None
