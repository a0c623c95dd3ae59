"""Fencing (stack/server/fencing.py): a node told of an epoch in which it is not the master
refuses every write with Redis's READONLY at once, on the Python path and the fast lane, in
and out of transactions; reads go on; an older epoch is refused; MASTER at a newer epoch lets
writes in again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from .servers import LedisServer

READONLY = "You can't write against a read only replica."


@pytest.fixture
def node(tmp_path: Path) -> Iterator[redis.Redis]:
    server = LedisServer(tmp_path).start()
    client = server.client()
    yield client
    client.close()
    server.stop()


def test_fenced_node_refuses_writes_and_serves_reads(node: redis.Redis) -> None:
    node.set("a", "1")
    node.rpush("l", "x")
    assert node.execute_command("NODEEPOCH", "GET") == [0, b"master"]
    assert node.execute_command("NODEEPOCH", "SET", "7", "FENCED") == b"OK"
    assert node.execute_command("NODEEPOCH", "GET") == [7, b"fenced"]
    for call in (("SET", "a", "2"), ("RPUSH", "l", "y"), ("DEL", "a"), ("INCR", "n"),
                 ("HSET", "h", "f", "v")):  # fmt: skip
        with pytest.raises(redis.exceptions.ReadOnlyError, match=READONLY):
            node.execute_command(*call)
    # a pipeline of plain SETs (the fast lane's diet) is refused too, one by one
    pipe = node.pipeline(transaction=False)
    for i in range(20):
        pipe.set(f"p{i}", i)
    replies = pipe.execute(raise_on_error=False)
    assert all(isinstance(r, redis.exceptions.ReadOnlyError) for r in replies)
    # EXEC of queued writes is refused; EXEC of reads only runs
    pipe = node.pipeline(transaction=True)
    pipe.set("a", "3")
    pipe.get("a")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        pipe.execute()
    pipe = node.pipeline(transaction=True)
    pipe.get("a")
    pipe.lrange("l", 0, -1)
    assert pipe.execute() == [
        b"1",
        [b"x"],
    ]
    assert node.get("a") == b"1" and node.dbsize() == 2
    info = node.info("replication")
    assert info["ledis_node_epoch"] == 7 and info["ledis_fenced"] == 1
    assert info["ledis_fenced_refused_writes"] >= 26


def test_epochs_only_go_forward(node: redis.Redis) -> None:
    node.execute_command("NODEEPOCH", "SET", "5", "FENCED")
    with pytest.raises(redis.ResponseError, match="stale epoch 4: this node serves under epoch 5"):
        node.execute_command("NODEEPOCH", "SET", "4", "MASTER")
    with pytest.raises(redis.exceptions.ReadOnlyError):
        node.set("a", "1")
    node.execute_command("NODEEPOCH", "SET", "6", "MASTER")
    assert node.set("a", "1") is True
    assert node.execute_command("NODEEPOCH", "GET") == [6, b"master"]
    # the same epoch again is accepted (a controller repeating itself)
    assert node.execute_command("NODEEPOCH", "SET", "6", "MASTER") == b"OK"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (("NODEEPOCH",), "wrong number of arguments for 'nodeepoch' command"),
        (("NODEEPOCH", "SET", "1"), "syntax error"),
        (("NODEEPOCH", "SET", "1", "LEADER"), "syntax error"),
        (("NODEEPOCH", "SET", "-1", "MASTER"), "syntax error"),
        (("NODEEPOCH", "SET", "x", "MASTER"), "value is not an integer or out of range"),
        (("NODEEPOCH", "GET", "extra"), "syntax error"),
        (("NODEEPOCH", "FLIP"), "syntax error"),
    ],
)
def test_bad_calls(node: redis.Redis, call: tuple[str, ...], error: str) -> None:
    with pytest.raises(redis.ResponseError, match=error):
        node.execute_command(*call)
    assert node.execute_command("NODEEPOCH", "GET") == [0, b"master"]
    assert node.set("still", "writable") is True


def test_the_fence_survives_a_kill9(tmp_path: Path) -> None:
    """The epoch and the state are in the data dir, read back before the server listens: the
    first write after the restart is refused, and an older epoch still is."""
    server = LedisServer(tmp_path).start()
    client = server.client()
    client.set("a", "1")
    assert client.execute_command("NODEEPOCH", "SET", "9", "FENCED") == b"OK"
    server.kill9()
    server.start()
    client = server.client()
    with pytest.raises(redis.exceptions.ReadOnlyError, match=READONLY):
        client.set("a", "2")
    assert client.execute_command("NODEEPOCH", "GET") == [9, b"fenced"]
    assert client.info("replication")["ledis_fenced"] == 1
    with pytest.raises(redis.ResponseError, match="stale epoch 8"):
        client.execute_command("NODEEPOCH", "SET", "8", "MASTER")
    # told it is master at a newer epoch: that is kept too
    assert client.execute_command("NODEEPOCH", "SET", "10", "MASTER") == b"OK"
    server.kill9()
    server.start()
    client = server.client()
    assert client.execute_command("NODEEPOCH", "GET") == [10, b"master"]
    assert client.set("a", "3") is True and client.get("a") == b"3"
    client.close()
    server.stop()


def test_an_unreadable_fence_file_stops_the_start(tmp_path: Path) -> None:
    server = LedisServer(tmp_path)
    server.data_dir.mkdir(parents=True)
    (server.data_dir / "node-epoch").write_text('{"epoch": "x"')
    with pytest.raises(RuntimeError, match="exited with 1"):
        server.start()
    assert "not a node epoch" in server.log()
