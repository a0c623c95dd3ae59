"""The C fast lane (stack/server/_fastlane.c): where it stops, and what it leaves behind.

Its replies are held to Redis's by the differential tests (pipelined and one by one); here the
module itself is driven with real dicts, and a real server shows that the statistics and
state the Python path keeps are kept by the lane too.
"""

from __future__ import annotations

import time

import hiredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.core.resp import Limits, RequestParser
from stack.core.slots import key_slot
from stack.server.fastlane import LANE_COMMANDS as LANE_OPS
from stack.server.storage.binlog import decode_record, loggable
from stack.server.storage.engine import CACHE_MAX_RECORD, write_pending_py
from stack.server.storage.strings import chunked_record

from .respclient import RawClient, encode_command
from .servers import LedisServer

fastlane = pytest.importorskip("stack.server._fastlane")

PREFIX = b"\x01\x00\x00\x00\x07"
N_CALLS = len(LANE_OPS)  # run() counts the calls of each of the lane's commands
LRANGE = LANE_OPS.index(b"lrange")


def mkey(key: bytes) -> bytes:
    return PREFIX + key_slot(key).to_bytes(2, "big") + key


def pipeline(*commands: tuple[bytes | str, ...]) -> bytes:
    return b"".join(encode_command(c) for c in commands)


class Lane:
    """The module with the server's dicts, as FastLane.run calls it."""

    def __init__(self, writes_ok: bool = True, resp3: bool = False) -> None:
        self.cache: dict[bytes, bytes | None] = {}
        self.cache_old: dict[bytes, bytes | None] = {}
        self.pending: dict[bytes, bytes | None] = {}
        self.access = fastlane.AccessTimes(1024)
        self.waited: dict[bytes, object] = {}
        self.writes_ok = writes_ok
        self.resp3 = resp3

    def run(self, buf: bytes, pos: int = 0) -> tuple[bytes, int, int, int, int, int, int, int]:
        """As the module's, with the calls per command spread out: (replies, pos, gets, sets,
        hits, misses, new_keys, last); INCR, DECR and MSET count as sets."""
        replies, pos, calls, hits, misses, new_keys, last, _unwritten = fastlane.run(buf, pos, PREFIX, self.cache, self.cache_old, self.pending, self.access, 5.0,
                            self.waited, self.writes_ok, self.resp3, CACHE_MAX_RECORD - 1)
        gets, sets, incrs, decrs, msets, *collections = calls
        assert not any(collections)
        return replies, pos, gets, sets + incrs + decrs + msets, hits, misses, new_keys, last


def test_slot_is_redis_cluster_slot() -> None:
    for key in [b"123456789", b"{user1000}.following", b"a{}b{c}", b"{", b"}{x}", b"", b"\xff" * 40]:
        assert fastlane.slot(key) == key_slot(key)


def test_sets_then_gets_in_one_chunk() -> None:
    lane = Lane()
    buf = pipeline(("SET", "a", "1"), ("set", "{t}b", "x\r\ny"), ("GeT", "a"), ("get", "{t}b"))
    lane.cache[mkey(b"{t}b")] = None  # a known miss
    lane.cache[mkey(b"a")] = b"\x01old"
    replies, pos, gets, sets, hits, misses, new_keys, last = lane.run(buf)
    assert replies == b"+OK\r\n+OK\r\n$1\r\n1\r\n$4\r\nx\r\ny\r\n"
    assert (pos, gets, sets, hits, misses, new_keys, last) == (len(buf), 2, 2, 2, 0, 1, 1)
    assert lane.pending == {mkey(b"a"): b"\x011", mkey(b"{t}b"): b"\x01x\r\ny"}
    assert lane.cache == lane.pending
    assert (lane.access.get(mkey(b"a")), lane.access.get(mkey(b"{t}b")), len(lane.access)) == (
        5.0, 5.0, 2)


@pytest.mark.parametrize("resp3, nil", [(False, b"$-1\r\n"), (True, b"_\r\n")])
def test_known_miss_is_nil(resp3: bool, nil: bytes) -> None:
    lane = Lane(resp3=resp3)
    lane.pending[mkey(b"gone")] = None  # deleted in the pending batch
    replies, _pos, gets, _sets, hits, misses, _new, _last = lane.run(pipeline(("GET", "gone")))
    assert (replies, gets, hits, misses) == (nil, 1, 0, 1)
    assert len(lane.access) == 0


