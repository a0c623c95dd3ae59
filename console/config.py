"""The ``[cluster]`` section of ledis-console.toml: which etcd holds the topology, which cluster.

A mistake names the file, the key and the problem. Other sections (``[cli]``, the dashboard's,
deploy's) belong to their own readers and are left alone here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stack.cluster.model import check_addr
from stack.cluster.paths import PathError, check_cluster_name

DEFAULT_PATH = Path("ledis-console.toml")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ClusterSettings:
    name: str = "ledis"
    etcd: tuple[str, ...] = ("127.0.0.1:2379",)
    timeout: float = 5.0  # seconds an etcd request or a node probe may take
    password: str | None = None  # the nodes' password (probes, REPLICAOF), none by default


@dataclass(frozen=True)
class ConsoleConfig:
    path: Path
    exists: bool
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


_KNOWN: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "etcd": list,
    "timeout": (int, float),
    "password": str,
}


def load(path: Path | None) -> ConsoleConfig:
    """Read ``path`` (default ./ledis-console.toml, which may be absent: defaults then); a
    file named explicitly must exist."""
    explicit = path is not None
    path = path or DEFAULT_PATH
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: no such file")
        return ConsoleConfig(path, False)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    section = data.get("cluster", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: key 'cluster': must be a table ([cluster])")
    return ConsoleConfig(path, True, _cluster(path, section))


def _cluster(path: Path, section: dict[str, Any]) -> ClusterSettings:
    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: key 'cluster.{key}': {problem}")

    for key, value in section.items():
        want = _KNOWN.get(key)
        if want is None:
            raise fail(key, f"unknown setting (known: {', '.join(_KNOWN)})")
        if not isinstance(value, want) or isinstance(value, bool):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise fail(key, f"expected {names}, got {value!r}")
    defaults = ClusterSettings()
    name = section.get("name", defaults.name)
    try:
        check_cluster_name(name)
    except PathError as e:
        raise fail("name", str(e)) from None
    raw_etcd = section.get("etcd", list(defaults.etcd))
    if not raw_etcd:
        raise fail("etcd", "at least one endpoint 'host:port' is needed")
    etcd = []
    for i, item in enumerate(raw_etcd):
        if not isinstance(item, str):
            raise fail(f"etcd[{i}]", f"expected 'host:port', got {item!r}")
        item = item.removeprefix("http://")
        try:
            etcd.append(check_addr(item))
        except ValueError as e:
            raise fail(f"etcd[{i}]", str(e)) from None
    timeout = float(section.get("timeout", defaults.timeout))
    if not 0 < timeout <= 300:
        raise fail("timeout", f"must be more than 0 and at most 300 seconds, got {timeout:g}")
    password = section.get("password") or None
    return ClusterSettings(name, tuple(etcd), timeout, password)


def render(settings: ClusterSettings, cli_host: str, cli_port: int) -> str:
    """A ledis-console.toml for these settings (what ``ledis-console up`` writes)."""
    etcd = ", ".join(f'"{e}"' for e in settings.etcd)
    return (
        "# Written by ledis-console up: the local cluster's settings for the other commands\n"
        "# (ledis-console --config THIS_FILE cluster status, ledis-cli -p PORT).\n\n"
        "[cluster]\n"
        f'name = "{settings.name}"\n'
        f"etcd = [{etcd}]\n\n"
        "[cli]\n"
        f'host = "{cli_host}"\n'
        f"port = {cli_port}\n"
    )
