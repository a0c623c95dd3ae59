"""The proxy's settings: built-in defaults, then ``--config FILE`` (TOML), then the flags.

Keys in the file are named like the flags (``backend-connections = 4``); an unknown key or a
value of the wrong type is an error naming it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ProxyConfig:
    etcd: tuple[str, ...] = ()
    cluster: str = ""
    port: int = 6400
    bind: str = "127.0.0.1"
    ready_file: str = ""
    requirepass: str = ""
    backend_password: str = ""
    proxy_id: str = ""  # default: the address it registers ("127.0.0.1:6400")
    advertise: str = ""  # the host in the registered address (default: bind, or 127.0.0.1)
    log_level: str = "info"
    log_file: str = ""
    backend_connections: int = 2  # shared links per backend and protocol
    backend_max_in_flight: int = 20_000  # requests in flight on one link before back pressure
    backend_timeout: float = 30.0  # seconds without a reply before a link is given up
    connect_timeout: float = 5.0
    migrate_timeout: int = 30_000  # ms, SLOTSMGRTTAGONE's timeout argument
    transaction_wait: float = 30.0  # seconds an EXEC/WATCH waits for a migrating slot
    maxclients: int = 10_000
    client_output_limit: int = 256 * 1024 * 1024  # bytes waiting for a client that does not read
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    etcd_timeout: float = 5.0
    lease_ttl: int = 10
    stats_interval: float = 5.0  # seconds between the stats written to etcd
    view_interval: float = 1.0  # seconds between the views of the masters put in etcd (0: off)
    redirect_retries: int = 5  # MOVED / ASK / TRYAGAIN handled per command before giving up
    # seconds a command refused with READONLY by its slot's master (fenced by a failover)
    # waits for the map to name another master before the client gets the READONLY
    failover_wait: float = 10.0
    secrets: frozenset[str] = field(default=frozenset({"requirepass", "backend_password"}))

    @property
    def addr(self) -> str:
        host = self.advertise or (self.bind if self.bind not in ("0.0.0.0", "::", "") else "")
        return f"{host or '127.0.0.1'}:{self.port}"

    def settings(self) -> dict[str, str]:
        """Name -> value as CONFIG GET shows them (secrets hidden)."""
        out = {}
        for f in fields(self):
            if f.name == "secrets":
                continue
            value = getattr(self, f.name)
            if f.name in self.secrets:
                value = "********" if value else ""
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[f.name.replace("_", "-")] = str(value)
        return out


_TYPES = {f.name: f.type for f in fields(ProxyConfig)}


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    if kind == "tuple[str, ...]":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of host:port strings")
        return tuple(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def from_mapping(base: ProxyConfig, values: dict[str, Any], where: str) -> ProxyConfig:
    changes = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in _TYPES or name == "secrets":
            raise ConfigError(f"{where}: unknown setting {key!r}")
        try:
            changes[name] = _coerce(name, value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return replace(base, **changes)


def load_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    section = doc.get("proxy", doc)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [proxy] must be a table")
    return section


def check(config: ProxyConfig) -> ProxyConfig:
    if not config.etcd:
        raise ConfigError("no etcd endpoint: give --etcd HOST:PORT")
    if not config.cluster:
        raise ConfigError("no cluster name: give --cluster NAME")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port}: between 0 and 65535")
    if config.backend_connections < 1:
        raise ConfigError("backend-connections: at least 1")
    if config.lease_ttl < 2:
        raise ConfigError("lease-ttl: at least 2 seconds")
    if config.failover_wait < 0:
        raise ConfigError("failover-wait: at least 0 seconds")
    return config
