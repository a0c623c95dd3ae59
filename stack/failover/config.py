"""The controller's settings (flags of ``ledis-failover``; docs/failover.md, "Settings")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from stack.cluster.model import check_addr
from stack.cluster.paths import PathError, check_cluster_name, check_id

from .workflow import STEPS


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FailoverConfig:
    etcd: tuple[str, ...] = ()
    cluster: str = ""
    id: str = ""  # default: ctl-<pid>
    tick: float = 0.5  # seconds between two snapshots
    lease_ttl: int = 5  # the leader's lease; a leader that loses it stops acting within it
    probe_timeout: float = 1.0  # per node and request
    down_after: float = 3.0  # seconds a master must be unreachable before it is down
    quorum: int = 2  # views (controllers and proxies) that must agree a master is down
    view_max_age: float = 5.0  # a view older than this does not count
    safe_mode_fraction: float = 0.5  # more than this share of the nodes down: report only
    switchover_timeout: float = 5.0  # a planned switchover's longest write pause (s)
    password: str = ""  # the nodes' password
    password_file: str = ""  # or a file holding it (kept out of the command line and logs)
    etcd_timeout: float = 5.0
    log_level: str = "info"
    log_file: str = ""
    ready_file: str = ""  # written (with the id) once the first tick is done
    # tests: the controller dials the second address for the first ("a=b,c=d"), e.g. a
    # closed port to cut this controller (only) from a node
    probe_map: Mapping[str, str] = field(default_factory=dict)
    # tests: exit (code 3, no cleanup, as a kill would) right after recording this step
    exit_after: str = ""

    @property
    def ident(self) -> str:
        return self.id or f"ctl-{os.getpid()}"

    def dial(self, addr: str) -> str:
        return self.probe_map.get(addr, addr)


def parse_probe_map(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        a, sep, b = item.partition("=")
        if not sep:
            raise ConfigError(f"probe-map: {item!r} is not FROM=TO")
        try:
            out[check_addr(a)] = check_addr(b)
        except ValueError as e:
            raise ConfigError(f"probe-map: {e}") from None
    return out


def check(config: FailoverConfig) -> FailoverConfig:
    if not config.etcd:
        raise ConfigError("no etcd endpoint: give --etcd HOST:PORT")
    if not config.cluster:
        raise ConfigError("no cluster name: give --cluster NAME")
    try:
        check_cluster_name(config.cluster)
        check_id("controller", config.ident)
        for e in config.etcd:
            check_addr(e)
    except (PathError, ValueError) as e:
        raise ConfigError(str(e)) from None
    if config.lease_ttl < 2:
        raise ConfigError("lease-ttl: at least 2 seconds")
    if config.tick <= 0 or config.tick * 2 > config.lease_ttl:
        raise ConfigError("tick: above 0 and at most half the lease TTL")
    if config.exit_after and config.exit_after not in STEPS:
        raise ConfigError(f"exit-after: one of {', '.join(STEPS)}")
    if config.quorum < 1:
        raise ConfigError("quorum: at least 1")
    if not 0 < config.safe_mode_fraction <= 1:
        raise ConfigError("safe-mode-fraction: above 0, at most 1")
    for name in ("probe_timeout", "down_after", "view_max_age", "switchover_timeout"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name.replace('_', '-')}: above 0")
    return config
