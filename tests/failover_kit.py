"""A real cluster for failover tests: etcd (the session's), one or more groups of a master and
replicas (ledis-servers), proxies and ledis-failover controllers, made through the same plans
as ``ledis-console``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import subprocess
import sys
from pathlib import Path

import redis

from stack.cluster import nodes, plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import Event, Topology
from stack.cluster.store import Store

from .proxy_cluster import ProxyProcess
from .servers import LedisServer, wait_until

FAST = (  # settings that keep a test's failover within a few seconds on a busy machine
    "--tick", "0.3", "--lease-ttl", "4", "--down-after", "1.5", "--probe-timeout", "0.8",
)  # fmt: skip


def _add_group(t: Topology, addr: str, group: int) -> plans.Plan:
    return plans.plan_add_group(t, addr, group)


def _add_node(t: Topology, addr: str, group: int) -> plans.Plan:
    return plans.plan_add_node(t, group, addr)


class ControllerProcess:
    def __init__(self, workdir: Path, etcd: str, cluster: str, ident: str, *extra: str) -> None:
        self.workdir = workdir
        self.etcd = etcd
        self.cluster = cluster
        self.ident = ident
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "failover.log"

    def start(self) -> ControllerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stack.failover.main", "--etcd", self.etcd,
                 "--cluster", self.cluster, "--id", self.ident, "--log-level", "debug",
                 *self.extra],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)
            self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class FailoverCluster:
    """One group (or more) of a master and ``replicas`` replicas, every slot assigned."""

    def __init__(
        self,
        root: Path,
        etcd: EtcdServer,
        name: str,
        *,
        groups: int = 1,
        replicas: int = 2,
        server_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.etcd = etcd
        self.name = name
        self.server_args = server_args
        self.servers: dict[str, LedisServer] = {}
        self.store = Store([etcd.endpoint], name)
        plans.apply_fresh(self.store, plans.plan_init)
        for gid in range(1, groups + 1):
            maddr = self.addr(self._server(f"g{gid}-master"))
            plans.apply_fresh(self.store, functools.partial(_add_group, addr=maddr, group=gid))
            for r in range(1, replicas + 1):
                raddr = self.addr(self._server(f"g{gid}-replica{r}"))
                asyncio.run(nodes.replicate(raddr, maddr))
                plans.apply_fresh(self.store, functools.partial(_add_node, addr=raddr, group=gid))
        plans.apply_fresh(self.store, plans.plan_assign_even)
        self.proxies: list[ProxyProcess] = []
        self.controllers: list[ControllerProcess] = []

    def _server(self, name: str, port: int = 0) -> LedisServer:
        extra = ("--port", str(port)) if port else ()
        server = LedisServer(self.root / name, *self.server_args, *extra).start()
        self.servers[self.addr(server)] = server
        return server

    @staticmethod
    def addr(server: LedisServer) -> str:
        return f"127.0.0.1:{server.port}"

    def restart(self, addr: str) -> LedisServer:
        """Start the node at ``addr`` again (same data dir and port) after it was stopped."""
        old = self.servers[addr]
        server = LedisServer(old.workdir, *self.server_args, "--port", str(old.port)).start()
        self.servers[addr] = server
        return server

    def proxy(self, *extra: str) -> ProxyProcess:
        n = len(self.proxies) + 1
        p = ProxyProcess(self.root / f"proxy{n}", self.etcd.endpoint, self.name, *extra).start()
        self.proxies.append(p)
        return p

    def controller(self, *extra: str, ident: str = "") -> ControllerProcess:
        n = len(self.controllers) + 1
        ident = ident or f"c{n}"
        c = ControllerProcess(
            self.root / f"ctl-{ident}", self.etcd.endpoint, self.name, ident, *FAST, *extra
        ).start()
        self.controllers.append(c)
        return c

    def leader(self) -> str | None:
        return self.store.load().leader

    def wait_leader(self, timeout: float = 60) -> str:
        wait_until(lambda: self.leader() is not None, "a controller leader", timeout)
        leader = self.leader()
        assert leader is not None
        return leader

    def wait_views(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` observers report what they see."""
        wait_until(
            lambda: len(self.store.read_prefix(self.store.paths.views)[1]) >= count,
            f"{count} views",
            timeout,
        )

    def master_of(self, group: int = 1) -> str:
        return self.store.load().groups[group].master

    def client(self, addr: str, **kw: object) -> redis.Redis:
        host, _, port = addr.rpartition(":")
        kw.setdefault("socket_timeout", 10)
        return redis.Redis(host=host, port=int(port), **kw)  # type: ignore[arg-type]

    def events(self) -> list[Event]:
        return self.store.events(limit=2000)

    def texts(self) -> list[str]:
        return [e.text for e in self.events()]

    def stop(self) -> None:
        for c in self.controllers:
            if c.alive:
                c.stop()
        for p in self.proxies:
            if p.proc is not None and p.proc.poll() is None:
                p.stop()
        for s in self.servers.values():
            if s.proc is not None and s.proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    s.stop()
        try:
            self.store.delete_cluster()
        finally:
            self.store.close()
