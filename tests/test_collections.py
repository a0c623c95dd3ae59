"""Collections on disk: big keys are deleted in O(1) and reclaimed later; they persist."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from stack.server.storage import keyformat as kf
from stack.server.storage.collections import Collection
from stack.server.storage.engine import Engine
from stack.server.storage.keyspace import Database, Keyspace

from .respclient import RawClient, parse_reply
from .servers import LedisServer


def fill_hash(db: Database, key: bytes, fields: int) -> Collection:
    """A hash of ``fields`` fields written straight through the storage layer (pending)."""
    h = Collection.open(db, key, kf.TYPE_HASH)
    meta = h.create()
    for i in range(fields):
        h.put(b"f%d" % i, b"v")
    meta.size = fields
    h.save()
    return h


def test_deleted_members_are_reclaimed(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "db")
    ks = Keyspace(engine, 1)
    db = ks.dbs[0]
    h = fill_hash(db, b"big", 5000)
    engine.commit()
    old_prefix = h.prefix
    assert sum(1 for _ in engine.scan(old_prefix, kf.prefix_end(old_prefix))) == 5000
    mkey, record = db.read(b"big")
    assert record is not None
    ks.delete(mkey, record)  # O(1): only the metadata goes now
    engine.commit()
    assert db.read(b"big")[1] is None
    assert ks.reclaim_pending() == (0, 1)
    steps = 0
    while ks.reclaim_pending()[1] and steps < 100:
        ks.reclaim_step(1000)
        steps += 1
    assert steps >= 5  # bounded steps, not one big delete
    assert sum(1 for _ in engine.scan(old_prefix, kf.prefix_end(old_prefix))) == 0
    engine.close()


def test_reclaim_step_ending_between_a_dropped_dbs_ranges_spares_the_rest(
    tmp_path: Path,
) -> None:
    """A step whose budget the metadata of a dropped database uses up exactly stops before
    its members, and the next step resumes there. It resumed at the start of the store and
    deleted the system records and the keys of the live databases (in
    test_sorted_set_queue_matches_redis, a sorted set lost its first members after FLUSHALL)."""
    engine = Engine(tmp_path / "db")
    ks = Keyspace(engine, 2)
    live, dropped = ks.dbs
    string = bytes([kf.TYPE_STRING]) + b"v"
    ks.write(live.meta_key(b"q"), string, None)
    budget = 50
    for i in range(budget - 1):  # with the hash: exactly one budget of metadata
        ks.write(dropped.meta_key(b"k%d" % i), string, None)
    fill_hash(dropped, b"h", 5)
    engine.commit()
    ks.flush(1)
    engine.commit()
    kept = {k: engine.get(k) for k in (kf.SYS_VERSION, kf.SYS_DB_MAP, kf.SYS_NEXT_DB)}
    assert ks.reclaim_step(budget) == budget  # the metadata: the members come next
    assert ks.reclaim_step(budget) == 5
    assert ks.reclaim_pending() == (0, 0)
    assert live.read(b"q")[1] == string
    assert {k: engine.get(k) for k in kept} == kept
    assert engine.get(kf.counts_key(live.phys)) is not None
    assert engine.first_key(kf.NS_META, kf.NS_EXPIRE) == live.meta_key(b"q")
    engine.close()


def test_big_hash_delete_does_not_stall(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    pipe = c.pipeline(transaction=False)
    for chunk in range(100):
        pipe.hset("big", mapping={f"f{chunk}:{i}": "v" for i in range(1000)})
    pipe.execute()
    assert c.hlen("big") == 100_000
    assert c.delete("big") == 1
    assert c.exists("big") == 0
    assert c.hlen("big") == 0
    other = fresh_server.client()
    for _ in range(100):
        assert other.set("k", "v") and other.get("k") == b"v"  # others go on being served
    for _ in range(400):
        if c.info("persistence")["ledis_reclaim_pending_collections"] == 0:
            break
        time.sleep(0.05)
    assert c.info("persistence")["ledis_reclaim_pending_collections"] == 0
    c.hset("big", "new", "1")  # a new version: none of the old members come back
    assert c.hgetall("big") == {b"new": b"1"}


def test_collections_survive_kill9(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.hset("h", mapping={"a": "1", "b": "2"})
    c.sadd("s", "x", "y", "z")
    c.srem("s", "y")
    c.hdel("h", "a")
    with c.pipeline(transaction=True) as p:
        p.sadd("s", "w")
        p.hset("h", "c", "3")
        p.execute()
    c.sadd("gone", "1")
    c.delete("gone")
    fresh_server.kill9()
    fresh_server.start()
    c = fresh_server.client()
    assert c.hgetall("h") == {b"b": b"2", b"c": b"3"}
    assert c.smembers("s") == {b"x", b"z", b"w"}
    assert c.exists("gone") == 0
    assert c.dbsize() == 2
    assert c.type("h") == b"hash" and c.type("s") == b"set"
    assert set(c.scan_iter(_type="hash")) == {b"h"}


def test_wrongtype(r: redis.Redis) -> None:
    r.set("str", "v")
    r.sadd("set", "m")
    for call in (lambda: r.hget("str", "f"), lambda: r.sadd("str", "x"),
                 lambda: r.hset("set", "f", "v"), lambda: r.get("set"),
                 lambda: r.incr("set"), lambda: r.sinter("set", "str")):
        try:
            call()
            raise AssertionError("expected WRONGTYPE")
        except redis.ResponseError as e:
            assert str(e).startswith("WRONGTYPE Operation against a key holding the wrong kind")


def test_sorted_sets_survive_kill9(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.zadd("z", {"a": 1.5, "b": -2, "c": float("inf")})
    c.zincrby("z", 10, "b")
    c.zrem("z", "a")
    fresh_server.kill9()
    fresh_server.start()
    c = fresh_server.client()
    assert c.zrange("z", 0, -1, withscores=True) == [(b"b", 8.0), (b"c", float("inf"))]
    assert c.zrangebyscore("z", "(8", "+inf") == [b"c"]


def test_hscan_walks_big_hashes_and_novalues(r: redis.Redis) -> None:
    r.hset("h", mapping={f"f{i}": i for i in range(1000)})
    seen: dict[bytes, bytes] = {}
    cursor = 0
    for _ in range(1000):
        cursor, batch = r.hscan("h", cursor, count=50)
        seen.update(batch)
        if cursor == 0:
            break
    assert len(seen) == 1000 and seen[b"f7"] == b"7"
    raw = RawClient(r.connection_pool.connection_kwargs["port"])
    reply = parse_reply(raw.call("HSCAN", "h", 0, "MATCH", "f99*", "COUNT", 2000, "NOVALUES"))
    assert isinstance(reply, list)
    assert sorted(reply[1]) == [b"f99", b"f990", b"f991", b"f992", b"f993", b"f994", b"f995",
                                b"f996", b"f997", b"f998", b"f999"]
