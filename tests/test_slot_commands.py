"""The server's slot support against real processes: Codis's commands, keys moving between two
ledis-servers (every type, with its TTL, small ones whole and big ones in parts), the slot map
and what a node answers with one (MOVED, ASK, ASKING, TRYAGAIN, CROSSSLOT), keys held while
on their way, replicas of both sides, authentication, and nodes killed mid-transfer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.cluster.etcd_server import free_port
from stack.core.slots import key_slot
from stack.server.looplag import LATE, LoopLag
from stack.server.migrate import WORK_MAX, WORK_MIN, WORK_START, WORK_STEP, Pace

from .respclient import RawClient
from .servers import LedisServer, wait_until

SLOT_T = key_slot(b"{t}")


def node_map(epoch: int, me: int, a: LedisServer, b: LedisServer, migrating: dict[int, int] | None = None) -> str:
    """A slot map as the cluster pushes it: slots 0-8191 to group 1 (``a``), the rest to group
    2 (``b``); ``migrating`` slot -> target group."""
    owners = [1 if s < 8192 else 2 for s in range(16384)]
    targets = migrating or {}
    ranges: list[dict[str, object]] = []
    for s, g in enumerate(owners):
        state = "migrating" if s in targets else "online"
        last = ranges[-1] if ranges else None
        if last and (last["group"], last["state"], last.get("target")) == (g, state, targets.get(s)):
            last["to"] = s
        else:
            r: dict[str, object] = {"from": s, "to": s, "group": g, "state": state}
            if s in targets:
                r["target"] = targets[s]
            ranges.append(r)
    return json.dumps({"v": 1, "epoch": epoch, "group": me,
                       "groups": {"1": f"127.0.0.1:{a.port}", "2": f"127.0.0.1:{b.port}"},
                       "ranges": ranges})  # fmt: skip


def set_maps(a: LedisServer, b: LedisServer, epoch: int, migrating: dict[int, int] | None = None) -> None:
    a.client().execute_command("SLOTSMAP", "SET", epoch, node_map(epoch, 1, a, b, migrating))
    b.client().execute_command("SLOTSMAP", "SET", epoch, node_map(epoch, 2, a, b, migrating))


def key_in(slot_range: range, prefix: str = "k") -> str:
    for i in range(100000):
        k = f"{prefix}{i}"
        if key_slot(k.encode()) in slot_range:
            return k
    raise AssertionError("no key found")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LedisServer, LedisServer]]:
    a = LedisServer(tmp_path_factory.mktemp("a")).start()
    b = LedisServer(tmp_path_factory.mktemp("b")).start()
    yield a, b
    for s in (a, b):
        assert s.stop() == 0, s.log()


@pytest.fixture
def nodes(pair: tuple[LedisServer, LedisServer]) -> Iterator[tuple[LedisServer, LedisServer]]:
    for s in pair:
        c = s.client()
        c.execute_command("SLOTSMAP", "RESET")
        c.flushall()
    yield pair
    for s in pair:
        s.client().execute_command("SLOTSMAP", "RESET")


def fill(c: redis.Redis, tag: str = "", big: bool = True) -> dict[str, int]:
    """One key of every type (and every size), with and without TTLs; -> key: PTTL class."""
    c.set(f"str{tag}", "v")
    c.set(f"strttl{tag}", "v", px=600_000)
    c.set(f"chunked{tag}", "x" * 10_000)
    c.hset(f"hash{tag}", mapping={f"f{i}": f"v{i}" for i in range(10)})
    c.expire(f"hash{tag}", 500)
    c.rpush(f"list{tag}", *[f"e{i}" for i in range(10)])
    c.lpush(f"list{tag}", "first")
    c.sadd(f"set{tag}", *range(10))
    c.zadd(f"zset{tag}", {f"m{i}": i / 3 for i in range(10)})
    if big:
        c.hset(f"bighash{tag}", mapping={f"f{i}": f"v{i}" * 3 for i in range(5000)})
        c.hset(f"bighash{tag}", "", "empty field")
        c.rpush(f"biglist{tag}", *[f"e{i}" for i in range(3000)])
        c.lpush(f"biglist{tag}", "head")
        c.sadd(f"bigset{tag}", *range(2500))
        c.zadd(f"bigzset{tag}", {f"m{i}": -i * 1.5 for i in range(2500)})
        c.pexpire(f"bigzset{tag}", 700_000)
        c.setrange(f"bigstring{tag}", 1_000_000, "end")
        c.setrange(f"bigstring{tag}", 5, "start")
    return {k.decode(): c.pttl(k) for k in c.keys("*")}


def call_in_thread(
    server: LedisServer, results: dict[str, object], name: str, *cmd: object
) -> threading.Thread:
    """Send ``cmd`` to ``server`` from a thread of its own (started): its reply, or its error
    reply, lands in ``results[name]``."""

    def run() -> None:
        try:
            results[name] = server.client().execute_command(*cmd)
        except redis.ResponseError as e:
            results[name] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def fill_big_hash(c: redis.Redis, fields: int, key: str = "big") -> bytes:
    """A hash of ``fields`` fields (one that moves in parts); its DUMP."""
    pipe = c.pipeline(transaction=False)
    for i in range(0, fields, 1000):
        pipe.hset(key, mapping={f"f{j}": j for j in range(i, min(fields, i + 1000))})
    pipe.execute()
    return c.dump(key)  # type: ignore[return-value]


def fill_slot_t(c: redis.Redis, n: int) -> None:
    """Keys {t}k0 .. {t}k<n-1> (all in SLOT_T), each holding its number."""
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{{t}}k{i}", i)
    pipe.execute()


def dumps(c: redis.Redis) -> dict[bytes, bytes]:
    return {k: c.dump(k) for k in c.keys("*")}  # type: ignore[misc]


# -- Codis's commands ----------------------------------------------------------------------


def test_codis_replies_and_errors(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, _b = nodes
    c = a.client()
    assert c.execute_command("SLOTSHASHKEY", "a", "b", "c", "{t}x") == [15495, 3300, 7365, SLOT_T]
    assert c.execute_command("SLOTSHASHKEY") == []
    assert c.execute_command("SLOTSINFO") == []
    for i in range(30):
        c.set(f"{{t}}{i}", i)
    c.set("a", 1)
    c.set("gone", 1, px=1)
    info = c.execute_command("SLOTSINFO")  # slots in order; an expired key counts until swept
    expect = sorted([[SLOT_T, 30], [15495, 1]])
    assert info in (expect, sorted([*expect, [key_slot(b"gone"), 1]]))
    assert c.execute_command("SLOTSINFO", SLOT_T, 1) == [[SLOT_T, 30]]
    assert c.execute_command("SLOTSINFO", SLOT_T + 1, 0) == []
    errors = {
        ("SLOTSINFO", "16384"): "invalid slot number = 16384",
        ("SLOTSINFO", "0", "-1"): "invalid slot count = -1",
        ("SLOTSINFO", "x"): "value is not an integer or out of range",
        ("SLOTSINFO", "0", "1", "2"): "wrong number of arguments for 'slotsinfo' command",
        ("SLOTSINFO", "99999999999"): "value is out of range",
        ("SLOTSSCAN", "1", "0", "COUNT", "0"): "syntax error",
        ("SLOTSSCAN", "1", "0", "COUNTX", "1"): "syntax error",
        ("SLOTSSCAN", "1", "0", "COUNT"): "wrong number of arguments for 'slotsscan' command",
        ("SLOTSSCAN", "1", "x"): "invalid cursor",
        ("SLOTSDEL", "-1"): "invalid slot number = -1",
        ("SLOTSMGRTONE", "127.0.0.1", "1", "-5", "k"): "invalid timeout = -5",
        ("SLOTSMGRTONE", "127.0.0.1", "0", "100", "k"): "value is out of range",
        ("SLOTSMGRTSLOT", "127.0.0.1", "1", "100", "16384"): "invalid slot number = 16384",
        ("SLOTSMGRTSLOT", "127.0.0.1", "1", "100", "1", "MAXKEYS", "0"): "value is out of range, value must between 1 and 100000",
        ("SLOTSMGRTSLOT", "127.0.0.1", "1", "100", "1", "NOPE"): "syntax error",
        ("SLOTSRESTORE", "k", "0"): "wrong number of arguments for 'slotsrestore' command",
        ("SLOTSRESTORE", "k", "0", "v", "k2"): "wrong number of arguments for 'slotsrestore' command",
        ("SLOTSRESTORE", "k", "-1", "v"): "invalid ttl value, must be >= 0",
        ("SLOTSRESTORE", "k", "0", "v"): "dump payload version or checksum are wrong",
        ("SLOTSMAP", "SET", "1", "{}"): "invalid slot map: field 'group': expected an integer >= 1, got None",
        ("SLOTSMAP", "NOPE"): "unknown subcommand 'NOPE'. Try SLOTSMAP HELP.",
    }  # fmt: skip
    for call, message in errors.items():
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command(*call)
        assert str(e.value) == message, call
    # SLOTSSCAN walks the slot once, whatever COUNT says
    seen: list[bytes] = []
    cursor = b"0"
    while True:
        cursor, keys = c.execute_command("SLOTSSCAN", SLOT_T, cursor, "COUNT", 7)
        assert len(keys) <= 7
        seen += keys
        if cursor == b"0":
            break
    assert sorted(seen) == sorted(f"{{t}}{i}".encode() for i in range(30))
    # SLOTSDEL: [[slot, keys left]] in the order given
    assert c.execute_command("SLOTSDEL", SLOT_T, 15495, SLOT_T) == [[SLOT_T, 0], [15495, 0], [SLOT_T, 0]]
    assert c.keys("{t}*") == [] and c.get("a") is None
    assert c.execute_command("SLOTSMAP", "GET") is None


def test_every_type_moves_whole_with_its_ttl(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, b = nodes
    ca, cb = a.client(), b.client()
    ttls = fill(ca)
    before = dumps(ca)
    start_a, start_b = ca.info("slots"), cb.info("slots")
    for key in sorted(ttls):
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 30000, key) == 1, key
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 30000, key) == 0, key
    assert ca.dbsize() == 0
    assert dumps(cb) == before
    for key, ttl in ttls.items():
        got = cb.pttl(key)
        assert (got == -1) if ttl == -1 else (0 < ttl - got < 60_000), (key, ttl, got)
    info_a, info_b = ca.info("slots"), cb.info("slots")

    def grew(info: dict[str, int], start: dict[str, int], name: str) -> int:
        return info[name] - start[name]

    big = ("bighash", "biglist", "bigset", "bigzset", "bigstring")
    assert grew(info_a, start_a, "ledis_migrate_big_keys_moved") == len(big)
    assert grew(info_a, start_a, "ledis_migrate_keys_moved") == len(ttls)
    # the big ones came in bounded parts, each at most 1000 entries
    assert grew(info_b, start_b, "ledis_stage_keys_completed") == len(big)
    assert grew(info_b, start_b, "ledis_stage_parts_received") >= 5 + 2 + 3 + 3 + 3
    assert info_b["ledis_stage_part_entries_max"] <= 1000
    assert cb.hget("bighash", "") == b"empty field"
    assert cb.lrange("biglist", 0, 1) == [b"head", b"e0"] and cb.llen("biglist") == 3001
    assert cb.getrange("bigstring", 0, 9) == b"\0\0\0\0\0start"


def test_tag_siblings_move_together(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, b = nodes
    ca, cb = a.client(), b.client()
    for i in range(50):
        ca.set(f"x{i}{{user:1}}", i)
    ca.set("other{user:2}", 1)
    assert ca.execute_command("SLOTSMGRTTAGONE", "127.0.0.1", b.port, 30000, "x7{user:1}") == 50
    assert ca.keys("*") == [b"other{user:2}"]
    assert len(cb.keys("*{user:1}")) == 50
    # a key without a tag moves alone; a missing one moves nothing
    ca.set("plain", 1)
    assert ca.execute_command("SLOTSMGRTTAGONE", "127.0.0.1", b.port, 30000, "plain") == 1
    assert ca.execute_command("SLOTSMGRTTAGONE", "127.0.0.1", b.port, 30000, "nosuch{x}") == 0


def test_a_slot_moves_in_bounded_batches(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, b = nodes
    ca, cb = a.client(), b.client()
    pipe = ca.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"{{t}}k{i}", "v" * (i % 50))
    pipe.execute()
    ca.hset("{t}big", mapping={f"f{i}": i for i in range(4000)})
    ca.set("elsewhere", 1)
    before = dumps(ca)
    replies = []
    while True:
        moved, remaining, nbytes = ca.execute_command(
            "SLOTSMGRTTAGSLOT", "127.0.0.1", b.port, 30000, SLOT_T, "MAXKEYS", 400, "WITHBYTES"
        )
        replies.append((moved, remaining, nbytes))
        assert moved <= 400 + 1 and nbytes >= 0
        if remaining == 0:
            break
        assert len(replies) < 1000
    assert sum(m for m, _r, _n in replies) == 3001
    assert len(replies) >= 3000 // 400
    assert ca.keys("*") == [b"elsewhere"]
    assert dumps(cb) == {k: v for k, v in before.items() if k != b"elsewhere"}
    # an empty slot answers at once; Codis's two-element reply without WITHBYTES
    assert ca.execute_command("SLOTSMGRTSLOT", "127.0.0.1", b.port, 100, SLOT_T) == [0, 0]
    info = ca.info("slots")
    assert info["ledis_migrate_failures"] == 0
    # the pace's work between two rests stays within its bounds (1-20 ms)
    assert 1000 <= info["ledis_migrate_pace_work_us"] <= 20_000
    assert info["ledis_migrate_pace_slowed"] >= 0


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02])
def test_a_slot_is_not_called_empty_while_another_call_holds_its_keys(
    nodes: tuple[LedisServer, LedisServer], delay: float
) -> None:
    """Two calls move one slot; one of them sends to a target that never answers. The other
    went on from where the first stood, past the keys it holds: it must not answer "0 left"
    while those keys are still on the source (a driver would stop there and leave them).
    ``delay``: when the second call comes (it must come while the first walks the slot)."""
    import socket
    import socketserver
    import time

    from stack.core.resp import RequestParser

    links: list[socket.socket] = []

    class Silent(socketserver.BaseRequestHandler):
        """A target that takes the link's introductions and never answers a restore (the
        source keeps those keys held until its link is gone and SLOTSFORGET answered)."""

        def handle(self) -> None:
            links.append(self.request)
            parser = RequestParser()
            with contextlib.suppress(OSError):
                while data := self.request.recv(65536):
                    parser.feed(data)
                    for args in parser.parse():
                        self.request.sendall(answer([a.upper() for a in args[:2]]))

    def answer(args: list[bytes]) -> bytes:
        if args[0] == b"INFO":
            return b"$21\r\nrun_id:fakefakefake\r\n\r\n"
        if args[0] in (b"SLOTSRESTORE", b"SLOTSSTAGE"):
            return b""
        if args == [b"CLIENT", b"ID"] or args[0] == b"SLOTSFORGET":
            return b":0\r\n"
        if args == [b"CLIENT", b"LIST"]:
            return b"$0\r\n\r\n"
        return b"+OK\r\n"

    a, b = nodes
    ca = a.client()
    pipe = ca.pipeline(transaction=False)
    for i in range(20_000):
        pipe.set(f"{{t}}k{i}", "v")
    pipe.execute()
    silent = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    silent.daemon_threads = True
    threading.Thread(target=silent.serve_forever, daemon=True).start()
    results: dict[str, object] = {}
    bulk = call_in_thread(a, results, "bulk", "SLOTSMGRTTAGSLOT", "127.0.0.1", b.port, 30000,
                          SLOT_T, "MAXKEYS", 100_000)  # fmt: skip
    time.sleep(delay)  # not a wait for readiness: where the second call falls in the first
    stuck = call_in_thread(a, results, "stuck", "SLOTSMGRTTAGSLOT", "127.0.0.1",
                           silent.server_address[1], 1500, SLOT_T, "MAXKEYS", 200)  # fmt: skip
    bulk.join(60)
    left_on_source = ca.execute_command("CLUSTER", "COUNTKEYSINSLOT", SLOT_T)
    stuck.join(60)
    for link in list(links):  # the silent target drops the link: the source undoes, releases
        with contextlib.suppress(OSError):
            link.shutdown(socket.SHUT_RDWR)
    moved, remaining = results["bulk"]  # type: ignore[misc]
    assert remaining > 0 or left_on_source == 0, (moved, remaining, left_on_source)
    while remaining:  # the driver goes on: everything arrives in the end
        moved, remaining = ca.execute_command("SLOTSMGRTTAGSLOT", "127.0.0.1", b.port, 30000, SLOT_T)
    assert ca.execute_command("CLUSTER", "COUNTKEYSINSLOT", SLOT_T) == 0
    assert b.client().dbsize() == 20_000
    silent.shutdown()
    silent.server_close()


def test_the_pace_halves_after_a_late_rest_and_grows_after_a_timely_one() -> None:
    pace = Pace()
    assert pace.work == WORK_START
    for _ in range(100):
        pace.adapt(late=False)
    assert pace.work == WORK_MAX
    pace.adapt(late=True)
    assert pace.work == WORK_MAX / 2 and pace.slowed == 1
    for _ in range(100):
        pace.adapt(late=True)
    assert pace.work == WORK_MIN and pace.slowed == 101
    pace.adapt(late=False)
    assert pace.work == WORK_MIN + WORK_STEP


class FedLag(LoopLag):
    """A LoopLag whose ticks the test gives (``note``): no timer of its own."""

    def touch(self) -> None:
        pass


def test_the_pace_gives_way_once_for_each_late_tick_of_the_loop() -> None:
    """Mid-burst, the pace only yields (no rest) while the loop's ticks run on time; a tick
    LATE or more after its time makes the next slice a real rest, halving ``work``, once
    the moves worked WORK_MIN since the last rest; that tick is answered once, and a tick
    late by less (the timers' own rounding) is none."""

    async def run() -> None:
        lag = FedLag()
        pace = Pace(lag)
        pace.work = WORK_MAX

        def mid_burst(worked: float) -> None:  # only a wait can make it rest now
            pace.burst_until = time.monotonic() + 3600
            pace.rested = time.monotonic() - worked

        mid_burst(1.0)
        await pace.rest()
        assert (pace.gave_way, pace.slowed, pace.work) == (0, 0, WORK_MAX)
        lag.note(LATE / 2)
        assert not lag.waited()
        await pace.rest()
        assert (pace.gave_way, pace.slowed, pace.work) == (0, 0, WORK_MAX)
        lag.note(LATE)
        assert lag.waited() and lag.late_ticks == 1
        mid_burst(-3600.0)  # just rested: the late tick waits for WORK_MIN of work
        await pace.rest()
        assert (pace.gave_way, pace.slowed, pace.work) == (0, 0, WORK_MAX)
        mid_burst(1.0)
        await pace.rest()
        assert (pace.gave_way, pace.slowed, pace.work) == (1, 1, WORK_MAX / 2)
        mid_burst(1.0)
        await pace.rest()  # the same late tick: answered already
        assert (pace.gave_way, pace.slowed) == (1, 1)
        for _ in range(20):
            lag.note(LATE * 3)
            mid_burst(1.0)
            await pace.rest()
        assert (pace.gave_way, pace.work) == (21, WORK_MIN)

    asyncio.run(run())


def test_the_loop_lag_ticks_while_touched_and_stops_after() -> None:
    async def run() -> None:
        lag = LoopLag()
        deadline = time.monotonic() + 60
        while lag.ticks < 3 and time.monotonic() < deadline:
            lag.touch()
            await asyncio.sleep(0.005)
        assert lag.ticks >= 3
        while lag._handle is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # untouched: it stops by itself
        assert lag._handle is None
        ticks = lag.ticks
        await asyncio.sleep(0.05)
        assert lag.ticks == ticks

    asyncio.run(run())


def test_moves_give_way_while_the_loop_runs_late_and_still_finish(
    nodes: tuple[LedisServer, LedisServer],
) -> None:
    """Another client holds the source's and the target's loops (DEBUG SLEEP, 10 ms at a
    time) while a slot moves: the loop's ticks run late, the source's pace gives way and
    halves its work, and every key still moves, whole, in the end."""
    a, b = nodes
    ca, cb = a.client(), b.client()
    fill_slot_t(ca, 3000)
    before = dumps(ca)
    start = ca.info("slots")
    done = threading.Event()

    def hold(server: LedisServer) -> None:
        c = server.client()
        while not done.is_set():
            c.execute_command("DEBUG", "SLEEP", "0.01")

    holders = [threading.Thread(target=hold, args=(s,)) for s in (a, b)]
    for t in holders:
        t.start()
    try:
        calls = 0
        while True:
            _moved, remaining = ca.execute_command(
                "SLOTSMGRTTAGSLOT", "127.0.0.1", b.port, 30000, SLOT_T, "MAXKEYS", 100
            )
            calls += 1
            assert calls < 1000
            if remaining == 0:
                break
    finally:
        done.set()
        for t in holders:
            t.join(60)
    info = ca.info("slots")
    assert ca.dbsize() == 0 and dumps(cb) == before
    assert info["ledis_migrate_failures"] == start["ledis_migrate_failures"]
    assert info["ledis_loop_lag_late_ticks"] > start["ledis_loop_lag_late_ticks"]
    assert info["ledis_migrate_pace_gave_way"] > start["ledis_migrate_pace_gave_way"]
    assert info["ledis_migrate_pace_slowed"] > start["ledis_migrate_pace_slowed"]
    assert cb.info("slots")["ledis_loop_lag_ticks"] > 0  # restores tick the target's too


def test_other_clients_run_while_a_big_batch_moves(nodes: tuple[LedisServer, LedisServer]) -> None:
    """One call moving 5000 keys works in slices: another client's pipeline of writes to the
    source, sent meanwhile, is answered in full and in order, and both end where they
    should."""
    a, b = nodes
    ca, cb = a.client(), b.client()
    fill_slot_t(ca, 5000)
    result: list[list[int]] = []
    mover = threading.Thread(target=lambda: result.append(a.client().execute_command(
        "SLOTSMGRTTAGSLOT", "127.0.0.1", b.port, 30000, SLOT_T, "MAXKEYS", 5000)))  # fmt: skip
    mover.start()
    other = ca.pipeline(transaction=False)
    for _ in range(3000):
        other.incr("elsewhere")
    assert other.execute() == list(range(1, 3001))
    mover.join(60)
    assert result and result[0][0] == 5000, result
    assert ca.keys("*") == [b"elsewhere"] and ca.get("elsewhere") == b"3000"
    assert cb.dbsize() == 5000 and cb.get("{t}k4999") == b"4999"


def test_failures_leave_the_key_where_it_was(nodes: tuple[LedisServer, LedisServer], tmp_path: Path) -> None:
    a, _b = nodes
    ca = a.client()
    ca.set("k", "v")
    port = free_port()
    with pytest.raises(redis.ResponseError, match=f"Can't connect to target node: 127.0.0.1:{port}"):
        ca.execute_command("SLOTSMGRTONE", "127.0.0.1", port, 1000, "k")
    with pytest.raises(redis.ResponseError, match="is this node: a key cannot move to itself"):
        ca.execute_command("SLOTSMGRTONE", "127.0.0.1", a.port, 1000, "k")
    assert ca.get("k") == b"v"
    assert ca.info("slots")["ledis_keys_held_by_migrations"] == 0


# -- the receiving side ----------------------------------------------------------------------


def test_slotsrestore_replaces_and_stage_checks_every_part(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, b = nodes
    ca, cb = a.client(), b.client()
    ca.hset("h", mapping={"a": 1, "b": 2})
    ca.set("s", "x")
    payload_h, payload_s = ca.dump("h"), ca.dump("s")
    cb.set("h", "old string")
    assert cb.execute_command("SLOTSRESTORE", "h", 0, payload_h, "s", 5000, payload_s) == b"OK"
    assert cb.hgetall("h") == {b"a": b"1", b"b": b"2"} and 0 < cb.pttl("s") <= 5000
    # a part of a hash: DUMP frames; in order, strictly increasing members, size checked
    part1 = ca.dump("h")  # entries a, b
    ca.hset("h2", mapping={"c": 3})
    part2 = ca.dump("h2")
    bad = {
        ("k", "t1", "1", part1): "no such transfer here",
        ("k", "", "0", part1): "a token is 1 to 128 bytes",
    }
    for args, msg in bad.items():
        with pytest.raises(redis.ResponseError, match=msg):
            cb.execute_command("SLOTSSTAGE", *args)
    given_up = cb.info("slots")["ledis_stage_transfers_given_up"]
    assert cb.execute_command("SLOTSSTAGE", "k", "t1", 0, part1) == b"OK"
    with pytest.raises(redis.ResponseError, match=r"part 2 out of order \(expected 1\)"):
        cb.execute_command("SLOTSSTAGE", "k", "t1", 2, part2)
    with pytest.raises(redis.ResponseError, match="size 5 or ttl 0 does not fit"):
        cb.execute_command("SLOTSSTAGE", "k", "t1", 1, part2, "COMMIT", 0, 5)
    assert cb.exists("k") == 0  # given up: nothing of it appeared
    assert cb.execute_command("SLOTSSTAGE", "k", "t2", 0, part1) == b"OK"
    with pytest.raises(redis.ResponseError, match="members out of order"):
        cb.execute_command("SLOTSSTAGE", "k", "t2", 1, part1, "COMMIT", 0, 4)
    assert cb.execute_command("SLOTSSTAGE", "k", "t3", 0, part1) == b"OK"
    ca.sadd("set", "z")
    with pytest.raises(redis.ResponseError, match="a part of another type"):
        cb.execute_command("SLOTSSTAGE", "k", "t3", 1, ca.dump("set"))
    assert cb.execute_command("SLOTSSTAGE", "k", "t4", 0, part1) == b"OK"
    assert cb.exists("k") == 0  # staged, invisible until the commit
    assert cb.execute_command("SLOTSSTAGE", "k", "t4", 1, part2, "COMMIT", 0, 3) == b"OK"
    assert cb.hgetall("k") == {b"a": b"1", b"b": b"2", b"c": b"3"}
    info = cb.info("slots")
    assert info["ledis_stage_transfers"] == 0
    assert info["ledis_stage_transfers_given_up"] - given_up == 3
    wait_until(lambda: cb.info("persistence")["ledis_reclaim_pending_collections"] == 0,
               "the given-up stagings reclaimed")  # fmt: skip


# -- the slot map and the gate -----------------------------------------------------------------


def test_moved_ask_asking_tryagain_crossslot(nodes: tuple[LedisServer, LedisServer]) -> None:
    a, b = nodes
    ra, rb = RawClient(a.port), RawClient(b.port)
    low, high = key_in(range(0, 8192)), key_in(range(8192, 16384))
    assert ra.call("SET", low, "here") == b"+OK\r\n"
    set_maps(a, b, 3)
    ls, hs = key_slot(low.encode()), key_slot(high.encode())
    assert ra.call("GET", low) == b"$4\r\nhere\r\n"
    assert ra.call("GET", high) == b"-MOVED %d 127.0.0.1:%d\r\n" % (hs, b.port)
    assert ra.call("PING") == b"+PONG\r\n"  # keyless commands run anywhere
    assert ra.call("DBSIZE") == b":1\r\n"
    assert ra.call("MSET", "{a}1", 1, "{b}1", 1) == b"-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    # stale maps are refused; the same epoch again is fine
    assert ra.call("SLOTSMAP", "SET", 2, node_map(2, 1, a, b)) == (
        b"-ERR stale slot map epoch 2 (this node has epoch 3)\r\n"
    )
    assert ra.call("SLOTSMAP", "SET", 3, node_map(3, 1, a, b)) == b"+OK\r\n"
    # the slot of `low` migrates from group 1 to group 2
    set_maps(a, b, 4, {ls: 2})
    assert ra.call("GET", low) == b"$4\r\nhere\r\n"  # still here: served here
    missing, other = f"{{{low}}}m", f"{{{low}}}o"
    ask = b"-ASK %d 127.0.0.1:%d\r\n" % (ls, b.port)
    assert ra.call("SET", missing, 1) == ask  # new keys are made at the target
    assert ra.call("MGET", low, missing) == ask  # one key missing is enough
    moved_to_a = b"-MOVED %d 127.0.0.1:%d\r\n" % (ls, a.port)
    assert rb.call("GET", missing) == moved_to_a  # the target sends clients to the owner
    assert rb.call("ASKING") == b"+OK\r\n"
    assert rb.call("SET", missing, "new") == b"+OK\r\n"
    assert rb.call("GET", missing) == moved_to_a  # ASKING lasts one command
    assert rb.call("ASKING") == b"+OK\r\n"
    assert rb.call("MGET", missing, other) == b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
    assert rb.call("ASKING") == b"+OK\r\n"
    assert rb.call("MGET", missing) == b"*1\r\n$3\r\nnew\r\n"
    # MULTI/EXEC: each command checked as it is queued, all of them together at EXEC
    assert ra.call("MULTI") == b"+OK\r\n"
    assert ra.call("GET", high) == b"-MOVED %d 127.0.0.1:%d\r\n" % (hs, b.port)
    assert ra.call("EXEC") == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert ra.call("MULTI") == b"+OK\r\n"
    assert ra.call("GET", low) == b"+QUEUED\r\n"
    assert ra.call("SET", low, "x") == b"+QUEUED\r\n"
    assert ra.call("GET", missing) == ask  # flags the transaction
    assert ra.call("EXEC").startswith(b"-EXECABORT")
    assert ra.call("MULTI") == b"+OK\r\n"
    assert ra.call("GET", low) == b"+QUEUED\r\n"
    assert ra.call("GET", high) == b"-MOVED %d 127.0.0.1:%d\r\n" % (hs, b.port)
    assert ra.call("DISCARD") == b"+OK\r\n"
    assert rb.call("ASKING") == b"+OK\r\n"
    assert rb.call("MULTI") == b"+OK\r\n"  # ASKING lasts the whole transaction
    assert rb.call("GET", missing) == b"+QUEUED\r\n"
    assert rb.call("GET", missing) == b"+QUEUED\r\n"
    assert rb.call("EXEC") == b"*2\r\n$3\r\nnew\r\n$3\r\nnew\r\n"
    assert rb.call("GET", missing) == moved_to_a
    # unassigned slots; RESET gives a plain server back
    doc = json.loads(node_map(5, 1, a, b))
    doc["ranges"][0] = {"from": 0, "to": 8191, "state": "unassigned", "group": None}
    assert ra.call("SLOTSMAP", "SET", 5, json.dumps(doc)) == b"+OK\r\n"
    assert ra.call("GET", low) == b"-CLUSTERDOWN Hash slot not served\r\n"
    assert ra.call("SLOTSMAP", "RESET") == b"+OK\r\n"
    assert ra.call("GET", low) == b"$4\r\nhere\r\n"
    assert ra.call("SET", high, 1) == b"+OK\r\n"
    info = a.client().info("slots")
    assert info["ledis_slot_map_epoch"] == 0 and info["ledis_slot_redirects"] >= 5


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("groups"), "field 'groups'"),
        (lambda d: d.update(group=9), "group 9 is not in 'groups'"),
        (lambda d: d["ranges"].pop(), "slots 8192-16383 are not covered"),
        (lambda d: d["ranges"][1].update({"from": 8000}), "ranges[1]: 8000-16383 does not continue from slot 8192"),
        (lambda d: d["ranges"][1].update(state="moving"), "state 'moving' is not one of"),
        (lambda d: d["ranges"][1].update(state="migrating"), "field 'target'"),
        (lambda d: d["ranges"][1].update(target=2, state="migrating"), "target 2 is not another known group"),
        (lambda d: d["groups"].update({"2": "nowhere"}), "expected 'host:port'"),
        (lambda d: d.update(epoch=8), "field 'epoch': 8 is not the epoch given (7)"),
    ],
)  # fmt: skip
def test_bad_maps_are_refused(nodes: tuple[LedisServer, LedisServer], edit: object, message: str) -> None:
    a, b = nodes
    doc = json.loads(node_map(7, 1, a, b))
    edit(doc)  # type: ignore[operator]
    with pytest.raises(redis.ResponseError) as e:
        a.client().execute_command("SLOTSMAP", "SET", 7, json.dumps(doc))
    assert str(e.value).startswith("invalid slot map: ") and message in str(e.value), str(e.value)
    with pytest.raises(redis.ResponseError, match="not valid JSON"):
        a.client().execute_command("SLOTSMAP", "SET", 7, "{nope")
    assert a.client().execute_command("SLOTSMAP", "GET") is None


