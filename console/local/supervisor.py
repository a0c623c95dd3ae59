"""Start, watch and stop the processes of a local cluster.

Each process runs in a session of its own (a Ctrl-C in the terminal reaches only the
supervisor, which then stops everything in order), writes its output to a log in its folder
and its pid to a pid file. A process is ready when its ready-file names its port (etcd: when
``/health`` says true). One that exits while the cluster runs is restarted after a backoff
that grows while it keeps failing; every exit and restart is reported. Stopping sends
SIGTERM (servers flush and close their data) in the reverse order of starting, and SIGKILL
only to a process that does not exit in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stack.cluster.etcd_server import healthy
from stack.core.resp_client import Backoff

from .layout import ETCD, SERVER, ProcessSpec

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
STABLE_AFTER = 60.0  # a process that ran this long starts its backoff afresh
RESTART_BACKOFF = Backoff(initial=0.5, maximum=30.0)


class StartError(RuntimeError):
    pass


@dataclass
class Running:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process
    started: float
    failures: int = 0
    restarts: int = 0
    monitor: asyncio.Task[None] | None = field(default=None, repr=False)


def log_tail(spec: ProcessSpec, lines: int = 3) -> str:
    try:
        text = spec.log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


class Supervisor:
    def __init__(
        self,
        argv_for: Callable[[ProcessSpec], Awaitable[Sequence[str]]],
        report: Callable[[str], None],
        backoff: Backoff = RESTART_BACKOFF,
    ) -> None:
        self.argv_for = argv_for
        self.report = report
        self.backoff = backoff
        self.running: dict[str, Running] = {}
        self.order: list[str] = []
        self.stopping = False

    # -- starting ------------------------------------------------------------------------------

    async def _launch(self, spec: ProcessSpec) -> asyncio.subprocess.Process:
        spec.workdir.mkdir(parents=True, exist_ok=True)
        if spec.ready_file is not None:
            spec.ready_file.unlink(missing_ok=True)
        argv = list(await self.argv_for(spec))
        with open(spec.log_file, "ab") as out:
            out.write(
                f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode()
            )
            out.flush()
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        spec.pid_file.write_text(f"{proc.pid}\n")
        return proc

    async def _ready(
        self, spec: ProcessSpec, proc: asyncio.subprocess.Process, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise StartError(
                    f"{spec.name} exited with code {proc.returncode} while starting: {log_tail(spec)}"
                )
            if spec.kind == ETCD:
                if await asyncio.to_thread(healthy, spec.addr, 1.0):
                    return
            elif (
                spec.ready_file is not None
                and spec.ready_file.exists()
                and spec.ready_file.read_text().strip()
            ):
                return
            await asyncio.sleep(0.05)
        raise StartError(f"{spec.name} not ready after {timeout:g} s: {log_tail(spec)}")

    async def start(self, spec: ProcessSpec, timeout: float = READY_TIMEOUT) -> None:
        """Start one process and wait until it is ready; then watch it."""
        proc = await self._launch(spec)
        try:
            await self._ready(spec, proc, timeout)
        except BaseException:
            await self._terminate(spec, proc)
            raise
        run = Running(spec, proc, time.monotonic())
        self.running[spec.name] = run
        if spec.name not in self.order:
            self.order.append(spec.name)
        run.monitor = asyncio.create_task(self._watch(run), name=f"watch-{spec.name}")

    async def start_many(
        self, specs: Sequence[ProcessSpec], timeout: float = READY_TIMEOUT
    ) -> None:
        results = await asyncio.gather(
            *(self.start(s, timeout) for s in specs), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    # -- watching ------------------------------------------------------------------------------

    async def _watch(self, run: Running) -> None:
        while True:
            code = await run.proc.wait()
            if self.stopping:
                return
            ran = time.monotonic() - run.started
            run.failures = 1 if ran > STABLE_AFTER else run.failures + 1
            delay = self.backoff.delay(run.failures)
            self.report(
                f"{run.spec.name} ({run.spec.addr}) exited with code {code} after {ran:.0f} s; "
                f"restarting in {delay:.1f} s"
            )
            await asyncio.sleep(delay)
            while not self.stopping:
                try:
                    run.proc = await self._launch(run.spec)
                    await self._ready(run.spec, run.proc, READY_TIMEOUT)
                except (StartError, OSError) as e:
                    run.failures += 1
                    delay = self.backoff.delay(run.failures)
                    self.report(f"{run.spec.name}: restart failed ({e}); again in {delay:.1f} s")
                    await asyncio.sleep(delay)
                    continue
                run.started = time.monotonic()
                run.restarts += 1
                self.report(f"{run.spec.name} restarted (pid {run.proc.pid})")
                break
            if self.stopping:
                return

    # -- stopping ------------------------------------------------------------------------------

    async def _terminate(self, spec: ProcessSpec, proc: asyncio.subprocess.Process) -> int | None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.report(f"{spec.name} did not stop in {STOP_TIMEOUT:g} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        spec.pid_file.unlink(missing_ok=True)
        return proc.returncode

    async def stop_all(self) -> None:
        """Stop everything: proxies first, then replicas, masters and etcd last (each rank in
        parallel), so nothing loses what it depends on while it still serves."""
        self.stopping = True
        for run in self.running.values():
            if run.monitor is not None:
                run.monitor.cancel()
        ranks: dict[int, list[Running]] = {}
        for run in self.running.values():
            ranks.setdefault(_stop_rank(run.spec), []).append(run)
        for rank in sorted(ranks):
            await asyncio.gather(*(self._terminate(r.spec, r.proc) for r in ranks[rank]))

    def pids(self) -> dict[str, int]:
        return {n: r.proc.pid for n, r in self.running.items() if r.proc.returncode is None}


def _stop_rank(spec: ProcessSpec) -> int:
    if spec.kind == ETCD:
        return 9
    if spec.kind == SERVER:
        return 5 if spec.role == "replica" else 6
    return 0  # proxies, controllers: the clients of the rest


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def detach(
    argv: list[str], log_path: Path, ready: Path, timeout: float,
    cwd: Path | None = None, env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    """Start ``argv`` in a session of its own (output appended to ``log_path``) and wait for
    the file ``ready``: (the process, ``"ready"``, ``"exited"`` or ``"timeout"``). The
    process is left running in every case; the caller decides what a failure means."""
    ready.unlink(missing_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=cwd, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            return proc, "exited"
        if time.monotonic() > deadline:
            return proc, "timeout"
        time.sleep(0.05)
    return proc, "ready"
