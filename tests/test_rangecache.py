"""LRANGE windows (storage/rangecache.py): what drops them, and their bounds."""

from __future__ import annotations

from pathlib import Path

from stack.server.storage import keyformat as kf
from stack.server.storage import rangecache
from stack.server.storage.collections import LIST_ORIGIN, Meta, member_prefix
from stack.server.storage.engine import Engine
from stack.server.storage.rangecache import RangeCache, bulk_slice_py, meta_key_of_sub

from .servers import LedisServer

MKEY = kf.meta_key(kf.meta_prefix(3), b"{tag}list")


def _body(items: list[bytes]) -> bytes:
    return b"".join(b"$%d\r\n%b\r\n" % (len(x), x) for x in items)


def _record() -> bytes:
    return Meta(kf.TYPE_LIST, 0, 9, 4, LIST_ORIGIN, LIST_ORIGIN + 4).encode()


def test_a_window_serves_ranges_inside_it_while_the_record_is_the_same_object() -> None:
    cache = RangeCache()
    record = _record()
    items = [b"a", b"bb", b"", b"d"]
    cache.keep(MKEY, record, 1, 3, _body(items[1:]))
    assert cache.get(MKEY, record, 1, 3) == _body(items[1:])
    assert cache.get(MKEY, record, 2, 2) == _body([b""])
    assert cache.get(MKEY, record, 2, 3) == _body(items[2:])
    assert cache.get(MKEY, record, 0, 2) is None  # starts before it
    assert cache.get(MKEY, record, 3, 4) is None  # ends after it
    assert cache.get(MKEY, record[:1] + record[1:], 1, 3) is None  # equal, but rewritten
    assert (cache.hits, cache.misses) == (3, 3)


def test_bounds() -> None:
    cache = RangeCache()
    record = _record()
    cache.keep(MKEY, record, 0, 1, b"x" * (rangecache.WINDOW_MAX + 1))
    assert cache.entries == {} and cache.size == 0
    many = rangecache.WINDOW_ELEMENTS + 1  # a slice walks what comes before it: bounded too
    cache.keep(MKEY, record, 0, many, _body([b"e"] * many))
    assert cache.entries == {} and cache.size == 0
    cost = rangecache.WINDOW_MAX + rangecache.ENTRY_COST
    n = rangecache.BUDGET // cost
    keys = [b"%d" % i for i in range(n + 2)]
    for k in keys:
        cache.keep(k, record, 0, 1, b"y" * rangecache.WINDOW_MAX)
        assert cache.size <= rangecache.BUDGET
    assert list(cache.entries) == keys[2:]  # the oldest went first
    cache.keep(keys[-1], record, 0, 1, b"z")  # replaced: counted once
    assert cache.size == (n - 1) * cost + 1 + rangecache.ENTRY_COST
    cache.clear()
    small = rangecache.BUDGET // (1 + rangecache.ENTRY_COST)
    for i in range(small + 10):  # many tiny windows are bounded too
        cache.keep(b"%d" % i, record, 0, 1, b"s")
    assert len(cache.entries) == small
    cache.clear()
    assert (cache.entries, cache.size) == ({}, 0)


def test_a_sub_key_names_its_list() -> None:
    for key in (b"{tag}list", b"", b"k" * 300):
        mkey = kf.meta_key(kf.meta_prefix(7), key)
        sub = member_prefix(mkey, 12345) + kf.U64.pack(LIST_ORIGIN)
        assert meta_key_of_sub(sub) == mkey


def test_bulk_slice_py() -> None:
    body = _body([b"a", b"\r\n$1\r\n", b""])
    assert bulk_slice_py(body, 1, 1) == _body([b"\r\n$1\r\n"])
    assert bulk_slice_py(body, 0, 3) == body
    assert bulk_slice_py(body, 3, 0) == b""
    assert bulk_slice_py(body, 2, 2) is None
    assert bulk_slice_py(body[:-1], 0, 3) is None


def test_engine_writes_drop_the_window_of_their_list(tmp_path: Path) -> None:
    e = Engine(tmp_path / "db")
    try:
        record = _record()
        other = kf.meta_key(kf.meta_prefix(3), b"other")
        for k in (MKEY, other):
            e.ranges.keep(k, record, 0, 1, _body([b"a"]))
        e.put(kf.SYS_COUNTS + b"\x00\x00\x00\x03", b"x" * 16)  # not a sub-key: kept
        e.put(member_prefix(other, 4) + b"field", b"v")  # another key's member
        assert set(e.ranges.entries) == {MKEY}
        e.delete(member_prefix(MKEY, 9) + kf.U64.pack(LIST_ORIGIN + 2))  # LSET, LREM ...
        assert e.ranges.entries == {}
        e.ranges.keep(MKEY, record, 0, 1, _body([b"a"]))
        e.forget_bounds()  # records changed behind the engine (replication, a full sync)
        assert e.ranges.entries == {} and e.ranges.size == 0
    finally:
        e.close()


def test_info_shows_the_windows(tmp_path: Path) -> None:
    server = LedisServer(tmp_path).start()
    try:
        r = server.client()
        r.rpush("l", *[b"e%d" % i for i in range(100)])
        assert r.lrange("l", 0, 9) == [b"e%d" % i for i in range(10)]
        info = r.info("memory")
        assert (info["ledis_lrange_windows"], info["ledis_lrange_windows_bytes"]) == (
            1,
            len(_body([b"e%d" % i for i in range(10)])) + rangecache.ENTRY_COST,
        )
        assert r.lrange("l", 2, 3) == [b"e2", b"e3"]  # inside it: no new window
        r.lset("l", 5, "x")
        info = r.info("memory")
        assert (info["ledis_lrange_windows"], info["ledis_lrange_windows_bytes"]) == (0, 0)
        assert r.lrange("l", 4, 5) == [b"e4", b"x"]
        # Elements not written yet (one turn: the LSET's batch is still pending) make no window:
        # the lane would send them before their batch is written.
        pipe = r.pipeline(transaction=False)
        pipe.lset("l", 6, "y").lrange("l", 5, 7).info("memory")
        _ok, got, info = pipe.execute()
        assert got == [b"x", b"y", b"e7"]
        assert (info["ledis_lrange_windows"], info["ledis_lrange_windows_bytes"]) == (0, 0)
        assert r.lrange("l", 5, 7) == [b"x", b"y", b"e7"]  # written now: kept
        assert r.info("memory")["ledis_lrange_windows"] == 1
    finally:
        assert server.stop() == 0, server.log()


def test_a_full_sync_chunk_replaces_what_reads_cached_meanwhile(tmp_path: Path) -> None:
    """A replica answers reads while a full sync loads: a key read before its chunk came was
    cached as missing, and must not stay so once the chunk wrote it."""
    e = Engine(tmp_path / "db")
    try:
        key = kf.meta_key(kf.meta_prefix(0), b"late")
        assert e.get(key) is None  # cached as missing
        e.rotate_cache()
        e.load_chunk([(key, b"\x01v")])
        assert e.get(key) == b"\x01v"
    finally:
        e.close()
