"""Where each slot goes: the proxy's view of one topology (slot map + groups), per slot.

``RouteTable.build`` turns a ``Topology`` into one ``Route`` per slot range (shared by the
slots of the range, so a lookup is one list index): the owning group, the backend of its
master and, while the slot migrates, the backend of the target group's master. Backends are
kept by address across tables, so a new map reuses open connections.

For the C router (``_router.c``) the table also says, per slot, the index of its backend in
``backend_list`` (one byte; ``NOT_PLAIN`` for a slot with no owner or that migrates: those
commands take the Python path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stack.cluster.model import MIGRATING, Topology
from stack.core.slots import SLOT_COUNT

from .backend import Backend

NOT_PLAIN = 255


@dataclass(frozen=True, slots=True)
class Route:
    """Slots ``start..end``: served by ``backend`` (group ``group``'s master); while they
    migrate, ``target`` is the backend of group ``target_group``'s master."""

    start: int
    end: int
    group: int | None
    backend: Backend | None
    target_group: int | None = None
    target: Backend | None = None

    @property
    def migrating(self) -> bool:
        return self.target is not None


@dataclass(frozen=True)
class RouteTable:
    epoch: int
    revision: int
    routes: tuple[Route, ...]  # one per slot (ranges share one object)
    backends: dict[str, Backend]  # every master this table routes to, by address
    default: Backend | None  # keyless commands and pub/sub: the lowest group's master
    groups: tuple[int, ...]  # ids of the groups that own slots, ascending
    backend_list: tuple[Backend, ...] = field(init=False)  # the C router's backend indexes
    slot_backends: bytes = field(init=False)  # per slot: index in backend_list, or NOT_PLAIN

    def __post_init__(self) -> None:
        index: dict[Backend, int] = {}
        per_slot = bytearray(SLOT_COUNT)
        for slot, route in enumerate(self.routes):
            b = route.backend
            if b is None or route.target is not None:
                per_slot[slot] = NOT_PLAIN
                continue
            i = index.get(b)
            if i is None:
                i = index[b] = len(index) if len(index) < NOT_PLAIN else NOT_PLAIN
            per_slot[slot] = i
        object.__setattr__(self, "backend_list", tuple(index))
        object.__setattr__(self, "slot_backends", bytes(per_slot))

    @classmethod
    def empty(cls) -> RouteTable:
        route = Route(0, SLOT_COUNT - 1, None, None)
        return cls(0, 0, (route,) * SLOT_COUNT, {}, None, ())

    @classmethod
    def build(cls, topo: Topology, backend_for: Callable[[str], Backend]) -> RouteTable:
        masters: dict[int, Backend] = {gid: backend_for(g.master) for gid, g in topo.groups.items()}
        routes: list[Route] = []
        owning: set[int] = set()
        for r in topo.slots.ranges:
            backend = masters.get(r.group) if r.group is not None else None
            target = None
            if r.state == MIGRATING and r.target is not None:
                target = masters.get(r.target)
            if r.group is not None and backend is not None:
                owning.add(r.group)
            route = Route(r.start, r.end, r.group, backend, r.target, target)
            routes.extend([route] * r.count)
        groups = tuple(sorted(owning))
        default = masters[groups[0]] if groups else None
        used = {b.addr: b for b in masters.values()}
        return cls(topo.epoch, topo.revision, tuple(routes), used, default, groups)

    def backend_of_group(self, group: int) -> Backend | None:
        for route in self.routes_by_range():
            if route.group == group and route.backend is not None:
                return route.backend
        return None

    def routes_by_range(self) -> list[Route]:
        out: list[Route] = []
        for route in self.routes:
            if not out or out[-1] is not route:
                out.append(route)
        return out

    def group_backends(self) -> list[tuple[int, Backend]]:
        """(group, master backend) of every group that owns slots, by group id."""
        seen: dict[int, Backend] = {}
        for route in self.routes_by_range():
            if route.group is not None and route.backend is not None:
                seen.setdefault(route.group, route.backend)
        return sorted(seen.items())
