"""``ledis-console up`` and ``down``: a whole cluster on this machine from one command.

First ``up`` on a run dir: etcd, the servers (replicas started as replicas of their group's
master), then the cluster is made through the same plans as the scripted commands (init,
add-group, add-node, assign --even), then the proxies if the proxy exists. A later ``up``
finds ``layout.json`` and the topology in etcd and starts the same processes on the same data,
each replica following the master the topology names. ``--detach`` runs the supervisor in
the background (``up.pid``) and returns once everything is healthy (``up.ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stack.cluster import nodes, plans
from stack.cluster.async_store import AsyncStore
from stack.cluster.etcd_server import EtcdSpec
from stack.cluster.model import Topology, parse_addr
from stack.cluster.nodemap import push_maps
from stack.cluster.store import Store, StoreError

from ..config import ClusterSettings, render
from .layout import CLUSTER_NAME, ETCD, HOST, SERVER, Layout, ProcessSpec, proxy_available
from .supervisor import StartError, Supervisor, cmdline, detach, pid_alive

log = logging.getLogger(__name__)

PID_FILE = "up.pid"
READY_FILE = "up.ready"
SUPERVISOR_LOG = "supervisor.log"
DETACH_TIMEOUT = 180.0
DOWN_TIMEOUT = 90.0


class UpError(RuntimeError):
    pass


def settings_for(layout: Layout) -> ClusterSettings:
    return ClusterSettings(name=CLUSTER_NAME, etcd=(layout.etcd_endpoint,))


def _running_supervisor(run_dir: Path) -> int | None:
    try:
        pid = int((run_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid != os.getpid() and pid_alive(pid) and str(run_dir) in cmdline(pid):
        return pid
    return None


def _check_ports(specs: Sequence[ProcessSpec], layout: Layout) -> None:
    ports = [(s.name, s.port) for s in specs if s.port]
    ports.append(("etcd (peer)", layout.etcd_peer_port))
    for name, port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                raise UpError(
                    f"port {port} (for {name}) is in use; stop what holds it or choose "
                    f"another --port-base (this cluster needs ports {layout.port_base}-{layout.last_port})"
                ) from None


def listing(layout: Layout, specs: Sequence[ProcessSpec], pids: dict[str, int]) -> Table:
    table = Table(title=f"local cluster {CLUSTER_NAME!r} in {layout.run_dir}", title_justify="left")
    for col in ("process", "listens on", "pid", "log"):
        table.add_column(col)
    for s in specs:
        where = s.addr if s.port else "-"
        table.add_row(s.name, where, str(pids.get(s.name, "-")), str(s.log_file))
    return table


def proxy_note(layout: Layout) -> str | None:
    if layout.proxies and not proxy_available():
        return (
            "ledis-proxy is not part of this build yet (no stack.proxy.main): "
            f"{layout.proxies} proxies not started; clients connect to the masters"
        )
    return None


def print_next_steps(out: Console, layout: Layout, with_proxies: bool) -> None:
    config = layout.run_dir / "ledis-console.toml"
    port = layout.proxy_port(1) if with_proxies else layout.server_port(1, 0)
    console, cli = tool("ledis-console"), tool("ledis-cli")
    out.print(f"dashboard: {console} --config {config}", highlight=False)
    out.print(f"status: {console} --config {config} cluster status", highlight=False)
    out.print(f"connect: {cli} -p {port}   (or redis-cli -p {port})", highlight=False)
    out.print(f"stop: {console} down --run-dir {layout.run_dir}", highlight=False)


def tool(name: str) -> str:
    """How to type one of this package's commands here: its name when the shell finds this
    installation's copy on PATH, else its path (a virtualenv not activated)."""
    here = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found is not None and (not here.exists() or Path(found).resolve() == here.resolve()):
        return name
    if not here.exists():
        return name
    with contextlib.suppress(ValueError):
        return str(here.relative_to(Path.cwd()))
    return str(here)


def master_to_follow(topo: Topology | None, addr: str, fallback: str | None) -> str | None:
    """The master the server at ``addr`` must follow when it starts: the topology's word when
    it knows the node (roles move with failovers), ``fallback`` otherwise (None: a master)."""
    if topo is not None and topo.initialised:
        found = topo.find_node(addr)
        if found is not None:
            group, role = found
            return group.master if role == "replica" else None
    return fallback


async def make_cluster(
    store: Store,
    groups: Sequence[tuple[str, Sequence[str]]],
    report: Callable[[str], None],
    *,
    source: str,
    password: str | None = None,
) -> None:
    """Make a new cluster from running servers through the same plans as the scripted
    commands: init, one group per (master, replicas) numbered from 1, each replica attached
    (REPLICAOF, link up) and recorded, every slot spread evenly. (The masters learn their
    slots from ``push_maps`` afterwards.)"""

    def run(make: plans.PlanMaker) -> None:
        applied = plans.apply_fresh(store, make, source=source)
        report(applied.plan.recap())

    await asyncio.to_thread(run, plans.plan_init)
    for g, (master, _) in enumerate(groups, 1):
        await asyncio.to_thread(run, functools.partial(_add_group, master=master, group=g))
    for g, (master, replicas) in enumerate(groups, 1):
        for addr in replicas:
            await nodes.replicate(addr, master, password)
            await asyncio.to_thread(run, functools.partial(_add_node, addr=addr, group=g))
    await asyncio.to_thread(run, plans.plan_assign_even)