def test_a_key_on_its_way_holds_commands_then_asks(nodes: tuple[LedisServer, LedisServer]) -> None:
    """The target is paused (CLIENT PAUSE WRITE holds the restore), so the key stays on its
    way: a command on it waits, other keys are served, and once the move ends the waiting
    command gets -ASK (without a map it would find the key gone)."""
    a, b = nodes
    ca, cb = a.client(), b.client()
    key = key_in(range(0, 8192), "held")
    other = key_in(range(0, 8192), "free")
    ca.rpush(key, "a", "b")
    ca.set(other, 1)
    set_maps(a, b, 10, {key_slot(key.encode()): 2})
    cb.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
    results: dict[str, object] = {}
    mover = call_in_thread(a, results, "move", "SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, key)
    wait_until(lambda: ca.info("slots")["ledis_keys_held_by_migrations"] == 1, "the key held")
    waiter = call_in_thread(a, results, "lpush", "LPUSH", key, "c")
    wait_until(lambda: ca.info("slots")["ledis_commands_waited_for_migrations"] >= 1, "the LPUSH waiting")
    assert ca.incr(other) == 2  # the rest of the slot is served meanwhile
    assert "lpush" not in results
    cb.execute_command("CLIENT", "UNPAUSE")
    mover.join(60)
    waiter.join(60)
    assert results["move"] == 1
    slot = key_slot(key.encode())
    assert isinstance(results["lpush"], redis.exceptions.AskError)
    assert str(results["lpush"]) == f"{slot} 127.0.0.1:{b.port}"
    rb = RawClient(b.port)
    assert rb.call("ASKING") == b"+OK\r\n"
    assert rb.call("LRANGE", key, 0, -1) == b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"  # not pushed on the old copy
    assert RawClient(a.port).call("EXISTS", key) == b"-ASK %d 127.0.0.1:%d\r\n" % (slot, b.port)


def test_a_script_cannot_write_a_key_on_its_way(nodes: tuple[LedisServer, LedisServer]) -> None:
    """A script that did not declare a held key gets an error for it instead of writing it on
    the source, where the move would delete the write; one that declares it waits."""
    a, b = nodes
    ca, cb = a.client(), b.client()
    ca.hset("h", "f", "old")
    cb.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
    results: dict[str, object] = {}
    mover = call_in_thread(a, results, "move", "SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "h")
    wait_until(lambda: ca.info("slots")["ledis_keys_held_by_migrations"] == 1, "the key held")
    script = "return redis.call('HSET', 'h', 'f', 'new')"
    with pytest.raises(redis.ResponseError, match="being migrated"):
        ca.eval(script, 0)
    waiter = call_in_thread(a, results, "declared", "EVAL", script.replace("'h'", "KEYS[1]"), 1, "h")
    wait_until(lambda: ca.info("slots")["ledis_commands_waited_for_migrations"] >= 1, "the EVAL waiting")
    cb.execute_command("CLIENT", "UNPAUSE")
    mover.join(60)
    waiter.join(60)
    assert results["move"] == 1
    assert cb.hget("h", "f") == b"old"  # moved as it was: the refused script wrote nothing
    # the declared one ran after the move (no slot map here: on the source, where h was gone)
    assert results["declared"] == 1


# -- replicas, restarts, kills, authentication ------------------------------------------------


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG", "DIGEST")  # type: ignore[no-any-return]


def test_maps_persist_and_replicas_follow_both_sides(tmp_path: Path) -> None:
    a = LedisServer(tmp_path / "a").start()
    b = LedisServer(tmp_path / "b").start()
    ra = LedisServer(tmp_path / "ra", "--replicaof", "127.0.0.1", str(a.port)).start()
    rb = LedisServer(tmp_path / "rb", "--replicaof", "127.0.0.1", str(b.port)).start()
    try:
        ca, cb = a.client(), b.client()
        tag = "{" + key_in(range(0, 8192), "tag") + "}"  # a slot of group 1, that is a's
        slot = key_slot(tag.encode())
        n = len(fill(ca, tag))
        set_maps(a, b, 20, {slot: 2})
        while ca.execute_command("SLOTSMGRTSLOT", "127.0.0.1", b.port, 30000, slot, "MAXKEYS", 3)[1]:
            pass
        assert ca.dbsize() == 0 and cb.dbsize() == n == 12
        for master, replica in ((a, ra), (b, rb)):
            m, r = master.client(), replica.client()
            wait_until(lambda m=m, r=r: digest(r) == digest(m), "the replica to catch up")
            assert r.execute_command("SLOTSMAP", "GET") == m.execute_command("SLOTSMAP", "GET")
        replica_b = RawClient(rb.port)  # the slot still migrates: the target's side needs ASKING
        assert replica_b.call("HLEN", f"bighash{tag}")[:6] == b"-MOVED"
        assert replica_b.call("ASKING") == b"+OK\r\n"
        assert replica_b.call("HLEN", f"bighash{tag}") == b":5001\r\n"
        # a restart keeps the map
        a.stop()
        a.start()
        assert a.client().execute_command("SLOTSMAP", "GET") is not None
        assert a.client().info("slots")["ledis_slot_map_epoch"] == 20
    finally:
        for s in (a, b, ra, rb):
            if s.proc is not None and s.proc.poll() is None:
                s.kill9()


def test_target_killed_mid_transfer(tmp_path: Path) -> None:
    """kill -9 of the target while a big key arrives in parts: the source keeps the key whole,
    the restarted target drops what it had staged, and the move then succeeds."""
    a = LedisServer(tmp_path / "a").start()
    b = LedisServer(tmp_path / "b").start()
    try:
        ca = a.client()
        before = fill_big_hash(ca, 300_000)
        result: dict[str, object] = {}

        def move() -> None:
            try:
                result["r"] = a.client().execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "big")
            except redis.RedisError as e:
                result["r"] = e

        t = threading.Thread(target=move)
        t.start()
        cb = b.client()
        wait_until(lambda: cb.info("slots")["ledis_stage_parts_received"] >= 2, "parts arriving", 60)
        cb.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")  # no commit can slip in now
        b.kill9()
        t.join(60)
        assert isinstance(result["r"], redis.ResponseError)
        assert ca.dump("big") == before  # whole at the source, and served there
        assert ca.info("slots")["ledis_keys_held_by_migrations"] == 0
        b.start()
        cb = b.client()
        assert cb.dbsize() == 0
        wait_until(lambda: cb.info("slots")["ledis_stage_transfers_given_up"] >= 1, "the staging retired")
        wait_until(lambda: cb.info("persistence")["ledis_reclaim_pending_collections"] == 0, "reclaimed", 60)
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "big") == 1
        assert cb.dump("big") == before and ca.exists("big") == 0
    finally:
        for s in (a, b):
            if s.proc is not None and s.proc.poll() is None:
                s.kill9()


