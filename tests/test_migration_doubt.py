"""Moves whose restore was not answered in time, and shutdown in the middle of moves, against
real processes: a target paused (CLIENT PAUSE WRITE) or stopped (SIGSTOP) while a key is sent
to it, the link to it killed with the outcome unknown, and SIGTERM / SHUTDOWN of the source
while many small keys and a big key move. The rule they check (docs/cluster.md "When a move
fails"): no interleaving brings a deleted key back or loses a write; every key ends exactly
once, on the source or on the target."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis

from stack.core.slots import key_slot

from .servers import LedisServer, wait_until
from .test_slot_commands import call_in_thread, fill_big_hash

SHORT_MS = 300  # the move's timeout: the paused target does not answer within it


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[LedisServer, LedisServer]]:
    a = LedisServer(tmp_path / "a").start()
    b = LedisServer(tmp_path / "b").start()
    yield a, b
    for s in (a, b):
        if s.proc is not None and s.proc.poll() is None:
            with_sigcont(s)
            s.kill9()


def with_sigcont(s: LedisServer) -> None:
    if s.proc is not None and s.proc.poll() is None:
        os.kill(s.proc.pid, signal.SIGCONT)


@contextmanager
def unanswering(target: LedisServer, how: str) -> Iterator[None]:
    """The target takes requests and answers none of its writes while inside."""
    if how == "pause":
        target.client().execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
    else:
        assert target.proc is not None
        os.kill(target.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if how == "pause":
            target.client().execute_command("CLIENT", "UNPAUSE")
        else:
            with_sigcont(target)


def warm_link(a: LedisServer, b: LedisServer) -> None:
    """The source's link to the target made (a stopped target could not answer its handshake)."""
    a.client().set("warm", 1)
    assert a.client().execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, 5000, "warm") == 1


def slots_info(s: LedisServer) -> dict[str, int]:
    return s.client().info("slots")  # type: ignore[return-value]


def times_out_then_del_waits(
    a: LedisServer, b: LedisServer, key: str
) -> tuple[dict[str, object], threading.Thread]:
    """Move ``key`` to the unanswering ``b``: the call gives up; a DEL of it then waits (held)."""
    with pytest.raises(redis.ResponseError, match="IOERR error or timeout reading from target"):
        a.client().execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, key)
    results: dict[str, object] = {}
    deleter = call_in_thread(a, results, "del", "DEL", key)
    deleter.join(0.5)  # without the hold it answers at once (1) and the target's copy revives
    assert deleter.is_alive() and "del" not in results
    return results, deleter


def check_no_resurrection(deleted: object, source: redis.Redis, target: redis.Redis, key: str) -> None:
    """The review's sequence ends right: a DEL that succeeded on the source leaves no copy on the
    target; one that found nothing there means the key had moved and lives on at the target."""
    assert not (deleted == 1 and target.exists(key)), "a deleted key came back at the target"
    assert source.exists(key) + target.exists(key) + (deleted == 1) == 1


@pytest.mark.parametrize("how", ["pause", "sigstop"])
def test_a_restore_answered_late_moves_the_key_and_nothing_comes_back(
    two: tuple[LedisServer, LedisServer], how: str
) -> None:
    """The review's sequence: SLOTSMGRTONE to a target that does not answer times out; a
    client then DELs the key on the source; the target runs the buffered restore later. The
    key stays held on the source until the reply comes (the DEL waits), the late +OK counts as
    the move (deleted here then), and the DEL, run after, finds nothing: one copy, no revival."""
    a, b = two
    ca, cb = a.client(), b.client()
    ca.set("k", "v1")
    warm_link(a, b)
    with unanswering(b, how):
        results, deleter = times_out_then_del_waits(a, b, "k")
        info = slots_info(a)
        assert info.get("ledis_migrate_keys_in_doubt") == 1 and info["ledis_keys_held_by_migrations"] == 1
        # another move of the key waits its timeout, then says it is still on its way
        with pytest.raises(redis.ResponseError, match="key 'k' is still on its way"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, "k")
        assert deleter.is_alive() and "del" not in results  # held: the DEL has not run
    deleter.join(60)
    assert not deleter.is_alive()
    check_no_resurrection(results["del"], ca, cb, "k")
    assert results["del"] == 0 and cb.get("k") == b"v1"
    info = slots_info(a)
    assert info["ledis_migrate_keys_in_doubt"] == 0 and info["ledis_keys_held_by_migrations"] == 0
    assert info["ledis_migrate_late_moves"] == 1


