"""Through ledis-proxy (two groups) and straight to one real Redis, the same command sequences
give the same reply bytes, over RESP2 and RESP3: the hand-written and generated sequences of
the server's differential tests, kept to what a cluster runs (every command's keys in one
slot, or a command the proxy splits; transactions in one slot; nothing per node or per
database)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack.cluster.etcd_server import EtcdServer
from stack.core.commands import TABLE
from stack.core.slots import key_slot

from .proxy_cluster import Cluster, ProxyProcess
from .respclient import encode_command
from .servers import RedisServer
from .test_differential import CASES, COMMANDS, PLAIN, Cmd, Pair

pytestmark = pytest.mark.differential

SPLIT = {"mget", "mset", "del", "unlink", "exists", "touch"}
# answered per node, per database or by the proxy itself: not comparable with one Redis
PER_NODE = {
    "select", "swapdb", "move", "config", "client", "debug", "shutdown", "scan", "randomkey",
    "wait", "slowlog", "latency", "info", "lastsave", "save", "bgsave", "hello", "object",
    "auth", "reset", "role", "time",
}  # fmt: skip
FAN_OUT = {"keys", "dbsize", "flushall", "flushdb"}
CASE_NAMES = [
    "set options", "string family", "counters", "bits", "bitfield", "expiry", "lcs",
    "transactions", "hashes", "sets", "lists", "sorted sets",
]  # fmt: skip


def _args(cmd: Cmd) -> list[bytes]:
    return [a if isinstance(a, bytes) else str(a).encode() for a in cmd]


def _slots(args: list[bytes]) -> set[int]:
    return {key_slot(args[r.pos]) for r in TABLE.keys(args) if "NOT_KEY" not in r.flags}


def single_slot(commands: Sequence[Cmd]) -> list[Cmd]:
    """The commands a cluster runs as one Redis does (see the module's description)."""
    out: list[Cmd] = []
    in_multi = False
    txn_slot: int | None = None
    for cmd in commands:
        args = _args(cmd)
        name = args[0].decode().lower()
        if name in PER_NODE:
            continue
        if name == "multi":
            if not in_multi:
                in_multi, txn_slot = True, None
            out.append(cmd)
            continue
        if name in ("exec", "discard"):
            in_multi = False
            out.append(cmd)
            continue
        slots = _slots(args)
        if in_multi:
            if name in FAN_OUT or len(slots) > 1:
                continue
            if slots:
                slot = slots.pop()
                if txn_slot is None:
                    txn_slot = slot
                elif slot != txn_slot:
                    continue
        elif len(slots) > 1 and name not in SPLIT:
            continue
        out.append(cmd)
    return out


@pytest.fixture(scope="module", params=["c", "python"])
def proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, etcd: EtcdServer
) -> Iterator[ProxyProcess]:
    """A proxy with its C router and one on the Python path alone (the reference)."""
    path = request.param
    c = Cluster(tmp_path_factory.mktemp("proxy-diff"), etcd, f"differential-{path}", groups=2)
    yield c.proxy(env={"LEDIS_PROXY_C": "0"} if path == "python" else None)
    c.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(
    request: pytest.FixtureRequest, proxy: ProxyProcess, redis_server: RedisServer
) -> Iterator[Pair]:
    p = Pair(proxy, redis_server, request.param)  # type: ignore[arg-type]
    p.reset()
    yield p
    p.close()


def test_the_filter_keeps_most_of_each_sequence() -> None:
    kept = sum(len(single_slot(CASES[n])) for n in CASE_NAMES)
    total = sum(len(CASES[n]) for n in CASE_NAMES)
    assert kept > 0.8 * total


@pytest.mark.parametrize("name", CASE_NAMES)
def test_sequences_match_redis(pair: Pair, name: str) -> None:
    pair.run([*single_slot(CASES[name]), ("DISCARD",)])


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(COMMANDS, min_size=1, max_size=25))
def test_generated_sequences_match_redis(pair: Pair, commands: list[Cmd]) -> None:
    pair.reset()
    pair.run([*single_slot(commands), ("DISCARD",)])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.one_of(PLAIN, COMMANDS), min_size=1, max_size=40), st.data())
def test_generated_pipelines_match_redis(
    pair: Pair, commands: list[Cmd], data: st.DataObject
) -> None:
    """Pipelined, cut into writes anywhere: replies in order, bytes as Redis's."""
    pair.reset()
    commands = [*single_slot(commands), ("DISCARD",)]
    size = sum(len(encode_command(c)) for c in commands)
    cuts = data.draw(st.lists(st.integers(1, size), max_size=4))
    pair.run_pipelined(commands, cuts)