def stops_at(command: tuple[bytes | str, ...] | bytes, lane: Lane) -> None:
    """With ``k`` cached, the lane runs ``GET k`` and stops, changing nothing, at the start of
    ``command`` (given as arguments or as raw bytes)."""
    head = encode_command(("GET", "k"))
    lane.cache[mkey(b"k")] = b"\x01v"
    raw = command if isinstance(command, bytes) else encode_command(command)
    before = (dict(lane.cache), dict(lane.pending), len(lane.access))
    replies, pos, gets, sets, *_ = lane.run(head + raw + head)
    assert (replies, pos, gets, sets) == (b"$1\r\nv\r\n", len(head), 1, 0)
    assert lane.access.pop(mkey(b"k")) == 5.0
    assert (lane.cache, lane.pending, len(lane.access)) == before


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "k", "v", "NX"),  # options
        ("GETSET", "k", "v"),
        ("GET", "k", "extra"),
        ("PING",),
        ("GET", "uncached"),  # only LevelDB knows
        ("GET", "ttl"),
        ("GET", "hash"),
        ("SET", "ttl", "v"),  # the TTL must go from the expiry index: the Python path
        ("SET", "hash", "v"),  # a collection to reclaim
        ("SET", "waited", "v"),  # a client blocks on it
        ("SET", "big", "v" * CACHE_MAX_RECORD),
        ("SET", "k" * 5000, "v"),
        ("INCR", "ttl"),
        ("DECR", "waited"),
        ("INCR", "max"),  # overflow: the Python path answers the error
        ("DECR", "min"),
        ("INCR", "text"),
        ("INCR", "zero-led"),
        ("INCR", "minus-zero"),
        ("INCR", "plus"),
        ("INCR", "empty"),
        ("INCRBY", "k", "1"),
        ("MSET", "a", "1", "ttl", "2"),  # one key the lane cannot write: none are written
        ("MSET", "a", "1", "uncached", "2"),
        ("MSET", "a", "1", "waited", "2"),
        ("MSET", "a", "1", "big", "v" * CACHE_MAX_RECORD),
        ("MSET", "a", "1", "b"),  # wrong arity: the Python path answers
        ("MSET", *["x", "1"] * 65),  # long: the Python path
        ("GET", "chunked"),  # a string kept in chunks (type 6): never the lane's
        ("SET", "chunked", "v"),  # its chunks are retired by the Python path
        ("INCR", "chunked"),
        ("MSET", "a", "1", "chunked", "2"),
        ("GET", "chunked-ttl"),
    ],
)
def test_stops_where_the_python_path_must_decide(command: tuple[str, ...]) -> None:
    lane = Lane()
    lane.cache[mkey(b"ttl")] = b"\x81" + (1).to_bytes(8, "big") + b"v"
    lane.cache[mkey(b"hash")] = b"\x02" + bytes(16)
    lane.waited[mkey(b"waited")] = object()
    values = {"max": b"9223372036854775807", "min": b"-9223372036854775808", "text": b"1.5",
              "zero-led": b"07", "minus-zero": b"-0", "plus": b"+1", "empty": b""}
    for name, value in values.items():
        lane.cache[mkey(name.encode())] = b"\x01" + value
    for name in ("big", "k" * 5000):
        lane.cache[mkey(name.encode())] = None
    lane.cache[mkey(b"chunked")] = chunked_record(7, 5000)
    lane.cache[mkey(b"chunked-ttl")] = chunked_record(7, 5000, expire_ms=2**40)
    stops_at(command, lane)


def test_load_reads_what_the_cache_does_not_hold() -> None:
    lane = Lane()
    stored = {mkey(b"disk"): b"\x01on disk", mkey(b"ttl"): b"\x81" + bytes(8) + b"v"}
    asked: list[bytes] = []

    def load(key: bytes) -> bytes | None:
        asked.append(key)
        return stored.get(key)

    buf = pipeline(("GET", "disk"), ("SET", "new", "1"), ("GET", "absent"), ("INCR", "n"))
    replies, pos, calls, hits, misses, new_keys, last, _unwritten = fastlane.run(
        buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, True,
        False, 511, load, 0.0)
    assert replies == b"$7\r\non disk\r\n+OK\r\n$-1\r\n:1\r\n"
    assert (pos, calls, hits, misses, new_keys, last) == (len(buf), (2, 1, 1, 0, 0) + (0,) * (N_CALLS - 5), 1, 1, 2, 3)
    assert asked == [mkey(b"disk"), mkey(b"new"), mkey(b"absent"), mkey(b"n")]
    # What load returns is used as the cache's record would be: a TTL is the Python path's.
    ttl = pipeline(("GET", "ttl"))
    replies, pos, *_ = fastlane.run(ttl, 0, PREFIX, {}, {}, {}, lane.access, 1.0, {}, True,
                                    False, 511, load, 0.0)
    assert (replies, pos) == (b"", 0)


def test_load_errors_reach_the_caller() -> None:
    def load(key: bytes) -> bytes | None:
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        fastlane.run(pipeline(("GET", "k")), 0, PREFIX, {}, {}, {}, fastlane.AccessTimes(64),
                     1.0, {}, True, False, 511, load, 0.0)


def test_deadline_ends_the_run_between_commands() -> None:
    lane = Lane()
    lane.cache[mkey(b"k")] = b"\x01v"
    one = encode_command(("GET", "k"))
    buf = one * 100
    args = (buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {},
            True, False, 511, None)
    replies, pos, calls, *_ = fastlane.run(*args, time.monotonic() + 3600)
    assert (pos, calls[0]) == (len(buf), 100)
    # A deadline already passed: the clock is read every 16 commands, so 15 run.
    replies, pos, calls, *_ = fastlane.run(*args, time.monotonic() - 1)
    assert (replies, pos, calls[0]) == (b"$1\r\nv\r\n" * 15, len(one) * 15, 15)