@pytest.mark.parametrize("how", ["pause", "sigstop"])
def test_a_big_keys_commit_answered_late(two: tuple[LedisServer, LedisServer], how: str) -> None:
    """The same with a key that travels in parts (SLOTSSTAGE): its COMMIT is in flight when
    the call gives up, so the key stays held until the target answers it; then it is whole at
    the target, gone from the source, and the DEL that waited finds nothing."""
    a, b = two
    ca, cb = a.client(), b.client()
    ca.hset("big", mapping={f"f{i}": f"v{i}" for i in range(2500)})  # 3 parts, all in flight
    before = ca.dump("big")
    warm_link(a, b)
    with unanswering(b, how):
        results, deleter = times_out_then_del_waits(a, b, "big")
        assert slots_info(a).get("ledis_migrate_keys_in_doubt") == 1
    deleter.join(60)
    check_no_resurrection(results["del"], ca, cb, "big")
    assert results["del"] == 0 and cb.dump("big") == before
    assert slots_info(a)["ledis_keys_held_by_migrations"] == 0


def migrate_links(target: LedisServer) -> list[str]:
    listing = target.client().execute_command("CLIENT", "LIST")
    text = listing.decode() if isinstance(listing, bytes) else listing
    return re.findall(r"id=(\d+) .*name=ledis-migrate-\S+ ", text)


def time_out_and_lose_the_link(a: LedisServer, b: LedisServer, key: str) -> None:
    """Move ``key`` to the unanswering ``b`` (the call gives up), then kill the link there."""
    with pytest.raises(redis.ResponseError, match="IOERR"):
        a.client().execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, key)
    for cid in migrate_links(b):
        b.client().execute_command("CLIENT", "KILL", "ID", cid)


@contextmanager
def lost_link_unanswered(a: LedisServer, b: LedisServer, key: str) -> Iterator[None]:
    """Inside: ``key`` (v1) was sent to the paused ``b`` unanswered, and the link killed."""
    a.client().set(key, "v1")
    warm_link(a, b)
    with unanswering(b, "pause"):
        time_out_and_lose_the_link(a, b, key)
        yield


def test_a_link_lost_unanswered_is_undone_on_the_target_before_the_key_is_released(
    two: tuple[LedisServer, LedisServer],
) -> None:
    """The link dies with the restore unanswered (killed on the paused target): the outcome is
    unknown, so the source keeps the key held until a new link has killed every connection of
    the old one and deleted the keys there (SLOTSFORGET, a write: it waits for the pause, the
    source retrying with backoff and INFO saying so); then it releases the key, whole, here.
    Only a copy whose value is the one sent is deleted there (k2: as if its restore had run);
    another value is a client's, kept (test_the_undo_leaves_a_newer_value_alone)."""
    a, b = two
    ca, cb = a.client(), b.client()
    ca.set("k", "v1")
    ca.set("k2", "old")
    cb.set("k2", "old")  # the value sent: the undo removes it, the source's stays
    with unanswering(b, "pause"):
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, "k")
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, "k2")
        ids = migrate_links(b)
        assert ids
        for cid in ids:
            cb.execute_command("CLIENT", "KILL", "ID", cid)
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_unreachable"] == 2, "the undo retried", 60)
        results: dict[str, object] = {}
        deleter = call_in_thread(a, results, "del", "DEL", "k")
        deleter.join(0.5)
        assert deleter.is_alive() and "del" not in results
    deleter.join(60)
    assert results["del"] == 1  # released here, whole, then deleted by the client
    assert cb.exists("k") == 0  # the killed link's restore never ran
    assert ca.get("k2") == b"old" and cb.exists("k2") == 0
    info = slots_info(a)
    assert info["ledis_migrate_keys_forgotten"] == 2 and info["ledis_migrate_keys_unreachable"] == 0
    assert info["ledis_keys_held_by_migrations"] == 0
    assert "cannot be removed yet" in a.log() and "reached again" in a.log()


