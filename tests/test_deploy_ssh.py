"""deploy's SSH layer against a real sshd (tests/sshd_kit.py): a host that goes silent
mid-command is given up by keepalive, not after the command's whole timeout."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from console.deploy import ssh
from console.deploy.playbook import load

from .sshd_kit import SSHD, Sshd

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not SSHD.exists() or shutil.which("ssh-keygen") is None,
    reason="needs root and openssh-server (scripts/setup.sh installs it)",
)


class Relay:
    """A TCP relay to ``port`` that can be frozen: it then forwards nothing either way, as a
    host that dropped off the network (no FIN, no RST)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.frozen = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(65536):
                if self.frozen.is_set():
                    await asyncio.Event().wait()  # hold on to everything, say nothing
                w.write(data)
                await w.drain()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer), return_exceptions=True)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.timeout(300)
def test_a_silent_host_is_given_up_by_keepalive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ssh, "KEEPALIVE_INTERVAL", 0.5)
    monkeypatch.setattr(ssh, "KEEPALIVE_COUNT_MAX", 2)
    sshd = Sshd(tmp_path / "ssh").start()

    async def scenario() -> str:
        relay = Relay(sshd.port)
        port = await relay.start()
        key = sshd.known_hosts.read_text().split(" ", 1)[1]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {key}")
        env = sshd.env(tmp_path / "deploy", 20000) | {"LEDIS_KNOWN_HOSTS": str(known)}
        book = load(ROOT / "playbooks" / "loopback.toml", env)
        book = replace(book, hosts={"local": replace(book.hosts["local"], port=port)})
        conns = await ssh.connect_all(book, ["local"])
        try:
            assert (await conns["local"].run("echo up")).stdout == "up\n"
            relay.frozen.set()
            with pytest.raises(ssh.SSHError) as e:
                await conns["local"].run("sleep 120; echo late", timeout=3600)
            return str(e.value)
        finally:
            ssh.close_all(conns)
            relay.close()

    try:
        said = asyncio.run(scenario())
    finally:
        sshd.stop()
    assert said.startswith("local (") and "ran longer" not in said, said
