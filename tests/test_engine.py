"""Unit test of the storage engine alone (real LevelDB in a temp dir)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# After the system records and the binlog (0x00-0x04), which commits write too.
OVERLAY_KEYS = st.sampled_from([b"z" + k for k in (b"", b"a", b"a\x00", b"ab", b"b", b"ba", b"bb",
                                                    b"c", b"d\xff")])
OVERLAY_OPS = st.one_of(
    st.tuples(st.just("put"), OVERLAY_KEYS, st.binary(max_size=3)),
    st.tuples(st.just("delete"), OVERLAY_KEYS),
    st.tuples(st.just("lane"), OVERLAY_KEYS, st.binary(max_size=3)),  # as _fastlane.c writes
    st.tuples(st.sampled_from(["commit", "fly", "land"])),
    st.tuples(st.just("read"), OVERLAY_KEYS, OVERLAY_KEYS, st.booleans()),
)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(OVERLAY_OPS, max_size=80))
def test_range_reads_over_the_overlay_match_a_dict(tmp_path_factory: pytest.TempPathFactory,
                                                   ops: list[tuple]) -> None:
    """Range reads through the pending batch and the batch in flight (kept sorted between
    reads, SortedKeys) give what a plain dict of every write gives, both ways; so does a seek
    (``Engine.first``, whose LevelDB iterator lives from one write to the next)."""
    e = Engine(tmp_path_factory.mktemp("db"))
    model: dict[bytes, bytes] = {}
    for op in ops:
        if op[0] in ("put", "lane"):
            _, k, v = op
            if op[0] == "put":
                e.put(k, v)
            else:
                e.pending[k] = e.cache[k] = v
            model[k] = v
        elif op[0] == "delete":
            e.delete(op[1])
            model.pop(op[1], None)
        elif op[0] == "commit":
            e.commit()
        elif op[0] == "fly" and e.flight is None:  # through the writer thread: stays in flight
            e.threaded_until = time.monotonic() + 3600
            e.start_commit()
        elif op[0] == "land":
            e.finish_commit(wait=True)
        elif op[0] == "read":
            _, lo, hi, reverse = op
            expected = sorted((k, v) for k, v in model.items() if lo <= k < hi)
            assert list(e.scan(lo, hi, reverse)) == (expected[::-1] if reverse else expected)
            # one seek (pops, random picks): what the scan yields first, both ways
            assert e.first(lo, hi) == (expected[0] if expected else None)
            assert e.first(lo, hi, True) == (expected[-1] if expected else None)
            bulks, n = e.encoded_range(lo, hi, 0, True, True)
            assert n == 2 * len(expected)
            assert bulks == b"".join(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(k), k, len(v), v)
                                     for k, v in expected)
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


def test_a_burst_of_replicated_records_is_one_write(tmp_path: Path) -> None:
    """A replica applies a burst from its master as one LevelDB batch: with appendfsync
    always that is one fsync per burst (it was one per record, with the loop held: a replica
    under a master's write load stopped answering for seconds)."""
    from stack.server.storage import binlog as blog

    e = Engine(tmp_path / "db", fsync="always")
    batches = []
    real = e.db.write_batch

    def counted(**kw: object) -> object:
        batches.append(kw)
        return real(**kw)

    e.db = type("Counted", (), {"__getattr__": lambda _s, n: getattr(real.__self__, n),
                                "write_batch": staticmethod(counted)})()  # fmt: skip
    records: list[tuple[int, bytes, list[tuple[bytes, bytes | None]]]] = [
        (n, b"raw-%d" % n, [(b"key-%d" % n, b"v%d" % n)]) for n in range(1, 257)
    ]
    e.apply_replicated(records)
    assert batches == [{"sync": True}]
    assert e.last_log_id == 256 and e.first_log_id == 1
    assert e.get(b"key-1") == b"v1" and e.get(b"key-256") == b"v256"
    assert real.__self__.get(blog.log_key(256)) == b"raw-256"
    e.apply_replicated([])  # nothing: no write
    assert len(batches) == 1


def test_open_errors_say_what_is_wrong(tmp_path: Path) -> None:
    first = Engine(tmp_path / "db")
    with pytest.raises(StorageError, match=r"another process holds it .*another ledis-server"):
        Engine(tmp_path / "db")
    first.close()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="it is a file, not a directory"):
        Engine(tmp_path / "file")
