"""What one host has: run there by the host's own Python (stdlib only, no install needed).

Deploy sends this file's source over SSH to ``PYTHON - DIR`` and reads one JSON document
from its output: the Python version, what ``DIR/installed.json`` says is installed, the
checksum of every file of every node under ``DIR/nodes/``, whether each node's supervisor
runs (its pid file names a live process started for that node), whether systemd is PID 1,
and the interpreter and platform the wheels must be built for.
"""

import hashlib
import json
import os
import sys
import sysconfig

NODE_FILES = ("node.json", "config.toml", "password")
"""The files a node runs from, in its folder ``DIR/nodes/NAME/`` (deploy writes them)."""
UNIT_DIR = "/etc/systemd/system"


def unit_name(cluster, name):
    """The systemd unit of node ``name`` of ``cluster`` (where systemd is PID 1)."""
    return f"ledis-{cluster}-{name}.service"


def platform_tag():
    """This machine's wheel platform tag, as pip names it (``linux_x86_64``)."""
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def python_tag(implementation, version):
    """The wheel interpreter tag of a Python (``cp311``; "" for other implementations)."""
    return f"cp{version[0]}{version[1]}" if implementation == "cpython" else ""


def alive(pid, needle):
    """The process exists, is not a zombie, and its command line holds ``needle``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):
        return False
    return state != "Z" and needle in cmd


def _pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def facts(root):
    out: dict = {
        "v": 1,
        "python": list(sys.version_info[:3]),
        "installed": None,
        "nodes": {},
        "systemd": os.path.isdir("/run/systemd/system"),
        "implementation": sys.implementation.name,
        "platform": platform_tag(),
    }
    try:
        with open(os.path.join(root, "installed.json")) as f:
            out["installed"] = json.load(f)
    except (OSError, ValueError):
        pass
    nodes_dir = os.path.join(root, "nodes")
    try:
        names = sorted(os.listdir(nodes_dir))
    except OSError:
        names = []
    for name in names:
        d = os.path.join(nodes_dir, name)
        files = {}
        for fname in NODE_FILES:
            try:
                with open(os.path.join(d, fname), "rb") as f:
                    files[fname] = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                pass
        pid = _pid(os.path.join(d, "hostd.pid"))
        running = pid is not None and alive(pid, d)
        started = {}
        if running:
            try:
                with open(os.path.join(d, "started.json")) as f:
                    started = json.load(f)
            except (OSError, ValueError):
                pass
        out["nodes"][name] = {
            "files": files,
            "pid": pid if running else None,
            "running": running,
            "started": started,
        }
    return out


if __name__ == "__main__":
    json.dump(facts(sys.argv[1]), sys.stdout)
    sys.stdout.write("\n")
