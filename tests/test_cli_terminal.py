"""One end-to-end session in a real terminal (tmux): type, complete with Tab, read the screen."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from .servers import LedisServer

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Tmux:
    def __init__(self) -> None:
        self.sock = f"ledis-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                             timeout=30)
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "cli")

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on screen:\n{screen}")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "cli", *keys)


@pytest.fixture
def tmux(r: object, ledis_server: LedisServer) -> Iterator[Tmux]:
    t = Tmux()
    cmd = (f"{sys.executable} -m console.cli.main -p {ledis_server.port} --history-file '' "
           "--config /nonexistent")
    t.run("new-session", "-d", "-s", "cli", "-x", "120", "-y", "30", cmd)
    yield t
    t.run("kill-server")


def test_type_complete_and_read(tmux: Tmux, ledis_server: LedisServer) -> None:
    prompt = f"127.0.0.1:{ledis_server.port}>"
    tmux.wait_for(prompt)
    tmux.keys("SET k", "")
    screen = tmux.wait_for("value [NX|XX] [GET]")  # the greyed hint
    assert "Set the string value of a key" in screen  # the toolbar
    tmux.keys(" hello", "Enter")
    tmux.wait_for("OK")
    tmux.keys("GETD")
    tmux.wait_for("Get the value of a key and delete the key")  # the completion menu
    tmux.keys("Tab")
    tmux.wait_for("GETDEL")
    tmux.keys(" k", "Enter")
    tmux.wait_for('"hello"')
    tmux.keys("SELECT 3", "Enter")
    tmux.wait_for(f"127.0.0.1:{ledis_server.port}[3]>")


def test_hint_gone_once_the_line_is_accepted(tmux: Tmux, ledis_server: LedisServer) -> None:
    prompt = f"127.0.0.1:{ledis_server.port}>"
    tmux.wait_for(prompt)
    tmux.keys("SET hk v")
    tmux.wait_for("[NX|XX]")  # the optional arguments, greyed, while typing
    tmux.keys("Enter")
    screen = tmux.wait_for("OK")
    assert f"{prompt} SET hk v" in screen
    assert "[NX|XX]" not in screen  # not left in the scrollback


def test_monitor_streams_until_ctrl_c(tmux: Tmux, ledis_server: LedisServer) -> None:
    prompt = f"127.0.0.1:{ledis_server.port}>"
    tmux.wait_for(prompt)
    tmux.keys("MONITOR", "Enter")
    tmux.wait_for("OK")
    writer = ledis_server.client()
    writer.set("seen-by-monitor", "1")
    tmux.wait_for('"SET" "seen-by-monitor" "1"')
    writer.close()
    tmux.keys("C-c")
    tmux.keys("PING", "Enter")  # a fresh connection: PING answers PONG, not a monitor line
    screen = tmux.wait_for("PONG")
    assert screen.count('"PING"') == 0, screen