@pytest.mark.parametrize(
    "raw",
    [
        b"*3\r\n$3\r\nSET\r\n$03\r\nabc\r\n$1\r\nv\r\n",  # leading zero: Redis refuses it
        b"*3\r\n$3\r\nSET\r\n$+3\r\nabc\r\n$1\r\nv\r\n",
        b"*03\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nkk\r\n",  # declared length does not match
        b"*2\r\n$3\r\nGET\r\n$1\r\nk",  # incomplete
        b"*2\r\n$3\r\nGET\r\n",
        b"GET k\r\n",  # inline
        b"*2\r\n$3\r\nGET\r\n$-1\r\n",
    ],
)
def test_unusual_or_incomplete_input_is_left_to_the_parser(raw: bytes) -> None:
    lane = Lane()
    lane.cache[mkey(b"abc")] = None
    stops_at(raw, lane)


@pytest.mark.parametrize("command", [("SET", "k", "w"), ("INCR", "n"), ("decr", "n")])
def test_writes_not_allowed_stop_at_writes(command: tuple[str, ...]) -> None:
    stops_at(command, Lane(writes_ok=False))


def test_incr_and_decr() -> None:
    lane = Lane()
    lane.cache[mkey(b"n")] = b"\x019"
    lane.cache[mkey(b"big")] = b"\x019223372036854775806"
    lane.cache[mkey(b"new")] = None
    buf = pipeline(("INCR", "n"), ("incr", "big"), ("DECR", "new"), ("decr", "new"),
                   ("INCR", "n"))
    replies, pos, calls, hits, misses, new_keys, last, _unwritten = fastlane.run(
        buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, True, False,
        511)
    assert replies == b":10\r\n:9223372036854775807\r\n:-1\r\n:-2\r\n:11\r\n"
    assert (pos, calls, hits, misses, new_keys, last) == (len(buf), (0, 0, 3, 2, 0) + (0,) * (N_CALLS - 5), 0, 0, 1, 3)
    assert lane.pending == {mkey(b"n"): b"\x0111", mkey(b"big"): b"\x019223372036854775807",
                            mkey(b"new"): b"\x01-2"}


def test_mset() -> None:
    lane = Lane()
    lane.cache[mkey(b"old")] = b"\x01v"
    lane.cache[mkey(b"new")] = None
    lane.cache[mkey(b"x")] = None
    buf = pipeline(("MSET", "old", "1", "new", "2", "new", "3"), ("mset", "old", "4"),
                   ("MSET", "x", "5", "old", "6"))  # a key given twice, then none
    replies, pos, _gets, sets, hits, misses, new_keys, last = lane.run(buf)
    assert (replies, pos, sets, hits, misses, new_keys, last) == (
        b"+OK\r\n" * 3, len(buf), 3, 0, 0, 2, 5)
    assert lane.pending == {mkey(b"old"): b"\x016", mkey(b"new"): b"\x013", mkey(b"x"): b"\x015"}


def test_old_generation_is_read_and_moves_back() -> None:
    lane = Lane()
    lane.cache_old[mkey(b"k")] = b"\x01old"
    lane.cache_old[mkey(b"gone")] = None
    lane.pending[mkey(b"p")] = b"\x01pending"
    lane.cache[mkey(b"y")] = b"\x01young"
    lane.cache_old[mkey(b"y")] = b"\x01stale"
    buf = pipeline(("GET", "k"), ("GET", "gone"), ("GET", "p"), ("GET", "y"))
    replies, *_ = lane.run(buf)
    assert replies == b"$3\r\nold\r\n$-1\r\n$7\r\npending\r\n$5\r\nyoung\r\n"
    assert lane.cache[mkey(b"k")] == b"\x01old" and lane.cache[mkey(b"gone")] is None
    assert mkey(b"p") not in lane.cache  # pending records are not copied


def test_starts_at_the_given_position() -> None:
    lane = Lane()
    lane.cache[mkey(b"k")] = b"\x01v"
    skip = encode_command(("PING",))
    buf = skip + encode_command(("GET", "k"))
    replies, pos, gets, *_ = lane.run(buf, len(skip))
    assert (replies, pos, gets) == (b"$1\r\nv\r\n", len(buf), 1)


# -- on a real server -----------------------------------------------------------------------


