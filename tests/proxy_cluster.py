"""A real cluster for proxy tests: etcd (the session's), ledis-servers as group masters, the
topology made through the same plans as ``ledis-console``, and ledis-proxy processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stack.cluster import plans
from stack.cluster.etcd_server import EtcdServer
from stack.cluster.store import Store
from stack.core.slots import key_slot

from .servers import LedisServer, _wait_for


class ProxyProcess(LedisServer):
    """A ledis-proxy subprocess (stopped, killed and logged as a ledis-server is); ``port`` is
    read from its ready-file."""

    def __init__(
        self,
        workdir: Path,
        etcd: str,
        cluster: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, *extra, env=env)
        self.etcd = etcd
        self.cluster = cluster
        self.log_path = workdir / "proxy.log"

    def start(self, port: int = 0) -> ProxyProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stack.proxy.main", "--etcd", self.etcd,
                 "--cluster", self.cluster, "--port", str(port), "--ready-file", str(ready),
                 "--log-level", "debug", *self.extra],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip
        self.port = int(_wait_for(ready, self.proc, "ledis-proxy"))
        return self


class Cluster:
    """Groups of one master each, every slot assigned evenly, and one proxy."""

    def __init__(
        self, root: Path, etcd: EtcdServer, name: str, groups: int = 2, *server_args: str
    ) -> None:
        self.root = root
        self.etcd = etcd
        self.name = name
        self.masters = [
            LedisServer(root / f"g{g}", *server_args).start() for g in range(1, groups + 1)
        ]
        self.store = Store([etcd.endpoint], name)
        plans.apply_fresh(self.store, plans.plan_init)
        for gid, m in enumerate(self.masters, 1):
            addr = f"127.0.0.1:{m.port}"
            plans.apply_fresh(self.store, lambda t, a=addr, g=gid: plans.plan_add_group(t, a, g))
        plans.apply_fresh(self.store, plans.plan_assign_even)
        self.slots = self.store.load().slots
        self.proxies: list[ProxyProcess] = []

    def proxy(self, *extra: str, env: dict[str, str] | None = None) -> ProxyProcess:
        """A proxy; ``env`` adds to its environment (``LEDIS_PROXY_C=0``: the Python path)."""
        n = len(self.proxies) + 1
        root = self.root / f"proxy{n}"
        p = ProxyProcess(root, self.etcd.endpoint, self.name, *extra, env=env).start()
        self.proxies.append(p)
        return p

    def owner(self, key: bytes | str) -> LedisServer:
        """The master that owns ``key``'s slot (as the map was when the cluster was made)."""
        k = key.encode() if isinstance(key, str) else key
        group = self.slots.owner(key_slot(k))
        assert group is not None
        return self.masters[group - 1]

    def flushall(self) -> None:
        for m in self.masters:
            if m.proc is not None and m.proc.poll() is None:
                m.client().flushall()

    def stop(self) -> None:
        for p in self.proxies:
            if p.proc is not None and p.proc.poll() is None:
                p.stop()
        for m in self.masters:
            if m.proc is not None and m.proc.poll() is None:
                m.stop()
        try:
            self.store.delete_cluster()
        finally:
            self.store.close()


def keys_in_groups(cluster: Cluster, count: int, prefix: str = "k") -> list[str]:
    """``count`` keys, alternating between the groups (so every group holds some)."""
    by_group: list[list[str]] = [[] for _ in cluster.masters]
    i = 0
    while min(len(g) for g in by_group) * len(by_group) < count:
        key = f"{prefix}{i}"
        by_group[cluster.masters.index(cluster.owner(key))].append(key)
        i += 1
    return [k for keys in zip(*by_group, strict=False) for k in keys][:count]
