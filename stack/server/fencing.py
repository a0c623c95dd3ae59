"""Fencing: the cluster epoch this node serves under, and whether it may take writes in it.

The failover controller (docs/failover.md) tells every node the epoch of its group's latest
failover with ``NODEEPOCH SET <epoch> MASTER|FENCED``. A node told of an epoch in which it is
not the master is *fenced*: from that command on, the gate (``gate.py``) refuses every write
with Redis's ``-READONLY`` and the fast lane runs no write, whatever its role says, until it is
told of a newer epoch in which it is master. An older epoch than the one held is refused, so a
controller acting on a stale view cannot unfence a node.

The epoch and the state live in the data dir, in a small file of their own (``node-epoch``,
replaced whole and fsynced before NODEEPOCH SET answers) and are read back when the server
starts, before it listens: a fenced old master restarted after a kill -9 refuses the first
write it is sent. Not in LevelDB: they are this node's, not data (a LevelDB record would be
replicated, or wiped by a full sync from the new master).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from stack.core import errors
from stack.core.durable import replace_file

log = logging.getLogger(__name__)

MASTER = "master"
FENCED = "fenced"
FILE_NAME = "node-epoch"  # in the data dir


class FenceFileError(OSError):
    """The fence file exists but cannot be read: the server does not start (it might be a
    fenced node, so serving as a master would be the unsafe guess)."""


class Fence:
    def __init__(self, data_dir: Path | None = None) -> None:
        self.path = data_dir / FILE_NAME if data_dir is not None else None
        self.epoch = 0
        self.fenced = False
        self.refused = 0  # writes refused while fenced (INFO)
        self._load()

    @property
    def state(self) -> str:
        return FENCED if self.fenced else MASTER

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            doc = json.loads(raw)
            epoch, state = doc["epoch"], doc["state"]
            if not isinstance(epoch, int) or epoch < 0 or state not in (MASTER, FENCED):
                raise ValueError(f"epoch {epoch!r}, state {state!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise FenceFileError(
                f"{self.path}: not a node epoch ({e}); remove it only if this node must not "
                "be fenced"
            ) from None
        self.epoch, self.fenced = epoch, state == FENCED
        log.warning("serving under epoch %d as %s (%s)", epoch, state, self.path)

    def set(self, epoch: int, state: str) -> None:
        """NODEEPOCH SET; ValueError (the reply's text) for an older epoch, OSError when it
        cannot be stored (a fence is applied all the same: refusing writes is the safe side)."""
        if epoch < self.epoch:
            raise ValueError(errors.stale_epoch(epoch, self.epoch))
        fenced = state == FENCED
        if (epoch, fenced) == (self.epoch, self.fenced):
            return
        try:
            if self.path is not None:
                replace_file(self.path, json.dumps({"epoch": epoch, "state": state}).encode())
        except OSError:
            if fenced:
                self.epoch, self.fenced = epoch, True
            raise
        log.warning(
            "epoch %d: %s",
            epoch,
            "fenced: writes refused" if fenced else "serving writes as master",
        )
        self.epoch, self.fenced = epoch, fenced

    def info(self) -> list[tuple[str, object]]:
        return [
            ("ledis_node_epoch", self.epoch),
            ("ledis_fenced", int(self.fenced)),
            ("ledis_fenced_refused_writes", self.refused),
        ]