def test_statistics_match_the_python_path(
    ledis_server: LedisServer, ledis_server_python: LedisServer
) -> None:
    """The same pipelined traffic gives the same counts with and without the lane."""
    stats = []
    for server in (ledis_server, ledis_server_python):
        c = server.client()
        c.flushall()
        c.config_resetstat()
        raw = RawClient(server.port)
        cmds = [("SET", f"k{i % 30}", "v") for i in range(60)] + [
            ("GET", f"k{i}") for i in range(40)
        ] + [("INCR" if i % 3 else "DECR", f"n{i % 5}") for i in range(30)] + [
            ("MSET", f"k{i}", "w", f"m{i}", "x") for i in range(28, 33)
        ]
        raw.send(pipeline(*cmds))
        for _ in cmds:
            raw.read_reply()
        raw.close()
        info = c.info("all")
        stats.append(
            (
                info["cmdstat_set"]["calls"],
                info["cmdstat_get"]["calls"],
                info["cmdstat_incr"]["calls"],
                info["cmdstat_decr"]["calls"],
                info["cmdstat_mset"]["calls"],
                c.get("n1"),
                info["keyspace_hits"],
                info["keyspace_misses"],
                c.dbsize(),
                c.object("idletime", "k3"),
            )
        )
        c.close()
    assert stats[0] == stats[1] == (60, 40, 20, 10, 5, b"2", 30, 10, 43, 0)


def test_slowlog_of_every_command_sees_lane_commands(r: redis.Redis) -> None:
    r.config_set("slowlog-log-slower-than", 0)
    try:
        r.slowlog_reset()
        r.set("a", "1")
        r.get("a")
        names = [e["command"].split()[0] for e in r.slowlog_get(10)]
        assert b"SET" in names and b"GET" in names
    finally:
        r.config_set("slowlog-log-slower-than", 10000)


def test_set_breaks_a_watch(ledis_server: LedisServer) -> None:
    a, b = ledis_server.client(), ledis_server.client()
    a.flushall()
    pipe = a.pipeline()
    pipe.watch("w")
    pipe.multi()
    pipe.set("w", "mine")
    b.set("w", "theirs")
    with pytest.raises(redis.WatchError):
        pipe.execute()
    assert a.get("w") == b"theirs"
    a.close()
    b.close()


def test_idle_time_restarts_with_a_set(r: redis.Redis) -> None:
    if r.info("server")["uptime_in_seconds"] < 1:  # a key never accessed counts from the start
        time.sleep(1.1)
    r.set("fresh", "v")
    assert r.object("idletime", "fresh") == 0


# -- the commit's write batch ---------------------------------------------------------------