@pytest.mark.parametrize("call", ["gave up", "still waiting"])
def test_sigterm_with_a_doubt_on_a_paused_target_leaves_no_copy_there(
    two: tuple[LedisServer, LedisServer], call: str
) -> None:
    """The review's repro: the source is stopped (SIGTERM) while a restore waits on a target
    paused by CLIENT PAUSE WRITE. After its grace the source makes one bounded undo: CLIENT
    KILL of the old link's connections on the target (not held back by the pause), so the
    queued restore never runs; the SLOTSFORGET after it waits for the pause and is given up.
    After the restart the key is whole on the source, and a DEL of it there leaves no copy.
    ``still waiting``: the call (a long timeout) still waits for the reply when the source
    stops; cut after the grace, it hands the restore to the same undo."""
    a, b = two
    ca, cb = a.client(), b.client()
    ca.set("k", "v1")
    warm_link(a, b)
    cb.execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
    if call == "gave up":
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, "k")
        assert a.stop() == 0
    else:
        results: dict[str, object] = {}
        mover = call_in_thread(a, results, "move", "SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "k")
        # sent: the restore waits in the paused target's queue for its link (held on the
        # source is not enough: a stop between the hold and the send leaves nothing in doubt)
        wait_until(lambda: restore_queued(cb), "the restore held on the paused target", 60)
        assert a.stop() == 0
        mover.join(60)
        assert "shutting down" in str(results["move"])
    assert "their undo not confirmed" in a.log()
    cb.execute_command("CLIENT", "UNPAUSE")  # a restore still queued there would run now
    assert cb.exists("k") == 0
    a.start()
    ca = a.client()
    assert ca.get("k") == b"v1"
    deleted = ca.delete("k")
    check_no_resurrection(deleted, ca, cb, "k")
    assert deleted == 1 and cb.exists("k") == 0


def restore_queued(target: redis.Redis) -> bool:
    """Whether a migration link's request waits in ``target``'s queue (CLIENT LIST qbuf)."""
    return any(
        c["name"].startswith("ledis-migrate-") and int(c["qbuf"]) > 0
        for c in target.client_list()
    )


class Forwarder:
    """127.0.0.1:port to ``dest``, in threads: ``cut`` drops every connection and refuses new
    ones (a partition between the two nodes) until ``up`` is set again; ``mute``: the
    target's replies are dropped on the way (it runs the requests, the source hears nothing)."""

    def __init__(self, dest: int) -> None:
        self.dest = dest
        self.up = True
        self.mute = False
        self.socks: list[socket.socket] = []
        self.ls = socket.create_server(("127.0.0.1", 0))
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            d = socket.create_connection(("127.0.0.1", self.dest))
            self.socks += [c, d]
            for x, y, replies in ((c, d, False), (d, c, True)):
                threading.Thread(target=self._pipe, args=(x, y, replies), daemon=True).start()

    def _pipe(self, x: socket.socket, y: socket.socket, replies: bool) -> None:
        try:
            while data := x.recv(65536):
                if not (replies and self.mute):
                    y.sendall(data)
        except OSError:
            pass
        for s in (x, y):
            s.close()

    def cut(self) -> None:
        self.up = False
        for s in self.socks:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.socks.clear()

    def close(self) -> None:
        self.cut()
        self.ls.close()


def test_the_undo_leaves_a_newer_value_alone(two: tuple[LedisServer, LedisServer]) -> None:
    """The review's repro: the link is cut with a restore unanswered (the target paused); the
    target then runs it, and a client writes a newer value of the key there (the slot moved on
    meanwhile); when the source reaches the target again its undo compares the value sent
    with the one there (SLOTSFORGET's check) and leaves the newer one alone."""
    a, b = two
    ca, cb = a.client(), b.client()
    fwd = Forwarder(b.port)
    try:
        ca.set("k", "v1")
        ca.set("warm", 1)
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", fwd.port, 5000, "warm") == 1
        cb.execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", fwd.port, SHORT_MS, "k")
        fwd.cut()
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_unreachable"] == 1, "the undo retried", 60)
        cb.execute_command("CLIENT", "UNPAUSE")
        cb.set("k", "v2-newer")
        fwd.up = True
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_in_doubt"] == 0, "the undo done", 60)
        assert cb.get("k") == b"v2-newer"
        assert ca.get("k") == b"v1"  # released here, whole
    finally:
        fwd.close()


def test_a_big_keys_commit_whose_reply_was_lost_is_undone(
    two: tuple[LedisServer, LedisServer],
) -> None:
    """A big key's parts and COMMIT run on the target, whose replies are lost on the way (the
    key is whole there, the call gives up); the link is then cut, and the source cannot reach
    the target for a while. Once it can, the undo's ``commit:<token>`` check matches that
    COMMIT's key and deletes it: one copy, here, whole."""
    a, b = two
    ca, cb = a.client(), b.client()
    fwd = Forwarder(b.port)
    try:
        ca.hset("big", mapping={f"f{i}": f"v{i}" for i in range(2500)})  # 3 parts
        before = ca.dump("big")
        ca.set("warm", 1)
        assert ca.execute_command("SLOTSMGRTONE", "127.0.0.1", fwd.port, 5000, "warm") == 1
        fwd.mute = True
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", fwd.port, SHORT_MS, "big")
        wait_until(lambda: cb.exists("big") == 1, "the COMMIT run on the target", 60)
        assert cb.dump("big") == before and slots_info(a)["ledis_migrate_keys_in_doubt"] == 1
        fwd.cut()
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_unreachable"] == 1, "the undo retried", 60)
        fwd.mute, fwd.up = False, True
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_in_doubt"] == 0, "the undo done", 60)
        assert cb.exists("big") == 0 and slots_info(b)["ledis_stage_transfers"] == 0
        assert ca.dump("big") == before
    finally:
        fwd.close()


@pytest.mark.timeout(300)
def test_a_link_that_never_answers_nor_breaks_is_given_up_after_the_bound(
    two: tuple[LedisServer, LedisServer],
) -> None:
    """The target is stopped (SIGSTOP) with a restore unanswered: its connection neither
    answers nor errors. After max(30 s, 10 x the timeout) the source gives the link up and
    undoes the key (retried while the target sleeps); once it wakes, the undo runs, the key
    is released here, whole, and the target has no copy."""
    a, b = two
    ca, cb = a.client(), b.client()
    ca.set("k", "v1")
    warm_link(a, b)
    with unanswering(b, "sigstop"):
        with pytest.raises(redis.ResponseError, match="IOERR"):
            ca.execute_command("SLOTSMGRTONE", "127.0.0.1", b.port, SHORT_MS, "k")
        assert slots_info(a)["ledis_migrate_keys_in_doubt"] == 1
        wait_until(lambda: "giving the link up" in a.log(), "the bound passed", 200)
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_unreachable"] == 1, "the undo retried", 60)
    wait_until(lambda: slots_info(a)["ledis_migrate_keys_in_doubt"] == 0, "the undo done", 60)
    assert ca.get("k") == b"v1" and cb.exists("k") == 0
    assert slots_info(a)["ledis_migrate_keys_forgotten"] == 1


def fingerprint(c: redis.Redis, key: str) -> bytes:
    """SLOTSFORGET's check of a whole key: the BLAKE2b-128 (hex) of its DUMP payload."""
    return hashlib.blake2b(c.dump(key), digest_size=16).hexdigest().encode()  # type: ignore[arg-type]


def test_slotsforget_deletes_only_the_value_sent_and_not_in_a_slot_served_here(
    two: tuple[LedisServer, LedisServer],
) -> None:
    """SLOTSFORGET name key check ...: a key of every type whose value is the one fingerprinted
    is deleted, one changed since is kept; a slot this node serves by its map is left alone;
    the connections of the named link are closed; bounds and flags as an admin command's."""
    _a, b = two
    cb = b.client()
    cb.set("s", "v")
    cb.hset("h", mapping={"f": 1, "g": 2})
    cb.rpush("l", "x", "y", "x")
    cb.sadd("set", "m1", "m2")
    cb.zadd("z", {"m": 1.5, "n": -2})
    cb.set("changed", "old")
    checks = {k: fingerprint(cb, k) for k in ("s", "h", "l", "set", "z", "changed")}
    cb.set("changed", "new")
    victim = b.client()
    victim.client_setname("ledis-migrate-test-1")
    victim.ping()
    args = [x for k, c in checks.items() for x in (k, c)]
    assert cb.execute_command("SLOTSFORGET", "ledis-migrate-test-1", *args, "missing", "00") == 5
    assert cb.keys("*") == [b"changed"]
    assert not [x for x in cb.client_list() if x["name"] == "ledis-migrate-test-1"]
    # a slot the map gives this node: its keys are the clients' now
    slot = key_slot(b"mine")
    ranges = [{"from": 0, "to": 16383, "state": "online", "group": 1}]
    ranges[0]["to"] = slot - 1
    ranges.append({"from": slot, "to": slot, "state": "online", "group": 2})
    if slot < 16383:
        ranges.append({"from": slot + 1, "to": 16383, "state": "online", "group": 1})
    doc = json.dumps({"group": 2, "groups": {"1": "127.0.0.1:1", "2": f"127.0.0.1:{b.port}"},
                      "ranges": ranges})  # fmt: skip
    cb.set("mine", "v")
    cb.execute_command("SLOTSMAP", "SET", 1, doc)
    assert cb.execute_command("SLOTSFORGET", "ledis-migrate-test-1", "mine", fingerprint(cb, "mine")) == 0
    assert cb.get("mine") == b"v"
    cb.execute_command("SLOTSMAP", "RESET")
    # bounds and flags
    with pytest.raises(redis.ResponseError, match="at most 4096 keys"):
        cb.execute_command("SLOTSFORGET", "n", *["k", "c"] * 4097)
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        cb.execute_command("SLOTSFORGET", "n", "k")
    with pytest.raises(redis.ResponseError, match="lost link's client name"):
        cb.execute_command("SLOTSFORGET", "", "k", "c")
    with pytest.raises(redis.ResponseError, match="not allowed from script"):
        cb.eval("return redis.call('SLOTSFORGET', 'n', 'k', 'c')", 0)
    with pytest.raises(redis.ResponseError, match="not allowed from script"):
        cb.eval("return redis.call('SLOTSRESTORE', 'k', '0', 'x')", 0)
    pipe = cb.pipeline(transaction=True)
    pipe.execute_command("SLOTSFORGET", "n", "k", "c")
    with pytest.raises(redis.ResponseError, match="not allowed inside a transaction"):
        pipe.execute()


def test_an_undo_the_target_refuses_is_reported_and_can_be_released(
    two: tuple[LedisServer, LedisServer],
) -> None:
    """The target refuses the undo (fenced: READONLY): the key stays held, retried, logged at
    error level, INFO and SLOTSDOUBT LIST say why; SLOTSDOUBT RELEASE gives it back."""
    a, b = two
    ca, cb = a.client(), b.client()
    with lost_link_unanswered(a, b, "k"):
        cb.execute_command("NODEEPOCH", "SET", 5, "FENCED")  # a failover deposed the target
    wait_until(lambda: slots_info(a)["ledis_migrate_keys_undo_refused"] == 1, "the undo refused", 60)
    info = slots_info(a)
    assert info["ledis_migrate_undo_refused_reason"] == "readonly"
    assert info["ledis_migrate_keys_in_doubt"] == 1
    assert ca.execute_command("SLOTSDOUBT", "LIST") == [[b"k", f"127.0.0.1:{b.port}".encode(), b"undo-refused:readonly"]]
    assert "ERROR" in a.log() and "refuses their undo" in a.log()
    assert ca.execute_command("SLOTSDOUBT", "RELEASE", "k", "other") == 1
    assert ca.get("k") == b"v1"  # answered at once: released
    info = slots_info(a)
    assert info["ledis_migrate_keys_in_doubt"] == 0 and info["ledis_migrate_keys_released_by_admin"] == 1
    assert ca.execute_command("SLOTSDOUBT", "LIST") == []


def test_a_deposed_source_gives_its_undo_up(two: tuple[LedisServer, LedisServer]) -> None:
    """The source is fenced while its undo waits for the target: it no longer serves writes,
    so the undo is abandoned (a warning), the key released."""
    a, b = two
    ca = a.client()
    with lost_link_unanswered(a, b, "k"):
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_unreachable"] == 1, "the undo retried", 60)
        ca.execute_command("NODEEPOCH", "SET", 5, "FENCED")
        wait_until(lambda: slots_info(a)["ledis_migrate_keys_in_doubt"] == 0, "the undo given up", 60)
    info = slots_info(a)
    assert info["ledis_migrate_keys_abandoned"] == 1 and info["ledis_keys_held_by_migrations"] == 0
    assert "released without their undo" in a.log()


# -- shutdown in the middle of moves -------------------------------------------------------------


def clean(log: str) -> None:
    bad = [ln for ln in log.splitlines() if "ERROR" in ln or "Traceback" in ln or "is closed" in ln]
    assert not bad, "\n".join(bad)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["SIGTERM", "SHUTDOWN"])
