"""SSH to the hosts of a playbook (asyncssh): host keys checked, connections bounded.

Host keys are verified against the playbook's known_hosts file and nothing else: an unknown
or changed key is a ``SSHError`` saying so and what to do, before any command runs, and no
key is ever added. ``sudo = true`` runs every command through ``sudo -n``.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from .artifact import file_sha256
from .playbook import Host, Playbook

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0
COMMAND_TIMEOUT = 600.0  # a command's longest run unless its caller says otherwise
UPLOAD_TIMEOUT = 900.0
# a host that stops answering mid-run is given up after 3 unanswered keepalives 10 s apart
# (30 s), not after the command's whole timeout
KEEPALIVE_INTERVAL = 10.0
KEEPALIVE_COUNT_MAX = 3


def remote_hashes_command(target: str) -> str:
    """Prints ``SHA256  NAME`` for each wheel in ``target`` (nothing when there is none)."""
    return f"cd {shlex.quote(target)} 2>/dev/null && sha256sum -- *.whl 2>/dev/null || true"


def parse_hashes(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name:
            out[name.lstrip("*")] = digest
    return out


def staged_copy_script(stage: str, target: str, files: Mapping[str, str]) -> str:
    """Check the sha256 of each staged file (name -> digest) and copy exactly those into
    ``target``; a staging folder other than ``target`` is removed after. Any mismatch:
    nothing is copied, exit non-zero."""
    q = shlex.quote
    sums = " ".join(q(f"{digest}  {name}") for name, digest in files.items())
    names = " ".join(q(n) for n in files)
    script = f"set -e; cd {q(stage)}; printf '%s\\n' {sums} | sha256sum -c --quiet -"
    if stage != target:
        script += (f"; mkdir -p {q(target)}; cp -- {names} {q(target)}/; "
                   f"cd /; rm -rf -- {q(stage)}")  # fmt: skip
    return script


class SSHError(RuntimeError):
    pass


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def _where(host: Host) -> str:
    return f"{host.name} ({host.user}@{host.address}:{host.port})"


class Connection:
    """One host's SSH connection; at most ``limit`` commands of all hosts run at once."""

    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection, limit: asyncio.Semaphore):
        self.host = host
        self.conn = conn
        self.limit = limit

    def wrap(self, command: str) -> str:
        return f"sudo -n sh -c {shlex.quote(command)}" if self.host.sudo else command

    async def run(
        self, command: str, input: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> Result:
        return await self._run(self.wrap(command), input, timeout)

    async def _run(self, command: str, input: str | None, timeout: float) -> Result:
        async with self.limit:
            try:
                done = await asyncio.wait_for(
                    self.conn.run(command, input=input, check=False), timeout
                )
            except TimeoutError:
                raise SSHError(
                    f"{_where(self.host)}: a command ran longer than {timeout:g} s"
                ) from None
            except (asyncssh.Error, OSError) as e:
                raise SSHError(f"{_where(self.host)}: {e}") from None
        out = done.stdout if isinstance(done.stdout, str) else ""
        err = done.stderr if isinstance(done.stderr, str) else ""
        return Result(done.exit_status if done.exit_status is not None else 255, out, err)

    async def run_as_user(self, command: str, timeout: float = COMMAND_TIMEOUT) -> Result:
        """``command`` as the login user, never through sudo."""
        return await self._run(command, None, timeout)

    async def put(self, files: list[Path], target: str) -> None:
        """Copy ``files`` into the directory ``target`` (made if missing); a file already there
        with the same sha256 is kept (a name and a size say nothing: one version's wheel keeps
        its name from build to build). With sudo, files go through a fresh ``mktemp -d``
        folder (0700, the login user's) and are copied as root only after their sha256 is
        checked there."""
        want = {f.name: file_sha256(f) for f in files}
        r = await self.run(remote_hashes_command(target))
        have = parse_hashes(r.stdout) if r.ok else {}
        todo = [f for f in files if have.get(f.name) != want[f.name]]
        if not todo:
            return
        stage = target
        if self.host.sudo:
            r = await self.run_as_user("mktemp -d /tmp/ledis-upload.XXXXXXXXXX")
            stage = r.stdout.strip()
            if not r.ok or not stage.startswith("/tmp/ledis-upload."):
                raise SSHError(f"{_where(self.host)}: mktemp -d failed: {r.stderr.strip()}")

        async def send() -> None:
            async with self.conn.start_sftp_client() as sftp:
                if not self.host.sudo:
                    await sftp.makedirs(stage, exist_ok=True)
                for f in todo:
                    remote = f"{stage}/{f.name}"
                    await sftp.put(str(f), remote + ".part")
                    await sftp.posix_rename(remote + ".part", remote)

        async with self.limit:
            try:
                await asyncio.wait_for(send(), UPLOAD_TIMEOUT)
            except TimeoutError:
                raise SSHError(f"{_where(self.host)}: upload took longer than "
                               f"{UPLOAD_TIMEOUT:g} s") from None  # fmt: skip
            except (asyncssh.Error, OSError) as e:
                raise SSHError(f"{_where(self.host)}: upload failed: {e}") from None
        script = staged_copy_script(stage, target, {f.name: want[f.name] for f in todo})
        r = await self.run(script)
        if not r.ok:
            raise SSHError(f"{_where(self.host)}: the upload's check failed: "
                           f"{(r.stderr or r.stdout).strip()[-300:]}")  # fmt: skip

    def close(self) -> None:
        self.conn.close()


async def _connect_one(
    book: Playbook, host: Host, tunnel: asyncssh.SSHClientConnection | None
) -> asyncssh.SSHClientConnection:
    known = book.known_hosts
    if not known.exists():
        raise SSHError(f"known_hosts file {known} does not exist (deploy.known_hosts)")
    try:
        return await asyncio.wait_for(
            asyncssh.connect(
                host.address,
                port=host.port,
                username=host.user,
                known_hosts=str(known),
                client_keys=[host.key] if host.key else (),
                agent_path=None if host.key else (),
                config=[],
                tunnel=tunnel,
                keepalive_interval=KEEPALIVE_INTERVAL,
                keepalive_count_max=KEEPALIVE_COUNT_MAX,
            ),
            CONNECT_TIMEOUT,
        )
    except asyncssh.HostKeyNotVerifiable as e:
        raise SSHError(
            f"{_where(host)}: host key not verified against {known} ({e.reason}). Nothing was "
            "run. If the host is the right one, check its key out of band and add it to that "
            f"file (ssh-keyscan -p {host.port} {host.address} shows it); deploy never adds keys"
        ) from None
    except asyncssh.PermissionDenied:
        raise SSHError(f"{_where(host)}: permission denied (check user and key)") from None
    except TimeoutError:
        raise SSHError(f"{_where(host)}: no SSH connection within {CONNECT_TIMEOUT:g} s") from None
    except (asyncssh.Error, OSError) as e:
        raise SSHError(f"{_where(host)}: cannot connect: {e}") from None


async def connect_all(book: Playbook, names: list[str]) -> dict[str, Connection]:
    """Connect to every host of ``names`` (through their jump hosts), in parallel, bounded;
    the first failure closes the others and raises."""
    limit = asyncio.Semaphore(book.connections)
    jumps: dict[str, asyncio.Task[asyncssh.SSHClientConnection]] = {}

    async def one(name: str) -> asyncssh.SSHClientConnection:
        host = book.hosts[name]
        tunnel = None
        if host.jump:
            if host.jump not in jumps:
                jumps[host.jump] = asyncio.ensure_future(one(host.jump))
            tunnel = await jumps[host.jump]
        async with limit:
            return await _connect_one(book, host, tunnel)

    tasks = {n: asyncio.ensure_future(one(n)) for n in names}
    await asyncio.gather(*tasks.values(), *jumps.values(), return_exceptions=True)
    errors = [t.exception() for t in [*tasks.values(), *jumps.values()] if t.exception()]
    if errors:
        for t in [*tasks.values(), *jumps.values()]:
            if not t.exception():
                t.result().close()
        raise errors[0]  # type: ignore[misc]
    cmd_limit = asyncio.Semaphore(book.connections)
    every = {**jumps, **tasks}  # jump hosts too, so that close_all closes them
    return {n: Connection(book.hosts[n], t.result(), cmd_limit) for n, t in every.items()}


def close_all(conns: Mapping[str, Connection]) -> None:
    for c in conns.values():
        c.close()
