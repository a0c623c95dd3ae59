"""The host side of deploy: ``DIR/venv/bin/python -m console.deploy.hostd ACTION ...``.

Deploy runs these over SSH on each host once the project is installed there:

- ``run NODE_DIR``: supervise one node (``console/local/supervisor.py``'s Supervisor: pid
  file, log, restart with backoff after a crash) until SIGTERM; writes ``hostd.pid`` and,
  once the node is ready, ``up``. A server follows the master etcd names for it when it
  (re)starts (``master_to_follow``), the playbook's first master before the cluster exists.
- ``start NODE_DIR``: ``run`` in the background, detached; returns once ready or failed.
- ``stop NODE_DIR``: SIGTERM to the node's supervisor, which stops the node.
- ``health NODE_DIR``: the health gate: the node answers; a replica's link is up and it has
  caught up with what its master had when the gate began.
- ``write NODE_DIR``: the node's files from a JSON document on stdin (mode 0600).
- ``cluster``, ``bootstrap``, ``add-group``, ``add-node``, ``switchover``: the cluster in
  etcd, from a JSON document on stdin (so that the password never is in a command line).

Every action prints one JSON line (``{"ok": ..., "text": ...}``) and exits 0 when ok.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..local.layout import ETCD, ProcessSpec
from . import hostfacts
from .hostfacts import NODE_FILES, alive

if TYPE_CHECKING:
    from stack.cluster.store import Store

# Each action imports what it needs when it runs: deploy calls this module dozens of times per
# run, and write/start/stop need none of etcd's client (0.2 s instead of 0.7 s a call).

log = logging.getLogger(__name__)

HOSTD_PID = "hostd.pid"
UP_FILE = "up"
HOSTD_LOG = "hostd.log"
STARTED_FILE = "started.json"  # the checksums of the files the running process started from
ETCD_TIMEOUT = 3.0


class HostdError(RuntimeError):
    pass


def _spec(node_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((node_dir / "node.json").read_text())
    except (OSError, ValueError) as e:
        raise HostdError(f"{node_dir}/node.json: {e}") from None
    if not isinstance(doc, dict):
        raise HostdError(f"{node_dir}/node.json: not a JSON object")
    return doc


def checksums(node_dir: Path) -> dict[str, str]:
    out = {}
    for name in NODE_FILES:
        with contextlib.suppress(OSError):
            out[name] = hashlib.sha256((node_dir / name).read_bytes()).hexdigest()
    return out


def _password(node_dir: Path) -> str | None:
    conf = node_dir / "config.toml"
    if conf.exists():
        with contextlib.suppress(OSError, tomllib.TOMLDecodeError):
            doc = tomllib.loads(conf.read_text())
            return doc.get("requirepass") or None
    pw = node_dir / "password"
    if pw.exists():
        return pw.read_text().strip() or None
    return None


def process_spec(node_dir: Path, doc: dict[str, Any]) -> ProcessSpec:
    role = doc["role"]
    kind = ETCD if role == ETCD else role
    return ProcessSpec(doc["name"], kind, (), node_dir, int(doc["port"]), host=doc["address"])


def _etcd_argv(node_dir: Path, doc: dict[str, Any]) -> list[str]:
    from stack.cluster.etcd_server import EtcdSpec

    members = doc["members"]
    initial = ",".join(f"{m['name']}=http://{m['address']}:{m['peer_port']}" for m in members)
    spec = EtcdSpec(
        node_dir / "data", int(doc["port"]), int(doc["peer_port"]), host=doc["address"],
        name=doc["member"], initial_cluster=initial,
    )  # fmt: skip
    return spec.argv()


def _load_topology(doc: dict[str, Any]) -> Any:
    from stack.cluster.store import Store

    store = Store(doc["etcd"], doc["cluster"], timeout=ETCD_TIMEOUT)
    try:
        return store.load()
    finally:
        store.close()


async def node_argv(node_dir: Path, doc: dict[str, Any]) -> list[str]:
    """The command line of the node, decided at each (re)start."""
    py = [sys.executable, "-m"]
    role = doc["role"]
    ready = str(node_dir / "ready")
    conf = str(node_dir / "config.toml")
    if role == ETCD:
        return _etcd_argv(node_dir, doc)
    if role == "server":
        from stack.cluster.store import StoreError

        from ..local.runner import master_to_follow

        argv = [*py, "stack.server.main", "--config", conf, "--ready-file", ready]
        topo = None
        with contextlib.suppress(StoreError):
            topo = await asyncio.to_thread(_load_topology, doc)
        addr = f"{doc['address']}:{doc['port']}"
        master = master_to_follow(topo, addr, doc.get("master") or None)
        if master:
            host, _, port = master.rpartition(":")
            argv += ["--replicaof", host.strip("[]"), port]
        return argv
    if role == "proxy":
        return [*py, "stack.proxy.main", "--config", conf, "--ready-file", ready]
    argv = [*py, "stack.failover.main", "--etcd", ",".join(doc["etcd"]),
            "--cluster", doc["cluster"], "--id", doc["id"], "--ready-file", ready]  # fmt: skip
    if (node_dir / "password").exists():
        argv += ["--password-file", str(node_dir / "password")]
    from .playbook import controller_flags

    return argv + controller_flags(doc.get("settings", {}))


# -- run / start / stop ---------------------------------------------------------------------


async def _run(node_dir: Path) -> int:
    from ..local.supervisor import StartError, Supervisor

    doc = _spec(node_dir)
    spec = process_spec(node_dir, doc)

    async def argv_for(_: ProcessSpec) -> Sequence[str]:
        nonlocal doc
        doc = _spec(node_dir)  # a restart after a crash runs from the files as they are now
        (node_dir / STARTED_FILE).write_text(json.dumps(checksums(node_dir)) + "\n")
        return await node_argv(node_dir, doc)

    def report(text: str) -> None:
        log.warning("%s", text)

    supervisor = Supervisor(argv_for, report)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    (node_dir / UP_FILE).unlink(missing_ok=True)
    (node_dir / HOSTD_PID).write_text(f"{os.getpid()}\n")
    code = 0
    try:
        await supervisor.start(spec)
        (node_dir / UP_FILE).write_text(f"{os.getpid()}\n")
        log.warning("%s ready (pid %s)", spec.name, supervisor.pids().get(spec.name))
        await stop.wait()
    except (StartError, OSError, HostdError) as e:
        log.error("%s", e)
        code = 1
    finally:
        await supervisor.stop_all()
        (node_dir / UP_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError, ValueError):
            if int((node_dir / HOSTD_PID).read_text()) == os.getpid():
                (node_dir / HOSTD_PID).unlink()
    return code


def running_pid(node_dir: Path) -> int | None:
    try:
        pid = int((node_dir / HOSTD_PID).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid, str(node_dir)) else None


UNIT_DIR = Path(hostfacts.UNIT_DIR)


def unit_name(doc: dict[str, Any]) -> str:
    return hostfacts.unit_name(str(doc["cluster"]), str(doc["name"]))


# C-style escapes systemd undoes inside a quoted word of a command line
_EXEC_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _specifiers_escaped(text: str) -> str:
    """``text`` as a unit setting that expands ``%`` specifiers keeps it (``%%`` is ``%``)."""
    return text.replace("%", "%%")


def exec_line(argv: Sequence[str]) -> str:
    """``argv`` as the value of ``ExecStart=``, by systemd.service's "Command lines": each
    word double-quoted (whitespace stays in it) with ``\\`` and ``"`` escaped, ``%%`` for a
    ``%`` (specifiers expand everywhere) and ``$$`` for a ``$`` in the arguments (the first
    word is never variable-expanded). systemd refuses an executable whose path holds a quote,
    a backslash or a control character, so that is refused here, where it can be said."""
    program, *args = argv
    if any(c in "\"'\\" or ord(c) < 32 or ord(c) == 127 for c in program):
        raise HostdError(f"systemd cannot run an executable at {program!r}")
    words = [_specifiers_escaped(program)]
    for arg in args:
        escaped = "".join(_EXEC_ESCAPES.get(c, c) for c in arg)
        words.append(_specifiers_escaped(escaped).replace("$", "$$"))
    return " ".join(f'"{w}"' for w in words)


def unit_text(node_dir: Path, doc: dict[str, Any], python: str) -> str:
    """The systemd unit that runs the node's supervisor (``run``) where systemd is PID 1."""
    run = exec_line([python, "-m", "console.deploy.hostd", "run", str(node_dir)])
    return (
        "# written by ledis-console deploy\n"
        "[Unit]\n"
        f"Description=ledis {doc['role']} {doc['name']} of cluster {doc['cluster']}\n"
        "After=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nType=simple\n"
        f"ExecStart={run}\n"
        f"WorkingDirectory={_specifiers_escaped(str(node_dir))}\n"
        f"StandardOutput=append:{_specifiers_escaped(str(node_dir / HOSTD_LOG))}\n"
        "StandardError=inherit\n"
        "Restart=on-failure\nRestartSec=2\nKillMode=mixed\nTimeoutStopSec=60\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def use_systemd() -> bool:
    """systemd is PID 1 and we may write units (root)."""
    return os.path.isdir("/run/systemd/system") and os.geteuid() == 0 and UNIT_DIR.is_dir()


def _systemctl(*args: str) -> None:
    done = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise HostdError(f"systemctl {' '.join(args)}: {(done.stderr or done.stdout).strip()}")


def _start_unit(node_dir: Path) -> None:
    doc = _spec(node_dir)
    unit = UNIT_DIR / unit_name(doc)
    text = unit_text(node_dir, doc, sys.executable)
    if not unit.exists() or unit.read_text() != text:
        unit.write_text(text)
        _systemctl("daemon-reload")
    _systemctl("enable", "--now", unit.name)


def start(node_dir: Path, timeout: float) -> dict[str, Any]:
    pid = running_pid(node_dir)
    if pid is not None:
        return {"ok": True, "text": f"already running (supervisor pid {pid})"}
    (node_dir / UP_FILE).unlink(missing_ok=True)
    if use_systemd():
        _start_unit(node_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (node_dir / UP_FILE).exists():
                return {"ok": True, "text": f"started (systemd unit {unit_name(_spec(node_dir))})"}
            time.sleep(0.05)
        _systemctl("stop", unit_name(_spec(node_dir)))
        return {"ok": False, "text": f"not ready after {timeout:g} s: {_tail(node_dir)}"}
    from ..local.supervisor import detach

    argv = [sys.executable, "-m", "console.deploy.hostd", "run", str(node_dir)]
    proc, outcome = detach(argv, node_dir / HOSTD_LOG, node_dir / UP_FILE, timeout, cwd=node_dir)
    (node_dir / HOSTD_PID).write_text(f"{proc.pid}\n")
    if outcome == "ready":
        return {"ok": True, "text": f"started (supervisor pid {proc.pid})"}
    if outcome == "exited":
        return {"ok": False, "text": f"did not start: {_tail(node_dir)}"}
    proc.terminate()
    return {"ok": False, "text": f"not ready after {timeout:g} s: {_tail(node_dir)}"}


def _tail(node_dir: Path) -> str:
    from ..local.supervisor import log_tail

    doc = _spec(node_dir)
    spec = process_spec(node_dir, doc)
    return log_tail(spec) if spec.log_file.exists() else log_tail(spec, 3)


def stop(node_dir: Path, timeout: float) -> dict[str, Any]:
    pid = running_pid(node_dir)
    if pid is None:
        return {"ok": True, "text": "not running"}
    unit = UNIT_DIR / unit_name(_spec(node_dir))
    if use_systemd() and unit.exists():
        _systemctl("stop", unit.name)  # else systemd would start it again
        return {"ok": True, "text": f"stopped (systemd unit {unit.name})"}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, str(node_dir)):
            return {"ok": True, "text": f"stopped (supervisor pid {pid})"}
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return {"ok": False, "text": f"supervisor pid {pid} did not stop in {timeout:g} s; killed"}


# -- health ---------------------------------------------------------------------------------


async def health(node_dir: Path, timeout: float, max_lag: int) -> dict[str, Any]:
    from stack.cluster import nodes as cluster_nodes
    from stack.cluster.etcd_server import healthy
    from stack.cluster.store import StoreError

    from ..local.runner import master_to_follow

    doc = _spec(node_dir)
    role = doc["role"]
    addr = f"{doc['address']}:{doc['port']}"
    deadline = time.monotonic() + timeout
    password = _password(node_dir)
    last = "not checked"
    target: int | None = None  # the master's LogID when the gate began
    while True:
        if running_pid(node_dir) is None:
            return {"ok": False, "text": "its supervisor does not run"}
        if role == ETCD:
            if await asyncio.to_thread(healthy, addr, 1.0):
                return {"ok": True, "text": "etcd healthy"}
            last = "etcd /health is not true"
        elif role == "controller":
            if (node_dir / "ready").exists():
                return {"ok": True, "text": "controller running"}
            last = "no first tick yet"
        else:
            state = await cluster_nodes.probe(addr, password, 1.0)
            if not state.reachable:
                last = f"does not answer: {state.error}"
            elif role == "proxy":
                return {"ok": True, "text": "proxy answers"}
            else:
                topo = None
                with contextlib.suppress(StoreError):
                    topo = await asyncio.to_thread(_load_topology, doc)
                master = master_to_follow(topo, addr, doc.get("master") or None)
                if master is None:
                    if state.role == "master":
                        return {"ok": True, "text": f"master, LogID {state.log_id}"}
                    last = f"expected a master, {state.describe()}"
                elif state.role != "replica" or state.master != master:
                    last = f"expected a replica of {master}, {state.describe()}"
                elif state.link != "connected":
                    last = f"replica link to {master} is {state.link}"
                else:
                    if target is None:
                        m = await cluster_nodes.probe(master, password, 1.0)
                        target = m.log_id if m.reachable else None
                    have = state.log_id or 0
                    if target is not None and have >= target - max_lag:
                        return {
                            "ok": True,
                            "text": f"replica of {master}, caught up (LogID {have})",
                        }
                    last = f"replica of {master} at LogID {have}, catching up to {target}"
        if time.monotonic() > deadline:
            return {"ok": False, "text": f"unhealthy after {timeout:g} s: {last}"}
        await asyncio.sleep(0.2)


# -- files ----------------------------------------------------------------------------------


def write(node_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = []
    for name, text in doc["files"].items():
        if "/" in name or name.startswith("."):
            raise HostdError(f"bad file name {name!r}")
        tmp = node_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, node_dir / name)
        names.append(name)
    return {"ok": True, "text": "wrote " + ", ".join(sorted(names))}


# -- the cluster ----------------------------------------------------------------------------


def _store(doc: dict[str, Any]) -> Store:
    from stack.cluster.store import Store

    return Store(doc["etcd"], doc["cluster"], timeout=5.0)


def cluster_facts(doc: dict[str, Any]) -> dict[str, Any]:
    from stack.cluster.store import StoreError

    try:
        topo = _load_topology(doc)
    except StoreError as e:
        return {"ok": True, "error": str(e)}
    groups = [
        {"id": g.id, "master": g.master, "replicas": list(g.replicas)} for g in topo.groups.values()
    ]
    assigned = sum(topo.slots.counts().values()) if topo.initialised else 0
    return {
        "ok": True,
        "initialised": topo.initialised,
        "groups": groups,
        "unassigned_slots": 16384 - assigned,
        "leader": topo.leader,
    }


async def bootstrap(doc: dict[str, Any]) -> dict[str, Any]:
    from stack.cluster.nodemap import push_maps

    from ..local.runner import make_cluster

    store = _store(doc)
    said: list[str] = []
    try:
        groups = [(g["master"], g["replicas"]) for g in doc["groups"]]
        await make_cluster(store, groups, said.append, source="ledis-console deploy",
                           password=doc.get("password") or None)  # fmt: skip
        topo = await asyncio.to_thread(store.load)
        problems = [f"{p.addr}: {p.error}" for p in await push_maps(topo, doc.get("password"))
                    if p.error]  # fmt: skip
    finally:
        store.close()
    if problems:
        return {"ok": False, "text": "slot maps not taken: " + "; ".join(problems)}
    return {"ok": True, "text": "; ".join(said)}


def group_of(topo: Any, doc: dict[str, Any]) -> Any:
    """The group an add-node joins: ``group`` by id, else (0: a group added in this same
    run) the group that holds ``master``."""
    gid = int(doc.get("group") or 0)
    if gid:
        if gid not in topo.groups:
            raise HostdError(f"group {gid} is not in etcd")
        return topo.groups[gid]
    found = topo.find_node(str(doc.get("master", "")))
    if found is None:
        raise HostdError(f"no group in etcd holds {doc.get('master')!r}")
    return found[0]


async def add(doc: dict[str, Any], action: str) -> dict[str, Any]:
    from stack.cluster import nodes as cluster_nodes
    from stack.cluster import plans
    from stack.cluster.nodemap import push_maps

    store = _store(doc)
    password = doc.get("password") or None
    try:
        if action == "add-group":

            def make(t: Any) -> plans.Plan:
                return plans.plan_add_group(t, doc["addr"], None)

        else:
            topo = await asyncio.to_thread(store.load)
            group = group_of(topo, doc)
            await cluster_nodes.replicate(doc["addr"], group.master, password)

            def make(t: Any) -> plans.Plan:
                return plans.plan_add_node(t, group.id, doc["addr"])

        applied = await asyncio.to_thread(
            plans.apply_fresh, store, make, source="ledis-console deploy"
        )
        if action == "add-group":
            topo = await asyncio.to_thread(store.load)
            await push_maps(topo, password)
    finally:
        store.close()
    return {"ok": True, "text": applied.plan.recap()}


# -- entry ----------------------------------------------------------------------------------


def _stdin_doc() -> dict[str, Any]:
    doc = json.loads(sys.stdin.read() or "{}")
    if not isinstance(doc, dict):
        raise HostdError("stdin: expected a JSON object")
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hostd", description=__doc__)
    p.add_argument("action", choices=["run", "start", "stop", "health", "write", "cluster",
                                      "bootstrap", "add-group", "add-node", "switchover"])  # fmt: skip
    p.add_argument("dir", type=Path, nargs="?")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--max-lag", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s hostd: %(message)s",
        stream=sys.stderr,
    )  # fmt: skip
    if args.action == "run":
        return asyncio.run(_run(args.dir.resolve()))
    try:
        result: dict[str, Any]
        if args.action == "start":
            result = start(args.dir, args.timeout)
        elif args.action == "stop":
            result = stop(args.dir, args.timeout)
        elif args.action == "health":
            result = asyncio.run(health(args.dir, args.timeout, args.max_lag))
        elif args.action == "write":
            result = write(args.dir, _stdin_doc())
        elif args.action == "cluster":
            result = cluster_facts(_stdin_doc())
        elif args.action == "bootstrap":
            result = asyncio.run(bootstrap(_stdin_doc()))
        elif args.action == "switchover":
            from .switch import switchover

            result = asyncio.run(switchover(_stdin_doc(), args.timeout))
        else:
            result = asyncio.run(add(_stdin_doc(), args.action))
    except Exception as e:  # one JSON line for deploy, whatever went wrong; the trace on stderr
        log.debug("%s failed", args.action, exc_info=True)
        result = {"ok": False, "text": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