RECORDS = st.dictionaries(
    st.one_of(st.binary(max_size=30), st.sampled_from([b"\x00T", b"\x00L", b"\x04" + bytes(8)])),
    st.one_of(st.none(), st.binary(max_size=40)),
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(RECORDS, st.integers(0, 2**63 - 1), st.booleans())
def test_write_pending_is_the_python_one_byte_for_byte(
    pending: dict[bytes, bytes | None], time_ms: int, log: bool
) -> None:
    results = []
    for write_pending in (fastlane.write_pending, write_pending_py):
        calls: list[tuple[bytes, ...]] = []
        record, large = write_pending(
            pending,
            lambda k, v, calls=calls: calls.append((k, v)),
            lambda k, calls=calls: calls.append((k,)),
            time_ms,
            log,
            20,
        )
        results.append((record, large, calls))
    assert results[0] == results[1]
    record = results[0][0]
    if record is not None:  # and it reads back as the changes that were logged
        changes = decode_record(1, record).changes
        assert changes == [(k, v) for k, v in pending.items() if loggable(k)]


def test_access_times_keep_the_most_recent_keys() -> None:
    table = fastlane.AccessTimes(64)
    for i in range(1000):  # far more keys than slots: the least recently used make room
        table[b"key%d" % i] = float(i)
    assert 0 < len(table) <= 64
    assert table.get(b"key999") == 999.0 and table.get(b"key0") is None
    table[b"key999"] = 2000.0
    assert table[b"key999"] == 2000.0
    del table[b"key999"]
    assert table.get(b"key999", -1.0) == -1.0 and table.pop(b"key999") is None
    with pytest.raises(KeyError):
        table[b"key999"]
    with pytest.raises(TypeError):
        table["text"] = 1.0  # type: ignore[index]
    with pytest.raises(ValueError):
        fastlane.AccessTimes(100)


# -- robustness ---------------------------------------------------------------------------------

LANE_COMMANDS = st.one_of(
    st.tuples(st.sampled_from(["GET", "get", "GETX", "GE"]), st.sampled_from(["k", "n", "x", ""])),
    st.tuples(st.sampled_from(["SET", "sEt"]), st.sampled_from(["k", "n", "{n}y"]),
              st.binary(max_size=20)),
    st.tuples(st.sampled_from(["INCR", "DECR"]), st.sampled_from(["k", "n", "x"])),
    st.tuples(st.just("MSET"), st.sampled_from(["k", "n"]), st.binary(max_size=5),
              st.sampled_from(["x", "n"]), st.just("1")),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(LANE_COMMANDS, max_size=12), st.binary(max_size=8), st.integers(0, 400),
       st.integers(0, 255))
def test_lane_consumes_exactly_the_commands_it_answers(
    commands: list[tuple[str | bytes, ...]], junk: bytes, at: int, byte: int
) -> None:
    """Whatever the bytes (valid commands, one byte changed, junk appended), the lane stops at a
    command boundary the careful parser agrees on, with one reply per command it consumed."""
    buf = bytearray(pipeline(*commands) + junk)
    if buf:
        buf[at % len(buf)] = byte
    data = bytes(buf)
    lane = Lane()
    lane.cache[mkey(b"k")] = b"\x01v"
    lane.cache[mkey(b"n")] = b"\x0141"
    replies, pos, gets, sets, *_ = lane.run(data)
    assert 0 <= pos <= len(data)
    parser = RequestParser(Limits())
    parser.feed(data[:pos])
    parsed = parser.parse()
    assert len(parsed) == gets + sets
    assert parser.buffered() == 0
    reader = hiredis.Reader()
    reader.feed(replies)
    answers = []
    while (reply := reader.gets()) is not False:
        answers.append(reply)
    assert len(answers) == gets + sets


def test_collections_of_the_common_case_are_written_as_the_python_path_lays_them_out() -> None:
    """HSET, SADD, LPUSH, RPUSH, LPOP and RPOP on existing collections: the records the lane
    writes are the ones storage/collections.py describes (its Meta and member_prefix are the
    reference), members read through the cache or load."""
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import LIST_ORIGIN, Meta, member_prefix

    lane = Lane()
    h, s, lst = mkey(b"h"), mkey(b"s"), mkey(b"{h}l")
    lane.cache[h] = Meta(kf.TYPE_HASH, 0, 11, 1).encode()
    lane.cache[s] = Meta(kf.TYPE_SET, 0, 12, 1).encode()
    lane.cache[lst] = Meta(kf.TYPE_LIST, 0, 13, 2, LIST_ORIGIN, LIST_ORIGIN + 2).encode()
    hp, sp, lp = member_prefix(h, 11), member_prefix(s, 12), member_prefix(lst, 13)
    stored = {hp + b"old": b"1", sp + b"m": b"", lp + kf.U64.pack(LIST_ORIGIN): b"first"}
    lane.cache[lp + kf.U64.pack(LIST_ORIGIN + 1)] = b"second"

    def load(key: bytes) -> bytes | None:
        return stored.get(key)

    buf = pipeline(
        ("HSET", "h", "old", "2", "new", "3", "new", "4"),  # a field twice: counted once
        ("sadd", "s", "m", "n", "n"),
        ("LPUSH", "{h}l", "a", "b"),
        ("RPUSH", "{h}l", "z"),
        ("LPOP", "{h}l"),
        ("RPOP", "{h}l"),
    )
    replies, pos, calls, hits, misses, new_keys, last, _unwritten = fastlane.run(
        buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, True,
        False, 511, load, 0.0)
    assert replies == b":1\r\n:1\r\n:4\r\n:5\r\n$1\r\nb\r\n$1\r\nz\r\n"
    assert pos == len(buf)
    assert calls == (0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1) + (0,) * (N_CALLS - 11)
    assert (hits, misses, new_keys, last) == (0, 0, 0, 11)
    u = kf.U64.pack
    assert lane.pending == {
        hp + b"old": b"2", hp + b"new": b"4", h: Meta(kf.TYPE_HASH, 0, 11, 2).encode(),
        sp + b"n": b"", s: Meta(kf.TYPE_SET, 0, 12, 2).encode(),
        lp + u(LIST_ORIGIN - 1): b"a", lp + u(LIST_ORIGIN - 2): None,
        lp + u(LIST_ORIGIN + 2): None,
        lst: Meta(kf.TYPE_LIST, 0, 13, 3, LIST_ORIGIN - 1, LIST_ORIGIN + 2).encode(),
    }


@pytest.mark.parametrize(
    "command",
    [
        ("HSET", "missing", "f", "v"),  # a new key: a version to hand out (Python)
        ("HSET", "ttl", "f", "v"),  # a TTL
        ("SADD", "h", "m"),  # another type: WRONGTYPE is the Python path's
        ("LPOP", "one"),  # the last element: the key goes away
        ("LPOP", "l", "2"),  # a count
        ("HSET", "h", "f"),  # wrong arity
        ("LPUSH", "l"),
        ("RPOP", "waited"),  # a client blocks on it
    ],
)
def test_collection_commands_outside_the_common_case_stop(command: tuple[str, ...]) -> None:
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import LIST_ORIGIN, Meta

    lane = Lane()
    lane.cache[mkey(b"missing")] = None
    lane.cache[mkey(b"h")] = Meta(kf.TYPE_HASH, 0, 1, 1).encode()
    lane.cache[mkey(b"ttl")] = Meta(kf.TYPE_HASH, 2**40, 1, 1).encode()
    lane.cache[mkey(b"one")] = Meta(kf.TYPE_LIST, 0, 1, 1, LIST_ORIGIN, LIST_ORIGIN + 1).encode()
    lane.cache[mkey(b"l")] = Meta(kf.TYPE_LIST, 0, 1, 3, LIST_ORIGIN, LIST_ORIGIN + 3).encode()
    lane.cache[mkey(b"waited")] = lane.cache[mkey(b"l")]
    lane.waited[mkey(b"waited")] = object()
    stops_at(command, lane)


def test_zadd_of_plain_scores_writes_member_and_index_records() -> None:
    """ZADD on an existing sorted set: member -> score (8 bytes, storage/scores.py) and the
    score index entry; a changed score moves its index entry; an unchanged one writes
    nothing; -0 is stored as 0."""
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import Meta, member_prefix
    from stack.server.storage.scores import encode_score

    lane = Lane()
    z = mkey(b"z")
    lane.cache[z] = Meta(kf.TYPE_ZSET, 0, 21, 2).encode()
    zp = member_prefix(z, 21)
    stored = {
        zp + b"mold": encode_score(1.5), zp + b"s" + encode_score(1.5) + b"old": b"",
        zp + b"msame": encode_score(-2.0),
    }
    buf = pipeline(
        ("ZADD", "z", "2.25", "old", "-2", "same", "-0", "new", "7", "new"),
        ("zadd", "z", "1e3", "x"),  # an exponent: the Python path's
    )
    replies, pos, calls, *_ = fastlane.run(
        buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, True,
        False, 511, stored.get, 0.0)
    assert replies == b":1\r\n"
    assert pos == len(encode_command(("ZADD", "z", "2.25", "old", "-2", "same", "-0", "new",
                                      "7", "new")))
    assert calls[11] == 1
    s = zp + b"s"
    assert lane.pending == {
        s + encode_score(1.5) + b"old": None,  # re-scored: its index entry moves
        zp + b"mold": encode_score(2.25),
        s + encode_score(2.25) + b"old": b"",
        zp + b"mnew": encode_score(7.0),  # added at -0 (stored as 0), then re-scored
        s + encode_score(0.0) + b"new": None,
        s + encode_score(7.0) + b"new": b"",
        z: Meta(kf.TYPE_ZSET, 0, 21, 3).encode(),
    }  # "same": its score unchanged, nothing written


@pytest.mark.parametrize("resp3", [False, True])
def test_zpopmin_and_zpopmax_pop_the_ends_as_zset_pop_does(resp3: bool) -> None:
    """ZPOPMIN/ZPOPMAX key (no count) on a sorted set that keeps a member: the lowest/highest
    score found by ``first`` (Engine.first's contract) from the known end (floors/ceilings),
    both records deleted, the size saved and the end moved to the member popped; a missing key
    answers an empty array; the last member, a count, a TTL or another type stop the lane."""
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import Meta, member_prefix
    from stack.server.storage.scores import encode_score

    lane = Lane(resp3=resp3)
    z, h, t = mkey(b"z"), mkey(b"h"), mkey(b"t")
    lane.cache[z] = Meta(kf.TYPE_ZSET, 0, 21, 3).encode()
    lane.cache[h] = Meta(kf.TYPE_HASH, 0, 22, 2).encode()
    lane.cache[t] = Meta(kf.TYPE_ZSET, 2**40, 23, 2).encode()  # a TTL
    lane.cache[mkey(b"gone")] = None
    zp = member_prefix(z, 21)
    base = zp + b"s"
    stored: dict[bytes, bytes] = {}
    for member, score in ((b"a", -1.5), (b"b", 2.0), (b"c", 1e300)):
        stored[zp + b"m" + member] = encode_score(score)
        stored[base + encode_score(score) + member] = b""
    seeks: list[tuple[bytes, bytes, bool]] = []

    def first(lo: bytes, hi: bytes, reverse: bool) -> tuple[bytes, bytes] | None:
        seeks.append((lo, hi, reverse))
        live = sorted(k for k in {*stored, *lane.pending}
                      if lo <= k < hi and lane.pending.get(k, stored.get(k)) is not None)
        return None if not live else (live[-1] if reverse else live[0], b"")

    floors: dict[bytes, bytes] = {}
    ceilings: dict[bytes, bytes] = {}
    popped = pipeline(("ZPOPMIN", "z"), ("zpopmax", "z"), ("ZPOPMIN", "gone"))
    for stop in (("ZPOPMIN", "z"), ("ZPOPMIN", "z", "1"), ("ZPOPMAX", "t"), ("ZPOPMIN", "h")):
        buf = popped + encode_command(stop)
        lane.pending.clear()
        floors.clear()
        ceilings.clear()
        lane.cache[z] = Meta(kf.TYPE_ZSET, 0, 21, 3).encode()
        replies, pos, calls, _hits, _misses, new_keys, _last, _unwritten = fastlane.run(
            buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, True,
            resp3, 511, stored.get, 0.0, None, {}, floors, ceilings, None, first)
        score = (lambda x: b",%s\r\n" % x) if resp3 else (lambda x: b"$%d\r\n%s\r\n" % (len(x), x))
        assert replies == (b"*2\r\n$1\r\na\r\n" + score(b"-1.5") + b"*2\r\n$1\r\nc\r\n"
                           + score(b"1.0000000000000001e+300") + b"*0\r\n")
        assert pos == len(popped)  # the last member, a count, a TTL, another type: Python's
        index = LANE_OPS.index
        assert (calls[index(b"zpopmin")], calls[index(b"zpopmax")], new_keys) == (2, 1, 0)
        a, c = base + encode_score(-1.5) + b"a", base + encode_score(1e300) + b"c"
        assert lane.pending == {
            zp + b"ma": None, a: None, zp + b"mc": None, c: None,
            z: Meta(kf.TYPE_ZSET, 0, 21, 1).encode(),
        }
        assert floors == {base: a} and ceilings == {base: c}
    # with the ends known, the seeks start there (ZSet.end's window)
    seeks.clear()
    lane.pending.clear()
    lane.cache[z] = Meta(kf.TYPE_ZSET, 0, 21, 3).encode()
    fastlane.run(pipeline(("ZPOPMIN", "z"), ("ZPOPMAX", "z")), 0, PREFIX, lane.cache,
                 lane.cache_old, lane.pending, lane.access, 1.0, {}, True, resp3, 511, stored.get,
                 0.0, None, {}, floors, ceilings, None, first)
    assert seeks == [(a, zp + b"t", False), (base, c + b"\x00", True)]


def test_spop_deletes_the_member_pick_names_and_saves_the_size() -> None:
    """SPOP key (no count) on a set that keeps a member: ``pick(base, size)`` (sampling's
    spop_pick) names the member; its record is deleted and the size saved; a missing key is
    nil (RESP3: null); the last member, a count, a TTL, another type or a pick that is not
    bytes stop the lane."""
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import Meta, member_prefix

    s, t, h = mkey(b"s"), mkey(b"t"), mkey(b"h")
    sp = member_prefix(s, 31)
    asked: list[tuple[bytes, int]] = []

    def pick(base: bytes, size: int) -> object:
        asked.append((base, size))
        return b"m%d" % size if size < 9 else None

    for resp3, nil in ((False, b"$-1\r\n"), (True, b"_\r\n")):
        for stop in (("SPOP", "s"), ("SPOP", "s", "1"), ("SPOP", "t"), ("SPOP", "h")):
            lane = Lane(resp3=resp3)
            lane.cache[s] = Meta(kf.TYPE_SET, 0, 31, 3).encode()
            lane.cache[t] = Meta(kf.TYPE_SET, 2**40, 32, 3).encode()
            lane.cache[h] = Meta(kf.TYPE_HASH, 0, 33, 3).encode()
            lane.cache[mkey(b"gone")] = None
            asked.clear()
            popped = pipeline(("SPOP", "s"), ("spop", "gone"), ("SPOP", "s"))
            replies, pos, calls, *_ = fastlane.run(
                popped + encode_command(stop), 0, PREFIX, lane.cache, lane.cache_old,
                lane.pending, lane.access, 1.0, {}, True, resp3, 511, None, 0.0, None, {}, {}, {},
                None, None, pick)
            assert (replies, pos) == (b"$2\r\nm3\r\n" + nil + b"$2\r\nm2\r\n", len(popped))
            assert calls[LANE_OPS.index(b"spop")] == 3
            assert asked == [(sp, 3), (sp, 2)]
            assert lane.pending == {
                sp + b"m3": None, sp + b"m2": None, s: Meta(kf.TYPE_SET, 0, 31, 1).encode()}
    lane = Lane()
    lane.cache[s] = Meta(kf.TYPE_SET, 0, 31, 9).encode()  # pick says None: Python's
    replies, pos, *_ = fastlane.run(
        pipeline(("SPOP", "s")), 0, PREFIX, lane.cache, lane.cache_old, lane.pending,
        lane.access, 1.0, {}, True, False, 511, None, 0.0, None, {}, {}, {}, None, None, pick)
    assert (replies, pos, lane.pending) == (b"", 0, {})


# --- LRANGE from the windows of storage/rangecache.py ---------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=20), st.integers(0, 25), st.integers(0, 25))
def test_bulk_slice_is_the_python_one(items: list[bytes], skip: int, n: int) -> None:
    from stack.server.storage.rangecache import bulk_slice_py

    body = b"".join(b"$%d\r\n%b\r\n" % (len(x), x) for x in items)
    want = bulk_slice_py(body, skip, n)
    assert fastlane.bulk_slice(body, skip, n) == want
    if skip + n <= len(items):
        assert want == b"".join(b"$%d\r\n%b\r\n" % (len(x), x) for x in items[skip : skip + n])
    else:
        assert want is None
    assert fastlane.bulk_slice(body[:-1], 0, len(items)) in ((None,) if items else (b"",))


def _list_lane() -> tuple[Lane, dict[bytes, tuple[bytes, int, int, bytes]], bytes]:
    """A lane with list ``l`` of 10 elements e0..e9, a window of its elements 2..7, and ``t``
    (the same list with a TTL), ``h`` (a hash) and ``w`` (a list whose window is stale)."""
    from stack.server.storage import keyformat as kf
    from stack.server.storage.collections import LIST_ORIGIN, Meta

    lane = Lane()
    record = Meta(kf.TYPE_LIST, 0, 3, 10, LIST_ORIGIN, LIST_ORIGIN + 10).encode()
    body = b"".join(b"$2\r\ne%d\r\n" % i for i in range(2, 8))
    lane.cache[mkey(b"l")] = record
    lane.cache[mkey(b"t")] = Meta(kf.TYPE_LIST, 2**40, 4, 10, LIST_ORIGIN, LIST_ORIGIN + 10).encode()
    lane.cache[mkey(b"h")] = Meta(kf.TYPE_HASH, 0, 5, 10).encode()
    lane.cache[mkey(b"w")] = record[:1] + record[1:]  # equal, another object: it changed
    ranges = {mkey(b"l"): (record, 2, 6, body), mkey(b"t"): (lane.cache[mkey(b"t")], 2, 6, body),
              mkey(b"h"): (lane.cache[mkey(b"h")], 2, 6, body), mkey(b"w"): (record, 2, 6, body)}
    return lane, ranges, body


def _run_ranges(lane: Lane, ranges: dict[bytes, tuple[bytes, int, int, bytes]], buf: bytes,
                pending: bool = False) -> tuple[bytes, int, tuple[int, ...], int, int]:
    replies, pos, calls, hits, _misses, _new, _last, unwritten = fastlane.run(
        buf, 0, PREFIX, lane.cache, lane.cache_old, lane.pending, lane.access, 1.0, {}, False,
        False, 511, None, 0.0, None, {}, {}, {}, ranges)
    return replies, pos, calls, hits, unwritten


def test_lrange_inside_a_window_is_answered_from_it() -> None:
    lane, ranges, body = _list_lane()
    buf = pipeline(("LRANGE", "l", "2", "7"), ("lrange", "l", "3", "4"), ("LRANGE", "l", "-8", "-3"),
                   ("LRANGE", "l", "5", "2"), ("LRANGE", "l", "10", "20"),
                   ("LRANGE", "l", "-100", "-50"), ("LRANGE", "l", "7", "7"))
    replies, pos, calls, hits, unwritten = _run_ranges(lane, ranges, buf)
    assert replies == (b"*6\r\n" + body + b"*2\r\n$2\r\ne3\r\n$2\r\ne4\r\n" + b"*6\r\n" + body
                       + b"*0\r\n*0\r\n*0\r\n*1\r\n$2\r\ne7\r\n")
    assert (pos, calls[LRANGE], sum(calls), hits, unwritten) == (len(buf), 7, 7, 7, 0)
    assert lane.access.get(mkey(b"l")) == 1.0
    assert lane.pending == {}
    lane.pending[mkey(b"l")] = lane.cache[mkey(b"l")]  # not written yet: the reply waits
    assert _run_ranges(lane, ranges, pipeline(("LRANGE", "l", "2", "3")))[4] == 1


@pytest.mark.parametrize(
    "command",
    [
        ("LRANGE", "l", "0", "5"),  # starts before the window
        ("LRANGE", "l", "3", "8"),  # ends after it
        ("LRANGE", "l", "0", "-1"),
        ("LRANGE", "w", "2", "3"),  # the window is of another record: the list changed
        ("LRANGE", "t", "2", "3"),  # a TTL: the Python path checks it
        ("LRANGE", "h", "2", "3"),  # another type: WRONGTYPE is the Python path's
        ("LRANGE", "missing", "0", "1"),
        ("LRANGE", "uncached", "0", "1"),  # only LevelDB knows
        ("LRANGE", "l", "02", "3"),  # unusual indexes: the Python path parses them
        ("LRANGE", "l", "+2", "3"),
        ("LRANGE", "l", "2", "x"),
        ("LRANGE", "l", "2", "-9223372036854775808"),
        ("LRANGE", "l", "2"),  # wrong arity
        ("LRANGE", "l", "2", "3", "4"),
    ],
)
def test_lrange_outside_a_window_stops(command: tuple[str, ...]) -> None:
    lane, ranges, _body = _list_lane()
    lane.cache[mkey(b"missing")] = None
    head = encode_command(("LRANGE", "l", "2", "2"))
    buf = head + encode_command(command) + head
    replies, pos, calls, hits, _unwritten = _run_ranges(lane, ranges, buf)
    assert (replies, pos, calls[LRANGE], hits) == (b"*1\r\n$2\r\ne2\r\n", len(head), 1, 1)


def test_lrange_without_windows_stops() -> None:
    lane, _ranges, _body = _list_lane()
    assert _run_ranges(lane, {}, pipeline(("LRANGE", "l", "2", "3")))[:2] == (b"", 0)


def test_leads_names_exactly_the_lane_s_commands() -> None:
    """fastlane.leads (the look before gathering run()'s arguments) knows the names of
    LANE_COMMANDS, in any case, and no others."""
    from stack.server.fastlane import LANE_COMMANDS

    for name in LANE_COMMANDS:
        for spelled in (name, name.upper(), name.title()):
            assert fastlane.leads(encode_command((spelled, b"k", b"v")), 0), spelled
    for other in (b"PING", b"GETSET", b"SETNX", b"HGET", b"LPUSHX", b"ZADDX", b"GE", b""):
        assert not fastlane.leads(encode_command((other, b"k", b"v")), 0), other
    assert not fastlane.leads(b"*2\r\n$3\r\nGE", 0)  # not there yet
    assert not fastlane.leads(b"GET k\r\n", 0)  # inline: the Python path's
