"""A real sshd on loopback for the deploy tests: its own host key, an authorized key made for
the test, known_hosts written here, and the environment ``playbooks/loopback.toml`` reads.

``/usr/sbin/sshd -D -e -f CONF`` on a free port at 127.0.0.1 (PermitRootLogin
prohibit-password: the tests run as root), ready once it sends its banner. The deploy
directory and the port range (100 free ports from LEDIS_PORT_BASE) are the test's own.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
READY_TIMEOUT = 30.0


def keygen(path: Path, kind: str = "ed25519") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "ledis-test", "-f", str(path)],
                   check=True)  # fmt: skip
    return (path.with_suffix(".pub") if path.suffix else Path(f"{path}.pub")).read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_range(span: int = 100) -> int:
    """A base port with ``span`` free ports from it (checked now; nobody else should take them
    in the seconds a test needs)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - span)
        ok = True
        for port in range(base, base + span):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no 100 free ports in a row")


class Sshd:
    def __init__(self, root: Path) -> None:
        self.root = root
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
            self.port = free_port()
            conf = self.root / "sshd_config"
            conf.write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
                f"PidFile {self.root / 'sshd.pid'}\nAuthorizedKeysFile {self.root / 'authorized_keys'}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxSessions 64\nMaxStartups 64\n"
            )
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(conf)],
                                             stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
            if self._ready():
                break
            self.stop()
        else:
            raise RuntimeError(f"sshd did not start: {self.log.read_text()[-500:]}")
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        return self

    def _ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
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
