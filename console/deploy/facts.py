"""Facts: what each host has and what the cluster in etcd says, as frozen dataclasses (pure).

``parse_host`` reads what ``hostfacts.py`` printed on a host, ``parse_cluster`` what
``hostd cluster`` printed; both fail with ``FactsError`` naming the host and the problem.
The planner (``plan.py``) turns these and the playbook into operations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hostfacts import python_tag


class FactsError(ValueError):
    pass


@dataclass(frozen=True)
class Installed:
    version: str
    wheel_sha256: str  # of the project's wheel ("" for an install from a package index)


@dataclass(frozen=True)
class NodeFacts:
    files: Mapping[str, str] = field(default_factory=dict)  # file name -> sha256
    running: bool = False
    pid: int | None = None
    started: Mapping[str, str] = field(default_factory=dict)  # the files it runs from


@dataclass(frozen=True)
class HostFacts:
    host: str
    python: tuple[int, int, int]
    installed: Installed | None = None
    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    systemd: bool = False
    implementation: str = "cpython"
    platform: str = ""  # the wheel platform tag (linux_x86_64)

    @property
    def python_tag(self) -> str:
        return python_tag(self.implementation, self.python)

    def node(self, name: str) -> NodeFacts:
        return self.nodes.get(name, NodeFacts())


@dataclass(frozen=True)
class GroupFacts:
    id: int
    master: str
    replicas: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterFacts:
    """The cluster's view from etcd (``reachable`` False: etcd did not answer)."""

    reachable: bool = False
    initialised: bool = False
    groups: tuple[GroupFacts, ...] = ()
    unassigned_slots: int = 16384
    leader: str | None = None
    error: str = ""

    def group_of(self, addr: str) -> tuple[GroupFacts, str] | None:
        for g in self.groups:
            if g.master == addr:
                return g, "master"
            if addr in g.replicas:
                return g, "replica"
        return None


@dataclass(frozen=True)
class Artifact:
    """What deploy installs: this version, from this wheel (sha256; "" for a pinned version).
    ``python_tag``/``platform``: what the wheelhouse's compiled wheels were built for ("":
    every wheel is pure Python, or the install comes from a package index)."""

    version: str
    wheel_sha256: str = ""
    wheel_name: str = ""
    python_tag: str = ""
    platform: str = ""

    def refuses(self, host: HostFacts) -> str:
        """Why the wheelhouse cannot be installed on ``host`` ("" when it can)."""
        if self.python_tag and host.python_tag != self.python_tag:
            py = ".".join(map(str, host.python))
            return (f"{host.implementation} {py} ({host.python_tag or 'no CPython tag'}), but "
                    f"the wheelhouse is built for {self.python_tag}")  # fmt: skip
        if self.platform and host.platform and host.platform != self.platform:
            return f"platform {host.platform}, but the wheelhouse is built for {self.platform}"
        return ""

    def matches(self, installed: Installed | None) -> bool:
        return installed is not None and (installed.version, installed.wheel_sha256) == (
            self.version,
            self.wheel_sha256,
        )


def _doc(host: str, text: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text.strip().splitlines()[-1]) if text.strip() else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise FactsError(f"{host}: {what} printed no JSON document: {text.strip()[:200]!r}")
    return doc


def parse_host(host: str, text: str) -> HostFacts:
    doc = _doc(host, text, "the facts script")
    try:
        py = tuple(int(x) for x in doc["python"][:3])
        installed = None
        if isinstance(doc.get("installed"), dict):
            i = doc["installed"]
            installed = Installed(str(i["version"]), str(i.get("wheel_sha256", "")))
        nodes = {
            str(name): NodeFacts(
                {str(k): str(v) for k, v in n.get("files", {}).items()},
                bool(n.get("running")),
                n.get("pid"),
                {str(k): str(v) for k, v in (n.get("started") or {}).items()},
            )
            for name, n in doc.get("nodes", {}).items()
        }
        return HostFacts(host, (py[0], py[1], py[2]), installed, nodes, bool(doc.get("systemd")),
                         str(doc.get("implementation", "cpython")), str(doc.get("platform", "")))  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise FactsError(f"{host}: facts not understood ({e!r})") from None


def parse_cluster(host: str, text: str) -> ClusterFacts:
    doc = _doc(host, text, "the cluster facts")
    if doc.get("error"):
        return ClusterFacts(error=str(doc["error"]))
    try:
        groups = tuple(
            GroupFacts(int(g["id"]), str(g["master"]), tuple(str(r) for r in g["replicas"]))
            for g in doc.get("groups", [])
        )
        return ClusterFacts(
            True,
            bool(doc["initialised"]),
            groups,
            int(doc.get("unassigned_slots", 16384)),
            doc.get("leader"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FactsError(f"{host}: cluster facts not understood ({e!r})") from None