def test_source_killed_mid_transfer(tmp_path: Path) -> None:
    """kill -9 of the source mid-transfer: nothing appears on the target; the key is whole at
    the restarted source, and moving it again replaces the abandoned staging."""
    a = LedisServer(tmp_path / "a").start()
    b = LedisServer(tmp_path / "b").start()
    try:
        ca, cb = a.client(), b.client()
        pipe = ca.pipeline(transaction=False)
        for i in range(0, 300_000, 1000):
            pipe.zadd("big", {f"m{j}": j for j in range(i, i + 1000)})
        pipe.execute()
        before = ca.dump("big")

        def move() -> None:
            with contextlib.suppress(redis.RedisError):
                a.client().execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "big")

        t = threading.Thread(target=move)
        t.start()
        wait_until(lambda: cb.info("slots")["ledis_stage_parts_received"] >= 2, "parts arriving", 60)
        cb.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
        a.kill9()
        t.join(60)
        cb.execute_command("CLIENT", "UNPAUSE")
        a.start()
        ca = a.client()
        assert ca.dump("big") == before
        wait_until(lambda: cb.info("slots")["ledis_stage_parts_received"] >= 1, "parts received")
        assert cb.exists("big") == 0 and cb.info("slots")["ledis_stage_transfers"] == 1
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "big") == 1
        assert cb.dump("big") == before
        assert cb.info("slots")["ledis_stage_transfers_given_up"] == 1
    finally:
        for s in (a, b):
            if s.proc is not None and s.proc.poll() is None:
                s.kill9()


