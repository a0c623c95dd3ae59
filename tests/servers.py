"""Real processes for tests: ledis-server and redis-server on free ports, data in temp dirs."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

READY_TIMEOUT = 30.0


def _wait_for(path: Path, proc: subprocess.Popen[bytes], what: str) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready")
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{what} not ready after {READY_TIMEOUT}s")


class LedisServer:
    """A ledis-server subprocess; ``port`` is read from its ready-file."""

    def __init__(
        self,
        workdir: Path,
        *extra: str,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        rlimits: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.rlimits = rlimits or {}  # resource limits of the process (RLIMIT_* -> soft, hard)
        self.env = {**os.environ, **env} if env else None
        self.data_dir = data_dir or workdir / "data"
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = workdir / "ledis.log"

    def start(self) -> LedisServer:
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # DEBUG is off by default (as in Redis 7); tests use DEBUG DIGEST & co, so their servers
        # allow it unless the test sets --enable-debug-command itself.
        debug = [] if "--enable-debug-command" in self.extra else ["--enable-debug-command", "yes"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stack.server.main",
                    "--port",
                    "0",
                    "--data-dir",
                    str(self.data_dir),
                    "--ready-file",
                    str(ready),
                    *debug,
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=self._limit if self.rlimits else None,
            )
        self.port = int(_wait_for(ready, self.proc, "ledis-server"))
        return self

    def _limit(self) -> None:
        for which, limits in self.rlimits.items():
            resource.setrlimit(which, limits)

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30, protocol=2, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class RedisServer:
    """The real redis-server, on a unix socket in a temp dir (no port to race for)."""

    def __init__(self, workdir: Path, *extra: str, port: int = 0) -> None:
        self.workdir = workdir
        self.socket = workdir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra = list(extra)  # e.g. --requirepass; replaces --enable-debug-command yes
        self.port = port  # 0: the unix socket only

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *(self.extra or ["--enable-debug-command", "yes"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.socket.exists():
                try:
                    if self.client().ping():
                        return self
                except redis.AuthenticationError:
                    return self  # answers, with a password set
                except redis.ConnectionError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=30, protocol=2, **kw)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def wait_until(
    check: Callable[[], object], what: str = "a condition", timeout: float = READY_TIMEOUT
) -> None:
    """Poll ``check`` until it is true (generous deadline; no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
