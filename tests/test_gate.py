"""The gate (stack/server/gate.py): one place decides, for the C lane and the Python path alike,
whether a command may run for a client and whether each of its keys may be used here.

The cluster's rules (slot ownership, ASK/ASKING, keys locked by a migration) plug in as
``Gate.key_check`` (stack/server/slotmap.py installs ``Slots.check``; tests/test_slot_commands.py
tests those rules). These tests install a check of their own in a real server (run in this
process, on a real port, driven by a real client) and show that every path obeys it: the lane's
plain GET/SET/INCR/MSET, pipelined or not, the Python path's commands, multi-key commands,
MULTI; and that keys of other slots are served as before, by the lane.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.core.slots import key_slot
from stack.server.accel import ext
from stack.server.server import Server

from .inprocess import InProcess
from .respclient import RawClient, encode_command

MOVED = "MOVED-BY-TEST"  # the refusal the test's key_check gives


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[InProcess, Server]]:
    proc = InProcess(tmp_path / "data")
    server = proc.start()
    yield proc, server
    proc.stop()


def _refuse(slot: int):  # type: ignore[no-untyped-def]
    """A key_check that refuses commands with a key of ``slot`` (as a node that does not own
    it would); ``seen`` has the keys of each command it was asked about."""
    seen: list[tuple[bytes, ...]] = []

    def check(client, entry, keys):  # type: ignore[no-untyped-def]
        seen.append(tuple(keys))
        return f"{MOVED} {slot}" if any(key_slot(k) == slot for k in keys) else None

    return check, seen


def test_writes_ok_follows_the_role_and_semi_sync(node: tuple[InProcess, Server]) -> None:
    """The lane runs writes only when the gate says no look at the role or the replicas is
    needed; the Python path then applies the write rules itself."""
    _proc, server = node
    gate = server.gate
    assert gate.writes_ok
    server.semi_sync = 1
    assert not gate.writes_ok
    server.semi_sync = 0
    server.read_only = True
    assert not gate.writes_ok
    server.read_only = False
    assert not gate.checks_keys  # nothing installed: the Python path does no per-key work


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_refused_slot_is_refused_on_every_path(
    node: tuple[InProcess, Server], pipelined: bool
) -> None:
    proc, server = node
    blocked, other = b"user:1", b"user:2"
    assert key_slot(blocked) not in (key_slot(other), key_slot(b"list:3"))
    check, seen = _refuse(key_slot(blocked))

    def install() -> None:
        server.gate.key_check = check
        server.gate.set_slots([key_slot(blocked)], served=False)

    proc.call(install)
    assert server.gate.checks_keys
    assert server.gate.slots[key_slot(blocked)] == 0
    assert server.gate.slots[key_slot(other)] == 1
    commands = [
        ("SET", other, "v"),  # the lane: another slot
        ("SET", blocked, "v"),  # the lane stops here; the Python path asks the gate
        ("GET", blocked),
        ("INCR", blocked),
        ("MSET", other, "1", blocked, "2"),  # multi-key: one key refused refuses all
        ("HSET", blocked, "f", "v"),  # the Python path only
        ("GET", other),
        ("LPUSH", b"list:3", "x"),
    ]
    r = redis.Redis(port=server.port)
    replies: list[object] = []
    if pipelined:
        p = r.pipeline(transaction=False)
        for cmd in commands:
            p.execute_command(*cmd)
        replies = p.execute(raise_on_error=False)
    else:
        for cmd in commands:
            try:
                replies.append(r.execute_command(*cmd))
            except redis.ResponseError as e:
                replies.append(e)
    refused = f"{MOVED} {key_slot(blocked)}"
    assert replies[0] is True
    for reply in replies[1:6]:
        assert isinstance(reply, Exception) and str(reply) == refused, replies
    assert replies[6] == b"v"
    assert replies[7] == 1
    assert (blocked,) in seen
    assert (other, blocked) in seen  # MSET: asked with all its keys
    assert (other,) not in seen  # its slot needs no look: never asked about it alone
    try:
        with pytest.raises(redis.ResponseError, match=MOVED):  # reads are refused too
            r.exists(blocked)
        assert sorted(r.keys()) == [b"list:3", other]  # nothing refused was applied
        assert r.get(other) == b"v"
        # MULTI: refused while queueing, so EXEC aborts (as Redis does for -MOVED).
        p = r.pipeline(transaction=True)
        p.set(other, "w")
        p.get(blocked)
        with pytest.raises(redis.ResponseError, match=MOVED):
            p.execute()
        assert r.get(other) == b"v"
    finally:
        r.close()


@pytest.mark.skipif(ext is None, reason="the C fast lane is not built")
def test_the_lane_serves_other_slots_and_stops_at_checked_ones(
    node: tuple[InProcess, Server],
) -> None:
    """The lane still runs commands on slots that need no look and leaves those that do to
    the Python path (which asks the check: the lane never does)."""
    proc, server = node
    blocked = b"k:blocked"
    check, seen = _refuse(-1)  # asks about every key of a checked slot, refuses none
    proc.call(
        lambda: (
            setattr(server.gate, "key_check", check),
            server.gate.set_slots([key_slot(blocked)], served=False),
        )
    )
    lane_set = server.dispatcher.entries[b"set"]
    c = RawClient(server.port)
    try:
        calls = lane_set.calls
        c.sock.sendall(b"".join(encode_command(("SET", f"free:{i}", "v")) for i in range(50)))
        assert [c.read_reply() for _ in range(50)] == [b"+OK\r\n"] * 50
        assert lane_set.calls == calls + 50
        assert seen == []
        assert c.call("SET", blocked, "v") == b"+OK\r\n"
        assert seen == [(blocked,)]  # the Python path asked; the lane did not run it
        assert c.call("GET", blocked) == b"$1\r\nv\r\n"
    finally:
        c.sock.close()
    proc.call(lambda: server.gate.set_slots([key_slot(blocked)], served=True))
    assert not server.gate.checks_keys


@pytest.mark.skipif(ext is None, reason="the C fast lane is not built")
def test_the_c_lane_stops_at_a_slot_whose_byte_is_zero() -> None:
    """The module itself, with the gate's map: it runs up to the first key of a checked slot,
    MSET included (checked before any of its keys is written)."""
    assert ext is not None
    prefix = b"\x01\x00\x00\x00\x07"
    slots = bytearray([1]) * 16384
    slots[key_slot(b"b")] = 0
    buf = b"".join(
        encode_command(c)
        for c in (("SET", "a", "1"), ("MSET", "c", "1", "b", "2"), ("SET", "a", "2"))
    )
    pending: dict[bytes, bytes | None] = {}
    # Known misses (no load function: the module reads nothing else).
    cache: dict[bytes, bytes | None] = {
        prefix + key_slot(k).to_bytes(2, "big") + k: None for k in (b"a", b"b", b"c")
    }

    def run(pos: int, slots: bytes | bytearray) -> tuple[bytes, int, tuple[int, ...]]:
        replies, new_pos, calls, *_ = ext.run(
            buf, pos, prefix, cache, {}, pending, access, 1.0, {}, True, False, 511, None, 0.0,
            slots,
        )  # fmt: skip
        return replies, new_pos, calls

    access = ext.AccessTimes(64)
    replies, pos, calls = run(0, slots)
    assert replies == b"+OK\r\n"
    assert pos == len(encode_command(("SET", "a", "1")))
    assert calls[:5] == (0, 1, 0, 0, 0) and not any(calls[5:])
    assert len(pending) == 1  # MSET wrote nothing
    slots[key_slot(b"b")] = 1
    replies, pos, calls = run(pos, slots)
    assert replies == b"+OK\r\n+OK\r\n" and pos == len(buf)
    with pytest.raises(ValueError):
        run(0, b"short")
