"""Fencing: the cluster epoch this node serves under, and whether it may take writes in it.

The failover controller (docs/failover.md) tells every node the epoch of its group's latest
failover with ``NODEEPOCH SET <epoch> MASTER|FENCED``. A node told of an epoch in which it is
not the master is *fenced*: from that command on, the gate (``gate.py``) refuses every write
with Redis's ``-READONLY`` and the fast lane runs no write, whatever its role says, until it is
told of a newer epoch in which it is master. An older epoch than the one held is refused, so a
controller acting on a stale view cannot unfence a node. The epoch is kept in memory: a node
that restarts serves as its configuration says (a restarted old master comes back as a
master of epoch 0), and the controller fences it again and re-attaches it as a replica as soon
as it answers (a proxy no longer routes to it: the topology in etcd names the new master).
"""

from __future__ import annotations

import logging

from stack.core import errors

log = logging.getLogger(__name__)

MASTER = "master"
FENCED = "fenced"


class Fence:
    def __init__(self) -> None:
        self.epoch = 0
        self.fenced = False
        self.refused = 0  # writes refused while fenced (INFO)

    @property
    def state(self) -> str:
        return FENCED if self.fenced else MASTER

    def set(self, epoch: int, state: str) -> None:
        """NODEEPOCH SET; ValueError (the reply's text) for an older epoch."""
        if epoch < self.epoch:
            raise ValueError(errors.stale_epoch(epoch, self.epoch))
        if (epoch, state == FENCED) != (self.epoch, self.fenced):
            log.warning(
                "epoch %d: %s",
                epoch,
                "fenced: writes refused" if state == FENCED else "serving writes as master",
            )
        self.epoch = epoch
        self.fenced = state == FENCED

    def info(self) -> list[tuple[str, object]]:
        return [
            ("ledis_node_epoch", self.epoch),
            ("ledis_fenced", int(self.fenced)),
            ("ledis_fenced_refused_writes", self.refused),
        ]
