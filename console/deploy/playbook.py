"""A deploy playbook: TOML in, frozen dataclasses out, every mistake one named sentence.

Pure apart from reading the playbook (and the files that secrets name, only when a run needs
their values): ``load(path, env)`` checks the whole schema before anything connects and
raises ``PlaybookError("playbooks/prod.toml: groups[1].replicas[0]: host 'db-7' is not in
[hosts]")``, never a traceback. ``${NAME}`` in any string is replaced from ``env`` (a missing
variable is an error naming it); secrets are references (``{env = "NAME"}`` or
``{file = "path"}``) and an inline secret is an error. playbooks/README.md documents every key.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stack.cluster.model import check_addr
from stack.cluster.paths import PathError, check_cluster_name
from stack.failover.config import FailoverConfig
from stack.proxy.config import ProxyConfig
from stack.server.config import ALIASES, PARAMS_BY_NAME
from stack.server.config import ConfigError as ServerConfigError

SERVER = "server"
PROXY = "proxy"
CONTROLLER = "controller"
ETCD = "etcd"
ROLES = (ETCD, SERVER, PROXY, CONTROLLER)

SECRET_NAMES = ("requirepass",)
INSTALL_SOURCES = ("checkout", "version")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SUM = re.compile(r"(\d{1,6})(?:\s*\+\s*(\d{1,6}))?")
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

# settings deploy itself decides for each node: set in a role's table, they are an error
RESERVED = {
    SERVER: {"port", "bind", "dir", "data-dir", "ready-file", "replicaof", "slaveof",
             "requirepass", "masterauth", "logfile", "aclfile", "users", "backup-dir"},
    PROXY: {"port", "bind", "etcd", "cluster", "ready-file", "requirepass",
            "backend-password", "proxy-id", "advertise", "log-file"},
    CONTROLLER: {"etcd", "cluster", "id", "ready-file", "password", "password-file", "log-file", "probe-map",
                 "exit-after"},
}  # fmt: skip


class PlaybookError(ValueError):
    pass


# -- the model ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """Where a secret's value is: an environment variable or a file (never the value)."""

    env: str = ""
    file: str = ""

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key: str = ""  # private key file; empty: the SSH agent / default keys
    jump: str = ""  # the name of another host to reach this one through
    sudo: bool = False
    python: str = "python3"
    dir: str = ""  # this host's deploy directory (default: deploy.dir)


@dataclass(frozen=True)
class Endpoint:
    """One node of a role on one host."""

    host: str
    port: int


@dataclass(frozen=True)
class EtcdMember:
    host: str
    client_port: int
    peer_port: int


@dataclass(frozen=True)
class Group:
    id: int
    master: Endpoint
    replicas: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class Install:
    source: str = "checkout"  # a wheel of this checkout + a wheelhouse of its dependencies
    version: str = ""  # source = "version": this version from the hosts' package index
    min_python: tuple[int, int] = (3, 11)


@dataclass(frozen=True)
class Rollout:
    serial: int = 1  # nodes restarted at once within one rank
    max_failures: int = 0  # failed nodes tolerated before the rollout stops
    pause: float = 0.0  # seconds between two batches
    health_timeout: float = 60.0  # seconds a node has to pass its health gate
    max_lag: int = 0  # a replica is caught up when its LogID is within this of its master's
    hold_failover: bool = True  # masters restart through a planned switchover when possible


@dataclass(frozen=True)
class Playbook:
    path: Path
    cluster: str
    dir: str  # the deploy directory on every host
    known_hosts: Path
    hosts: Mapping[str, Host]
    etcd: tuple[EtcdMember, ...]
    groups: tuple[Group, ...]
    proxies: tuple[Endpoint, ...]
    controllers: tuple[str, ...]  # host names
    settings: Mapping[str, Mapping[str, Any]]  # role -> key -> value
    secrets: Mapping[str, SecretRef] = field(default_factory=dict)
    install: Install = Install()
    rollout: Rollout = Rollout()
    connections: int = 8  # SSH connections at once
    event_log: str = ""  # JSON-lines events, relative to the playbook's folder

    def host(self, name: str) -> Host:
        return self.hosts[name]

    def dir_of(self, host: str) -> str:
        """The deploy directory on ``host``."""
        return self.hosts[host].dir or self.dir

    def etcd_endpoints(self) -> tuple[str, ...]:
        return tuple(f"{self.hosts[m.host].address}:{m.client_port}" for m in self.etcd)

    def addr(self, ep: Endpoint) -> str:
        return f"{self.hosts[ep.host].address}:{ep.port}"


