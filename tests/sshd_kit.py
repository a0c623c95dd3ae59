"""A real sshd on loopback for the deploy tests: its own host key, an authorized key made for
the test, known_hosts written here, and the environment ``playbooks/loopback.toml`` reads.

``/usr/sbin/sshd -D -e -f CONF`` on a free port at 127.0.0.1 (PermitRootLogin
prohibit-password: the tests run as root), ready once it sends its banner. The deploy
directory and the port range (100 free ports from LEDIS_PORT_BASE) are the test's own.
``deploy`` runs ``ledis-console deploy`` as a user would; ``Writer`` writes through a proxy
the whole time a rollout runs and keeps every error; ``deploy_under_writer`` runs a rollout
with one writing and holds it to 0 errors and every acknowledged write read back.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from stack.cluster.etcd_server import free_port

from .servers import wait_until

SSHD = Path("/usr/sbin/sshd")
READY_TIMEOUT = 30.0


def deploy(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    """``ledis-console deploy ARGS`` with ``env`` added: (exit code, stdout + stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "console.main", "deploy", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


class Writer(threading.Thread):
    """SET roll:<i> through the proxy, ~200 a second, until stopped; every error is kept."""

    def __init__(self, port: int, password: str, host: str = "127.0.0.1") -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(host=host, port=port, password=password, socket_timeout=30)
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            try:
                self.client.set(f"roll:{i}", i)
                self.acked.append(i)
            except redis.RedisError as e:
                self.errors.append(repr(e))
            i += 1
            time.sleep(0.005)


def deploy_under_writer(
    env: dict[str, str], cwd: Path, playbook: Path, port: int, password: str,
    host: str = "127.0.0.1",
) -> str:  # fmt: skip
    """``deploy PLAYBOOK --yes`` while a ``Writer`` writes through the proxy at host:port, from
    50 writes before it to 50 after: its output, once the deploy succeeded, no write failed
    and every acknowledged one reads back through the proxy."""
    writer = Writer(port, password, host)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) > 50, "writes before the rollout", 60)
        code, out = deploy(env, cwd, str(playbook), "--yes")
        n = len(writer.acked)
        wait_until(lambda: len(writer.acked) > n + 50, "writes after the rollout", 60)
    finally:
        writer.halt.set()
        writer.join(30)
    assert code == 0, out
    assert writer.errors == [], writer.errors[:5]
    got = writer.client.mget([f"roll:{i}" for i in writer.acked])
    assert [int(v) for v in got] == writer.acked  # every acknowledged write is there
    return out


def keygen(path: Path, kind: str = "ed25519") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "ledis-test", "-f", str(path)],
                   check=True)  # fmt: skip
    return (path.with_suffix(".pub") if path.suffix else Path(f"{path}.pub")).read_text().strip()


class Sshd:
    """``address``/``port``: where it listens (port 0: a free one); ``netns``: run it in that
    network namespace (``ip netns exec``), where it may take port 22."""

    def __init__(
        self, root: Path, address: str = "127.0.0.1", port: int = 0, netns: str = ""
    ) -> None:
        self.root = root
        self.address = address
        self.fixed_port = port
        self.netns = netns
        root.mkdir(parents=True, exist_ok=True)
        self.host_key = root / "ssh_host_ed25519_key"
        self.client_key = root / "id_ed25519"
        self.known_hosts = root / "known_hosts"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "sshd.log"

    def start(self) -> Sshd:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
        host_pub = keygen(self.host_key)
        client_pub = keygen(self.client_key)
        (self.root / "authorized_keys").write_text(client_pub + "\n")
        os.chmod(self.root / "authorized_keys", 0o600)
        for _ in range(5):
            self.port = self.fixed_port or free_port()
            conf = self.root / "sshd_config"
            conf.write_text(
                f"Port {self.port}\nListenAddress {self.address}\nHostKey {self.host_key}\n"
                f"PidFile {self.root / 'sshd.pid'}\nAuthorizedKeysFile {self.root / 'authorized_keys'}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 64\nMaxStartups 64\n"
            )
            with open(self.log, "ab") as out:
                prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
                self.proc = subprocess.Popen([*prefix, str(SSHD), "-D", "-e", "-f", str(conf)],
                                             stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            if self._ready():
                break
            self.stop()
        else:
            raise RuntimeError(f"sshd did not start: {self.log.read_text()[-500:]}")
        where = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        self.known_hosts.write_text(f"{where} {host_pub}\n")
        return self

    def _ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.address, self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def env(self, deploy_dir: Path, port_base: int) -> dict[str, str]:
        return {
            "LEDIS_SSH_USER": os.environ.get("USER") or "root",
            "LEDIS_SSH_PORT": str(self.port),
            "LEDIS_SSH_KEY": str(self.client_key),
            "LEDIS_KNOWN_HOSTS": str(self.known_hosts),
            "LEDIS_DEPLOY_DIR": str(deploy_dir),
            "LEDIS_PORT_BASE": str(port_base),
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def kill_deployed(deploy_dir: Path) -> None:
    """Stop what a test deployed into ``deploy_dir`` and is still running (each node's
    supervisor, then anything whose pid file is left): only processes started there."""
    for pid_file in [*deploy_dir.glob("nodes/*/hostd.pid"), *deploy_dir.glob("nodes/*/pid")]:
        try:
            pid = int(pid_file.read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if str(deploy_dir).encode() in cmd:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for pid_file in deploy_dir.glob("nodes/*/pid"):
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


class NetnsHosts:
    """``count`` hosts, each a network namespace of its own with an address 10.X.Y.(i+1) on a
    veth joined to a bridge in this namespace (which holds 10.X.Y.254, so the deploying test
    reaches them), and an sshd on port 22 of that address. Names carry a tag of this run, so
    nothing else on the machine is touched; ``stop`` removes all of it."""

    def __init__(self, root: Path, count: int) -> None:
        self.root = root
        self.tag = f"ld{os.getpid() % 100000}{random.randrange(100)}"
        self.net = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
        self.bridge = f"br{self.tag}"
        self.names = [f"{self.tag}h{i}" for i in range(count)]
        self.addresses = [f"{self.net}.{i + 1}" for i in range(count)]
        self.sshds: list[Sshd] = []

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def start(self) -> NetnsHosts:
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", f"{self.net}.254/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        for i, (ns, addr) in enumerate(zip(self.names, self.addresses, strict=True)):
            self._ip("netns", "add", ns)
            veth = f"v{self.tag}{i}"
            self._ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._ip("link", "set", veth, "master", self.bridge)
            self._ip("link", "set", veth, "up")
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            self.sshds.append(Sshd(self.root / ns, addr, 22, ns).start())
        (self.root / "known_hosts").write_text(
            "".join(s.known_hosts.read_text() for s in self.sshds)
        )
        return self

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.sshds[0].client_key

    def stop(self) -> None:
        for s in self.sshds:
            s.stop()
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