def test_shutdown_mid_move_of_many_small_keys(two: tuple[LedisServer, LedisServer], how: str) -> None:
    """The source stops while SLOTSMGRTSLOT calls move a slot of small keys: the moves end
    first (what the target acknowledged deleted here, the rest released), then the store
    closes; no error in the log, and after a restart every key is on exactly one side."""
    a, b = two
    ca, cb = a.client(), b.client()
    names = [f"{{t}}{i}" for i in range(30_000)]
    pipe = ca.pipeline(transaction=False)
    for i in range(0, len(names), 1000):
        pipe.mset({k: k for k in names[i : i + 1000]})
    pipe.execute()
    slot = key_slot(b"{t}")
    stop_moving = threading.Event()

    def mover() -> None:
        c = a.client()
        while not stop_moving.is_set():
            try:
                c.execute_command("SLOTSMGRTSLOT", "127.0.0.1", b.port, 5000, slot, "MAXKEYS", 300)
            except redis.RedisError:
                return

    threads = [threading.Thread(target=mover) for _ in range(2)]
    for t in threads:
        t.start()
    wait_until(lambda: cb.dbsize() >= 2000, "keys arriving", 120)
    if how == "SIGTERM":
        assert a.stop() == 0
    else:
        ca.shutdown()  # redis-py: None once the connection closes without a reply
        assert a.proc is not None and a.proc.wait(60) == 0
    stop_moving.set()
    for t in threads:
        t.join(60)
    clean(a.log())
    a.start()
    ca = a.client()
    here = {k.decode() for k in ca.keys("*")}
    there = {k.decode() for k in cb.keys("*")}
    assert not here & there, sorted(here & there)[:5]
    assert here | there == set(names)
    assert here and there  # it stopped mid-move
    for side, keys in ((ca, sorted(here)[:200]), (cb, sorted(there)[:200])):
        assert side.mget(keys) == [k.encode() for k in keys]


@pytest.mark.timeout(300)
def test_shutdown_mid_move_of_a_big_key(two: tuple[LedisServer, LedisServer]) -> None:
    """SIGTERM of the source while a big hash travels in parts: the move stops between two
    parts (no COMMIT sent, or its reply waited for), the store closes cleanly, and after a
    restart the hash is whole on exactly one side."""
    a, b = two
    ca, cb = a.client(), b.client()
    before = fill_big_hash(ca, 200_000)
    results: dict[str, object] = {}
    mover = call_in_thread(a, results, "move", "SLOTSMGRTONE", "127.0.0.1", b.port, 60_000, "big")
    wait_until(lambda: slots_info(b)["ledis_stage_parts_received"] >= 3, "parts arriving", 120)
    assert a.stop() == 0
    mover.join(60)
    clean(a.log())
    a.start()
    ca = a.client()
    on_a, on_b = ca.exists("big"), cb.exists("big")
    assert on_a + on_b == 1
    assert (ca if on_a else cb).dump("big") == before