def resolve_secret(ref: SecretRef, env: Mapping[str, str], base: Path) -> str:
    """The value a reference names; PlaybookError when it is missing or empty."""
    if ref.env:
        value = env.get(ref.env)
        if not value:
            raise PlaybookError(f"secret from environment variable {ref.env}: not set")
        return value
    path = Path(os.path.expanduser(ref.file))
    if not path.is_absolute():
        path = base / path
    try:
        value = path.read_text().strip()
    except OSError as e:
        raise PlaybookError(f"secret file {path}: cannot read: {e.strerror or e}") from None
    if not value:
        raise PlaybookError(f"secret file {path}: empty")
    return value


# -- reading --------------------------------------------------------------------------------


class _Reader:
    """Typed access to one table of the playbook, failing with the key path."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env

    def fail(self, where: str, problem: str) -> PlaybookError:
        return PlaybookError(
            f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}"
        )

    def expand(self, where: str, value: Any) -> Any:
        if isinstance(value, str):

            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in self.env:
                    raise self.fail(where, f"environment variable {name} is not set")
                return self.env[name]

            return _ENV.sub(sub, value)
        if isinstance(value, list):
            return [self.expand(f"{where}[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expand(_key(where, k), v) for k, v in value.items()}
        return value

    def table(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a table, got {_shown(value)}")
        return value

    def known(self, where: str, table: Mapping[str, Any], keys: tuple[str, ...]) -> None:
        for k in table:
            if k not in keys:
                raise self.fail(_key(where, k), f"unknown key (known: {', '.join(keys)})")

    def str_(
        self, where: str, table: Mapping[str, Any], key: str, default: str | None = None
    ) -> str:
        value = table.get(key, default)
        if value is None:
            raise self.fail(_key(where, key), "missing")
        if not isinstance(value, str):
            raise self.fail(_key(where, key), f"expected a string, got {_shown(value)}")
        return value

    def int_(
        self, where: str, table: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int
    ) -> int:
        value = table.get(key, default)
        if value is None:
            raise self.fail(_key(where, key), "missing")
        if isinstance(value, str):  # from ${VAR}: "7000" or "7000+12"
            m = _SUM.fullmatch(value.strip())
            if m is not None:
                value = int(m.group(1)) + int(m.group(2) or 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(_key(where, key), f"expected an integer, got {_shown(value)}")
        if not lo <= value <= hi:
            raise self.fail(_key(where, key), f"must be between {lo} and {hi}, got {value}")
        return value

    def num(
        self, where: str, table: Mapping[str, Any], key: str, default: float, lo: float, hi: float
    ) -> float:
        value = table.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(_key(where, key), f"expected a number, got {_shown(value)}")
        if not lo <= value <= hi:
            raise self.fail(_key(where, key), f"must be between {lo:g} and {hi:g}, got {value:g}")
        return float(value)

    def bool_(self, where: str, table: Mapping[str, Any], key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(_key(where, key), f"expected true or false, got {_shown(value)}")
        return value

    def list_(self, where: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected an array, got {_shown(value)}")
        return value


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load(path: Path, env: Mapping[str, str] | None = None) -> Playbook:
    """Read and check the playbook at ``path`` (``env``: default os.environ)."""
    env = os.environ if env is None else env
    r = _Reader(path, env)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise r.fail("", "no such file") from None
    except OSError as e:
        raise r.fail("", f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise r.fail("", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise r.fail("", f"not valid TOML: {e}") from None
    return parse(raw, path, env)


TOP_KEYS = ("deploy", "install", "secrets", "hosts", "etcd", "groups", "proxies",
            "controllers", "server", "proxy", "controller", "rollout")  # fmt: skip


def parse(raw: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> Playbook:
    r = _Reader(path, env)
    r.known("", raw, TOP_KEYS)
    secrets = _secrets(r, raw.get("secrets", {}))
    data = r.expand("", {k: v for k, v in raw.items() if k != "secrets"})
    deploy = r.table("deploy", data.get("deploy", {}))
    r.known("deploy", deploy, ("cluster", "dir", "known_hosts", "connections", "event_log"))
    cluster = r.str_("deploy", deploy, "cluster", "ledis")
    try:
        check_cluster_name(cluster)
    except PathError as e:
        raise r.fail("deploy.cluster", str(e)) from None
    target = _dir(r, "deploy.dir", r.str_("deploy", deploy, "dir"))
    known = Path(os.path.expanduser(r.str_("deploy", deploy, "known_hosts")))
    if not known.is_absolute():
        known = path.parent / known
    connections = r.int_("deploy", deploy, "connections", 8, 1, 64)
    event_log = r.str_("deploy", deploy, "event_log", "")

    hosts = _hosts(r, data.get("hosts"))
    etcd = _etcd(r, data.get("etcd"), hosts)
    groups = _groups(r, data.get("groups"), hosts)
    proxies = tuple(
        _endpoint(r, f"proxies[{i}]", item, hosts)
        for i, item in enumerate(r.list_("proxies", data.get("proxies", [])))
    )
    controllers = []
    for i, item in enumerate(r.list_("controllers", data.get("controllers", []))):
        t = r.table(f"controllers[{i}]", item)
        r.known(f"controllers[{i}]", t, ("host",))
        controllers.append(_host_ref(r, f"controllers[{i}]", t, hosts))
    settings = {
        role: _settings(r, role, data.get(role, {})) for role in (SERVER, PROXY, CONTROLLER)
    }
    install = _install(r, data.get("install", {}))
    rollout = _rollout(r, data.get("rollout", {}))
    book = Playbook(
        path, cluster, target, known, hosts, etcd, groups, proxies,
        tuple(controllers), settings, secrets, install, rollout, connections, event_log,
    )  # fmt: skip
    _check_ports(r, book)
    return book


def _secrets(r: _Reader, raw: Any) -> dict[str, SecretRef]:
    table = r.table("secrets", raw)
    if "masterauth" in table:
        raise r.fail(
            "secrets.masterauth",
            "replicas authenticate to their master with requirepass (every server has the same "
            "one); remove secrets.masterauth",
        )
    r.known("secrets", table, SECRET_NAMES)
    out = {}
    for name, value in table.items():
        where = f"secrets.{name}"
        if isinstance(value, str):
            raise r.fail(
                where,
                "an inline secret is not allowed; give a reference: "
                '{env = "NAME"} or {file = "path"}',
            )
        t = r.table(where, value)
        r.known(where, t, ("env", "file"))
        if len(t) != 1:
            raise r.fail(where, 'expected exactly one of env = "NAME" or file = "path"')
        ref = (
            SecretRef(env=r.str_(where, t, "env", "")),
            SecretRef(file=r.str_(where, t, "file", "")),
        )
        out[name] = ref[0] if "env" in t else ref[1]
        if not (out[name].env or out[name].file):
            raise r.fail(where, "empty reference")
    return out


HOST_KEYS = ("address", "port", "user", "key", "jump", "sudo", "python", "dir")


def _hosts(r: _Reader, raw: Any) -> dict[str, Host]:
    if raw is None:
        raise r.fail("hosts", "missing: at least one [hosts.NAME] table")
    table = r.table("hosts", raw)
    if not table:
        raise r.fail("hosts", "at least one host is needed")
    out = {}
    for name, value in table.items():
        where = f"hosts.{name}"
        if not _HOST_NAME.fullmatch(name):
            raise r.fail(where, "a host name is letters, digits, '.', '_' or '-'")
        t = r.table(where, value)
        r.known(where, t, HOST_KEYS)
        address = r.str_(where, t, "address")
        try:
            check_addr(f"{address}:1")
        except ValueError:
            raise r.fail(f"{where}.address", f"not a host name or address: {address!r}") from None
        out[name] = Host(
            name,
            address,
            r.int_(where, t, "port", 22, 1, 65535),
            r.str_(where, t, "user", "root"),
            os.path.expanduser(r.str_(where, t, "key", "")),
            r.str_(where, t, "jump", ""),
            r.bool_(where, t, "sudo", False),
            r.str_(where, t, "python", "python3"),
            _dir(r, f"{where}.dir", r.str_(where, t, "dir", "")) if "dir" in t else "",
        )
    for name, host in out.items():
        if host.jump and host.jump not in out:
            raise r.fail(f"hosts.{name}.jump", f"host {host.jump!r} is not in [hosts]")
        if host.jump == name:
            raise r.fail(f"hosts.{name}.jump", "a host cannot be its own jump host")
        chain = [name]
        while out[chain[-1]].jump:
            chain.append(out[chain[-1]].jump)
            if chain[-1] in chain[:-1]:
                if chain[-1] != name:
                    break  # the cycle does not pass through this host: said for its members
                raise r.fail(f"hosts.{name}.jump", "a cycle of jump hosts: " + " -> ".join(chain))
    return out


SHARED_DIRS = frozenset({
    "/usr/local", "/usr/lib", "/usr/share", "/usr/bin", "/usr/sbin", "/var/lib", "/var/log",
    "/var/tmp", "/var/run", "/run/user", "/etc/systemd", "/opt/local",
})  # fmt: skip
"""Folders two levels deep that other software shares: never a deploy directory."""


def _dir(r: _Reader, where: str, target: str) -> str:
    if not target.startswith("/") or any(part == ".." for part in target.split("/")):
        raise r.fail(where, f"expected an absolute path without '..', got {target!r}")
    path = "/" + "/".join(p for p in target.split("/") if p and p != ".")
    if path.count("/") < 2 or path in SHARED_DIRS:
        raise r.fail(
            where,
            f"{path!r} is not a folder of deploy's own (uninstall deletes what deploy put "
            "there): give one at least two levels deep, such as /opt/ledis",
        )
    return path


def _host_ref(r: _Reader, where: str, t: Mapping[str, Any], hosts: Mapping[str, Host]) -> str:
    name = r.str_(where, t, "host")
    if name not in hosts:
        raise r.fail(where, f"host {name!r} is not in [hosts]")
    return name


def _endpoint(r: _Reader, where: str, raw: Any, hosts: Mapping[str, Host]) -> Endpoint:
    t = r.table(where, raw)
    r.known(where, t, ("host", "port"))
    return Endpoint(_host_ref(r, where, t, hosts), r.int_(where, t, "port", None, 1, 65535))


def _etcd(r: _Reader, raw: Any, hosts: Mapping[str, Host]) -> tuple[EtcdMember, ...]:
    if raw is None:
        raise r.fail("etcd", "missing: [etcd] members = [...]")
    t = r.table("etcd", raw)
    r.known("etcd", t, ("members",))
    members = r.list_("etcd.members", t.get("members", []))
    if not members:
        raise r.fail("etcd.members", "at least one member is needed")
    if len(members) % 2 == 0:
        raise r.fail("etcd.members", f"an odd number of members is needed, got {len(members)}")
    out = []
    for i, item in enumerate(members):
        where = f"etcd.members[{i}]"
        m = r.table(where, item)
        r.known(where, m, ("host", "client_port", "peer_port"))
        out.append(
            EtcdMember(
                _host_ref(r, where, m, hosts),
                r.int_(where, m, "client_port", None, 1, 65535),
                r.int_(where, m, "peer_port", None, 1, 65535),
            )
        )
    if len({m.host for m in out}) != len(out):
        raise r.fail("etcd.members", "two members on one host")
    return tuple(out)


def _groups(r: _Reader, raw: Any, hosts: Mapping[str, Host]) -> tuple[Group, ...]:
    items = r.list_("groups", raw if raw is not None else [])
    if not items:
        raise r.fail("groups", "at least one [[groups]] is needed")
    out = []
    for i, item in enumerate(items):
        where = f"groups[{i}]"
        t = r.table(where, item)
        r.known(where, t, ("master", "replicas"))
        if "master" not in t:
            raise r.fail(f"{where}.master", "missing")
        master = _endpoint(r, f"{where}.master", t["master"], hosts)
        replicas = tuple(
            _endpoint(r, f"{where}.replicas[{j}]", rep, hosts)
            for j, rep in enumerate(r.list_(f"{where}.replicas", t.get("replicas", [])))
        )
        out.append(Group(i + 1, master, replicas))
    return tuple(out)


def _role_keys(role: str) -> tuple[str, ...]:
    if role == SERVER:
        return tuple(sorted({*PARAMS_BY_NAME, *ALIASES}))
    config = {PROXY: ProxyConfig, CONTROLLER: FailoverConfig}[role]
    return tuple(f.name.replace("_", "-") for f in fields(config) if f.name != "secrets")


def _settings(r: _Reader, role: str, raw: Any) -> dict[str, Any]:
    table = r.table(role, raw)
    keys = _role_keys(role)
    for key, value in table.items():
        where = f"{role}.{key}"
        if key in RESERVED[role]:
            raise r.fail(where, "set by deploy for each node; not a playbook setting")
        if key not in keys:
            raise r.fail(where, f"not a {role} setting")
        if not isinstance(value, str | int | float | bool):
            raise r.fail(where, f"expected a string, number or boolean, got {_shown(value)}")
        problem = setting_problem(role, key, value)
        if problem:
            raise r.fail(where, problem)
    return dict(sorted(table.items()))


def setting_problem(role: str, key: str, value: str | int | float | bool) -> str:
    """What the program of ``role`` says of ``key = value`` when it reads its settings
    ("" when it takes them): the server's config-file parser, the proxy's and controller's
    own loaders, so that a bad value stops the playbook, not a node's start."""
    from stack.failover.config import ConfigError as FailoverConfigError
    from stack.failover.main import load_config as failover_load_config
    from stack.proxy.config import ConfigError as ProxyConfigError
    from stack.proxy.config import check as proxy_check
    from stack.proxy.config import from_mapping as proxy_from_mapping

    try:
        if role == SERVER:
            PARAMS_BY_NAME[ALIASES.get(key, key)].parse(value)
        elif role == PROXY:
            base = ProxyConfig(etcd=("127.0.0.1:2379",), cluster="c")
            proxy_check(proxy_from_mapping(base, {key: value}, "proxy"))
        else:
            argv = ["--etcd", "127.0.0.1:2379", "--cluster", "c", *controller_flags({key: value})]
            said = io.StringIO()
            try:
                with contextlib.redirect_stderr(said):
                    failover_load_config(argv)
            except SystemExit:
                return said.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
    except (ServerConfigError, ProxyConfigError, FailoverConfigError) as e:
        text = str(e)
        for prefix in ("proxy: ", f"{key}: ", f"{key.replace('-', '_')}: "):
            text = text.removeprefix(prefix)
        return text
    return ""


