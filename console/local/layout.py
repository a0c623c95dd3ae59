"""The shape of a local cluster and where each of its processes lives and listens.

Every port is counted from ``port_base``: etcd's client and peer ports, then each group's
master and replicas, then the proxies (later the controllers). The run dir holds one folder
per process (data, log, ready-file, pid) and ``layout.json``, so a second ``up`` finds the
same shape and the same data.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

LAYOUT_FILE = "layout.json"
CLUSTER_NAME = "local"
HOST = "127.0.0.1"

ETCD = "etcd"
SERVER = "server"
PROXY = "proxy"
CONTROLLER = "controller"


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process. ``ready_file`` is None for etcd (its /health decides)."""

    name: str
    kind: str
    argv: tuple[str, ...]
    workdir: Path
    port: int
    group: int = 0  # servers: their group
    role: str = ""  # servers: master or replica
    host: str = HOST  # the address it listens on

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ready_file(self) -> Path | None:
        return None if self.kind == ETCD else self.workdir / "ready"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.kind}.log"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "pid"


def proxy_available() -> bool:
    """The proxy's entry point exists (it arrives with later work)."""
    try:
        return importlib.util.find_spec("stack.proxy.main") is not None
    except ModuleNotFoundError:
        return False


@dataclass(frozen=True)
class Layout:
    run_dir: Path
    port_base: int = 7000
    groups: int = 2
    replicas: int = 1
    proxies: int = 1
    controllers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.groups <= 64:
            raise LayoutError(f"--groups {self.groups}: between 1 and 64")
        if not 0 <= self.replicas <= 8:
            raise LayoutError(f"--replicas {self.replicas}: between 0 and 8")
        if not 0 <= self.proxies <= 16:
            raise LayoutError(f"--proxies {self.proxies}: between 0 and 16")
        if not 0 <= self.controllers <= 9:
            raise LayoutError(f"--controllers {self.controllers}: between 0 and 9")
        if self.port_base < 1024 or self.last_port > 65535:
            raise LayoutError(
                f"--port-base {self.port_base}: the {self.port_count} ports from there must lie "
                "between 1024 and 65535"
            )

    # ports

    @property
    def etcd_port(self) -> int:
        return self.port_base

    @property
    def etcd_peer_port(self) -> int:
        return self.port_base + 1

    def server_port(self, group: int, index: int) -> int:
        """``group`` from 1; index 0 is the master, 1.. the replicas."""
        return self.port_base + 2 + (group - 1) * (1 + self.replicas) + index

    def proxy_port(self, n: int) -> int:
        return self.port_base + 2 + self.groups * (1 + self.replicas) + (n - 1)

    @property
    def port_count(self) -> int:
        return 2 + self.groups * (1 + self.replicas) + self.proxies

    @property
    def last_port(self) -> int:
        return self.port_base + self.port_count - 1

    @property
    def etcd_endpoint(self) -> str:
        return f"{HOST}:{self.etcd_port}"

    # processes

    def servers(self) -> list[ProcessSpec]:
        out = []
        for g in range(1, self.groups + 1):
            for i in range(self.replicas + 1):
                name = f"g{g}-master" if i == 0 else f"g{g}-replica{i}"
                workdir = self.run_dir / name
                port = self.server_port(g, i)
                argv = (
                    sys.executable, "-m", "stack.server.main",
                    "--port", str(port), "--bind", HOST,
                    "--data-dir", str(workdir / "data"),
                    "--ready-file", str(workdir / "ready"),
                )  # fmt: skip
                out.append(
                    ProcessSpec(
                        name, SERVER, argv, workdir, port, g, "master" if i == 0 else "replica"
                    )
                )
        return out

    def proxy_specs(self) -> list[ProcessSpec]:
        out = []
        for n in range(1, self.proxies + 1):
            name = f"proxy{n}"
            workdir = self.run_dir / name
            port = self.proxy_port(n)
            argv = (
                sys.executable, "-m", "stack.proxy.main",
                "--etcd", self.etcd_endpoint, "--cluster", CLUSTER_NAME,
                "--port", str(port), "--ready-file", str(workdir / "ready"),
            )  # fmt: skip
            out.append(ProcessSpec(name, PROXY, argv, workdir, port))
        return out

    def controller_specs(self) -> list[ProcessSpec]:
        """ledis-failover processes: they listen on no port (``port`` 0)."""
        out = []
        for n in range(1, self.controllers + 1):
            name = f"controller{n}"
            workdir = self.run_dir / name
            argv = (
                sys.executable, "-m", "stack.failover.main",
                "--etcd", self.etcd_endpoint, "--cluster", CLUSTER_NAME, "--id", name,
                "--ready-file", str(workdir / "ready"),
            )  # fmt: skip
            out.append(ProcessSpec(name, CONTROLLER, argv, workdir, 0))
        return out

    def etcd_spec(self) -> ProcessSpec:
        return ProcessSpec(ETCD, ETCD, (), self.run_dir / ETCD, self.etcd_port)

    def all_specs(self, with_proxies: bool) -> list[ProcessSpec]:
        specs = [self.etcd_spec(), *self.servers()]
        return specs + (self.proxy_specs() if with_proxies else []) + self.controller_specs()

    # persistence

    def save(self) -> None:
        doc = {k: v for k, v in asdict(self).items() if k != "run_dir"}
        (self.run_dir / LAYOUT_FILE).write_text(json.dumps(doc, indent=2) + "\n")

    @classmethod
    def resolve(
        cls,
        run_dir: Path,
        port_base: int | None,
        groups: int | None,
        replicas: int | None,
        proxies: int | None,
        controllers: int | None = None,
    ) -> tuple[Layout, bool]:
        """The run dir's layout (given flags must agree with it), or a new one from the flags
        and defaults. The bool says whether the run dir already had one."""
        path = run_dir / LAYOUT_FILE
        if not path.exists():
            given = {
                "port_base": port_base,
                "groups": groups,
                "replicas": replicas,
                "proxies": proxies,
                "controllers": controllers,
            }
            return cls(run_dir, **{k: v for k, v in given.items() if v is not None}), False
        try:
            doc = json.loads(path.read_text())
            saved = cls(
                run_dir,
                int(doc["port_base"]),
                int(doc["groups"]),
                int(doc["replicas"]),
                int(doc["proxies"]),
                int(doc.get("controllers", 1)),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LayoutError(
                f"{path}: unreadable ({e}); remove the run dir to start afresh"
            ) from None
        for flag, given_value, have in (
            ("--port-base", port_base, saved.port_base),
            ("--groups", groups, saved.groups),
            ("--replicas", replicas, saved.replicas),
        ):
            if given_value is not None and given_value != have:
                raise LayoutError(
                    f"{run_dir} holds a cluster made with {flag} {have}; "
                    f"use the same, or another --run-dir for a new cluster"
                )
        if proxies is not None and proxies != saved.proxies:
            saved = replace(saved, proxies=proxies)
        if controllers is not None and controllers != saved.controllers:
            saved = replace(saved, controllers=controllers)
        return saved, True
