"""A real cluster for tests: etcd (the session's), groups of a ledis-server master and replicas,
made through the same plans as ``ledis-console cluster`` (init, add-group, add-node after
REPLICAOF, assign --even) and the slot maps pushed to the masters, ledis-proxies in front of
it on demand; plus ``console()`` to run the CLI as a subprocess against it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import redis

from stack.cluster import nodes, plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.model import Topology
from stack.cluster.nodemap import push_maps
from stack.cluster.store import Store
from stack.core.slots import key_slot

from .proxy_cluster import ProxyProcess
from .servers import LedisServer


def console(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def console_bg(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "console.main", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout


def addr(s: LedisServer) -> str:
    return f"127.0.0.1:{s.port}"


class TestCluster:
    """``groups`` groups of one master and ``replicas`` replicas, slots spread evenly."""

    __test__ = False

    def __init__(
        self,
        workdir: Path,
        etcd: EtcdServer,
        name: str,
        groups: int = 2,
        replicas: int = 0,
        server_args: tuple[str, ...] = (),
        password: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.etcd = etcd
        self.name = name
        self.password = password
        self.masters: dict[int, LedisServer] = {}
        self.replicas: dict[int, list[LedisServer]] = {}
        self.proxies: list[ProxyProcess] = []
        self.config = workdir / "ledis-console.toml"
        text = f'[cluster]\nname = "{name}"\netcd = ["{etcd.endpoint}"]\n'
        if password:
            text += f'password = "{password}"\n'
        self.config.write_text(text)
        for g in range(1, groups + 1):
            self.masters[g] = LedisServer(workdir / f"g{g}m", *server_args).start()
            self.replicas[g] = [
                LedisServer(workdir / f"g{g}r{i}", *server_args).start() for i in range(replicas)
            ]

    def store(self) -> Store:
        return Store([self.etcd.endpoint], self.name)

    def create(self) -> TestCluster:
        with self.store() as s:
            plans.apply_fresh(s, plans.plan_init)
            for g, m in self.masters.items():
                plans.apply_fresh(s, lambda t, g=g, m=m: plans.plan_add_group(t, addr(m), g))
            for g, reps in self.replicas.items():
                for r in reps:
                    asyncio.run(nodes.replicate(addr(r), addr(self.masters[g]), self.password))
                    plans.apply_fresh(s, lambda t, g=g, r=r: plans.plan_add_node(t, g, addr(r)))
            plans.apply_fresh(s, plans.plan_assign_even)
            t = s.load()
        pushed = asyncio.run(push_maps(t, self.password))
        assert all(p.error is None for p in pushed), pushed
        return self

    def proxy(self) -> ProxyProcess:
        """A ledis-proxy in front of the cluster (it registers, and follows the topology)."""
        extra = ("--backend-password", self.password) if self.password else ()
        n = len(self.proxies) + 1
        p = ProxyProcess(self.workdir / f"proxy{n}", self.etcd.endpoint, self.name, *extra)
        self.proxies.append(p.start())
        return p

    def topology(self) -> Topology:
        with self.store() as s:
            return s.load()

    def client(self, server: LedisServer) -> redis.Redis:
        return server.client(password=self.password) if self.password else server.client()

    def all_servers(self) -> list[LedisServer]:
        return [*self.masters.values(), *(r for reps in self.replicas.values() for r in reps)]

    def stop(self) -> None:
        for s in [*self.proxies, *self.all_servers()]:
            if s.proc is not None and s.proc.poll() is None:
                s.kill9()
        with self.store() as s:
            s.delete_cluster()

    def where_keys_are(self) -> dict[int, set[bytes]]:
        """Every key of every master (SCAN), by group."""
        out: dict[int, set[bytes]] = {}
        for g, m in self.masters.items():
            out[g] = set(self.client(m).scan_iter(count=1000))
        return out

    def misplaced(self) -> list[tuple[bytes, int, int | None]]:
        """Keys held by a group that does not own their slot: (key, group, owner)."""
        owners = self.topology().slots.owners()
        return [
            (k, g, owners[key_slot(k)])
            for g, keys in self.where_keys_are().items()
            for k in keys
            if owners[key_slot(k)] != g
        ]
