"""End to end in a real terminal (tmux) against a real local cluster (`ledis-console up`):
the dashboard shows each group's master and the proxy, runs a migration started from its
actions until the slots are the target's, and `q` gives the shell back."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import redis

from console.local.layout import Layout
from stack.core.slots import key_slot

from .ports import free_block
from .test_cli_terminal import Tmux
from .test_console_cluster import console, ok

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def flat(screen: str) -> str:
    """The screen's text with a dialog's borders and line breaks taken out (wrapped
    sentences read whole)."""
    lines = (line.strip().strip("█▌▐").strip() for line in screen.splitlines())
    return " ".join(line for line in lines if line)


def test_dashboard_on_a_local_cluster(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base = free_block(8)
    layout = Layout(run_dir, base, groups=2, replicas=0, proxies=1)
    ok(console("up", "--run-dir", str(run_dir), "--port-base", str(base), "--groups", "2",
               "--replicas", "0", "--proxies", "1", "--detach"))  # fmt: skip
    t = Tmux()
    try:
        config = run_dir / "ledis-console.toml"
        cmd = f"{sys.executable} -m console.main --config {config} --interval 0.5; echo DASH-EXIT=$?; sleep 60"
        t.run("new-session", "-d", "-s", "cli", "-x", "140", "-y", "40", cmd)
        masters = [f"127.0.0.1:{layout.server_port(g, 0)}" for g in (1, 2)]
        screen = t.wait_for("etcd ok", timeout=60)
        for m in masters:
            screen = t.wait_for(f"{m} master", timeout=60)
        assert "cluster local" in screen
        proxy = f"127.0.0.1:{layout.proxy_port(1)}"
        screen = t.wait_for(proxy, timeout=60)  # the proxy's row
        t.keys("4")
        screen = t.wait_for("proxy ", timeout=30)  # the nodes tab lists it as a proxy
        assert proxy in screen and all(m in screen for m in masters)

        # keys in slots 0-7 (group 1's), written through the proxy
        keys = [k for k in (f"k{i}".encode() for i in range(200000)) if key_slot(k) < 8][:40]
        assert len(keys) == 40
        via_proxy = redis.Redis(port=layout.proxy_port(1), socket_timeout=10)
        for k in keys:
            via_proxy.set(k, k[::-1])

        # migrate them from the UI: a -> the first action (migrate) -> values -> preview ->
        # type its name -> the dashboard runs the task and shows its progress to the recap
        t.keys("a")
        t.wait_for("Migrate slots", timeout=30)
        t.keys("Enter")
        t.wait_for("slots: Enter goes to the next value", timeout=30)
        t.keys("0-7", "Enter")
        t.wait_for("to group: Enter goes to the preview", timeout=30)
        t.keys("2", "Enter")
        t.wait_for("type 'migrate' to apply", timeout=30)
        t.keys("migrate", "Enter")
        screen = t.wait_for("running in this dashboard", timeout=30)
        # quitting pauses it, and the recap says what goes on with it
        assert "cluster migrate --resume goes on with it" in flat(screen), screen
        screen = t.wait_for("recap:", timeout=60)
        # `up` starts a controller, which hosts migrations: it takes the task within the
        # dashboard's grace period, or the dashboard runs it itself
        assert "done: 8/8 slots, 40 keys (" in flat(screen), screen
        # who ran it is said once the host has decided, which may be a moment after the recap
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = t.screen()
            if any(who in flat(screen) for who in ("ran here: done", "left to the controller")):
                break
            time.sleep(0.1)
        assert any(
            who in flat(screen) for who in ("ran here: done", "left to the controller")
        ), screen
        doc = json.loads(ok(console("--config", str(config), "cluster", "status", "--json")))
        assert doc["slots"][0] == {"from": 0, "to": 7, "group": 2, "state": "online"}
        assert [m["state"] for m in doc["migrations"]] in ([], ["done"])
        target = redis.Redis(port=layout.server_port(2, 0), socket_timeout=10)
        assert target.dbsize() == 40
        assert all(via_proxy.get(k) == k[::-1] for k in keys)
        via_proxy.close()
        target.close()

        t.keys("Escape")  # alone: Escape then q in one burst reads as alt+q
        t.wait_for("4 Nodes", timeout=30)
        deadline = time.monotonic() + 30
        while "recap:" in t.screen() and time.monotonic() < deadline:
            time.sleep(0.05)
        t.keys("q")
        t.wait_for("DASH-EXIT=0", timeout=30)
    finally:
        t.run("kill-server")
        ok(console("down", "--run-dir", str(run_dir)))
