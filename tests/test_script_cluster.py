"""Scripts on a node that knows its slots, against a real Redis 7.0 cluster node serving the same
slots (0-8191; the rest unassigned): declared keys in several slots (-CROSSSLOT), of a slot not
served (-CLUSTERDOWN; -MOVED when another group owns it), and redis.call on an undeclared key
of a slot not served or of another slot than the script's keys (Redis Cluster's script errors;
legacy scripts and allow-cross-slot-keys may cross slots), no-cluster; EVAL and FCALL alike."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from stack.cluster.etcd_server import free_port
from stack.core.slots import key_slot

from .respclient import RawClient
from .servers import LedisServer, RedisServer, wait_until


def key_in(low: int, high: int, prefix: str, avoid: int = -1) -> str:
    return next(
        k
        for i in range(100_000)
        if low <= (s := key_slot((k := f"{prefix}{i}").encode())) <= high and s != avoid
    )


B = key_in(0, 8191, "b")
C = key_in(0, 8191, "c", avoid=key_slot(B.encode()))
A = key_in(8192, 16383, "a")  # not served here


def node_map(epoch: int, other_group: bool) -> str:
    """Group 1 (this node) serves 0-8191; the rest is unassigned, or group 2's."""
    rest: dict[str, object] = {"from": 8192, "to": 16383, "state": "unassigned"}
    if other_group:
        rest = {"from": 8192, "to": 16383, "group": 2, "state": "online"}
    return json.dumps(
        {
            "v": 1,
            "epoch": epoch,
            "group": 1,
            "groups": {"1": "127.0.0.1:1", "2": "127.0.0.1:2"},
            "ranges": [{"from": 0, "to": 8191, "group": 1, "state": "online"}, rest],
        }
    )


def _cluster_node(workdir: Path) -> RedisServer:
    """A real Redis cluster node on its unix socket, its cluster bus on a free port (tried
    again if another process took it meanwhile)."""
    for _ in range(5):
        try:
            return RedisServer(
                workdir,
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                str(workdir / "nodes.conf"),
                "--cluster-require-full-coverage",
                "no",
            ).start()
        except RuntimeError:
            continue
    raise RuntimeError("no free port for a Redis cluster bus after 5 tries")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[RawClient, RawClient]]:
    """Our node with a map, and a real Redis cluster node serving the same slots."""
    real = _cluster_node(tmp_path / "redis")
    ours = LedisServer(tmp_path / "ledis").start()
    try:
        theirs = RawClient(unix=str(real.socket))
        assert theirs.call("CLUSTER", "ADDSLOTSRANGE", 0, 8191) == b"+OK\r\n"
        wait_until(lambda: b"cluster_state:ok" in theirs.call("CLUSTER", "INFO"), timeout=60)
        mine = RawClient(ours.port)
        assert mine.call("SLOTSMAP", "SET", 1, node_map(1, False)) == b"+OK\r\n"
        yield mine, theirs
    finally:
        ours.stop()
        real.stop()


GET_ARGV = "return redis.call('get', ARGV[1])"
TWO_GETS = "redis.call('get', KEYS[1]) return redis.call('get', ARGV[1])"
LIBRARY = (
    "#!lua name=cl\n"
    "redis.register_function('two', function(k, a) redis.call('get', k[1]) "
    "return redis.call('get', a[1]) end)\n"
    "redis.register_function{function_name='two_any', callback=function(k, a) "
    "redis.call('get', k[1]) return redis.call('get', a[1]) end, "
    "flags={'allow-cross-slot-keys'}}\n"
    "redis.register_function{function_name='nc', callback=function() return 1 end, "
    "flags={'no-cluster'}}"
)

CALLS: list[Sequence[str | int]] = [
    ("SET", B, "b"),
    ("SET", C, "c"),
    ("SET", A, "a"),
    ("EVAL", "return 1", 2, B, C),
    ("EVAL", "return 1", 2, A, B),  # the first key's slot is looked at first
    ("EVAL", "return 1", 2, B, A),
    ("EVAL", "return 1", 1, A),
    ("EVAL", GET_ARGV, 0, A),
    ("EVAL", GET_ARGV, 0, B),
    ("EVAL", "return redis.pcall('get', ARGV[1])", 0, A),
    ("EVAL", TWO_GETS, 1, B, C),  # a script without a shebang may cross slots
    ("EVAL", "#!lua\n" + TWO_GETS, 1, B, C),
    ("EVAL", "#!lua\nredis.call('get', ARGV[1]) return redis.call('get', ARGV[2])", 0, B, C),
    ("EVAL", "#!lua flags=allow-cross-slot-keys\n" + TWO_GETS, 1, B, C),
    ("EVAL", "#!lua flags=allow-cross-slot-keys\n" + TWO_GETS, 1, B, A),
    ("EVAL", "return redis.call('mget', ARGV[1], ARGV[2])", 0, B, C),
    ("EVAL", "#!lua flags=no-cluster\nreturn 1", 0),
    ("EVAL_RO", "#!lua flags=no-writes\n" + GET_ARGV, 1, B, B),
    ("FUNCTION", "LOAD", LIBRARY),
    ("FCALL", "two", 1, B, C),
    ("FCALL", "two", 1, B, A),
    ("FCALL", "two", 1, B, B),
    ("FCALL", "two", 2, B, C),
    ("FCALL", "two", 1, A, A),
    ("FCALL", "two_any", 1, B, C),
    ("FCALL", "nc", 0),
    ("FUNCTION", "FLUSH"),
]


def test_script_cluster_errors_match_redis_cluster(nodes: tuple[RawClient, RawClient]) -> None:
    mine, theirs = nodes
    for call in CALLS:
        assert mine.call(*call) == theirs.call(*call), call


def test_moved_for_declared_keys_of_another_group(nodes: tuple[RawClient, RawClient]) -> None:
    mine, _ = nodes
    assert mine.call("SLOTSMAP", "SET", 2, node_map(2, True)) == b"+OK\r\n"
    moved = b"-MOVED %d 127.0.0.1:2\r\n" % key_slot(A.encode())
    assert mine.call("EVAL", "return 1", 1, A) == moved
    assert mine.call("FUNCTION", "LOAD", LIBRARY) == b"$2\r\ncl\r\n"
    assert mine.call("FCALL", "two", 1, A, A) == moved
    assert mine.call("EVAL", GET_ARGV, 0, A).startswith(
        b"-ERR Script attempted to access a non local key in a cluster node script: "
    )
    assert mine.call("SLOTSMAP", "RESET") == b"+OK\r\n"  # no map: every key, any slot
    assert mine.call("EVAL", "#!lua\n" + TWO_GETS, 1, B, A) == b"$-1\r\n"
    assert mine.call("FCALL", "nc", 0) == b":1\r\n"
