"""The topology model and the etcd paths: round trips, O(1) lookups, strict reading."""

from __future__ import annotations

import json
import random

import pytest

from stack.cluster.model import (
    MIGRATING,
    ONLINE,
    UNASSIGNED,
    Event,
    Group,
    Meta,
    MigrationTask,
    ModelError,
    Proxy,
    SlotMap,
    SlotRange,
    check_addr,
    compress_slots,
    parse_slot_ranges,
)
from stack.cluster.paths import ClusterPaths, PathError
from stack.core.slots import SLOT_COUNT


def test_paths_are_built_and_classified() -> None:
    p = ClusterPaths("prod-1")
    assert p.prefix == "/ledis/prod-1/"
    assert p.group(3) == "/ledis/prod-1/groups/3"
    assert p.migration("m12-1") == "/ledis/prod-1/migrations/m12-1"
    for path, kind in [
        (p.meta, ("meta", "")),
        (p.epoch, ("epoch", "")),
        (p.slots, ("slots", "")),
        (p.group(3), ("group", "3")),
        (p.proxy("px1"), ("proxy", "px1")),
        (p.migration("m1"), ("migration", "m1")),
        (p.event("e1"), ("event", "e1")),
        (p.leader, ("leader", "")),
        ("/ledis/prod-1/groups/3/x", ("other", "groups/3/x")),
        ("/ledis/other/meta", ("other", "/ledis/other/meta")),
    ]:
        assert p.classify(path) == kind
    # a cluster named like a prefix of another never sees the other's keys
    assert ClusterPaths("a").classify("/ledis/ab/meta")[0] == "other"


@pytest.mark.parametrize("name", ["", "a/b", "-x", "x" * 65, "sp ace", "é"])
def test_bad_cluster_names(name: str) -> None:
    with pytest.raises(PathError, match="cluster name"):
        ClusterPaths(name)


def test_bad_ids_are_refused() -> None:
    with pytest.raises(PathError, match="proxy id"):
        ClusterPaths("c").proxy("a/b")


def test_addresses() -> None:
    assert check_addr("127.0.0.1:7000") == "127.0.0.1:7000"
    assert check_addr("[::1]:7000") == "[::1]:7000"
    for bad in ["127.0.0.1", "h:0", "h:70000", ":1", "a b:1", 12]:
        with pytest.raises(ValueError):
            check_addr(bad)  # type: ignore[arg-type]


def test_slot_map_lookup_and_round_trip() -> None:
    owners = [1] * 5000 + [2] * 6000 + [None] * (SLOT_COUNT - 11000)
    m = SlotMap.from_slots(owners, epoch=7, targets={100: 2, 101: 2})
    assert [(r.start, r.end, r.group, r.state, r.target) for r in m.ranges] == [
        (0, 99, 1, ONLINE, None),
        (100, 101, 1, MIGRATING, 2),
        (102, 4999, 1, ONLINE, None),
        (5000, 10999, 2, ONLINE, None),
        (11000, SLOT_COUNT - 1, None, UNASSIGNED, None),
    ]
    rng = random.Random(1)
    for s in rng.sample(range(SLOT_COUNT), 300):
        assert m.owner(s) == owners[s]
        r = m.range_of(s)
        assert r.start <= s <= r.end
    assert m.counts() == {1: 5000, 2: 6000}
    assert m.unassigned() == SLOT_COUNT - 11000
    again = SlotMap.from_json("/k", m.to_json())
    assert again == m and again.owners() == owners and again.targets() == {100: 2, 101: 2}


def test_slot_map_edits() -> None:
    m = SlotMap.empty(1).with_owner(range(0, 8192), 1, 2).with_owner(range(8192, SLOT_COUNT), 2, 3)
    assert m.epoch == 3 and len(m.ranges) == 2
    moving = m.with_migrating([10, 11], 2, 4)
    assert moving.range_of(10).state == MIGRATING and moving.owner(10) == 1
    settled = moving.with_owner([10, 11], 2, 5)
    assert settled.owner(11) == 2 and settled.range_of(11).state == ONLINE
    assert len(settled.ranges) == 4


def _slots_doc(ranges: list[dict[str, object]]) -> str:
    return json.dumps({"v": 1, "epoch": 1, "ranges": ranges})


