"""Long strings in chunks: byte for byte Redis's values, at any offset, for a chunk's cost.

Strings written whole over 64 KiB, or edited past 4 KiB, are kept in 4 KiB chunks
(docs/storage-format.md), stored sparsely. Every
reply is held to a real Redis (over RESP2, RESP3 and the Python path, through the ``pair``
fixture); the cost of a write far out (one chunk, not the whole value) is held to the size of
the data directory; and everything that copies keys (DUMP/RESTORE, COPY, RENAME, MOVE, a
replica's full sync and stream, backups, a restart) carries chunked values whole.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import plyvel
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.server.storage import keyformat as kf

from .respclient import RawClient
from .servers import LedisServer
from .test_differential import Cmd, Pair, pair  # noqa: F401  (pair: the fixture)

CHUNK = kf.STRING_CHUNK
BIG_BIT = 4294967288  # BITFIELD u8 at this bit offset writes the last byte of 512 MB


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


SPARSE: list[Cmd] = [
    ("SETRANGE", "s", "10000", "abc"), ("STRLEN", "s"), ("GETRANGE", "s", "9998", "10004"),
    ("GETRANGE", "s", "0", "3"), ("GETRANGE", "s", "-5", "-1"), ("BITCOUNT", "s"),
    ("BITPOS", "s", "1"), ("BITPOS", "s", "0"), ("BITPOS", "s", "1", "5000"),
    ("BITPOS", "s", "0", "10000", "10002"), ("BITPOS", "s", "1", "-3", "-1"),
    ("BITPOS", "s", "1", "80000", "80010", "BIT"), ("BITCOUNT", "s", "4095", "4097"),
    ("BITCOUNT", "s", "80000", "80020", "BIT"), ("BITCOUNT", "s", "-10", "-1"),
    ("SETBIT", "s", str(8 * 4096 - 1), "1"), ("SETBIT", "s", str(8 * 4096), "1"),
    ("GETBIT", "s", str(8 * 4096 - 1)), ("GETBIT", "s", str(8 * 4096)), ("GETBIT", "s", "7"),
    ("GETRANGE", "s", "4094", "4098"), ("BITCOUNT", "s"),
    ("BITFIELD", "s", "SET", "u16", str(8 * 8192 - 8), "65535", "GET", "u32", str(8 * 8192 - 16)),
    ("BITFIELD", "s", "INCRBY", "i12", "#5461", "-7", "GET", "i12", "#5461"),
    ("GETRANGE", "s", "8189", "8194"), ("APPEND", "s", "tail"), ("STRLEN", "s"),
    ("GETRANGE", "s", "-8", "-1"), ("SET", "p", "x" * 5000), ("SETRANGE", "p", "4000", "y" * 200),
    ("GET", "p"), ("APPEND", "p", "z" * 5000), ("STRLEN", "p"), ("BITCOUNT", "p"),
    ("BITPOS", "p", "0"), ("BITPOS", "p", "0", "0", "-1"), ("SETRANGE", "p", "0", ""),
    ("SETRANGE", "q", "100000", ""), ("EXISTS", "q"), ("SETRANGE", "q", "5000", "\x00\x00"),
    ("STRLEN", "q"), ("BITPOS", "q", "1"), ("BITPOS", "q", "0", "100"), ("BITCOUNT", "q"),
    ("GET", "q"), ("SETBIT", "r", "1000000", "1"), ("BITPOS", "r", "1"),
    ("BITPOS", "r", "1", "-1"), ("BITPOS", "r", "0", "-1"), ("BITPOS", "r", "0", "-1", "-1", "BIT"),
    ("SETBIT", "r", "1000000", "0"), ("BITCOUNT", "r"), ("BITPOS", "r", "1"), ("STRLEN", "r"),
    ("INCR", "r"), ("INCRBYFLOAT", "r", "1"), ("LCS", "r", "p", "LEN"), ("TYPE", "r"),
    ("OBJECT", "ENCODING", "r"), ("SET", "r", "small"), ("GET", "r"), ("OBJECT", "ENCODING", "r"),
    ("SET", "n", "1" * 4097), ("INCR", "n"), ("GETSET", "n", "2"), ("GET", "n"),
    ("MSET", "m1", "a" * 9000, "m2", "b"), ("MGET", "m1", "m2", "nope"), ("GETDEL", "m1"),
    ("EXISTS", "m1"), ("SET", "e", "e" * 6000, "EX", "1000"), ("GETEX", "e", "PERSIST"),
    ("TTL", "e"), ("GETEX", "e", "EX", "500"), ("TTL", "e"), ("SET", "e", "f", "GET"),
    ("SET", "t", "t" * 4500), ("SET", "t", "u" * 4600, "GET"), ("SETNX", "t", "x"),
    ("BITOP", "OR", "o", "s", "q"), ("STRLEN", "o"), ("BITCOUNT", "o"),
    ("BITOP", "AND", "o", "s", "p"), ("GETRANGE", "o", "3990", "4010"),
    ("BITOP", "NOT", "o", "s"), ("STRLEN", "o"), ("BITCOUNT", "o"), ("GETRANGE", "o", "9995", "10005"),
    ("BITOP", "XOR", "o", "s", "nokey", "q"), ("BITCOUNT", "o"), ("GETRANGE", "o", "-9", "-1"),
    ("BITOP", "AND", "o", "s", "nokey"), ("STRLEN", "o"), ("BITCOUNT", "o"),
    ("BITOP", "OR", "o", "small", "s"), ("GETRANGE", "o", "0", "3"), ("SET", "small", "ab"),
    ("BITOP", "OR", "o", "small", "s"), ("GETRANGE", "o", "0", "3"), ("BITOP", "OR", "o", "o", "o"),
    ("BITCOUNT", "o"), ("BITOP", "NOT", "o", "nokey"), ("EXISTS", "o"),
    ("SORT", "nolist", "BY", "s"), ("DBSIZE",),
]


def test_sparse_and_long_strings_match_redis(pair: Pair) -> None:  # noqa: F811
    pair.run(SPARSE)


def test_keys_holding_long_strings_match_redis(pair: Pair) -> None:  # noqa: F811
    pair.run([
        ("SETRANGE", "k", "9000", "end"), ("EXPIRE", "k", "1000"), ("RENAME", "k", "k2"),
        ("STRLEN", "k2"), ("TTL", "k2"), ("GETRANGE", "k2", "8999", "-1"),
        ("COPY", "k2", "k3"), ("SETRANGE", "k3", "9000", "END"), ("GETRANGE", "k2", "9000", "-1"),
        ("GETRANGE", "k3", "9000", "-1"), ("MOVE", "k3", "1"), ("EXISTS", "k3"),
        ("SELECT", "1"), ("GETRANGE", "k3", "9000", "-1"), ("SELECT", "0"),
        ("HSET", "h", "f", "v"), ("SETRANGE", "h", "1", "x"), ("COPY", "k2", "h", "REPLACE"),
        ("TYPE", "h"), ("STRLEN", "h"), ("SADD", "k2", "x"), ("HGET", "k2", "f"),
        ("SUNIONSTORE", "k2", "nope"), ("EXISTS", "k2"), ("DEL", "h"), ("DBSIZE",),
    ])


# Offsets near chunk boundaries (and inside the first chunk), values long and short.
OFFSETS = st.builds(lambda k, d: max(0, k * CHUNK + d), st.integers(0, 4), st.integers(-3, 3))
DATA = st.one_of(st.sampled_from(["", "a", "\x00", "\xff" * 3, "zz\x00"]),
                 st.builds(lambda n, ch: ch * n, st.integers(1, 9000), st.sampled_from("x\x00")))
CHUNK_OPS = st.one_of(
    st.tuples(st.just("SETRANGE"), st.just("a"), OFFSETS.map(str), DATA),
    st.tuples(st.just("APPEND"), st.just("a"), DATA),
    st.tuples(st.just("SETBIT"), st.just("a"), OFFSETS.map(lambda o: str(o * 8 + 3)),
              st.sampled_from(["0", "1"])),
    st.tuples(st.just("GETBIT"), st.just("a"), OFFSETS.map(lambda o: str(o * 8 + 5))),
    st.tuples(st.just("GETRANGE"), st.just("a"), OFFSETS.map(str), OFFSETS.map(str)),
    st.tuples(st.just("BITCOUNT"), st.just("a"), OFFSETS.map(str), OFFSETS.map(str)),
    st.tuples(st.just("BITPOS"), st.just("a"), st.sampled_from(["0", "1"]), OFFSETS.map(str)),
    st.tuples(st.just("BITPOS"), st.just("a"), st.sampled_from(["0", "1"]), OFFSETS.map(str),
              OFFSETS.map(str)),
    st.tuples(st.just("BITFIELD"), st.just("a"), st.just("INCRBY"), st.sampled_from(["u7", "i16"]),
              OFFSETS.map(lambda o: str(o * 8 - 4 if o else 0)), st.integers(-300, 300).map(str)),
    st.tuples(st.sampled_from(["GET", "STRLEN", "BITCOUNT"]), st.just("a")),
    st.tuples(st.just("SET"), st.just("a"), DATA),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(CHUNK_OPS, min_size=1, max_size=15))
def test_generated_chunk_edits_match_redis(pair: Pair, commands: list[Cmd]) -> None:  # noqa: F811
    pair.reset()
    pair.run(commands)


# --- cost ---------------------------------------------------------------------------------------


def test_bitfield_far_out_writes_one_chunk(fresh_server: LedisServer) -> None:
    """BITFIELD at the 512 MB mark: answered, and what is written (data and binlog) is a chunk,
    not the half gigabyte of zeros before it; others are served meanwhile; a restart is quick
    and reads it back."""
    fresh_server.start()
    c = RawClient(fresh_server.port)
    before = _dir_bytes(fresh_server.data_dir)
    assert c.call("BITFIELD", "bf", "SET", "u8", str(BIG_BIT), "1") == b"*1\r\n:0\r\n"
    assert RawClient(fresh_server.port).call("PING") == b"+PONG\r\n"
    assert c.call("STRLEN", "bf") == b":536870912\r\n"
    assert c.call("BITCOUNT", "bf") == b":1\r\n"
    assert c.call("BITPOS", "bf", "1") == b":4294967295\r\n"
    assert c.call("GETRANGE", "bf", "-2", "-1") == b"$2\r\n\x00\x01\r\n"
    assert c.call("DEBUG", "FLUSH-FSYNC") == b"+OK\r\n"
    assert _dir_bytes(fresh_server.data_dir) - before < 4 * 1024 * 1024
    fresh_server.stop()
    fresh_server.start()
    c = RawClient(fresh_server.port)
    assert c.call("BITFIELD_RO", "bf", "GET", "u8", str(BIG_BIT)) == b"*1\r\n:1\r\n"
    assert c.call("STRLEN", "bf") == b":536870912\r\n"


def test_get_of_a_half_gigabyte_value(fresh_server: LedisServer) -> None:
    """GET of a 512 MB (sparse) value answers, in pieces; the server's memory goes back."""
    fresh_server.extra += ["--client-output-buffer-limit", "normal 0 0 0"]
    fresh_server.start()
    c = redis.Redis(port=fresh_server.port, socket_timeout=120)
    assert c.setrange("big", 512 * 1024 * 1024 - 3, "end") == 512 * 1024 * 1024
    c.setrange("big", 100 * 1024 * 1024, "middle")
    value = c.get("big")
    assert value is not None and len(value) == 512 * 1024 * 1024
    assert value[-3:] == b"end"
    assert value[100 * 1024 * 1024 : 100 * 1024 * 1024 + 6] == b"middle"
    assert value.count(0) == len(value) - 9
    del value
    assert c.ping()


