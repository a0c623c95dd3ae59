"""SPOP, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER without a count pick one member in a few seeks
(stack/server/commands/sampling.py: random_member), not by reading the whole collection: every
member can come out, none is favoured much, and SPOP drains a set one member at a time."""

from __future__ import annotations

from collections import Counter

from .servers import LedisServer

PICKS = 3000


def _spread(counts: Counter[bytes], members: int) -> None:
    assert len(counts) == members  # every member came out
    fair = PICKS / members
    assert min(counts.values()) > fair / 3, counts  # none starved (the first member included)


def test_single_picks_reach_every_member_fairly(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    c.sadd("s", "a", "b", "c")
    c.hset("h", mapping={f"f{i}": i for i in range(10)})
    c.zadd("z", {f"m{i}": i for i in range(5)})
    _spread(Counter(c.srandmember("s") for _ in range(PICKS)), 3)
    _spread(Counter(c.hrandfield("h") for _ in range(PICKS)), 10)
    _spread(Counter(c.zrandmember("z") for _ in range(PICKS)), 5)
    c.sadd("one", "x")
    assert c.srandmember("one") == b"x" and c.spop("one") == b"x" and not c.exists("one")


def test_spop_drains_a_big_set_member_by_member(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    members = {f"element:{i}".encode() for i in range(2_000)}
    c.sadd("big", *members)
    p = c.pipeline(transaction=False)
    for _ in range(len(members)):
        p.spop("big")
    popped = p.execute()
    assert len(set(popped)) == len(members) and set(popped) == members
    assert not c.exists("big") and c.spop("big") is None