@pytest.mark.parametrize(
    ("ranges", "problem"),
    [
        (
            [{"from": 0, "to": 100, "group": 1, "state": "online"}],
            "slots 101-16383 are not covered",
        ),
        (
            [
                {"from": 0, "to": 100, "group": 1, "state": "online"},
                {"from": 99, "to": 16383, "group": 2, "state": "online"},
            ],
            "overlaps",
        ),
        (
            [
                {"from": 0, "to": 100, "group": 1, "state": "online"},
                {"from": 102, "to": 16383, "group": 2, "state": "online"},
            ],
            "leaves slots 101-101 out",
        ),
        (
            [{"from": 0, "to": 16383, "group": None, "state": "online"}],
            "state 'online' with group None",
        ),
        ([{"from": 0, "to": 16383, "group": 1, "state": "migrating"}], "with target None"),
        ([{"from": 0, "to": 16383, "group": 1, "state": "gone"}], "'gone' is not one of"),
        ([{"from": 0, "to": 16384, "group": 1, "state": "online"}], "above 16383"),
        ([{"from": "0", "to": 16383, "group": 1, "state": "online"}], "expected an integer"),
        (
            [
                {"from": 0, "to": 10, "group": 1, "state": "online"},
                {"from": 11, "to": 16383, "group": 1, "state": "online"},
            ],
            "should be merged",
        ),
    ],
)
def test_slot_map_strict(ranges: list[dict[str, object]], problem: str) -> None:
    with pytest.raises(ModelError, match=problem) as e:
        SlotMap.from_json("/ledis/c/slots", _slots_doc(ranges))
    assert str(e.value).startswith("/ledis/c/slots:")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"id": 1, "replicas": [], "epoch": 1}', "field 'master': missing"),
        (b'{"id": 1, "master": "nohost", "epoch": 1}', "field 'master': expected 'host:port'"),
        (b'{"id": 0, "master": "h:1", "epoch": 1}', "field 'id': 0 is below 1"),
        (b'{"id": true, "master": "h:1", "epoch": 1}', "field 'id': expected an integer"),
        (
            b'{"id": 1, "master": "h:1", "replicas": ["h:1"], "epoch": 1}',
            "also listed as a replica",
        ),
        (b'{"id": 1, "master": "h:1", "replicas": ["h:2", "h:2"], "epoch": 1}', "listed twice"),
        (b'{"id": 1, "master": "h:1", "replicas": ["x"], "epoch": 1}', r"field 'replicas\[0\]'"),
        (b'{"v": 9, "id": 1, "master": "h:1", "epoch": 1}', "field 'v': 9 is above 1"),
    ],
)
def test_group_strict(raw: bytes, problem: str) -> None:
    with pytest.raises(ModelError, match=problem):
        Group.from_json("/ledis/c/groups/1", raw)


def test_documents_round_trip() -> None:
    g = Group(2, "127.0.0.1:7002", ("127.0.0.1:7003",), 5)
    assert Group.from_json("k", g.to_json()) == g
    meta = Meta("c", 12.5)
    assert Meta.from_json("k", meta.to_json()) == meta
    p = Proxy("px", "127.0.0.1:7100", 42, 1.0, 3, {"ops": 10.0})
    assert Proxy.from_json("k", p.to_json()) == p
    t = MigrationTask(
        "m1", ((0, 9), (20, 20)), 1, 2, "running", "me", 5, 100, 2000, 4, 50.0, 3.0, 1.0, 2.0, None
    )
    assert MigrationTask.from_json("k", t.to_json()) == t
    assert t.slots_total == 11 and t.slot_list()[-1] == 20
    assert round(t.percent, 1) == 36.4
    e = Event("id", 5, 1.0, "console", "init", "hello")
    assert Event.from_json("k", e.to_json(), "id", 5) == e


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"target": 1}, "same as the source group"),
        ({"slots": [[5, 1]]}, "not a sorted, disjoint"),
        ({"slots": [[0, 5], [3, 9]]}, "not a sorted, disjoint"),
        ({"state": "sleeping"}, "'sleeping' is not one of"),
        ({"slots_done": 99}, "more than the 6 slots"),
        ({"eta_s": "soon"}, "expected a number"),
    ],
)
def test_task_strict(change: dict[str, object], problem: str) -> None:
    doc = json.loads(MigrationTask("m1", ((0, 5),), 1, 2).to_json())
    doc.update(change)
    with pytest.raises(ModelError, match=problem):
        MigrationTask.from_json("/ledis/c/migrations/m1", json.dumps(doc))


def test_slot_range_text() -> None:
    assert parse_slot_ranges("0-1023, 2048,4000-4095") == ((0, 1023), (2048, 2048), (4000, 4095))
    for bad, why in [
        ("0-99999", "0 to 16383"),
        ("a-b", "N or N-M"),
        ("0-10,5-20", "overlap"),
        ("9-1", "low to high"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_slot_ranges(bad)
    assert compress_slots([5, 1, 2, 3, 9]) == ((1, 3), (5, 5), (9, 9))


def test_slot_range_defaults() -> None:
    r = SlotRange(0, 9, 1)
    assert r.count == 10 and r.to_doc() == {"from": 0, "to": 9, "group": 1, "state": "online"}