# --- everything that copies keys ---------------------------------------------------------------


def _fill(c: redis.Redis) -> dict[bytes, bytes]:
    c.setrange("sparse", 3_000_000, "far")
    c.setbit("sparse", 5, 1)
    c.set("dense", bytes(range(256)) * 40)
    c.append("dense", "more")
    c.set("small", "v")
    return {k: c.get(k) for k in (b"sparse", b"dense", b"small")}  # type: ignore[misc]


def test_dump_restore_of_chunked_strings(r: redis.Redis) -> None:
    values = _fill(r)
    for key, value in values.items():
        payload = r.dump(key)
        assert payload is not None
        r.restore(key + b":copy", 0, payload)
        assert r.get(key + b":copy") == value
        r.restore(key, 100000, payload, replace=True)
        assert r.get(key) == value and 0 < r.pttl(key) <= 100000


def test_overwritten_chunks_are_reclaimed(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.setrange("k", 200_000, "x")
    c.set("k", "small now")  # the chunks' version is retired...
    assert c.get("k") == b"small now"
    for _ in range(200):  # ...and reclaimed in the background
        info = c.info("persistence")
        if info["ledis_reclaim_pending_collections"] == 0:
            break
        time.sleep(0.05)
    assert info["ledis_reclaim_pending_collections"] == 0
    fresh_server.stop()
    with plyvel.DB(str(fresh_server.data_dir)) as db:
        assert not any(True for _ in db.iterator(prefix=kf.NS_SUB, include_value=False))


def test_replica_and_backup_carry_chunked_strings(tmp_path: Path) -> None:
    master = LedisServer(tmp_path / "m", "--backup-dir", str(tmp_path / "backups")).start()
    replica: LedisServer | None = None
    try:
        mc = master.client()
        values = _fill(mc)
        replica = LedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port))
        replica.start()
        rc = replica.client()
        mc.setrange("sparse", 10, "streamed")  # after the full sync: through the stream
        values[b"sparse"] = mc.get("sparse")  # type: ignore[assignment]
        mc.set("marker", "1")
        deadline = time.monotonic() + 30
        while rc.get("marker") != b"1" and time.monotonic() < deadline:
            time.sleep(0.05)
        for key, value in values.items():
            assert rc.get(key) == value
        assert rc.execute_command("DEBUG", "DIGEST") == mc.execute_command("DEBUG", "DIGEST")
        assert mc.save()
        backup = mc.info("persistence")["ledis_last_backup"]
    finally:
        if replica is not None:
            replica.stop()
        master.stop()
    restored = tmp_path / "restored"
    subprocess.run([sys.executable, "-m", "stack.server.main", "restore", backup,
                    "--data-dir", str(restored)], check=True, capture_output=True, timeout=120)
    server = LedisServer(tmp_path / "x", data_dir=restored).start()
    try:
        c = server.client()
        for key, value in values.items():
            assert c.get(key) == value
    finally:
        server.stop()


