"""The cluster topology as frozen dataclasses, with strict JSON (de)serialisation.

Each document of docs/cluster.md ("Topology in etcd") has one class here with ``to_json`` and
``from_json``. Reading is strict: a document that is not what the layout says raises
``ModelError`` naming the etcd key, the field and the problem, so a hand-edited or corrupt key
is reported, never half-applied. ``Topology`` is one consistent snapshot of a whole cluster
(every document read at one etcd revision); the proxy, the controller and the console all
work from it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stack.core.slots import SLOT_COUNT

DOC_VERSION = 1
LAST_SLOT = SLOT_COUNT - 1

ONLINE = "online"
MIGRATING = "migrating"
UNASSIGNED = "unassigned"
SLOT_STATES = (ONLINE, MIGRATING, UNASSIGNED)

# migration task states
PENDING = "pending"
RUNNING = "running"
PAUSED = "paused"
CANCELLING = "cancelling"
CANCELLED = "cancelled"
DONE = "done"
FAILED = "failed"
TASK_STATES = (PENDING, RUNNING, PAUSED, CANCELLING, CANCELLED, DONE, FAILED)
ACTIVE_TASK_STATES = frozenset({PENDING, RUNNING, PAUSED, CANCELLING})

_ADDR = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>\d{1,5})")


class ModelError(ValueError):
    """A document that does not match the layout: names the key, the field and the problem."""


def parse_addr(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> (host, port); ValueError with the reason."""
    m = _ADDR.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected 'host:port', got {text!r}")
    port = int(m["port"])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return (m["v6"] or m["host"], port)


def format_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_addr(text: str) -> str:
    """The canonical form of an address (raises ValueError when it is not one)."""
    return format_addr(*parse_addr(text))


def dumps(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


_MISSING: Any = object()


class _Reader:
    """Typed field access on one JSON object, each failure naming ``where`` and the field."""

    def __init__(self, where: str, raw: bytes | str | Mapping[str, Any]) -> None:
        self.where = where
        if isinstance(raw, Mapping):
            doc: Any = raw
        else:
            try:
                doc = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise ModelError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ModelError(f"{where}: expected a JSON object, got {type(doc).__name__}")
        self.doc: dict[str, Any] = doc

    def fail(self, name: str, problem: str) -> ModelError:
        return ModelError(f"{self.where}: field {name!r}: {problem}")

    def get(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.doc:
            return self.doc[name]
        if default is _MISSING:
            raise self.fail(name, "missing")
        return default

    def integer(
        self, name: str, lo: int | None = None, hi: int | None = None, default: Any = _MISSING
    ) -> Any:
        value = self.get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"expected an integer, got {value!r}")
        if lo is not None and value < lo:
            raise self.fail(name, f"{value} is below {lo}")
        if hi is not None and value > hi:
            raise self.fail(name, f"{value} is above {hi}")
        return value

    def number(self, name: str, default: Any = _MISSING) -> Any:
        value = self.get(name, default)
        if value is None and default is None:
            return None
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise self.fail(name, f"expected a number, got {value!r}")
        return float(value)

    def text(self, name: str, default: Any = _MISSING, choices: Sequence[str] = ()) -> Any:
        value = self.get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def addr(self, name: str) -> str:
        value = self.get(name)
        try:
            return check_addr(value)
        except ValueError as e:
            raise self.fail(name, str(e)) from None

    def addrs(self, name: str) -> tuple[str, ...]:
        value = self.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list of 'host:port', got {value!r}")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(check_addr(item))
            except ValueError as e:
                raise self.fail(f"{name}[{i}]", str(e)) from None
        if len(set(out)) != len(out):
            raise self.fail(name, "an address is listed twice")
        return tuple(out)

    def version(self) -> None:
        self.integer("v", lo=1, hi=DOC_VERSION, default=DOC_VERSION)


# -- documents -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    name: str
    created: float

    def to_json(self) -> bytes:
        return dumps({"v": DOC_VERSION, "name": self.name, "created": self.created})

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> Meta:
        r = _Reader(where, raw)
        r.version()
        return cls(name=r.text("name"), created=r.number("created"))


@dataclass(frozen=True)
class Group:
    """A replication group: one master and its replicas (addresses ``host:port``)."""

    id: int
    master: str
    replicas: tuple[str, ...] = ()
    epoch: int = 0

    @property
    def members(self) -> tuple[str, ...]:
        return (self.master, *self.replicas)

    def to_doc(self) -> dict[str, Any]:
        return {
            "v": DOC_VERSION,
            "id": self.id,
            "master": self.master,
            "replicas": list(self.replicas),
            "epoch": self.epoch,
        }

    def to_json(self) -> bytes:
        return dumps(self.to_doc())

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> Group:
        r = _Reader(where, raw)
        r.version()
        group = cls(
            id=r.integer("id", lo=1),
            master=r.addr("master"),
            replicas=r.addrs("replicas"),
            epoch=r.integer("epoch", lo=0),
        )
        if group.master in group.replicas:
            raise r.fail("replicas", f"the master {group.master} is also listed as a replica")
        return group


@dataclass(frozen=True)
class SlotRange:
    """Slots ``start..end`` (inclusive) with one owner and one state. ``group`` is None only
    when the slots are unassigned; ``target`` is set only while they are migrating."""

    start: int
    end: int
    group: int | None
    state: str = ONLINE
    target: int | None = None

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "from": self.start,
            "to": self.end,
            "group": self.group,
            "state": self.state,
        }
        if self.target is not None:
            doc["target"] = self.target
        return doc


