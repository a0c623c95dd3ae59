"""A failover as a workflow recorded step by step in etcd (``failovers/<group>``).

Steps, in order (docs/failover.md, "The workflow"):

- ``requested``: a planned switchover asked for by ``ledis-console failover`` (writes will be
  paused on the master until the chosen replica has caught up);
- ``chosen``: the new master is chosen (the replica with the highest applied LogID) and the
  epoch the failover will commit at is fixed; the old master gets fenced at that epoch;
- ``promoted``: the new master was told REPLICAOF NO ONE and NODEEPOCH SET <epoch> MASTER;
- ``committed``: the group's document names the new master (the old one among its replicas),
  the slot map and the cluster epoch moved on, in one transaction with this step; proxies
  follow through their watch;
- then the other replicas (and the old master, once it answers) are repointed, and the record
  is deleted with the closing sentence.

Whoever leads next reads the record and completes it, or rolls a ``chosen`` one back when the
old master answers again and the new one was never promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stack.cluster.model import DOC_VERSION, _Reader, dumps

REQUESTED = "requested"
CHOSEN = "chosen"
PROMOTED = "promoted"
COMMITTED = "committed"
STEPS = (REQUESTED, CHOSEN, PROMOTED, COMMITTED)


@dataclass(frozen=True)
class Workflow:
    group: int
    old: str  # the master being replaced
    new: str  # the replica taking over
    step: str
    epoch: int  # the cluster epoch it commits at, and fences the old master with
    planned: bool = False  # a switchover asked for (writes paused, nothing lost)
    reason: str = ""
    started: float = 0.0
    owner: str = ""  # the controller that wrote the last step
    revision: int = 0  # mod revision of the record (0: not written yet)

    def at(self, step: str, owner: str, **changes: object) -> Workflow:
        return replace(self, step=step, owner=owner, **changes)  # type: ignore[arg-type]

    def to_json(self) -> bytes:
        return dumps(
            {
                "v": DOC_VERSION,
                "group": self.group,
                "old": self.old,
                "new": self.new,
                "step": self.step,
                "epoch": self.epoch,
                "planned": self.planned,
                "reason": self.reason,
                "started": self.started,
                "owner": self.owner,
            }
        )

    @classmethod
    def from_json(cls, where: str, raw: bytes | str, revision: int = 0) -> Workflow:
        r = _Reader(where, raw)
        r.version()
        planned = r.get("planned", False)
        if not isinstance(planned, bool):
            raise r.fail("planned", f"expected true or false, got {planned!r}")
        return cls(
            group=r.integer("group", lo=1),
            old=r.addr("old"),
            new=r.addr("new"),
            step=r.text("step", choices=STEPS),
            epoch=r.integer("epoch", lo=0),
            planned=planned,
            reason=r.text("reason", default=""),
            started=r.number("started", default=0.0),
            owner=r.text("owner", default=""),
            revision=revision,
        )