def _add_group(t: Topology, *, master: str, group: int) -> plans.Plan:
    return plans.plan_add_group(t, master, group)


def _add_node(t: Topology, *, addr: str, group: int) -> plans.Plan:
    return plans.plan_add_node(t, group, addr)


class LocalCluster:
    """One ``up``: supervises the processes of ``layout`` until told to stop."""

    def __init__(self, layout: Layout, out: Console) -> None:
        self.layout = layout
        self.out = out
        self.topology: Topology | None = None
        self.store = Store([layout.etcd_endpoint], CLUSTER_NAME, timeout=5.0)
        self.astore = AsyncStore(self.store)
        self.supervisor = Supervisor(self._argv, self._report)
        self.with_proxies = bool(layout.proxies) and proxy_available()

    def _report(self, text: str) -> None:
        log.info("%s", text)
        self.out.print(f"[{time.strftime('%H:%M:%S')}] {text}", highlight=False)

    async def _argv(self, spec: ProcessSpec) -> Sequence[str]:
        if spec.kind == ETCD:
            etcd = EtcdSpec(
                spec.workdir / "data", self.layout.etcd_port, self.layout.etcd_peer_port
            )
            return etcd.argv()
        if spec.kind != SERVER:
            return spec.argv
        master = await self._master_of(spec)
        if master is None:
            return spec.argv
        host, port = parse_addr(master)
        return (*spec.argv, "--replicaof", host, str(port))

    async def _master_of(self, spec: ProcessSpec) -> str | None:
        """The master this server must follow: the topology's word when etcd answers (it
        may have changed since the first start), the layout's otherwise."""
        with contextlib.suppress(StoreError):
            self.topology = await self.astore.load()
        fallback = None
        if spec.role == "replica":
            fallback = f"{HOST}:{self.layout.server_port(spec.group, 0)}"
        return master_to_follow(self.topology, spec.addr, fallback)

    async def bootstrap(self) -> None:
        """Make the cluster from the running servers, through the same plans as the
        scripted commands."""
        groups = []
        for g in range(1, self.layout.groups + 1):
            master = f"{HOST}:{self.layout.server_port(g, 0)}"
            replicas = [
                f"{HOST}:{self.layout.server_port(g, i)}"
                for i in range(1, self.layout.replicas + 1)
            ]
            groups.append((master, replicas))
        await make_cluster(
            self.store, groups, lambda text: self.out.print(f"  {text}", highlight=False),
            source="ledis-console up",
        )  # fmt: skip

    async def start(self) -> None:
        layout = self.layout
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        specs = layout.all_specs(self.with_proxies)
        _check_ports(specs, layout)
        with self.out.status("starting etcd") as status:
            await self.supervisor.start(layout.etcd_spec())
            self.topology = await self.astore.load()
            fresh = not self.topology.initialised
            status.update(f"starting {len(layout.servers())} servers")
            await self.supervisor.start_many(layout.servers())
            if fresh:
                status.update("creating the cluster")
                self.out.print(f"creating cluster {CLUSTER_NAME!r}:", highlight=False)
                await self.bootstrap()
            else:
                self.out.print(
                    f"reusing cluster {CLUSTER_NAME!r} at epoch {self.topology.epoch} "
                    f"and the data in {layout.run_dir}",
                    highlight=False,
                )
            self.topology = await self.astore.load()
            for pushed in await push_maps(self.topology):  # every master learns its slots
                if pushed.error:
                    self.out.print(f"  {pushed.addr} did not take the slot map: {pushed.error}")
            if self.with_proxies:
                status.update(f"starting {layout.proxies} proxies")
                await self.supervisor.start_many(layout.proxy_specs())
            if layout.controllers:
                status.update(f"starting {layout.controllers} controllers")
                await self.supervisor.start_many(layout.controller_specs())
        note = proxy_note(layout)
        if note:
            self.out.print(note, highlight=False)
        config = layout.run_dir / "ledis-console.toml"
        cli_port = layout.proxy_port(1) if self.with_proxies else layout.server_port(1, 0)
        config.write_text(render(settings_for(layout), HOST, cli_port))
        self.out.print(listing(layout, specs, self.supervisor.pids()))
        print_next_steps(self.out, layout, self.with_proxies)

    async def stop(self) -> None:
        with self.out.status("stopping"):
            await self.supervisor.stop_all()
        await self.astore.close()


