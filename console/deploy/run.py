"""One ``ledis-console deploy`` run: connect, gather facts, plan, show, confirm, apply, recap.

Connecting checks every host key before anything runs. Facts come from ``hostfacts.py`` (run
by each host's Python) and from etcd (``hostd cluster`` on the first etcd host); the plan is
``plan.plan_deploy`` (pure). Applying goes rank by rank (plan.py's table); within a rank,
restarts go ``rollout.serial`` nodes at a time, each followed by its health gate; more than
``rollout.max_failures`` failed nodes stop the rollout with what already ran left serving.
Every step is an event in the JSON-lines log; no secret value is ever printed or logged
(every text is scrubbed of them first).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import hostfacts
from .artifact import ArtifactError, Wheelhouse, build
from .facts import Artifact, ClusterFacts, FactsError, HostFacts, parse_cluster, parse_host
from .hostfacts import NODE_FILES, unit_name
from .mask import scrub
from .nodes import (
    Node,
    NodeFiles,
    dir_of_node,
    node_dir,
    nodes,
    render,
    uninstall_script,
)
from .plan import (
    ADD_GROUP,
    ADD_NODE,
    CLUSTER_INIT,
    INSTALL,
    NO_CLUSTER_TAGS,
    RANK_MASTER_RESTART,
    REMOVE,
    RESTART,
    START,
    STOP,
    UPLOAD,
    WRITE,
    Op,
    Plan,
    PlanError,
    check_limit,
    check_tags,
    diff,
    plan_deploy,
    plan_stop,
)  # fmt: skip
from .playbook import SERVER, Playbook, PlaybookError, resolve_secret
from .ssh import Connection, SSHError, close_all, connect_all

log = logging.getLogger(__name__)

STOP_TIMEOUT = 60.0


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    action: str = "deploy"  # deploy, status, stop, uninstall
    check: bool = False
    diff: bool = False
    limit: str | None = None
    tags: tuple[str, ...] = ()
    yes: bool = False
    event_log: Path | None = None
    wheelhouse_cache: Path | None = None


@dataclass
class Tally:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    doing: str = ""


@dataclass
class Run:
    book: Playbook
    opts: Options
    out: Console
    secrets: dict[str, str]
    conns: dict[str, Connection] = field(default_factory=dict)
    tally: dict[str, Tally] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    events: Any = None
    live: Live | None = None

    # -- output ------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets.values())

    def event(self, kind: str, host: str = "", **fields: Any) -> None:
        doc = {"ts": round(time.time(), 3), "run": self.run_id, "event": kind, "host": host}
        doc |= {k: self.scrub(v) if isinstance(v, str) else v for k, v in fields.items()}
        if self.events is not None:
            self.events.write(json.dumps(doc) + "\n")
            self.events.flush()

    def say(self, text: str, style: str = "") -> None:
        text = self.scrub(text)
        self.out.print(Text(text, style=style), highlight=False, soft_wrap=True)
        if self.live is not None:
            self.live.update(self.table())

    def table(self) -> Table:
        t = Table(title="hosts", title_justify="left")
        for col in ("host", "ok", "changed", "failed", "now"):
            t.add_column(col)
        for host, tl in self.tally.items():
            t.add_row(host, str(tl.ok), str(tl.changed), str(tl.failed), tl.doing)
        return t

    def recap(self) -> None:
        self.out.print("\nPLAY RECAP", highlight=False)
        width = max((len(h) for h in self.tally), default=0)
        for host, tl in self.tally.items():
            line = f"{host:<{width}} : ok={tl.ok} changed={tl.changed} failed={tl.failed}"
            self.out.print(line, highlight=False)
            self.event("recap", host, ok=tl.ok, changed=tl.changed, failed=tl.failed)

    # -- remote commands ---------------------------------------------------------------------

    def hostd(self, host: str, action: str, target: str = "", *extra: str) -> str:
        py = f"{self.book.dir_of(host)}/venv/bin/python"
        args = " ".join(shlex.quote(a) for a in (target, *extra) if a)
        return f"{shlex.quote(py)} -m console.deploy.hostd {action} {args}".strip()

    async def call(
        self, host: str, action: str, target: str = "", *extra: str, doc: Any = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """hostd ``action`` on ``host``; by default given the longest a node operation may
        take (a stop, then a start and a health gate of ``rollout.health_timeout`` each)."""
        if timeout is None:
            timeout = STOP_TIMEOUT + 2 * self.book.rollout.health_timeout + 30
        cmd = self.hostd(host, action, target, *extra)
        r = await self.conns[host].run(cmd, json.dumps(doc) if doc is not None else None, timeout)
        for line in reversed(r.stdout.strip().splitlines()):
            try:
                got = json.loads(line)
            except ValueError:
                continue
            if isinstance(got, dict):
                return got
        return {"ok": False, "text": (r.stderr or r.stdout).strip()[-400:] or f"exit {r.code}"}

    def cluster_doc(self, **more: Any) -> dict[str, Any]:
        doc = {"cluster": self.book.cluster, "etcd": list(self.book.etcd_endpoints())}
        if self.secrets.get("requirepass"):
            doc["password"] = self.secrets["requirepass"]
        return doc | more


# -- facts ----------------------------------------------------------------------------------


async def gather_facts(run: Run, hosts: Sequence[str]) -> dict[str, HostFacts]:
    source = Path(hostfacts.__file__).read_text()

    async def one(name: str) -> HostFacts:
        host = run.book.hosts[name]
        cmd = f"{shlex.quote(host.python)} - {shlex.quote(run.book.dir_of(name))}"
        r = await run.conns[name].run(cmd, source, timeout=60)
        if not r.ok:
            raise FactsError(f"{name}: the facts script failed (exit {r.code}): "
                             f"{(r.stderr or r.stdout).strip()[-300:]}")  # fmt: skip
        return parse_host(name, r.stdout)

    results = await asyncio.gather(*(one(h) for h in hosts))
    for f in results:
        run.tally.setdefault(f.host, Tally()).ok += 1
        run.event("facts", f.host, python=".".join(map(str, f.python)),
                  installed=f.installed.version if f.installed else None)  # fmt: skip
    return {f.host: f for f in results}


async def gather_cluster(run: Run, facts: Mapping[str, HostFacts]) -> ClusterFacts:
    """The cluster as etcd says, asked from each etcd member's host in turn (each asks every
    endpoint); ``ClusterFacts(reachable=False, error=...)`` when none answered."""
    errors = []
    for member in run.book.etcd:
        f = facts.get(member.host)
        if member.host not in run.conns or f is None or f.installed is None:
            continue
        try:
            got = await run.call(member.host, "cluster", doc=run.cluster_doc(), timeout=60)
        except SSHError as e:
            errors.append(str(e))
            continue
        if not got.get("ok", True) and not got.get("error"):
            errors.append(f"{member.host}: {got.get('text')}")
            continue
        cluster = parse_cluster(member.host, json.dumps(got))
        if cluster.reachable:
            return cluster
        errors.append(f"{member.host}: {cluster.error}")
    if errors:
        run.say("etcd did not answer: " + "; ".join(errors), "yellow")
    return ClusterFacts(error="; ".join(errors) or "no etcd member's host has deploy installed")


# -- applying -------------------------------------------------------------------------------


class Stopped(Exception):
    """The rollout stopped (a health gate failed, too many failures)."""


async def apply_op(run: Run, op: Op, wheelhouse: Wheelhouse | None, nodes_by: dict[Any, Node],
                   files: Mapping[tuple[str, str], NodeFiles]) -> tuple[bool, bool, str]:  # fmt: skip
    """Run one operation: (ok, changed, text)."""
    book = run.book
    conn = run.conns[op.host]
    node = nodes_by.get((op.host, op.node))
    ndir = dir_of_node(book, op.host, op.node) if op.node else ""
    timeout = book.rollout.health_timeout
    if op.kind == UPLOAD:
        assert wheelhouse is not None
        await conn.put(wheelhouse.files(), f"{book.dir_of(op.host)}/wheels")
        return True, True, f"{len(wheelhouse.files())} wheels"
    if op.kind == INSTALL:
        return await _install(run, op.host, wheelhouse)
    if op.kind == WRITE:
        assert node is not None
        got = await run.call(op.host, "write", ndir, doc={"files": dict(files[node.key].files)})
        return bool(got.get("ok")), True, str(got.get("text", ""))
    if op.kind in (START, RESTART):
        if op.kind == RESTART:
            if op.role == SERVER and op.rank == RANK_MASTER_RESTART:
                switched = await _hand_over(run, op)
                if switched:
                    run.say(f"  {op.host}: {switched}")
            got = await run.call(op.host, "stop", ndir, "--timeout", str(STOP_TIMEOUT))
            if not got.get("ok"):
                return False, True, f"stop: {got.get('text')}"
        got = await run.call(op.host, "start", ndir, "--timeout", str(timeout))
        if not got.get("ok"):
            return False, True, f"start: {got.get('text')}"
        changed = "already running" not in str(got.get("text"))
        gate = await run.call(op.host, "health", ndir, "--timeout", str(timeout),
                              "--max-lag", str(book.rollout.max_lag))  # fmt: skip
        if not gate.get("ok"):
            return False, changed, f"health gate: {gate.get('text')}"
        return True, changed, f"{got.get('text')}; {gate.get('text')}"
    if op.kind == STOP:
        got = await run.call(op.host, "stop", ndir, "--timeout", str(STOP_TIMEOUT))
        return bool(got.get("ok")), True, str(got.get("text"))
    if op.kind == REMOVE:
        units = [unit_name(book.cluster, name) for name in op.names]
        r = await conn.run(uninstall_script(book.dir_of(op.host), units))
        text = f"deleted deploy's files in {book.dir_of(op.host)}"
        return r.ok, True, text if r.ok else (r.stderr or r.stdout).strip()[-400:]
    if op.kind == CLUSTER_INIT:
        groups = [{"master": book.addr(g.master), "replicas": [book.addr(r) for r in g.replicas]}
                  for g in book.groups]  # fmt: skip
        got = await run.call(op.host, "bootstrap", doc=run.cluster_doc(groups=groups))
        return bool(got.get("ok")), bool(got.get("changed", True)), str(got.get("text"))
    if op.kind in (ADD_GROUP, ADD_NODE):
        doc = run.cluster_doc(addr=op.addr, group=op.group, master=op.master)
        got = await run.call(op.host, op.kind, doc=doc)
        return bool(got.get("ok")), True, str(got.get("text"))
    raise DeployError(f"unknown operation {op.kind}")


async def _hand_over(run: Run, op: Op) -> str:
    """Before a master restarts: a planned switchover to a caught-up replica when a
    controller leads (``rollout.hold_failover``); '' when none was done."""
    if not run.book.rollout.hold_failover:
        return ""
    where = run.book.etcd[0].host
    got = await run.call(where, "switchover", "", "--timeout", str(run.book.rollout.health_timeout),
                         doc=run.cluster_doc(addr=op.addr))  # fmt: skip
    if not got.get("ok"):
        raise Stopped(f"switchover away from {op.addr} failed: {got.get('text')}")
    return str(got.get("text", "")) if got.get("changed") else ""


async def _install(run: Run, host: str, wheelhouse: Wheelhouse | None) -> tuple[bool, bool, str]:
    book = run.book
    d = shlex.quote(book.dir_of(host))
    py = shlex.quote(book.hosts[host].python)
    if wheelhouse is not None:
        wheel = shlex.quote(f"{book.dir_of(host)}/wheels/{wheelhouse.wheel.name}")
        art = wheelhouse.artifact
        # --no-compile: byte-code is written on first import instead (a third of the time)
        pip = (f"{d}/venv/bin/python -m pip install -q --disable-pip-version-check --no-index "
               f"--no-compile --find-links {d}/wheels")  # fmt: skip
        steps = f"{pip} --force-reinstall --no-deps {wheel} && {pip} {wheel}"
    else:
        art = Artifact(book.install.version)
        steps = (f"{d}/venv/bin/python -m pip install -q --disable-pip-version-check "
                 f"ledis-console=={shlex.quote(art.version)}")  # fmt: skip
    info = json.dumps({"version": art.version, "wheel_sha256": art.wheel_sha256})
    cmd = (
        f"set -e; umask 022; mkdir -p {d}/nodes; "
        f"[ -x {d}/venv/bin/python ] || {py} -m venv {d}/venv; {steps}; "
        f"printf '%s\\n' {shlex.quote(info)} > {d}/installed.json"
    )
    r = await run.conns[host].run(cmd, timeout=900)
    if not r.ok:
        return False, True, f"install failed: {(r.stderr or r.stdout).strip()[-400:]}"
    return True, True, f"ledis-console {art.version} in {book.dir_of(host)}/venv"


async def apply_plan(run: Run, plan: Plan, wheelhouse: Wheelhouse | None,
                     files: Mapping[tuple[str, str], NodeFiles]) -> bool:  # fmt: skip
    """Apply ``plan`` rank by rank; False when something failed."""
    nodes_by = {n.key: n for n in nodes(run.book)}
    rollout = run.book.rollout
    failures = 0

    begun: set[int] = set()  # the operations started (by id)

    async def one(op: Op) -> bool:
        begun.add(id(op))
        tl = run.tally.setdefault(op.host, Tally())
        tl.doing = op.text()
        run.event("op-start", op.host, op=op.kind, node=op.node, why=op.why)
        try:
            ok, changed, text = await apply_op(run, op, wheelhouse, nodes_by, files)
        except (SSHError, DeployError) as e:
            ok, changed, text = False, False, str(e)
        tl.doing = ""
        if ok:
            tl.ok += 1
            tl.changed += int(changed)
        else:
            tl.failed += 1
        label = "changed" if ok and changed else "ok" if ok else "FAILED"
        style = "yellow" if ok and changed else "green" if ok else "red"
        run.say(f"{op.host} | {op.text()} -> {label}: {text}", style)
        run.event("op-" + ("ok" if ok else "failed"), op.host, op=op.kind, node=op.node,
                  changed=changed, text=text)  # fmt: skip
        return ok

    first = True
    for rank, ops in plan.ranks():
        run.say(f"-- {plan.rank_names[rank]}", "bold")
        if ops[0].kind in (UPLOAD, INSTALL):
            by_host: dict[str, list[Op]] = {}
            for op in ops:
                by_host.setdefault(op.host, []).append(op)

            async def host_ops(items: list[Op]) -> bool:
                for op in items:
                    if not await one(op):
                        return False
                return True

            results = await asyncio.gather(*(host_ops(v) for v in by_host.values()))
            failures += results.count(False)
        elif ops[0].kind in (WRITE, STOP) or all(op.kind == START for op in ops):
            results = await asyncio.gather(*(one(op) for op in ops))
            failures += results.count(False)
        else:  # restarts (and the cluster's operations): serial batches
            restarts = any(op.kind == RESTART for op in ops)
            size = rollout.serial if restarts else 1
            for i in range(0, len(ops), size):
                if not first and rollout.pause and restarts:
                    await asyncio.sleep(rollout.pause)
                first = False
                try:
                    results = await asyncio.gather(*(one(op) for op in ops[i : i + size]))
                except Stopped as e:
                    run.say(str(e), "red")
                    results = [False]
                failures += results.count(False)
                if failures > rollout.max_failures:
                    break
        if failures > rollout.max_failures:
            left = [op for r, o in plan.ranks() if r >= rank for op in o if id(op) not in begun]
            run.say(
                f"rollout stopped: {failures} failed (rollout.max_failures = "
                f"{rollout.max_failures}). What already ran is left serving; "
                f"{len(left)} later operations were not started. Fix the cause (the lines "
                "above, the node's log in its folder) and run deploy again: it plans from "
                "what the hosts have now.",
                "red",
            )
            run.event("stopped", failures=failures, left=len(left))
            return False
    return failures == 0


# -- showing the plan -----------------------------------------------------------------------


def show_plan(run: Run, plan: Plan) -> None:
    if plan.empty:
        run.say("nothing to do: every host is as the playbook says")
    for rank, ops in plan.ranks():
        run.say(f"{plan.rank_names[rank]}:", "bold")
        for op in ops:
            run.say(f"  {op.host}: {op.text()}")
    for note in plan.notes:
        run.say(f"note: {note}", "yellow")
    run.event("plan", ops=[f"{op.host}: {op.text()}" for op in plan.ops], notes=list(plan.notes))


async def show_diffs(run: Run, plan: Plan, files: Mapping[tuple[str, str], NodeFiles]) -> None:
    nodes_by = {n.key: n for n in nodes(run.book)}

    async def one(op: Op, name: str, new: str) -> str:
        path = f"{node_dir(run.book, nodes_by[op.key])}/{name}"
        r = await run.conns[op.host].run(f"cat {shlex.quote(path)}", timeout=60)
        return diff(f"{op.host}/{op.node}/{name}", r.stdout if r.ok else None, new,
                    run.secrets.values())  # fmt: skip

    wanted = [
        (op, name, files[op.key].files[name])
        for op in plan.ops
        if op.kind == WRITE
        for name in NODE_FILES
        if name in files[op.key].files
    ]
    for text in await asyncio.gather(*(one(*w) for w in wanted)):
        if text:
            run.out.print(run.scrub(text), highlight=False, markup=False, end="")


def confirm(run: Run, question: str) -> bool:
    if run.opts.yes:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DeployError("no terminal to confirm on: give --yes to apply")
    answer = run.out.input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


# -- entry ----------------------------------------------------------------------------------


def _secrets(book: Playbook) -> dict[str, str]:
    out = {}
    for name, ref in book.secrets.items():
        try:
            out[name] = resolve_secret(ref, os.environ, book.path.parent)
        except PlaybookError as e:
            raise PlaybookError(f"{book.path}: secrets.{name}: {e}") from None
    return out


def _event_log(book: Playbook, opts: Options) -> Path:
    if opts.event_log is not None:
        return opts.event_log
    if book.event_log:
        p = Path(book.event_log)
        return p if p.is_absolute() else book.path.parent / p
    return Path.cwd() / f"ledis-deploy-{book.cluster}.events.jsonl"


async def _main(book: Playbook, opts: Options, out: Console,
                progress: Callable[[Run], None] | None = None) -> int:  # fmt: skip
    check_limit(book, opts.limit)
    check_tags(opts.tags)
    run = Run(book, opts, out, _secrets(book))
    log_path = _event_log(book, opts)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as events:
        run.events = events
        run.event("begin", action=opts.action, playbook=str(book.path), check=opts.check)
        try:
            return await _act(run)
        finally:
            close_all(run.conns)
            run.event("end")


async def _act(run: Run) -> int:
    book, opts = run.book, run.opts
    hosts = list(dict.fromkeys(n.host for n in nodes(book)))
    if opts.limit is not None:
        hosts = [h for h in hosts if h == opts.limit] or [opts.limit]
    with run.out.status(f"connecting to {len(hosts)} hosts"):
        run.conns = await connect_all(book, hosts)  # every host key checked first
    for h in hosts:
        run.tally.setdefault(h, Tally())
        run.event("connected", h)
    facts = await gather_facts(run, hosts)
    wheelhouse = None
    if opts.action in ("deploy", "status") and book.install.source == "checkout":
        with run.out.status("building the wheel and the wheelhouse"):
            wheelhouse = await asyncio.to_thread(build, None, opts.wheelhouse_cache)
        if wheelhouse.seconds:
            run.say(f"built the wheelhouse in {wheelhouse.seconds:.1f} s: {wheelhouse.dir}")
    artifact = wheelhouse.artifact if wheelhouse else Artifact(book.install.version)
    if opts.action == "status":
        cluster = await gather_cluster(run, facts)
        return status(run, facts, cluster, artifact)
    if opts.action in ("stop", "uninstall"):
        plan = plan_stop(book, facts, remove=opts.action == "uninstall").only(opts.limit, opts.tags)
        show_plan(run, plan)
        if plan.empty or opts.check or not confirm(run, f"{opts.action}?"):
            run.recap()
            return 0
        ok = await apply_plan(run, plan, None, {})
        run.recap()
        return 0 if ok else 2
    if opts.limit is not None:  # the plan needs every host's facts
        missing = [h for h in dict.fromkeys(n.host for n in nodes(book)) if h not in facts]
        extra = await connect_all(book, missing)
        run.conns |= extra
        more = await gather_facts(run, missing)
        for h in missing:
            run.tally.pop(h, None)
        facts |= more
    cluster = await gather_cluster(run, facts)
    files = {n.key: render(book, n, run.secrets) for n in nodes(book)}
    need_cluster = not opts.tags or not set(opts.tags) <= NO_CLUSTER_TAGS
    plan = plan_deploy(book, facts, cluster, artifact, files, need_cluster)
    plan = plan.only(opts.limit, opts.tags)
    show_plan(run, plan)
    if opts.diff:
        await show_diffs(run, plan, files)
    if opts.check or plan.empty:
        run.recap()
        return 0
    if not confirm(run, "apply this plan?"):
        run.say("nothing applied")
        return 1
    with Live(run.table(), console=run.out, transient=True, auto_refresh=False) as live:
        run.live = live if run.out.is_terminal else None
        ok = await apply_plan(run, plan, wheelhouse, files)
        run.live = None
    run.recap()
    return 0 if ok else 2


def status(run: Run, facts: Mapping[str, HostFacts], cluster: ClusterFacts,
           artifact: Artifact) -> int:  # fmt: skip
    book = run.book
    t = Table(title=f"cluster {book.cluster!r} from {book.path}", title_justify="left")
    for col in ("host", "node", "role", "runs", "version", "drift"):
        t.add_column(col)
    drifted = 0
    for n in nodes(book):
        if n.host not in facts:
            continue
        f = facts[n.host]
        nf = f.node(n.name)
        want = render(book, n, run.secrets).checksums()
        changed = sorted(k for k in set(want) | set(nf.files) if want.get(k) != nf.files.get(k))
        role = n.role
        if n.role == SERVER and cluster.initialised:
            found = cluster.group_of(n.addr)
            role = f"g{found[0].id} {found[1]}" if found else "server (not in etcd)"
        version = f.installed.version if f.installed else "-"
        if f.installed and artifact.wheel_sha256 and not artifact.matches(f.installed):
            version += " (other build)"
        drift = "new" if not nf.files else ", ".join(changed) if changed else ""
        drifted += bool(drift) or not nf.running
        t.add_row(n.host, n.name, role, f"pid {nf.pid}" if nf.running else "no", version, drift)
    run.out.print(t)
    if cluster.initialised:
        run.say(f"etcd: cluster {book.cluster!r} with {len(cluster.groups)} groups, "
                f"{cluster.unassigned_slots} slots unassigned, leader {cluster.leader or '-'}")  # fmt: skip
    else:
        run.say(
            f"etcd: no cluster {book.cluster!r} yet"
            + (f" ({cluster.error})" if cluster.error else "")
        )
    run.say("no drift" if not drifted else f"{drifted} nodes differ from the playbook")
    return 0


def deploy(book: Playbook, opts: Options, out: Console) -> int:
    """Run ``opts.action`` for ``book``; errors that stop before applying are raised as
    DeployError/SSHError/PlanError/PlaybookError/FactsError/ArtifactError."""
    return asyncio.run(_main(book, opts, out))


ERRORS = (DeployError, SSHError, PlanError, PlaybookError, FactsError, ArtifactError)
