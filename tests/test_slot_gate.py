"""The slot rules as the gate's key_check (stack/server/slotmap.py, gate.py): with a slot map the
C lane keeps running commands on the slots the node serves plainly, and leaves to the Python
path (which asks ``Slots.check``) the slots it does not serve, slots migrating, slots with a
key held by a migration, and an MSET across slots (-CROSSSLOT). A real server in this process
(its gate and dispatcher are watched), driven by a real client over its port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.core.slots import key_slot
from stack.server import client as client_module
from stack.server.accel import ext
from stack.server.gate import CHECK, ONE_SLOT, SERVED
from stack.server.server import Server

from .inprocess import InProcess
from .respclient import RawClient, encode_command

pytestmark = pytest.mark.skipif(ext is None, reason="the C fast lane is not built")


def key_in(low: int, high: int, prefix: str) -> bytes:
    return next(k for i in range(100_000) if low <= key_slot(k := f"{prefix}{i}".encode()) <= high)


MINE, OTHER = key_in(0, 8191, "mine"), key_in(8192, 16383, "other")
MINE2 = next(
    k
    for i in range(100_000)
    if key_slot(k := f"mine2:{i}".encode()) <= 8191 and key_slot(k) != key_slot(MINE)
)
MIGRATING = key_in(100, 100, "mig")  # slot 100 migrates out in the test's second map


def a_map(epoch: int, migrating: int | None = None) -> str:
    """Group 1 (this node) serves 0-8191, group 2 the rest; ``migrating``: a slot of group
    1 on its way to group 2."""
    ranges: list[dict[str, object]] = []
    if migrating is None:
        ranges.append({"from": 0, "to": 8191, "group": 1, "state": "online"})
    else:
        if migrating:
            ranges.append({"from": 0, "to": migrating - 1, "group": 1, "state": "online"})
        ranges.append({"from": migrating, "to": migrating, "group": 1, "state": "migrating",
                       "target": 2})  # fmt: skip
        ranges.append({"from": migrating + 1, "to": 8191, "group": 1, "state": "online"})
    ranges.append({"from": 8192, "to": 16383, "group": 2, "state": "online"})
    return json.dumps({"v": 1, "epoch": epoch, "group": 1,
                       "groups": {"1": "127.0.0.1:1", "2": "127.0.0.1:2"}, "ranges": ranges})  # fmt: skip


@pytest.fixture
def node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[InProcess, Server, list[str]]]:
    """The server, and the commands that took the Python path (the lane's do not). A client's
    turn is made long: a turn cut on a busy machine leaves the rest of a pipeline to a later
    one, which starts at whatever command came next (then the Python path takes the rest,
    by design), and these tests are about which path a command takes, not about turns."""
    monkeypatch.setattr(client_module, "TURN_SECONDS", 5.0)
    proc = InProcess(tmp_path / "data")
    server = proc.start()
    python_path: list[str] = []
    execute = server.dispatcher.execute

    def counted(client, args):  # type: ignore[no-untyped-def]
        python_path.append(args[0].decode().lower())
        return execute(client, args)

    proc.call(lambda: setattr(server.dispatcher, "execute", counted))
    yield proc, server, python_path
    proc.stop()


def pipeline(c: RawClient, *commands: tuple[object, ...]) -> list[bytes]:
    c.sock.sendall(b"".join(encode_command(cmd) for cmd in commands))
    return [c.read_reply() for _ in commands]


def test_the_lane_serves_owned_slots_and_leaves_the_rest(
    node: tuple[InProcess, Server, list[str]],
) -> None:
    proc, server, python_path = node
    c = RawClient(server.port)
    try:
        # no map: every slot served, MSET across slots runs in the lane
        assert pipeline(c, ("MSET", MINE, "1", OTHER, "2"), ("GET", OTHER)) == [
            b"+OK\r\n", b"$1\r\n2\r\n"]  # fmt: skip
        assert python_path == []
        assert c.call("SLOTSMAP", "SET", 1, a_map(1)) == b"+OK\r\n"
        gate = server.gate
        assert gate.one_slot and gate.slots[key_slot(MINE)] == ONE_SLOT
        assert gate.slots[key_slot(OTHER)] == CHECK
        python_path.clear()
        tagged = (b"{%s}a" % MINE, b"{%s}b" % MINE)
        replies = pipeline(
            c,
            ("SET", MINE, "v"),  # the lane
            ("INCR", MINE2),
            ("MSET", tagged[0], "1", tagged[1], "2"),  # one slot: the lane
            ("MSET", MINE, "x", MINE2, "y"),  # two served slots: CROSSSLOT, Python's
            ("GET", MINE),  # the lane again
            ("GET", OTHER),  # not served: MOVED
        )
        assert replies == [
            b"+OK\r\n",
            b":1\r\n",
            b"+OK\r\n",
            b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            b"$1\r\nv\r\n",
            b"-MOVED %d 127.0.0.1:2\r\n" % key_slot(OTHER),
        ]
        assert python_path == ["mset", "get"]  # the lane stopped at those two only
        # a slot migrating out needs a look: a missing key is asked for at the target
        assert c.call("SLOTSMAP", "SET", 2, a_map(2, migrating=100)) == b"+OK\r\n"
        assert gate.slots[100] == CHECK and gate.slots[99] == ONE_SLOT
        python_path.clear()
        assert pipeline(c, ("SET", MINE, "w"), ("GET", MIGRATING)) == [
            b"+OK\r\n", b"-ASK 100 127.0.0.1:2\r\n"]  # fmt: skip
        assert python_path == ["get"]
        # a key held by a migration: its slot needs a look until it is released
        mkey = server.keyspace.dbs[0].meta_key(MINE)
        proc.call(lambda: server.slots.lock(mkey))
        assert gate.slots[key_slot(MINE)] == CHECK
        proc.call(lambda: server.slots.unlock(mkey))
        assert gate.slots[key_slot(MINE)] == ONE_SLOT
        # no map: back to serving every slot, MSET across slots allowed again
        assert c.call("SLOTSMAP", "RESET") == b"+OK\r\n"
        assert not gate.one_slot and set(gate.slots) == {SERVED}
        python_path.clear()
        assert pipeline(c, ("MSET", MINE, "1", OTHER, "2")) == [b"+OK\r\n"]
        assert python_path == []
    finally:
        c.sock.close()


def test_asking_takes_the_next_command_through_the_check(
    node: tuple[InProcess, Server, list[str]],
) -> None:
    """ASKING lasts one command, even one the lane could run: the client's next command goes
    through the Python path, which clears the flag."""
    _proc, server, python_path = node
    r = redis.Redis(port=server.port, protocol=2)
    try:
        r.execute_command("SLOTSMAP", "SET", 1, a_map(1))
        r.execute_command("ASKING")
        python_path.clear()
        assert r.set(MINE, "v")
        assert python_path == ["set"]
        python_path.clear()
        assert r.get(MINE) == b"v"
        assert python_path == []  # the flag is gone: the lane again
    finally:
        r.close()