def test_node_links_authenticate(tmp_path: Path) -> None:
    a = LedisServer(tmp_path / "a", "--requirepass", "pw", "--masterauth", "pw").start()
    b = LedisServer(tmp_path / "b", "--requirepass", "pw").start()
    c = LedisServer(tmp_path / "c", "--requirepass", "other").start()
    try:
        ca = a.client(password="pw")
        ca.set("k", "v")
        with pytest.raises(redis.ResponseError, match="refused the link"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", c.port, 5000, "k")
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 5000, "k") == 1
        assert b.client(password="pw").get("k") == b"v"
    finally:
        for s in (a, b, c):
            s.kill9()


def test_blocked_clients_are_redirected_when_their_slot_leaves(
    nodes: tuple[LedisServer, LedisServer],
) -> None:
    """As Redis Cluster does: a client blocked on a key of a slot the node no longer serves
    (or that migrates away while the key is missing) gets the redirection at once."""
    a, b = nodes
    low = key_in(range(0, 8192), "q")
    slot = key_slot(low.encode())
    set_maps(a, b, 30)
    blocked = RawClient(a.port)
    blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(low), low.encode()))
    ca = a.client()
    wait_until(lambda: ca.info("clients")["blocked_clients"] == 1, "the BLPOP blocked")
    set_maps(a, b, 31, {slot: 2})  # the slot migrates, the list is not here: ASK
    assert blocked.read_reply() == b"-ASK %d 127.0.0.1:%d\r\n" % (slot, b.port)
    other = key_in(range(0, 8192), "w")
    blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(other), other.encode()))
    wait_until(lambda: ca.info("clients")["blocked_clients"] == 1, "the second BLPOP blocked")
    doc = json.loads(node_map(32, 1, a, b))
    doc["ranges"] = [{"from": 0, "to": 16383, "group": 2, "state": "online"}]
    ca.execute_command("SLOTSMAP", "SET", 32, json.dumps(doc))
    assert blocked.read_reply() == b"-MOVED %d 127.0.0.1:%d\r\n" % (key_slot(other.encode()), b.port)


