"""Unit test of the storage engine alone (real LevelDB in a temp dir)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stack.server.storage.engine import Engine, StorageError


@pytest.mark.parametrize("seed", range(4))
def test_scans_merge_pending_writes_both_ways(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    e = Engine(tmp_path / "db")
    ref: dict[bytes, bytes] = {}
    for _ in range(200):
        for _ in range(20):
            k = b"k%03d" % rnd.randrange(200)
            if rnd.random() < 0.3:
                e.delete(k)
                ref.pop(k, None)
            else:
                v = b"v%d" % rnd.randrange(1000)
                e.put(k, v)
                ref[k] = v
            if rnd.random() < 0.05:
                e.commit()
        lo, hi = sorted([b"k%03d" % rnd.randrange(200), b"k%03d" % rnd.randrange(200)])
        expected = sorted((k, v) for k, v in ref.items() if lo <= k < hi)
        assert list(e.scan(lo, hi)) == expected
        assert list(e.scan(lo, hi, reverse=True)) == expected[::-1]
        assert all(e.get(k) == v for k, v in expected)
    e.close()


def test_reads_see_pending_and_cache_stays_true(tmp_path: Path) -> None:
    e = Engine(tmp_path / "db", cache_entries=4)
    for i in range(50):
        e.put(b"k%d" % i, b"v%d" % i)
    assert [e.get(b"k%d" % i) for i in range(50)] == [b"v%d" % i for i in range(50)]
    e.commit()
    e.put(b"big", b"x" * 10_000)
    assert e.get(b"big") == b"x" * 10_000
    e.commit()
    assert e.get(b"big") == b"x" * 10_000
    assert len(e.cache) <= 2  # (the old generation may hold one batch more than the limit)
    e.delete(b"k1")
    assert e.get(b"k1") is None
    e.discard_pending()
    assert e.get(b"k1") == b"v1"
    e.close()


def test_format_version_is_checked(tmp_path: Path) -> None:
    e = Engine(tmp_path / "db")
    e.db.put(b"\x00V", b"\x00\x00\x00\x63")
    e.db.close()
    with pytest.raises(StorageError, match="format 99"):
        Engine(tmp_path / "db")


def test_compression_can_change_between_runs(tmp_path: Path) -> None:
    """A data dir written with snappy blocks reads back with compression off, and the reverse."""
    values = {b"k%05d" % i: b"value-%d " % i * 20 for i in range(20_000)}  # several MB: SSTs
    first = Engine(tmp_path / "db", compression="snappy")
    for k, v in values.items():
        first.put(k, v)
    first.commit()
    first.db.compact_range()
    first.close()
    second = Engine(tmp_path / "db", compression="none")
    assert all(second.get(k) == v for k, v in values.items())
    second.put(b"k00000", b"new")
    second.commit()
    second.db.compact_range()
    second.close()
    third = Engine(tmp_path / "db", compression="snappy")
    assert third.get(b"k00000") == b"new" and third.get(b"k19999") == values[b"k19999"]
    third.close()


def test_cache_generations_never_serve_a_stale_record(tmp_path: Path) -> None:
    """Writes, reads and commits in any order, with a cache small enough to turn over
    generations all the time: every read gives the latest value, and retired generations are
    freed a little at a time."""
    rnd = random.Random(7)
    e = Engine(tmp_path / "db", cache_entries=8)
    ref: dict[bytes, bytes | None] = {}
    for step in range(5000):
        k = b"k%02d" % rnd.randrange(40)
        action = rnd.random()
        if action < 0.4:
            v = b"v%d" % step
            e.put(k, v)
            ref[k] = v
        elif action < 0.5:
            e.delete(k)
            ref[k] = None
        elif action < 0.6:
            e.commit()
        else:
            assert e.get(k) == ref.get(k), step
    assert e.cached_records() <= 2 * 8
    e.free_retired(10**6)
    assert not e._retired
    e.close()