# --- the storage format -------------------------------------------------------------------------


def test_format_1_data_dirs_open_and_are_upgraded(fresh_server: LedisServer) -> None:
    fresh_server.start()
    fresh_server.client().set("k", "v")
    fresh_server.stop()
    with plyvel.DB(str(fresh_server.data_dir)) as db:
        db.put(kf.SYS_VERSION, kf.U32.pack(1))
    fresh_server.start()
    assert fresh_server.client().get("k") == b"v"
    fresh_server.stop()
    with plyvel.DB(str(fresh_server.data_dir)) as db:
        assert db.get(kf.SYS_VERSION) == kf.U32.pack(kf.FORMAT_VERSION)
        db.put(kf.SYS_VERSION, kf.U32.pack(99))
    with pytest.raises(RuntimeError):
        fresh_server.start()
    assert "storage format 99" in fresh_server.log()


def test_whole_values_stay_in_their_record_and_edits_chunk_them(
    fresh_server: LedisServer,
) -> None:
    """A value written whole of up to STRING_INLINE_MAX bytes is one record (one LevelDB read
    for GET, the C lane's); a longer one, or one grown past STRING_EDIT_MAX by partial writes,
    is chunked, so APPENDs stay linear. Every value reads back whole either way."""
    fresh_server.start()
    c = fresh_server.client()
    values = {
        "whole16k": b"a" * 16384,
        "whole-max": b"b" * kf.STRING_INLINE_MAX,
        "whole-over": b"c" * (kf.STRING_INLINE_MAX + 1),
        "edited": b"d" * 16384,
        "appended": b"",
    }
    for key in ("whole16k", "whole-max", "whole-over", "edited"):
        c.set(key, values[key])
    c.mset({"m16k": b"m" * 16384})
    values["m16k"] = b"m" * 16384
    c.append("edited", b"!")  # an edit of a 16 KB value makes it chunked
    values["edited"] += b"!"
    for i in range(kf.STRING_EDIT_MAX // 1000 + 2):  # grown by APPENDs past STRING_EDIT_MAX
        c.append("appended", b"%04d" % i * 250)
        values["appended"] += b"%04d" % i * 250
    for key, value in values.items():
        assert c.get(key) == value, key
    fresh_server.stop()
    with plyvel.DB(str(fresh_server.data_dir)) as db:
        chunked = {
            kf.user_key(k).decode()
            for k, v in db.iterator(prefix=kf.NS_META)
            if kf.is_chunked(v)
        }
    assert chunked == {"whole-over", "edited", "appended"}
