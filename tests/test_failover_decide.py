"""decide() (stack/failover/decide.py) from made-up snapshots: no processes, every rule."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stack.cluster.model import Group, ModelError, SlotMap, Topology
from stack.cluster.views import CONTROLLER, PROXY, Seen, View
from stack.failover.decide import (
    MarkEpoch,
    Rejoin,
    Resume,
    Say,
    Settings,
    Snapshot,
    StartFailover,
    cut_off,
    decide,
    judge,
)
from stack.failover.leader import Leadership
from stack.failover.probe import NodeLook, read_look
from stack.failover.workflow import Workflow

M, R1, R2 = "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"
NOW = 1_000_000.0
CFG = Settings(down_after=3.0, quorum=2, view_max_age=5.0, safe_mode_fraction=0.5)


def topo(master: str = M, replicas: tuple[str, ...] = (R1, R2), epoch: int = 5) -> Topology:
    g = Group(1, master, replicas, epoch)
    return Topology("c", 10, None, epoch, {1: g}, SlotMap.from_slots([1] * 16384, epoch))


def up(addr: str, log_id: int, master: str | None = M, **kw: object) -> NodeLook:
    if master is None:
        return NodeLook(addr, True, "master", log_id=log_id, **kw)  # type: ignore[arg-type]
    return NodeLook(addr, True, "replica", master, "connected", log_id, **kw)  # type: ignore[arg-type]


def down(addr: str) -> NodeLook:
    return NodeLook(addr, False, error="Connection refused")


def view(name: str, kind: str, seen: dict[str, tuple[bool, float]], ts: float = NOW) -> View:
    return View(name, kind, ts, {a: Seen(u, NOW - ago) for a, (u, ago) in seen.items()})


def snap(
    nodes: list[NodeLook], views: list[View], t: Topology | None = None, **kw: Any
) -> Snapshot:
    return Snapshot(
        NOW, t or topo(), {n.addr: n for n in nodes}, {v.observer: v for v in views}, **kw
    )  # type: ignore[arg-type]


def acts(s: Snapshot) -> list[object]:
    return [a for a in decide(s, CFG, "c1") if not (isinstance(a, Say) and not a.text)]


MASTER_DOWN_NODES = [down(M), up(R1, 90), up(R2, 95)]


def test_master_down_in_two_views_promotes_the_replica_with_the_highest_logid() -> None:
    s = snap(
        MASTER_DOWN_NODES,
        [
            view("controller:c1", CONTROLLER, {M: (False, 4.0)}),
            view("proxy:p1", PROXY, {M: (False, 3.5)}),
        ],
        last_log_ids={M: 97},
    )
    (a,) = acts(s)
    assert isinstance(a, StartFailover)
    assert (a.workflow.old, a.workflow.new, a.workflow.step, a.workflow.epoch) == (
        M,
        R2,
        "chosen",
        6,
    )
    assert a.text == (
        f"group 1: master {M} unreachable from 2 of 2 views for 4.0 s; promoting {R2} "
        "(LogID 95, 2 behind)"
    )


def test_one_view_is_not_enough() -> None:
    # the controller is cut from the master, the proxy sees it fine: no failover
    s = snap(MASTER_DOWN_NODES, [view("controller:c1", CONTROLLER, {M: (False, 60.0)}),
                                 view("proxy:p1", PROXY, {M: (True, 60.0)})])  # fmt: skip
    assert acts(s) == []
    assert judge(s, M, CFG).agree == 1
    # and a lone view never makes a quorum of 2
    s = snap(MASTER_DOWN_NODES, [view("controller:c1", CONTROLLER, {M: (False, 60.0)})])
    assert acts(s) == []


def test_down_only_after_down_after_and_from_a_majority_of_fresh_views() -> None:
    young = [view("controller:c1", CONTROLLER, {M: (False, 2.0)}),
             view("proxy:p1", PROXY, {M: (False, 2.9)})]  # fmt: skip
    assert acts(snap(MASTER_DOWN_NODES, young)) == []
    # 2 of 4 agree: not a majority
    split = [view("controller:c1", CONTROLLER, {M: (False, 9.0)}),
             view("proxy:p1", PROXY, {M: (False, 9.0)}),
             view("proxy:p2", PROXY, {M: (True, 9.0)}),
             view("controller:c2", CONTROLLER, {M: (True, 9.0)})]  # fmt: skip
    assert acts(snap(MASTER_DOWN_NODES, split)) == []
    # a stale view (its observer stopped reporting) does not count either way
    stale = [view("controller:c1", CONTROLLER, {M: (False, 9.0)}),
             view("proxy:p1", PROXY, {M: (False, 9.0)}),
             view("proxy:p2", PROXY, {M: (True, 9.0)}, ts=NOW - 30)]  # fmt: skip
    assert isinstance(acts(snap(MASTER_DOWN_NODES, stale))[0], StartFailover)


def test_no_replica_to_promote_is_said_not_done() -> None:
    views = [view("controller:c1", CONTROLLER, {M: (False, 9.0)}),
             view("proxy:p1", PROXY, {M: (False, 9.0)})]  # fmt: skip
    (a,) = acts(snap([down(M), up(R1, 3, master="127.0.0.1:9999"), up(R2, 3, master=None)], views))
    # R1 follows another node, R2 is a master of its own: their LogIDs are not the group's
    assert isinstance(a, Say) and "no replica can take over" in a.text


def test_safe_mode_reports_only() -> None:
    t = Topology(
        "c", 10, None, 5,
        {1: Group(1, M, (R1,), 5), 2: Group(2, "127.0.0.1:7004", ("127.0.0.1:7005",), 5)},
        SlotMap.from_slots([1] * 8192 + [2] * 8192, 5),
    )  # fmt: skip
    nodes = [down(M), down(R1), down("127.0.0.1:7004"), up("127.0.0.1:7005", 1, "127.0.0.1:7004")]
    views = [view("controller:c1", CONTROLLER, {M: (False, 9.0), "127.0.0.1:7004": (False, 9.0)}),
             view("proxy:p1", PROXY, {M: (False, 9.0), "127.0.0.1:7004": (False, 9.0)})]  # fmt: skip
    out = acts(snap(nodes, views, t))
    assert not any(isinstance(a, StartFailover) for a in out)
    texts = [a.text for a in out if isinstance(a, Say)]
    assert texts[0] == (
        "safe mode: 3 of 4 nodes unreachable at once (more than 50%); reporting only, no failover"
    )
    assert "group 2: master 127.0.0.1:7004 unreachable from 2 of 2 views for 9.0 s; " \
           "not failing over in safe mode" in texts  # fmt: skip


def test_old_master_back_is_fenced_and_reattached_and_strays_repointed() -> None:
    t = topo(master=R1, replicas=(R2, M), epoch=8)
    nodes = [up(M, 99, master=None), up(R1, 120, master=None, epoch=8), up(R2, 120, master=M)]
    out = acts(snap(nodes, [], t))
    assert out == [
        Rejoin(1, R2, R1, 8, False,
               f"group 1: replica {R2} follows {M}; repointing it to {R1}"),
        Rejoin(1, M, R1, 8, True,
               f"group 1: {M} answers as a master of epoch 0 (the group is at epoch 8, master "
               f"{R1}); fencing it and re-attaching it as a replica"),
    ] or out == [
        Rejoin(1, M, R1, 8, True,
               f"group 1: {M} answers as a master of epoch 0 (the group is at epoch 8, master "
               f"{R1}); fencing it and re-attaching it as a replica"),
        Rejoin(1, R2, R1, 8, False,
               f"group 1: replica {R2} follows {M}; repointing it to {R1}"),
    ]  # fmt: skip


def test_master_told_its_epoch_and_unfenced_when_no_failover_runs() -> None:
    t = topo(epoch=9)
    out = acts(snap([up(M, 5, master=None, epoch=3), up(R1, 5), up(R2, 5)], [], t))
    assert out == [MarkEpoch(1, M, 9, "")]
    out = acts(snap([up(M, 5, master=None, epoch=9, fenced=True), up(R1, 5), up(R2, 5)], [], t))
    assert len(out) == 1 and isinstance(out[0], MarkEpoch) and "serving writes again" in out[0].text


def test_a_workflow_in_etcd_is_resumed_before_anything_else() -> None:
    wf = Workflow(1, M, R1, "promoted", 6)
    out = acts(snap(MASTER_DOWN_NODES, [], workflows={1: wf}))
    assert out == [Resume(wf)]


def test_healthy_cluster_says_nothing() -> None:
    views = [view("controller:c1", CONTROLLER, {M: (True, 100.0)})]
    assert acts(snap([up(M, 5, master=None, epoch=5), up(R1, 5), up(R2, 5)], views)) == []


def test_read_look() -> None:
    info = b"# Replication\r\nrole:master\r\nledis_node_epoch:4\r\nledis_fenced:1\r\n"
    look = read_look(M, [b"master", 17, []], info)
    assert (look.role, look.log_id, look.epoch, look.fenced, look.writable_master) == (
        "master", 17, 4, True, False,
    )  # fmt: skip
    look = read_look(R1, [b"slave", b"127.0.0.1", 7001, b"connected", 16], b"")
    assert (look.role, look.master, look.link, look.log_id) == ("replica", M, "connected", 16)
    assert not read_look(R1, b"garbage", b"").up


class _Lease:
    def __init__(self, age: float) -> None:
        self.last_ok = time.monotonic() - age


def test_a_leader_whose_lease_is_old_stops_acting() -> None:
    lead = Leadership(None, "c1", ttl=6)  # type: ignore[arg-type]
    lead.revision = 42
    lead.lease = _Lease(1.0)  # type: ignore[assignment]
    assert lead.leading(42)
    assert not lead.leading(43)  # the key was re-created by someone else
    lead.lease = _Lease(4.1)  # type: ignore[assignment]  # 2/3 of the TTL without a keep-alive
    assert not lead.leading(42)


def test_views_and_workflows_round_trip_and_are_read_strictly() -> None:
    v = view("proxy:p1", PROXY, {M: (False, 2.5), R1: (True, 10.0)})
    assert View.from_json("/ledis/c/views/proxy:p1", v.to_json()) == v
    for bad, problem in (
        (b'{"observer": "x", "kind": "robot", "ts": 1}', "'kind'"),
        (b'{"observer": "x", "kind": "proxy", "ts": 1, "nodes": {"nowhere": {"up": true, '
         b'"since": 1}}}', "nodes"),
        (b'{"observer": "x", "kind": "proxy", "ts": 1, "nodes": {"1.2.3.4:5": {"up": 1, '
         b'"since": 1}}}', "'up'"),
    ):  # fmt: skip
        with pytest.raises(ModelError, match=problem):
            View.from_json("/ledis/c/views/x", bad)
    wf = Workflow(2, M, R1, "committed", 9, planned=True, reason="r", started=5.0, owner="c1")
    assert Workflow.from_json("/ledis/c/failovers/2", wf.to_json()) == wf
    with pytest.raises(ModelError, match="'step'"):
        Workflow.from_json("w", wf.to_json().replace(b"committed", b"halfway"))


def test_a_controller_cut_from_the_nodes_gives_up_the_lead() -> None:
    everyone = [M, R1, R2]
    me = view("controller:c1", CONTROLLER, {a: (False, 6.0) for a in everyone})
    other = view("controller:c2", CONTROLLER, {a: (True, 60.0) for a in everyone})
    proxy = view("proxy:p", PROXY, {M: (True, 60.0)})
    s = snap([down(a) for a in everyone], [me, other, proxy])
    why = cut_off(s, CFG, "controller:c1", 5.0)
    assert why == (
        "controller:c1 has not reached 3 of 3 nodes for 5 s while 2 other views see 3 of "
        "them answering; giving up the lead so a controller that reaches them "
        "(controller:c2) leads"
    )
    # not for long enough (its own view, or the others')
    assert cut_off(s, CFG, "controller:c1", 7.0) is None
    young = view("controller:c2", CONTROLLER, {a: (True, 2.0) for a in everyone})
    assert cut_off(snap([], [me, young, proxy]), CFG, "controller:c1", 5.0) is None
    # no other controller to lead (proxies only), or it is as blind, or its view is stale
    assert cut_off(snap([], [me, proxy]), CFG, "controller:c1", 5.0) is None
    blind = view("controller:c2", CONTROLLER, {a: (False, 60.0) for a in everyone})
    assert cut_off(snap([], [me, blind, proxy]), CFG, "controller:c1", 5.0) is None
    stale = view("controller:c2", CONTROLLER, {a: (True, 60.0) for a in everyone}, NOW - 10)
    assert cut_off(snap([], [me, stale, proxy]), CFG, "controller:c1", 5.0) is None
    # most views see them down: the nodes are down, not this controller's path to them
    p2 = view("proxy:q", PROXY, {M: (False, 60.0), R1: (False, 60.0)})
    p3 = view("proxy:r", PROXY, {M: (False, 60.0), R1: (False, 60.0)})
    assert cut_off(snap([], [me, other, p2, p3]), CFG, "controller:c1", 5.0) is None
    # one node unreachable is not safe mode's "most nodes"
    one = view("controller:c1", CONTROLLER, {M: (False, 60.0), R1: (True, 60.0),
                                             R2: (True, 60.0)})  # fmt: skip
    assert cut_off(snap([], [one, other, proxy]), CFG, "controller:c1", 5.0) is None