def test_slotsrestore_of_many_keys_reads_what_is_there(nodes: tuple[LedisServer, LedisServer]) -> None:
    """A SLOTSRESTORE of keys of one slot in key order looks them up by one range scan
    (keyspace.py ``read_many``): keys already there (of any type, expired or not) are
    replaced as one by one reads replace them, the key counts stay true; out of order, or
    with many other keys between them, the same."""
    a, b = nodes
    ca, cb = a.client(), b.client()
    names = [f"{{many}}:{i:03d}" for i in range(40)]
    for i, name in enumerate(names):
        ca.set(name, f"value-{i}")
    payloads = {name: ca.dump(name) for name in names}
    # already on the target: a string, a hash, an expired key, a key with a TTL
    cb.set(names[3], "old")
    cb.hset(names[10], mapping={"f": "v", "g": "w"})
    cb.set(names[20], "gone", pxat=1)  # stored expired: there until a read or the sweep
    cb.set(names[30], "with ttl", ex=1000)
    cb.set("{many}:010x", "between them, not restored")

    def restore(chosen: list[str]) -> None:
        args: list[object] = []
        for name in chosen:
            args += [name, 0, payloads[name]]
        assert cb.execute_command("SLOTSRESTORE", *args) == b"OK"

    restore(names[:25])  # in key order: the range scan
    restore(list(reversed(names[25:])))  # out of order: one read each
    for i, name in enumerate(names):
        assert cb.get(name) == f"value-{i}".encode(), name
        assert cb.pttl(name) == -1
    assert cb.get("{many}:010x") == b"between them, not restored"
    assert cb.dbsize() == len(names) + 1  # no key counted twice, none lost
    # many other keys between those restored: the scan gives up, one read each
    cb.flushall()
    for i in range(200):
        cb.set(f"{{many}}:005-{i:03d}", "other")
    cb.set(names[8], "old")
    restore(names[:10])
    assert [cb.get(n) for n in names[:10]] == [f"value-{i}".encode() for i in range(10)]
    assert cb.dbsize() == 210
