"""A hypothesis state machine drives ledis-server and redis-server side by side: every step's
reply bytes must match, and after each step the data of the keys must match too."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .respclient import RawClient
from .servers import LedisServer, RedisServer
from .test_differential import normalise

KEYS = st.sampled_from(["k1", "k2", "{t}k3"])
MEMBERS = st.sampled_from(["a", "b", "c", "10", "-1", ""])
SCORES = st.sampled_from(["0", "1", "1.5", "-2", "inf"])
COUNTS = st.integers(-3, 3).map(str)

_servers: dict[str, object] = {}


class SameAsRedis(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        ledis = _servers["ledis"]
        real = _servers["redis"]
        assert isinstance(ledis, LedisServer) and isinstance(real, RedisServer)
        self.ours = RawClient(ledis.port)
        self.theirs = RawClient(unix=str(real.socket))
        for c in (self.ours, self.theirs):
            c.call("FLUSHALL")

    def same(self, *cmd: str) -> None:
        theirs = normalise(cmd, self.theirs.call(*cmd))
        ours = normalise(cmd, self.ours.call(*cmd))
        assert ours == theirs, f"{cmd}: redis {theirs!r} != ledis {ours!r}"

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=3))
    def sadd(self, key: str, members: list[str]) -> None:
        self.same("SADD", key, *members)

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=2))
    def srem(self, key: str, members: list[str]) -> None:
        self.same("SREM", key, *members)

    @rule(key=KEYS, field=MEMBERS, value=MEMBERS)
    def hset(self, key: str, field: str, value: str) -> None:
        self.same("HSET", key, field, value)

    @rule(key=KEYS, field=MEMBERS)
    def hdel(self, key: str, field: str) -> None:
        self.same("HDEL", key, field)

    @rule(key=KEYS, values=st.lists(MEMBERS, min_size=1, max_size=3),
          side=st.sampled_from(["LPUSH", "RPUSH"]))
    def push(self, key: str, values: list[str], side: str) -> None:
        self.same(side, key, *values)

    @rule(key=KEYS, side=st.sampled_from(["LPOP", "RPOP"]))
    def pop(self, key: str, side: str) -> None:
        self.same(side, key)

    @rule(key=KEYS, count=COUNTS, value=MEMBERS)
    def lrem(self, key: str, count: str, value: str) -> None:
        self.same("LREM", key, count, value)

    @rule(key=KEYS, start=COUNTS, stop=COUNTS)
    def ltrim(self, key: str, start: str, stop: str) -> None:
        self.same("LTRIM", key, start, stop)

    @rule(key=KEYS, score=SCORES, member=MEMBERS, flag=st.sampled_from(["", "NX", "XX", "GT", "CH"]))
    def zadd(self, key: str, score: str, member: str, flag: str) -> None:
        self.same("ZADD", key, *([flag] if flag else []), score, member)

    @rule(key=KEYS, member=MEMBERS)
    def zrem(self, key: str, member: str) -> None:
        self.same("ZREM", key, member)

    @rule(key=KEYS, value=MEMBERS)
    def set(self, key: str, value: str) -> None:
        self.same("SET", key, value)

    @rule(src=KEYS, dst=KEYS)
    def rename(self, src: str, dst: str) -> None:
        self.same("RENAME", src, dst)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.same("DEL", key)

    @rule(dst=KEYS, a=KEYS, b=KEYS, op=st.sampled_from(["SUNIONSTORE", "SINTERSTORE"]))
    def setstore(self, dst: str, a: str, b: str, op: str) -> None:
        self.same(op, dst, a, b)

    @invariant()
    def data_matches(self) -> None:
        for key in ("k1", "k2", "{t}k3"):
            self.same("TYPE", key)
            kind = self.ours.call("TYPE", key)
            if kind == b"+set\r\n":
                self.same("SMEMBERS", key)
            elif kind == b"+hash\r\n":
                self.same("HGETALL", key)
            elif kind == b"+list\r\n":
                self.same("LRANGE", key, "0", "-1")
            elif kind == b"+zset\r\n":
                self.same("ZRANGE", key, "0", "-1", "WITHSCORES")
            elif kind == b"+string\r\n":
                self.same("GET", key)
        self.same("DBSIZE")

    def teardown(self) -> None:
        self.ours.close()
        self.theirs.close()


SameAsRedis.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.differential
def test_state_machine(ledis_server: LedisServer, redis_server: RedisServer) -> None:
    _servers["ledis"] = ledis_server
    _servers["redis"] = redis_server
    SameAsRedis.TestCase("runTest").runTest()
