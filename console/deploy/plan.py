"""The plan: facts + playbook -> the operations that make the hosts what the playbook says (pure).

Operations come in rollout order, rank by rank:

====  ========================================================================
rank  what
====  ========================================================================
0     upload + install (hosts whose installed version or wheel differs)
1     write the files of nodes whose files differ (nothing restarts yet)
2     etcd members (all at once: a new etcd cluster needs its members together)
3     servers that start as masters (a fresh group's master before its replicas)
4     replicas (started, or restarted: replicas before masters)
5     masters that restart (after their replicas are healthy; through a planned
      switchover when a controller runs)
6     the cluster in etcd: init + groups + replicas + slots on first deploy,
      later only groups and replicas the cluster does not have yet
7     proxies
8     controllers
====  ========================================================================

A node restarts exactly when the files it was started from differ from the playbook's (so a
rollout stopped half-way restarts the rest next time, though their files were written) or its
host got a new install; a node that does not run is started; nothing else is touched, so a
second run has nothing to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .facts import Artifact, ClusterFacts, HostFacts
from .mask import mask_file, scrub
from .nodes import Node, NodeFiles, nodes
from .playbook import CONTROLLER, ETCD, PROXY, SERVER, Playbook

# operation kinds
UPLOAD = "upload"
INSTALL = "install"
WRITE = "write"
START = "start"
RESTART = "restart"
STOP = "stop"
REMOVE = "remove"
CLUSTER_INIT = "cluster-init"
ADD_GROUP = "add-group"
ADD_NODE = "add-node"

RANK_INSTALL, RANK_WRITE, RANK_ETCD, RANK_MASTER_START, RANK_REPLICA = 0, 1, 2, 3, 4
RANK_MASTER_RESTART, RANK_CLUSTER, RANK_PROXY, RANK_CONTROLLER = 5, 6, 7, 8
RANK_NAMES = ("install", "files", "etcd", "masters", "replicas", "masters (rolling)",
              "cluster", "proxies", "controllers")  # fmt: skip
STOP_RANK_NAMES = ("proxies and controllers", "servers", "etcd", "remove")
STOP_RANK_OF = {PROXY: 0, CONTROLLER: 0, SERVER: 1, ETCD: 2}
RANK_REMOVE = 3
TAGS = ("install", "config", "etcd", "server", "proxy", "controller", "cluster")
NO_CLUSTER_TAGS = frozenset({"install", "config", "etcd"})  # need no answer from etcd


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Op:
    kind: str
    host: str
    rank: int
    node: str = ""
    role: str = ""
    why: str = ""  # one phrase: why this operation is needed
    tags: frozenset[str] = field(default_factory=frozenset)
    addr: str = ""  # a server's address (cluster operations: the node they name)
    group: int = 0
    names: tuple[str, ...] = ()  # remove: the nodes whose folders and units go
    master: str = ""  # add-node: a member of the group (its group when ``group`` is 0)

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.node)

    def text(self) -> str:
        what = f"{self.kind} {self.node}" if self.node else self.kind
        return f"{what}: {self.why}" if self.why else what


@dataclass(frozen=True)
class Plan:
    ops: tuple[Op, ...]
    hosts: tuple[str, ...]  # every host the run touches (facts are gathered on each)
    notes: tuple[str, ...] = ()  # drift and advice, said with the plan
    rank_names: tuple[str, ...] = RANK_NAMES

    @property
    def empty(self) -> bool:
        return not self.ops

    def for_host(self, host: str) -> list[Op]:
        return [op for op in self.ops if op.host == host]

    def ranks(self) -> list[tuple[int, list[Op]]]:
        out: dict[int, list[Op]] = {}
        for op in self.ops:
            out.setdefault(op.rank, []).append(op)
        return sorted(out.items())

    def only(self, limit: str | None, tags: Iterable[str] = ()) -> Plan:
        """The operations of one host (``--limit``) and of some tags (``--tags``)."""
        tagset = set(tags)
        ops = [
            op
            for op in self.ops
            if (limit is None or op.host == limit) and (not tagset or op.tags & tagset)
        ]
        hosts = tuple(h for h in self.hosts if limit is None or h == limit)
        return replace(self, ops=tuple(ops), hosts=hosts)


def check_limit(book: Playbook, limit: str | None) -> None:
    if limit is not None and limit not in book.hosts:
        raise PlanError(f"--limit {limit}: not a host of {book.path} ({', '.join(book.hosts)})")


def check_tags(tags: Iterable[str]) -> None:
    for t in tags:
        if t not in TAGS:
            raise PlanError(f"--tags {t}: not a tag (tags: {', '.join(TAGS)})")


def current_role(node: Node, cluster: ClusterFacts) -> str:
    """``master`` or ``replica``: etcd's word when it knows the node, the playbook's otherwise."""
    if cluster.initialised:
        found = cluster.group_of(node.addr)
        if found is not None:
            return found[1]
    return "replica" if node.master else "master"


def _service_rank(node: Node, role: str, restart: bool) -> int:
    if node.role == ETCD:
        return RANK_ETCD
    if node.role == PROXY:
        return RANK_PROXY
    if node.role == CONTROLLER:
        return RANK_CONTROLLER
    if role == "replica":
        return RANK_REPLICA
    return RANK_MASTER_RESTART if restart else RANK_MASTER_START


def plan_deploy(
    book: Playbook,
    facts: Mapping[str, HostFacts],
    cluster: ClusterFacts,
    artifact: Artifact,
    files: Mapping[tuple[str, str], NodeFiles],
    need_cluster: bool = True,
) -> Plan:
    """``files``: (host, node name) -> the files the node should run from (``nodes.render``).
    When etcd did not answer (``cluster.reachable`` False) but a host has nodes deployed, the
    cluster may well exist: a PlanError, unless ``need_cluster`` is False (only install, files
    and etcd are planned, as ``--tags etcd`` does to bring etcd back)."""
    wanted = nodes(book)
    hosts = tuple(dict.fromkeys(n.host for n in wanted))
    deployed = [h for h in hosts if facts[h].nodes]
    if need_cluster and not cluster.reachable and deployed:
        raise PlanError(
            f"etcd did not answer ({cluster.error or 'no member asked'}), but "
            f"{', '.join(deployed)} {'has' if len(deployed) == 1 else 'have'} nodes deployed: "
            "the cluster may exist, so deploy will not guess roles or init it. Bring etcd back "
            "(`deploy PLAYBOOK --tags etcd` starts its members) and run again"
        )
    ops: list[Op] = []
    notes: list[str] = []
    new_install: set[str] = set()
    for host in hosts:
        f = facts[host]
        if f.python[:2] < book.install.min_python:
            py = ".".join(map(str, f.python))
            need = ".".join(map(str, book.install.min_python))
            raise PlanError(f"{host}: Python {py} is older than the {need} the playbook needs")
        refused = artifact.refuses(f)
        if refused:
            raise PlanError(
                f"{host}: {refused} (this machine's Python); deploy from a machine with the "
                'host\'s Python and platform, or use install.source = "version"'
            )
        if not artifact.matches(f.installed):
            old = f.installed.version if f.installed else "nothing"
            why = f"{old} installed, {artifact.version} wanted"
            if f.installed and f.installed.version == artifact.version:
                why = f"{artifact.version} installed from another build"
            if artifact.wheel_sha256:
                ops.append(Op(UPLOAD, host, RANK_INSTALL, why="wheel + wheelhouse",
                              tags=frozenset({"install"})))  # fmt: skip
            ops.append(Op(INSTALL, host, RANK_INSTALL, why=why, tags=frozenset({"install"})))
            new_install.add(host)
    for node in wanted:
        have = facts[node.host].node(node.name)
        want = files[node.key].checksums()
        changed = sorted(k for k in set(want) | set(have.files) if want.get(k) != have.files.get(k))
        tags = frozenset({node.role})
        if changed:
            why = "new node" if not have.files else "changed: " + ", ".join(changed)
            ops.append(Op(WRITE, node.host, RANK_WRITE, node.name, node.role, why,
                          tags | {"config"}, node.addr, node.group))  # fmt: skip
        role = current_role(node, cluster)
        if not have.running:
            why = "not running" if have.files else "new node"
            rank = _service_rank(node, role, restart=False)
            ops.append(Op(START, node.host, rank, node.name, node.role, why, tags,
                          node.addr, node.group))  # fmt: skip
        elif dict(have.started) != want or node.host in new_install:
            why = "files changed" if dict(have.started) != want else "new install"
            rank = _service_rank(node, role, restart=True)
            ops.append(Op(RESTART, node.host, rank, node.name, node.role, why, tags,
                          node.addr, node.group))  # fmt: skip
    ops.extend(_cluster_ops(book, wanted, cluster, notes))
    for host in hosts:
        extra = set(facts[host].nodes) - {n.name for n in wanted if n.host == host}
        for name in sorted(extra):
            notes.append(
                f"{host}: node {name} is not in the playbook (left as it is; "
                "`deploy ... uninstall --limit HOST` removes a host's nodes)"
            )
    ops.sort(key=lambda op: op.rank)  # stable: the playbook's order within a rank
    return Plan(tuple(ops), hosts, tuple(notes))


def _cluster_ops(
    book: Playbook, wanted: Sequence[Node], cluster: ClusterFacts, notes: list[str]
) -> list[Op]:
    where = book.etcd[0].host
    tags = frozenset({"cluster"})
    if not cluster.initialised:
        why = f"cluster {book.cluster!r}: {len(book.groups)} groups, slots spread evenly"
        return [Op(CLUSTER_INIT, where, RANK_CLUSTER, why=why, tags=tags)]
    ops = []
    for g in book.groups:
        master = book.addr(g.master)
        members = [master, *(book.addr(r) for r in g.replicas)]
        known = [a for a in members if cluster.group_of(a) is not None]
        if not known:
            ops.append(Op(ADD_GROUP, where, RANK_CLUSTER, why=f"new group, master {master}",
                          tags=tags, addr=master, group=g.id))  # fmt: skip
            notes.append(
                f"group with master {master} is new: it gets no slots "
                "(`ledis-console cluster rebalance` moves some to it)"
            )
            known = [master]
        group_facts = cluster.group_of(known[0])
        # a new group's id is etcd's choice when it is added: its replicas name its master
        gid = group_facts[0].id if group_facts else 0
        for addr in members:
            if addr not in known:
                ops.append(Op(ADD_NODE, where, RANK_CLUSTER, why=f"new replica {addr}",
                              tags=tags, addr=addr, group=gid, master=known[0]))  # fmt: skip
    playbook_addrs = {n.addr for n in wanted if n.role == SERVER}
    for gf in cluster.groups:
        for addr in (gf.master, *gf.replicas):
            if addr not in playbook_addrs:
                notes.append(f"group {gf.id}: {addr} is in etcd but not in the playbook")
    if cluster.unassigned_slots:
        notes.append(f"{cluster.unassigned_slots} slots are unassigned (`cluster assign`)")
    return ops


def plan_stop(book: Playbook, facts: Mapping[str, HostFacts], remove: bool = False) -> Plan:
    """Stop every running node of the hosts in ``facts`` (clients of the rest first, etcd
    last); with ``remove`` also delete what deploy installed on each (``uninstall``)."""
    known = {n.key: n for n in nodes(book)}
    ops = []
    notes = []
    hosts = tuple(h for h in dict.fromkeys(n.host for n in nodes(book)) if h in facts)
    hosts += tuple(h for h in facts if h not in hosts)
    for host in hosts:
        f = facts[host]
        for name, nf in sorted(f.nodes.items()):
            if nf.running:
                node = known.get((host, name))
                role = node.role if node is not None else _role_of_name(name)
                ops.append(Op(STOP, host, STOP_RANK_OF[role], name, role, f"pid {nf.pid}",
                              frozenset({role})))  # fmt: skip
        if remove and f.installed:
            ops.append(Op(REMOVE, host, RANK_REMOVE, why=f"delete deploy's files in "
                          f"{book.dir_of(host)}", tags=frozenset({"install"}),
                          names=tuple(sorted(f.nodes))))  # fmt: skip
        elif remove and f.nodes:
            notes.append(f"{host}: {book.dir_of(host)} has node folders but no installed.json: "
                         "not removed (not a deploy directory?)")  # fmt: skip
    ops.sort(key=lambda op: op.rank)
    return Plan(tuple(ops), hosts, tuple(notes), rank_names=STOP_RANK_NAMES)


def _role_of_name(name: str) -> str:
    """The role of a node the playbook no longer names, from its name (nodes.py's names)."""
    for role in (ETCD, PROXY, CONTROLLER):
        if name == role or name.startswith(role + "-"):
            return role
    return SERVER


def diff(name: str, old: str | None, new: str, secrets: Iterable[str]) -> str:
    """A unified diff of the node file ``name``: secret keys masked whatever their value (an
    old password too), and every current secret value scrubbed from the rest."""
    values = list(secrets)
    base = name.rsplit("/", 1)[-1]

    def hide(text: str) -> list[str]:
        return scrub(mask_file(base, text), values).splitlines(keepends=True)

    before = hide(old) if old is not None else []
    return "".join(difflib.unified_diff(before, hide(new), f"a/{name}", f"b/{name}", n=2))
