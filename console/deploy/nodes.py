"""The nodes a playbook asks for, and the files each one runs from (pure).

Every node lives on one host in ``<dir>/nodes/<name>/``: ``node.json`` says how the host's
supervisor (``console/deploy/hostd.py``) runs it, ``config.toml`` holds the program's settings
(servers and proxies; written mode 0600 since it may hold secrets). Names are stable however
roles move: ``etcd``, ``server-<port>``, ``proxy-<port>``, ``controller-<n>``. A node must be
restarted exactly when the checksum of its files differs from what runs.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .hostfacts import NODE_FILES, UNIT_DIR
from .playbook import CONTROLLER, ETCD, PROXY, SERVER, Playbook

NODE_FILE, CONFIG_FILE, PASSWORD_FILE = NODE_FILES


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    host: str
    address: str  # the host's address: the node listens there
    port: int  # 0: listens on no port (controllers)
    group: int = 0  # servers
    master: str = ""  # servers that the playbook makes replicas: their first master

    @property
    def addr(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def key(self) -> tuple[str, str]:
        """Names are unique per host: (host, name) names a node."""
        return (self.host, self.name)


def nodes(book: Playbook) -> list[Node]:
    """Every node of the playbook, in the playbook's order."""
    out: list[Node] = []
    for m in book.etcd:
        out.append(Node(ETCD, ETCD, m.host, book.hosts[m.host].address, m.client_port))
    for g in book.groups:
        master = book.addr(g.master)
        out.append(_server(book, g.master.host, g.master.port, g.id, ""))
        for r in g.replicas:
            out.append(_server(book, r.host, r.port, g.id, master))
    for p in book.proxies:
        out.append(Node(f"proxy-{p.port}", PROXY, p.host, book.hosts[p.host].address, p.port))
    counts: dict[str, int] = {}
    for host in book.controllers:
        counts[host] = counts.get(host, 0) + 1
        name = f"controller-{counts[host]}"
        out.append(Node(name, CONTROLLER, host, book.hosts[host].address, 0))
    return out


def _server(book: Playbook, host: str, port: int, group: int, master: str) -> Node:
    return Node(f"server-{port}", SERVER, host, book.hosts[host].address, port, group, master)


def node_dir(book: Playbook, node: Node) -> str:
    return dir_of_node(book, node.host, node.name)


def dir_of_node(book: Playbook, host: str, name: str) -> str:
    """A node's folder on its host, also for a node the playbook no longer names."""
    return f"{book.dir_of(host)}/nodes/{name}"


OWNED = ("venv", "wheels", "nodes", "installed.json")
"""What deploy puts in a host's deploy directory; uninstall deletes these and nothing else."""


def uninstall_script(
    dir: str, units: list[str], unit_dir: str = UNIT_DIR, systemctl: str = "systemctl"
) -> str:
    """The shell script that removes deploy's units (by exact name) and what deploy owns in
    ``dir``, only when ``dir/installed.json`` says deploy installed there; ``dir`` itself
    goes only when nothing else is left in it."""
    q = shlex.quote
    script = [f"set -e; d={q(dir)}"]
    for unit in units:
        path = q(f"{unit_dir}/{unit}")
        script.append(f"if [ -e {path} ]; then {systemctl} disable --now {q(unit)} || true; "
                      f"rm -f {path}; fi")  # fmt: skip
    owned = " ".join(f'"$d"/{q(name)}' for name in OWNED if name != "installed.json")
    script.append(
        f'if [ -f "$d/installed.json" ]; then rm -rf {owned}; rm -f "$d/installed.json"; '
        'rmdir "$d" 2>/dev/null || true; '
        'else echo "no installed.json in $d: not a deploy directory, nothing deleted" >&2; '
        "exit 3; fi"
    )
    return "\n".join(script)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is JSON's string syntax


def render_toml(pairs: Mapping[str, Any]) -> str:
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in pairs.items())


@dataclass(frozen=True)
class NodeFiles:
    """What one node runs from: file name -> text. ``secrets`` are the values in them."""

    node: Node
    files: Mapping[str, str]

    def checksums(self) -> dict[str, str]:
        return {name: sha256(text) for name, text in self.files.items()}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def render(book: Playbook, node: Node, secrets: Mapping[str, str]) -> NodeFiles:
    """The files of ``node``. ``secrets`` maps requirepass to its value."""
    base = node_dir(book, node)
    header = "# written by ledis-console deploy; changes here are overwritten by the next deploy\n"
    spec: dict[str, Any] = {
        "v": 1,
        "name": node.name,
        "role": node.role,
        "cluster": book.cluster,
        "address": node.address,
        "port": node.port,
        "etcd": list(book.etcd_endpoints()),
    }
    files: dict[str, str] = {}
    password = secrets.get("requirepass", "")
    if node.role == ETCD:
        members = [
            {"name": f"etcd-{m.host}", "address": book.hosts[m.host].address,
             "client_port": m.client_port, "peer_port": m.peer_port}
            for m in book.etcd
        ]  # fmt: skip
        me = next(m for m in book.etcd if m.host == node.host)
        spec |= {"member": f"etcd-{node.host}", "peer_port": me.peer_port, "members": members}
    elif node.role == SERVER:
        spec |= {"group": node.group, "master": node.master}
        conf: dict[str, Any] = {"port": node.port, "bind": node.address, "dir": f"{base}/data"}
        if password:
            conf["requirepass"] = password
            conf["masterauth"] = password  # replicas authenticate with the shared requirepass
        conf |= book.settings[SERVER]
        files[CONFIG_FILE] = header + render_toml(conf)
    elif node.role == PROXY:
        conf = {
            "etcd": list(book.etcd_endpoints()),
            "cluster": book.cluster,
            "port": node.port,
            "bind": node.address,
            "proxy-id": node.addr,
        }
        if password:
            conf["requirepass"] = password
            conf["backend-password"] = password
        conf |= book.settings[PROXY]
        files[CONFIG_FILE] = header + render_toml(conf)
    else:
        spec["id"] = f"{node.host}-{node.name}"
        spec["settings"] = dict(book.settings[CONTROLLER])
        if password:
            files[PASSWORD_FILE] = password + "\n"
    files[NODE_FILE] = json.dumps(spec, indent=2, sort_keys=True) + "\n"
    return NodeFiles(node, files)