@dataclass(frozen=True)
class SlotMap:
    """The 16384 slots as sorted, contiguous, maximal ranges, with O(1) lookups by slot."""

    epoch: int
    ranges: tuple[SlotRange, ...]
    _owner: array[int] = field(init=False, repr=False, compare=False)
    _index: array[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _check_ranges(self.ranges)
        if problem:
            raise ValueError(problem)
        owner = array("i", [0]) * SLOT_COUNT  # 0 = unassigned (group ids start at 1)
        index = array("i", [0]) * SLOT_COUNT
        for i, r in enumerate(self.ranges):
            n = r.count
            owner[r.start : r.end + 1] = array("i", [r.group or 0]) * n
            index[r.start : r.end + 1] = array("i", [i]) * n
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_index", index)

    # lookups

    def owner(self, slot: int) -> int | None:
        """The group that serves ``slot`` (the source while it migrates), None if unassigned."""
        return self._owner[slot] or None

    def range_of(self, slot: int) -> SlotRange:
        return self.ranges[self._index[slot]]

    def counts(self) -> dict[int, int]:
        """Slots per group (the source counts a migrating slot)."""
        out: dict[int, int] = {}
        for r in self.ranges:
            if r.group is not None:
                out[r.group] = out.get(r.group, 0) + r.count
        return out

    def slots_of(self, group: int) -> list[int]:
        return [s for r in self.ranges if r.group == group for s in range(r.start, r.end + 1)]

    def unassigned(self) -> int:
        return sum(r.count for r in self.ranges if r.group is None)

    def migrating(self) -> list[SlotRange]:
        return [r for r in self.ranges if r.state == MIGRATING]

    # building

    @classmethod
    def empty(cls, epoch: int = 0) -> SlotMap:
        return cls(epoch, (SlotRange(0, LAST_SLOT, None, UNASSIGNED),))

    @classmethod
    def from_slots(
        cls, owners: Sequence[int | None], epoch: int, targets: Mapping[int, int] | None = None
    ) -> SlotMap:
        """The canonical map of a per-slot owner list (and the targets of migrating slots)."""
        if len(owners) != SLOT_COUNT:
            raise ValueError(f"expected {SLOT_COUNT} owners, got {len(owners)}")
        targets = targets or {}
        get = targets.get
        ranges: list[SlotRange] = []
        start = 0
        # runs of equal (owner, target), one range each (a migration re-plans the whole map
        # for every slot, so this stays a plain loop over tuples)
        for (group, target), run in itertools.groupby(
            zip(owners, map(get, range(SLOT_COUNT)), strict=True)
        ):
            n = sum(1 for _ in run)
            if group is None:
                state = UNASSIGNED
            elif target is not None:
                state = MIGRATING
            else:
                state = ONLINE
            ranges.append(SlotRange(start, start + n - 1, group, state, target))
            start += n
        return cls(epoch, tuple(ranges))

    def owners(self) -> list[int | None]:
        return [g or None for g in self._owner]

    def targets(self) -> dict[int, int]:
        return {
            s: r.target
            for r in self.ranges
            if r.target is not None
            for s in range(r.start, r.end + 1)
        }

    def with_owner(self, slots: Iterable[int], group: int | None, epoch: int) -> SlotMap:
        """These slots now belong to ``group`` (online); every other slot unchanged."""
        owners = self.owners()
        targets = self.targets()
        for s in slots:
            owners[s] = group
            targets.pop(s, None)
        return SlotMap.from_slots(owners, epoch, targets)

    def with_migrating(self, slots: Iterable[int], target: int, epoch: int) -> SlotMap:
        targets = self.targets()
        for s in slots:
            targets[s] = target
        return SlotMap.from_slots(self.owners(), epoch, targets)

    # JSON

    def to_doc(self) -> dict[str, Any]:
        return {"v": DOC_VERSION, "epoch": self.epoch, "ranges": [r.to_doc() for r in self.ranges]}

    def to_json(self) -> bytes:
        return dumps(self.to_doc())

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> SlotMap:
        r = _Reader(where, raw)
        r.version()
        epoch = r.integer("epoch", lo=0)
        items = r.get("ranges")
        if not isinstance(items, list) or not items:
            raise r.fail("ranges", "expected a non-empty list of ranges")
        ranges = []
        for i, item in enumerate(items):
            rr = _Reader(
                f"{where}: ranges[{i}]", item if isinstance(item, dict) else json.dumps(item)
            )
            ranges.append(
                SlotRange(
                    start=rr.integer("from", lo=0, hi=LAST_SLOT),
                    end=rr.integer("to", lo=0, hi=LAST_SLOT),
                    group=rr.integer("group", lo=1, default=None),
                    state=rr.text("state", choices=SLOT_STATES),
                    target=rr.integer("target", lo=1, default=None),
                )
            )
        problem = _check_ranges(tuple(ranges))
        if problem:
            raise r.fail("ranges", problem)
        return cls(epoch, tuple(ranges))


def _check_ranges(ranges: tuple[SlotRange, ...]) -> str:
    """Why these ranges are not a canonical slot map ('' when they are)."""
    expect = 0
    prev: SlotRange | None = None
    for i, r in enumerate(ranges):
        if r.start != expect:
            what = (
                "overlaps the previous one"
                if r.start < expect
                else f"leaves slots {expect}-{r.start - 1} out"
            )
            return f"range {i} ({r.start}-{r.end}) {what}"
        if r.end < r.start:
            return f"range {i} ends ({r.end}) before it starts ({r.start})"
        if (r.group is None) != (r.state == UNASSIGNED):
            return f"range {i} ({r.start}-{r.end}): state {r.state!r} with group {r.group}"
        if (r.target is not None) != (r.state == MIGRATING):
            return f"range {i} ({r.start}-{r.end}): state {r.state!r} with target {r.target}"
        if r.target is not None and r.target == r.group:
            return f"range {i} ({r.start}-{r.end}) migrates to its own group {r.group}"
        if prev and (prev.group, prev.state, prev.target) == (r.group, r.state, r.target):
            return f"range {i} ({r.start}-{r.end}) should be merged with the previous one"
        prev = r
        expect = r.end + 1
    if expect != SLOT_COUNT:
        return f"slots {expect}-{LAST_SLOT} are not covered"
    return ""


def parse_slot_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """``"0-1023,2048,4000-4095"`` -> ((0, 1023), (2048, 2048), (4000, 4095)); ValueError with
    the reason. Ranges are sorted and must not overlap."""
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        a, sep, b = part.partition("-")
        try:
            lo = int(a)
            hi = int(b) if sep else lo
        except ValueError:
            raise ValueError(f"slot range {part!r}: expected N or N-M") from None
        if not (0 <= lo <= hi <= LAST_SLOT):
            raise ValueError(f"slot range {part!r}: slots go from 0 to {LAST_SLOT}, low to high")
        out.append((lo, hi))
    out.sort()
    for (_, hi), (lo2, _) in itertools.pairwise(out):
        if lo2 <= hi:
            raise ValueError(f"slot ranges overlap at slot {lo2}")
    return tuple(out)


def compress_slots(slots: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted slots -> inclusive ranges."""
    out: list[list[int]] = []
    for s in sorted(set(slots)):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return tuple((a, b) for a, b in out)


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)


@dataclass(frozen=True)
class Proxy:
    """A registered proxy (its key lives under the proxy's lease)."""

    id: str
    addr: str
    pid: int = 0
    started: float = 0.0
    epoch_seen: int = 0
    stats: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return dumps(
            {
                "v": DOC_VERSION,
                "id": self.id,
                "addr": self.addr,
                "pid": self.pid,
                "started": self.started,
                "epoch_seen": self.epoch_seen,
                "stats": dict(self.stats),
            }
        )

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> Proxy:
        r = _Reader(where, raw)
        r.version()
        stats = r.get("stats", {})
        if not isinstance(stats, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in stats.values()
        ):
            raise r.fail("stats", "expected an object of numbers")
        return cls(
            id=r.text("id"),
            addr=r.addr("addr"),
            pid=r.integer("pid", lo=0, default=0),
            started=r.number("started", default=0.0),
            epoch_seen=r.integer("epoch_seen", lo=0, default=0),
            stats=stats,
        )


@dataclass(frozen=True)
class MigrationTask:
    """Move ``slots`` from group ``source`` to group ``target``, a few slots at a time, in the
    order of ``slot_list()``: the first ``slots_done`` are done, and the ``window`` slots after
    them are in flight (``current`` is the first of those, None when none is)."""

    id: str
    slots: tuple[tuple[int, int], ...]
    source: int
    target: int
    state: str = PENDING
    owner: str | None = None
    current: int | None = None
    keys_moved: int = 0
    bytes_moved: int = 0
    slots_done: int = 0
    rate_keys: float = 0.0
    eta_s: float | None = None
    created: float = 0.0
    updated: float = 0.0
    error: str | None = None
    window: int = 0  # slots in flight from ``current`` on (in the order of slot_list)

    @property
    def slots_total(self) -> int:
        return sum(b - a + 1 for a, b in self.slots)

    def slot_list(self) -> list[int]:
        return [s for a, b in self.slots for s in range(a, b + 1)]

    def in_flight(self) -> list[int]:
        """The slots in flight: ``window`` slots of ``slot_list()`` from ``slots_done``."""
        if self.current is None:
            return []
        return self.slot_list()[self.slots_done : self.slots_done + max(1, self.window)]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_TASK_STATES

    @property
    def percent(self) -> float:
        total = self.slots_total
        return 100.0 * self.slots_done / total if total else 100.0

    def to_doc(self) -> dict[str, Any]:
        return {
            "v": DOC_VERSION,
            "id": self.id,
            "slots": [list(r) for r in self.slots],
            "source": self.source,
            "target": self.target,
            "state": self.state,
            "owner": self.owner,
            "current": self.current,
            "window": self.window,
            "keys_moved": self.keys_moved,
            "bytes_moved": self.bytes_moved,
            "slots_done": self.slots_done,
            "slots_total": self.slots_total,
            "rate_keys": self.rate_keys,
            "eta_s": self.eta_s,
            "created": self.created,
            "updated": self.updated,
            "error": self.error,
        }

    def to_json(self) -> bytes:
        return dumps(self.to_doc())

    @classmethod
    def from_json(cls, where: str, raw: bytes | str) -> MigrationTask:
        r = _Reader(where, raw)
        r.version()
        items = r.get("slots")
        if not isinstance(items, list) or not items:
            raise r.fail("slots", "expected a non-empty list of [from, to]")
        slots: list[tuple[int, int]] = []
        for item in items:
            ok = (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
                and 0 <= item[0] <= item[1] <= LAST_SLOT
            )
            if not ok or (slots and item[0] <= slots[-1][1]):
                raise r.fail(
                    "slots", f"{item!r} is not a sorted, disjoint [from, to] within 0-{LAST_SLOT}"
                )
            slots.append((item[0], item[1]))
        task = cls(
            id=r.text("id"),
            slots=tuple(slots),
            source=r.integer("source", lo=1),
            target=r.integer("target", lo=1),
            state=r.text("state", choices=TASK_STATES),
            owner=r.text("owner", default=None),
            current=r.integer("current", lo=0, hi=LAST_SLOT, default=None),
            window=r.integer("window", lo=0, hi=SLOT_COUNT, default=0),
            keys_moved=r.integer("keys_moved", lo=0, default=0),
            bytes_moved=r.integer("bytes_moved", lo=0, default=0),
            slots_done=r.integer("slots_done", lo=0, default=0),
            rate_keys=r.number("rate_keys", default=0.0),
            eta_s=r.number("eta_s", default=None),
            created=r.number("created", default=0.0),
            updated=r.number("updated", default=0.0),
            error=r.text("error", default=None),
        )
        if task.source == task.target:
            raise r.fail("target", f"same as the source group {task.source}")
        if task.slots_done > task.slots_total:
            raise r.fail(
                "slots_done", f"{task.slots_done} is more than the {task.slots_total} slots"
            )
        return task


@dataclass(frozen=True)
class Event:
    """One sentence in the events stream. ``revision`` (etcd's create revision of the key)
    orders the stream."""

    id: str
    revision: int
    ts: float
    source: str
    kind: str
    text: str

    def to_json(self) -> bytes:
        return dumps(
            {
                "v": DOC_VERSION,
                "ts": self.ts,
                "source": self.source,
                "kind": self.kind,
                "text": self.text,
            }
        )

    @classmethod
    def from_json(
        cls, where: str, raw: bytes | str, event_id: str = "", revision: int = 0
    ) -> Event:
        r = _Reader(where, raw)
        r.version()
        return cls(
            id=event_id,
            revision=revision,
            ts=r.number("ts"),
            source=r.text("source"),
            kind=r.text("kind"),
            text=r.text("text"),
        )


# -- the whole cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """One consistent snapshot of a cluster: every document read at etcd revision
    ``revision``. ``versions`` holds the mod revision of each document read (by path), which
    is what a transaction built from this snapshot compares."""

    cluster: str
    revision: int
    meta: Meta | None
    epoch: int
    groups: Mapping[int, Group]
    slots: SlotMap
    proxies: Mapping[str, Proxy] = field(default_factory=dict)
    migrations: Mapping[str, MigrationTask] = field(default_factory=dict)
    versions: Mapping[str, int] = field(default_factory=dict)
    leader: str | None = None

    @property
    def initialised(self) -> bool:
        return self.meta is not None

    def version(self, path: str) -> int:
        """The mod revision this snapshot saw for ``path`` (0: the key did not exist)."""
        return self.versions.get(path, 0)

    def find_node(self, addr: str) -> tuple[Group, str] | None:
        """The group holding ``addr`` and its role there (``master`` or ``replica``)."""
        for g in self.groups.values():
            if g.master == addr:
                return (g, "master")
            if addr in g.replicas:
                return (g, "replica")
        return None

    def nodes(self) -> Iterator[tuple[Group, str, str]]:
        """Every (group, address, role), groups in id order."""
        for gid in sorted(self.groups):
            g = self.groups[gid]
            yield (g, g.master, "master")
            for r in g.replicas:
                yield (g, r, "replica")

    def active_migrations(self) -> list[MigrationTask]:
        return [t for t in self.migrations.values() if t.active]

    def to_status(self) -> dict[str, Any]:
        """The document ``ledis-console cluster status --json`` prints (docs/cluster.md)."""
        counts = self.slots.counts()
        return {
            "cluster": self.cluster,
            "initialised": self.initialised,
            "epoch": self.epoch,
            "revision": self.revision,
            "groups": [
                {
                    "id": g.id,
                    "master": g.master,
                    "replicas": list(g.replicas),
                    "slots": counts.get(g.id, 0),
                    "epoch": g.epoch,
                }
                for g in (self.groups[i] for i in sorted(self.groups))
            ],
            "slots": [r.to_doc() for r in self.slots.ranges],
            "proxies": [
                {
                    "id": p.id,
                    "addr": p.addr,
                    "pid": p.pid,
                    "epoch_seen": p.epoch_seen,
                    "started": p.started,
                }
                for p in sorted(self.proxies.values(), key=lambda p: p.id)
            ],
            "migrations": [
                {
                    "id": t.id,
                    "slots": [list(r) for r in t.slots],
                    "source": t.source,
                    "target": t.target,
                    "state": t.state,
                    "keys_moved": t.keys_moved,
                    "bytes_moved": t.bytes_moved,
                    "slots_done": t.slots_done,
                    "slots_total": t.slots_total,
                    "percent": round(t.percent, 1),
                    "rate_keys": t.rate_keys,
                    "eta_s": t.eta_s,
                    "current": t.current,
                    "in_flight": len(t.in_flight()),
                    "error": t.error,
                }
                for t in sorted(self.migrations.values(), key=lambda t: (t.created, t.id))
            ],
            "leader": self.leader,
        }
