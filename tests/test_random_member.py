"""SPOP, SRANDMEMBER, HRANDFIELD and ZRANDMEMBER without a count pick one member in a few seeks
(stack/server/storage/picks.py: random_member), not by reading the whole collection: every
member can come out, none is favoured much, and SPOP drains a set one member at a time."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from stack.server.storage.picks import _Digits

from .servers import LedisServer, wait_until

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


def test_a_small_set_is_picked_from_evenly(fresh_server: LedisServer) -> None:
    """Up to 128 members, a pick is uniform (as Redis's small encodings): 5,000 picks of 50
    members, each within half and twice its fair share (100 +- 5 standard deviations)."""
    fresh_server.start()
    c = fresh_server.client()
    c.sadd("s", *[f"m{i}" for i in range(50)])  # lengths differ: m1, m10 ...
    counts = Counter(c.srandmember("s") for _ in range(5000))
    assert len(counts) == 50 and min(counts.values()) > 50 and max(counts.values()) < 200, counts


def test_spop_empties_a_big_set_evenly(fresh_server: LedisServer) -> None:
    """Members named as redis-benchmark names them (element:000000012345): read as bytes, the
    member after each carry of a digit took most of the picks, so SPOP emptied the set from its
    largest members (and each pick stepped over the tombstones they left). Now what is left
    after 90% of the pops is spread over the whole set."""
    fresh_server.start()
    c = fresh_server.client()
    rng = random.Random(7)
    members = sorted({b"element:%012d" % rng.randrange(100_000) for _ in range(5_000)})
    c.sadd("big", *members)
    p = c.pipeline(transaction=False)
    for _ in range(len(members) * 9 // 10):
        p.spop("big")
    p.execute()
    left = sorted(c.smembers("big"))
    assert len(left) == len(members) - len(members) * 9 // 10
    middle = members[len(members) // 2]
    assert left[0] < middle < left[-1], (left[0], left[-1])
    assert left[-1] >= members[len(members) * 9 // 10], left[-1]  # some of the top 10% stay


def test_picks_follow_members_added_after_and_removed_from_the_end(
    fresh_server: LedisServer,
) -> None:
    """The last member a pick found is remembered (Collection.last): members added after it
    come out, removed ones never do."""
    fresh_server.start()
    c = fresh_server.client()
    c.sadd("s", *[f"a{i:03d}" for i in range(300)])
    for _ in range(20):
        assert c.srandmember("s").startswith(b"a")
    c.srem("s", *[f"a{i:03d}" for i in range(200, 300)])
    c.sadd("s", *[f"z{i:03d}" for i in range(100)])
    current = set(c.smembers("s"))
    picks = [c.srandmember("s") for _ in range(1000)]
    assert set(picks) <= current
    assert any(p.startswith(b"z") for p in picks)
    c.srem("s", *[f"z{i:03d}" for i in range(100)])
    picks = [c.srandmember("s") for _ in range(300)]
    assert all(p.startswith(b"a") and int(p[1:]) < 200 for p in picks)


@given(st.lists(st.binary(min_size=0, max_size=6), min_size=3, max_size=40, unique=True))
def test_members_read_as_numbers_keep_their_order(members: list[bytes]) -> None:
    """_Digits: a greater member never gets a smaller number, and the key a point seeks is
    never after a member whose number is at or past the point."""
    members.sort()
    digits = _Digits(members[0], members[1], members[-1])
    numbers = [digits.number(m) for m in members]
    assert numbers == sorted(numbers)
    for m, n in zip(members, numbers, strict=True):
        assert digits.key(n) <= m or not all(digits.lo <= b <= digits.hi for b in m), (m, n)


def test_a_set_emptied_by_pops_has_its_range_compacted(fresh_server: LedisServer) -> None:
    """LevelDB keeps a tombstone per popped member until a compaction reaches it, and every
    pick steps over them: once they outnumber the members left 4 to 1 (and 4096), the set's
    range is compacted in a thread (INFO persistence ledis_range_compactions); what is left
    stays whole."""
    fresh_server.start()
    c = fresh_server.client()
    members = {f"element:{i:012d}".encode() for i in range(6_000)}
    c.sadd("s", *members)
    p = c.pipeline(transaction=False)
    for _ in range(5_000):
        p.spop("s")
    popped = set(p.execute())
    wait_until(lambda: c.info("persistence")["ledis_range_compactions"] >= 1)
    left = set(c.smembers("s"))
    assert len(popped) == 5_000 and left == members - popped
    assert c.scard("s") == 1_000
