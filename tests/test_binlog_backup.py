"""The binlog (one record per write batch, readable), digests, and backups with restore."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .servers import LedisServer


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stack.server.main", *args],
                          capture_output=True, text=True, timeout=120)


def test_every_batch_gets_the_next_log_id(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    _first, last, _size = c.execute_command("BINLOG", "INFO")
    c.set("a", "1")
    c.hset("h", "f", "v")
    with c.pipeline(transaction=True) as p:  # MULTI/EXEC: one batch, one record
        p.sadd("s", "m")
        p.zadd("z", {"x": 2.5})
        p.execute()
    _f, after, _s = c.execute_command("BINLOG", "INFO")
    assert after == last + 3
    records = c.execute_command("BINLOG", "SHOW", last, 10)
    assert [r[0] for r in records] == [last + 1, last + 2, last + 3]
    lines = [line for r in records for line in r[2]]
    assert b"SET a 1" in lines
    assert b"HSET h f v" in lines
    assert b"SADD s m" in lines and b"ZADD z 2.5 x" in lines
    assert c.info("replication")["master_repl_offset"] == after


def test_binlog_reader_tool(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.set("k", "hello world")
    c.rpush("l", "x")
    live = tool("binlog", "-p", str(fresh_server.port))
    assert live.returncode == 0, live.stderr
    assert 'SET k "hello world"' in live.stdout and "LSET l 0 x" in live.stdout
    locked = tool("binlog", "--data-dir", str(fresh_server.data_dir))
    assert locked.returncode == 1 and "use --port" in locked.stderr
    fresh_server.stop()
    offline = tool("binlog", "--data-dir", str(fresh_server.data_dir), "--count", "1")
    assert offline.returncode == 0 and offline.stdout.count("LogID") >= 1


def test_binlog_into_head_ends_quietly(fresh_server: LedisServer) -> None:
    """`ledis-server binlog ... | head`: the reader stops early; no 'Broken pipe' error."""
    fresh_server.start()
    with fresh_server.client().pipeline(transaction=False) as p:
        for i in range(5000):
            p.set(f"key:{i}", "x" * 100)
        p.execute()
    fresh_server.stop()
    shell = subprocess.run(
        f"{sys.executable} -m stack.server.main binlog --data-dir {fresh_server.data_dir} "
        "| head -n 1",
        shell=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shell.stdout.startswith("LogID ") and shell.stdout.count("\n") == 1
    assert shell.stderr == "", shell.stderr


def test_log_ids_continue_after_restart_and_purge(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--binlog-max-size", "0", "--binlog-max-age", "1", "--hz", "50"]
    fresh_server.start()
    c = fresh_server.client()
    for i in range(5):
        c.set(f"k{i}", i)
    _first, last, _size = c.execute_command("BINLOG", "INFO")
    fresh_server.kill9()
    fresh_server.start()
    c = fresh_server.client()
    c.set("after", "restart")
    _f, again, _s = c.execute_command("BINLOG", "INFO")
    assert again > last  # the sequence goes on after a crash; no LogID is used twice
    import time

    for _ in range(400):  # records older than 1 s are purged in the background
        first, newest, _s = c.execute_command("BINLOG", "INFO")
        if first == newest:
            break
        time.sleep(0.05)
    assert first == newest >= again
    with pytest.raises(redis.ResponseError, match="LOGPURGED"):
        c.execute_command("BINLOG", "SHOW", 0, 10)


def test_digest_per_db_and_slot(r: redis.Redis) -> None:
    import time

    for _ in range(600):  # what earlier tests left is reclaimed in the background: let it end
        info = r.info("persistence")
        if not info["ledis_reclaim_pending_dbs"] and not info["ledis_reclaim_pending_collections"]:
            break
        time.sleep(0.05)
    empty = r.execute_command("DEBUG", "DIGEST", "DB", 0)
    r.set("x", "1")
    whole = r.execute_command("DEBUG", "DIGEST")
    assert r.execute_command("DEBUG", "DIGEST", "DB", 0) != empty
    slot = r.execute_command("CLUSTER", "KEYSLOT", "x")
    assert r.execute_command("DEBUG", "DIGEST", "SLOT", slot) != b"0" * 40
    assert r.execute_command("DEBUG", "DIGEST", "SLOT", (slot + 1) % 16384) == b"0" * 40
    r.set("x", "2")
    assert r.execute_command("DEBUG", "DIGEST") != whole
    r.set("x", "1")  # the same data again: the same digest (the log is not part of it)
    assert r.execute_command("DEBUG", "DIGEST") == whole
    assert empty == b"0" * 40


def test_backup_under_load_restores_exactly(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.extra += ["--backup-dir", str(tmp_path / "backups")]
    fresh_server.start()
    c = fresh_server.client()
    c.hset("h", mapping={f"f{i}": i for i in range(2000)})
    c.rpush("l", *range(500))
    c.zadd("z", {f"m{i}": i for i in range(500)})
    writer = fresh_server.client()
    assert c.bgsave()
    for i in range(300):  # writes go on while the snapshot is written
        writer.set(f"during{i}", i)
    import time

    for _ in range(200):
        if c.info("persistence")["rdb_bgsave_in_progress"] == 0:
            break
        time.sleep(0.05)
    info = c.info("persistence")
    path = info["ledis_last_backup"]
    assert path and info["rdb_last_bgsave_status"] == "ok"
    assert c.lastsave()
    restored = tmp_path / "restored"
    out = tool("restore", path, "--data-dir", str(restored))
    assert out.returncode == 0, out.stderr
    copy = LedisServer(tmp_path / "copy", data_dir=restored).start()
    try:
        d = copy.client()
        assert d.hlen("h") == 2000 and d.lrange("l", 0, 2) == [b"0", b"1", b"2"]
        assert d.zscore("z", "m7") == 7.0
        n_during = sum(1 for k in d.scan_iter("during*"))
        assert 0 <= n_during <= 300
        log_id = info["ledis_last_backup_log_id"]
        assert d.execute_command("BINLOG", "INFO")[1] == log_id  # continues the sequence
        # The restored data is exactly the master's at the backup's LogID.
        assert d.execute_command("DEBUG", "DIGEST").decode() == info["ledis_last_backup_digest"]
    finally:
        copy.stop()


def test_corrupt_backup_is_refused(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.extra += ["--backup-dir", str(tmp_path / "backups")]
    fresh_server.start()
    c = fresh_server.client()
    c.set("k", "v" * 1000)
    assert c.save()
    good = Path(c.info("persistence")["ledis_last_backup"])
    data = good.read_bytes()
    for n, bad in enumerate((data[:-10], data[:100], data[:60] + b"X" + data[61:])):
        path = tmp_path / f"bad{n}.ldbk"
        path.write_bytes(bad)
        target = tmp_path / f"target{n}"
        out = tool("restore", str(path), "--data-dir", str(target))
        assert out.returncode == 1 and "nothing was restored" in out.stderr
        assert not target.exists()


def test_binlog_show_reads_records_of_a_key_that_changed_type(r: redis.Redis) -> None:
    """A record wrote a list's members; the key is a hash (or zset) now: BINLOG SHOW still
    describes every record instead of failing on the old member's shape."""
    _f, last, _s = r.execute_command("BINLOG", "INFO")
    r.hset("k", "f", "v")
    r.hset("k", "f", "v2")  # a field overwritten in place: the record holds no metadata
    r.zadd("z", {"m": 1})
    r.zadd("z", {"m": 2})
    r.delete("k", "z")
    r.rpush("k", "a")  # the key is a list now, the older records wrote a hash's field
    r.hset("z", "m", "not-a-score")
    records = r.execute_command("BINLOG", "SHOW", last, 100)
    assert len(records) >= 7
    assert all(isinstance(rec[2], list) for rec in records)


def test_binlog_show_is_bounded(r: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="must be positive"):
        r.execute_command("BINLOG", "SHOW", 0, -1)
    _f, last, _s = r.execute_command("BINLOG", "INFO")
    r.set("big", "x" * 3_000_000)  # shown by its start and length, never whole
    lines = [line for rec in r.execute_command("BINLOG", "SHOW", last, 2**62) for line in rec[2]]
    assert max(map(len, lines)) < 1024
