"""Every etcd path of a cluster, built here and nowhere else (docs/cluster.md, "Topology in etcd").

A cluster named ``NAME`` lives under ``/ledis/NAME/``. Other modules call these methods; none
writes a path literal. ``classify`` is the inverse: it names what a key under the prefix is,
for snapshot loading and watches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "/ledis/"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class PathError(ValueError):
    """A cluster name or a document id that cannot be part of a path."""


def check_cluster_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise PathError(
            f"cluster name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_id(kind: str, ident: str) -> str:
    if not _ID.fullmatch(ident):
        raise PathError(f"{kind} id {ident!r}: use 1 to 128 letters, digits, '.', '_', ':' or '-'")
    return ident


@dataclass(frozen=True)
class ClusterPaths:
    """The paths of one cluster."""

    cluster: str

    def __post_init__(self) -> None:
        check_cluster_name(self.cluster)

    @property
    def prefix(self) -> str:
        return f"{ROOT}{self.cluster}/"

    @property
    def meta(self) -> str:
        return self.prefix + "meta"

    @property
    def epoch(self) -> str:
        return self.prefix + "epoch"

    @property
    def slots(self) -> str:
        return self.prefix + "slots"

    @property
    def groups(self) -> str:
        return self.prefix + "groups/"

    def group(self, group_id: int) -> str:
        return f"{self.groups}{group_id}"

    @property
    def proxies(self) -> str:
        return self.prefix + "proxies/"

    def proxy(self, proxy_id: str) -> str:
        return self.proxies + check_id("proxy", proxy_id)

    @property
    def migrations(self) -> str:
        return self.prefix + "migrations/"

    def migration(self, task_id: str) -> str:
        return self.migrations + check_id("migration", task_id)

    @property
    def events(self) -> str:
        return self.prefix + "events/"

    def event(self, event_id: str) -> str:
        return self.events + check_id("event", event_id)

    @property
    def views(self) -> str:
        """What each observer (controller or proxy) sees of every node, under its lease."""
        return self.prefix + "views/"

    def view(self, observer_id: str) -> str:
        return self.views + check_id("view", observer_id)

    @property
    def failovers(self) -> str:
        """Failover workflows in progress, one per group (docs/failover.md)."""
        return self.prefix + "failovers/"

    def failover(self, group_id: int) -> str:
        return f"{self.failovers}{group_id}"

    @property
    def leader(self) -> str:
        """The controller's leader key (issue 13), held under the leader's lease."""
        return self.prefix + "leader"

    def classify(self, path: str) -> tuple[str, str]:
        """``(kind, id)`` of a key under this cluster: kind is ``meta``, ``epoch``, ``slots``,
        ``leader``, ``group``, ``proxy``, ``migration``, ``event``, ``view``, ``failover`` or
        ``other``."""
        if not path.startswith(self.prefix):
            return ("other", path)
        rest = path[len(self.prefix) :]
        if rest in ("meta", "epoch", "slots", "leader"):
            return (rest, "")
        head, sep, tail = rest.partition("/")
        if sep and tail and "/" not in tail:
            kind = {
                "groups": "group",
                "proxies": "proxy",
                "migrations": "migration",
                "events": "event",
                "views": "view",
                "failovers": "failover",
            }.get(head)
            if kind is not None:
                return (kind, tail)
        return ("other", rest)