async def _supervise(layout: Layout, out: Console) -> int:
    run_dir = layout.run_dir
    cluster = LocalCluster(layout, out)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
    starting = asyncio.create_task(cluster.start())
    stopper = asyncio.create_task(stop.wait())
    code = 0
    try:
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # raises what went wrong
            (run_dir / READY_FILE).write_text(f"{os.getpid()}\n")
            out.print("running; Ctrl-C stops everything", highlight=False)
            await stopper
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
            code = 130
    except (StartError, UpError, StoreError, nodes.NodeError, plans.PlanError) as e:
        out.print(f"[red]error:[/red] {e}")
        code = 1
    finally:
        stopper.cancel()
        await cluster.stop()
        (run_dir / READY_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            if int((run_dir / PID_FILE).read_text()) == os.getpid():
                (run_dir / PID_FILE).unlink()
        out.print("stopped", highlight=False)
    return code


def up(
    run_dir: Path,
    *,
    port_base: int | None,
    groups: int | None,
    replicas: int | None,
    proxies: int | None,
    controllers: int | None = None,
    detach: bool,
    log_level: str,
    out: Console,
) -> int:
    run_dir = run_dir.resolve()
    layout, existed = Layout.resolve(run_dir, port_base, groups, replicas, proxies, controllers)
    pid = _running_supervisor(run_dir)
    if pid is not None:
        if detach and existed and layout == Layout.resolve(run_dir, None, None, None, None)[0]:
            # `up --detach` again (make run twice): the same cluster, already up
            out.print(f"already running from {run_dir} (supervisor pid {pid})", highlight=False)
            _print_running(layout, out)
            return 0
        raise UpError(
            f"a cluster is already running from {run_dir} (pid {pid}); "
            f"{tool('ledis-console')} down --run-dir {run_dir} stops it"
        )
    with_proxies = bool(layout.proxies) and proxy_available()
    _check_ports(layout.all_specs(with_proxies), layout)  # before anything is written
    run_dir.mkdir(parents=True, exist_ok=True)
    layout.save()
    if not detach:
        return asyncio.run(_supervise(layout, out))
    return _detach(layout, log_level, out)


def _detach(layout: Layout, log_level: str, out: Console) -> int:
    run_dir = layout.run_dir
    argv = [
        sys.executable, "-m", "console.main", "--log-level", log_level,
        "up", "--run-dir", str(run_dir), "--supervise",
    ]  # fmt: skip
    log_path = run_dir / SUPERVISOR_LOG
    with out.status(f"starting in the background (log: {log_path})"):
        proc, outcome = detach(argv, log_path, run_dir / READY_FILE, DETACH_TIMEOUT,
                               env={**os.environ, "COLUMNS": "120"})  # fmt: skip
    if outcome == "exited":
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise UpError("the cluster did not start:\n" + "\n".join(tail))
    if outcome == "timeout":
        raise UpError(f"not healthy after {DETACH_TIMEOUT:g} s; see {log_path}")
    _print_running(layout, out)
    out.print(f"supervisor: pid {proc.pid}, log {log_path}", highlight=False)
    return 0


def _print_running(layout: Layout, out: Console) -> None:
    """The processes of a detached cluster (pids from their pid files) and what to do next."""
    with_proxies = bool(layout.proxies) and proxy_available()
    specs = layout.all_specs(with_proxies)
    pids = {}
    for s in specs:
        with contextlib.suppress(OSError, ValueError):
            pids[s.name] = int(s.pid_file.read_text())
    out.print(listing(layout, specs, pids))
    note = proxy_note(layout)
    if note:
        out.print(note, highlight=False)
    print_next_steps(out, layout, with_proxies)


def down(run_dir: Path, out: Console) -> int:
    """Stop the supervisor of ``run_dir`` (it stops its processes in order), then anything of
    this run dir still alive (after a supervisor was killed)."""
    run_dir = run_dir.resolve()
    if not run_dir.is_dir():
        raise UpError(f"{run_dir}: no such run dir")
    stopped = 0
    pid = _running_supervisor(run_dir)
    if pid is not None:
        with out.status(f"stopping the cluster of {run_dir} (supervisor pid {pid})"):
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone([pid], DOWN_TIMEOUT):
                raise UpError(f"the supervisor (pid {pid}) did not stop in {DOWN_TIMEOUT:g} s")
        stopped += 1
    orphans = []
    for pid_file in sorted(run_dir.glob("*/pid")):
        try:
            opid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(opid) and str(run_dir) in cmdline(opid):
            orphans.append(opid)
            os.kill(opid, signal.SIGTERM)
        else:
            pid_file.unlink(missing_ok=True)
    if orphans:
        out.print(f"stopping {len(orphans)} processes left without a supervisor", highlight=False)
        if not _wait_gone(orphans, 30.0):
            for opid in orphans:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(opid, signal.SIGKILL)
        for pid_file in run_dir.glob("*/pid"):
            pid_file.unlink(missing_ok=True)
        stopped += len(orphans)
    (run_dir / READY_FILE).unlink(missing_ok=True)
    if not stopped:
        out.print(f"nothing is running from {run_dir}", highlight=False)
    else:
        out.print(f"stopped the cluster of {run_dir}; its data stays there", highlight=False)
    return 0


def _wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False
