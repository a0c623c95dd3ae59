"""Record samples to a file and play them back with seek.

The file is JSON lines, one sample each (the topology as its etcd documents, events, nodes
and proxies with their INFO sections less commandstats and latencystats, the per-slot
rates summed by 16 slots). It is bounded on disk: when it reaches half of ``max_bytes`` it becomes ``FILE.1`` (replacing the older one)
and a new FILE starts, so the two never hold more than ``max_bytes`` and the newest samples are kept.
``Replay`` reads ``FILE.1`` then ``FILE``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from stack.cluster.model import Event, Group, Meta, MigrationTask, Proxy, SlotMap, Topology
from stack.failover.switchover import SwitchoverBasis

from .sample import ClusterSample, NodeSample, ProxySample, ReplicaLink

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_MAX_BYTES = 64 << 20
SLOT_BUCKET = 16  # slots whose rates a recording keeps as one
UNRECORDED = frozenset({"commandstats", "latencystats"})  # large, and summed up in the fields


class RecordingError(ValueError):
    pass


def _topology_doc(t: Topology) -> dict[str, Any]:
    return {
        "cluster": t.cluster,
        "revision": t.revision,
        "meta": json.loads(t.meta.to_json()) if t.meta else None,
        "epoch": t.epoch,
        "groups": [g.to_doc() for g in t.groups.values()],
        "slots": t.slots.to_doc(),
        "proxies": [json.loads(p.to_json()) for p in t.proxies.values()],
        "migrations": [m.to_doc() for m in t.migrations.values()],
        "leader": t.leader,
    }


def _topology(doc: dict[str, Any]) -> Topology:
    where = "recording"
    meta = Meta.from_json(where, json.dumps(doc["meta"])) if doc.get("meta") else None
    groups = {g["id"]: Group.from_json(where, json.dumps(g)) for g in doc["groups"]}
    proxies = {p["id"]: Proxy.from_json(where, json.dumps(p)) for p in doc["proxies"]}
    tasks = {m["id"]: MigrationTask.from_json(where, json.dumps(m)) for m in doc["migrations"]}
    return Topology(
        doc["cluster"],
        doc["revision"],
        meta,
        doc["epoch"],
        groups,
        SlotMap.from_json(where, json.dumps(doc["slots"])),
        proxies,
        tasks,
        leader=doc.get("leader"),
    )


def _slot_ops_doc(rates: Mapping[int, float]) -> list[list[float]]:
    """The per-slot rates, not the counters, summed by ``SLOT_BUCKET`` slots: ``[[first slot
    of the bucket, ops/s], ...]`` for the buckets with any (16384 rates would be 200 KB a
    sample; 1024 buckets at most 16 KB)."""
    sums: dict[int, float] = {}
    for slot, r in rates.items():
        b = slot - slot % SLOT_BUCKET
        sums[b] = sums.get(b, 0.0) + r
    return [[b, round(r, 1)] for b, r in sorted(sums.items())]


def sample_doc(s: ClusterSample) -> dict[str, Any]:
    nodes = []
    for n in s.nodes.values():
        d = dataclasses.asdict(n)
        d["sections"] = {k: dict(v) for k, v in n.sections.items() if k not in UNRECORDED}
        d["command_calls"] = {}  # only for the next poll's percentiles
        nodes.append(d)
    return {
        "v": FORMAT,
        "ts": s.ts,
        "cluster": s.cluster,
        "etcd": list(s.etcd),
        "topology": _topology_doc(s.topology) if s.topology else None,
        "etcd_ok": s.etcd_ok,
        "etcd_error": s.etcd_error,
        "events": [dataclasses.asdict(e) for e in s.events],
        "nodes": nodes,
        "proxies": [dataclasses.asdict(p) | {"slot_counts": {}} for p in s.proxies.values()],
        "poll_ms": s.poll_ms,
        "slot_ops": None if s.slot_ops is None else _slot_ops_doc(s.slot_ops),
    }


def sample_from_doc(d: dict[str, Any]) -> ClusterSample:
    nodes = {}
    for n in d["nodes"]:
        n = dict(n)
        n["replicas"] = tuple(ReplicaLink(**r) for r in n.get("replicas", ()))
        nodes[n["addr"]] = NodeSample(**n)
    return ClusterSample(
        ts=d["ts"],
        cluster=d["cluster"],
        etcd=tuple(d["etcd"]),
        topology=_topology(d["topology"]) if d.get("topology") else None,
        etcd_ok=d["etcd_ok"],
        etcd_error=d.get("etcd_error"),
        events=tuple(Event(**e) for e in d["events"]),
        nodes=nodes,
        proxies={p["addr"]: ProxySample(**p) for p in d["proxies"]},
        poll_ms=d.get("poll_ms", 0.0),
        slot_ops=None
        if d.get("slot_ops") is None
        else {int(a): float(b) for a, b in d["slot_ops"]},  # each bucket on its first slot
    )


class Recorder:
    """Appends samples to ``path``, keeping ``path`` and ``path.1`` under ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: TextIO = path.open("a", encoding="utf-8")

    @property
    def older(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def write(self, sample: ClusterSample) -> None:
        line = json.dumps(sample_doc(sample), separators=(",", ":")) + "\n"
        if self._file.tell() and self._file.tell() + len(line) > self.max_bytes // 2:
            self._file.close()
            self.path.replace(self.older)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def load(path: Path) -> list[ClusterSample]:
    """Every sample of a recording, oldest first (``FILE.1`` then ``FILE``)."""
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    out: list[ClusterSample] = []
    older = path.with_name(path.name + ".1")
    for p in (older, path):
        if not p.exists():
            continue
        with p.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(sample_from_doc(json.loads(line)))
                except (ValueError, KeyError, TypeError) as e:
                    if i == 1 and not out:
                        raise RecordingError(f"{p}: not a dashboard recording ({e})") from None
                    log.warning("%s line %d: skipped (%s)", p, i, e)
    if not out:
        raise RecordingError(f"{path}: holds no samples")
    return out


class ReplaySource:
    """Plays a recording: each ``sample()`` is the next one (the last one stays); ``seek``
    moves the position."""

    live = False

    def __init__(self, samples: list[ClusterSample]) -> None:
        self.samples = samples
        self.index = -1

    @property
    def position(self) -> str:
        return f"{self.index + 1}/{len(self.samples)}"

    def seek(self, delta: int) -> ClusterSample:
        self.index = max(0, min(len(self.samples) - 1, self.index + delta))
        return self.samples[self.index]

    def seek_to(self, index: int) -> ClusterSample:
        self.index = max(0, min(len(self.samples) - 1, index))
        return self.samples[self.index]

    async def sample(self, prev: ClusterSample | None) -> ClusterSample:
        return self.seek(1)

    async def call(self, addr: str, *args: str) -> object:
        raise RecordingError("a recording has no node to ask")

    async def switchover_basis(self, group_id: int) -> SwitchoverBasis:
        raise RecordingError("a recording has no cluster to read")

    async def close(self) -> None:
        pass