def controller_flags(settings: Mapping[str, Any]) -> list[str]:
    """The controller's command-line flags for its playbook settings."""
    out = []
    for key, value in settings.items():
        out += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return out


def _install(r: _Reader, raw: Any) -> Install:
    t = r.table("install", raw)
    r.known("install", t, ("source", "version", "min_python"))
    source = r.str_("install", t, "source", "checkout")
    if source not in INSTALL_SOURCES:
        raise r.fail(
            "install.source", f"expected one of {', '.join(INSTALL_SOURCES)}, got {source!r}"
        )
    version = r.str_("install", t, "version", "")
    if source == "version" and not version:
        raise r.fail("install.version", 'needed with source = "version"')
    if source == "checkout" and version:
        raise r.fail("install.version", 'only with source = "version"')
    minimum = r.str_("install", t, "min_python", "3.11")
    m = re.fullmatch(r"3\.(\d{1,2})", minimum)
    if m is None or int(m.group(1)) < 11:
        raise r.fail("install.min_python", f"expected '3.N' with N >= 11, got {minimum!r}")
    return Install(source, version, (3, int(m.group(1))))


def _rollout(r: _Reader, raw: Any) -> Rollout:
    t = r.table("rollout", raw)
    r.known("rollout", t, tuple(f.name for f in fields(Rollout)))
    d = Rollout()
    return Rollout(
        r.int_("rollout", t, "serial", d.serial, 1, 64),
        r.int_("rollout", t, "max_failures", d.max_failures, 0, 1000),
        r.num("rollout", t, "pause", d.pause, 0, 3600),
        r.num("rollout", t, "health_timeout", d.health_timeout, 1, 3600),
        r.int_("rollout", t, "max_lag", d.max_lag, 0, 10**9),
        r.bool_("rollout", t, "hold_failover", d.hold_failover),
    )


def ports_in_use(book: Playbook) -> Iterator[tuple[str, str, int]]:
    """(where in the playbook, host, port) of every port the playbook opens."""
    for i, m in enumerate(book.etcd):
        yield f"etcd.members[{i}].client_port", m.host, m.client_port
        yield f"etcd.members[{i}].peer_port", m.host, m.peer_port
    for g in book.groups:
        yield f"groups[{g.id - 1}].master", g.master.host, g.master.port
        for j, rep in enumerate(g.replicas):
            yield f"groups[{g.id - 1}].replicas[{j}]", rep.host, rep.port
    for i, p in enumerate(book.proxies):
        yield f"proxies[{i}]", p.host, p.port


def _check_ports(r: _Reader, book: Playbook) -> None:
    seen: dict[tuple[str, int], str] = {}
    for where, host, port in ports_in_use(book):
        other = seen.get((host, port))
        if other is not None:
            raise r.fail(where, f"port {port} on host {host!r} is already used by {other}")
        seen[(host, port)] = where


def check_ports_within(book: Playbook, base: int, span: int) -> list[str]:
    """The ports outside [base, base + span) (for playbooks that promise a port range)."""
    return [f"{w}: {p}" for w, _, p in ports_in_use(book) if not base <= p < base + span]
