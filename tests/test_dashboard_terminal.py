"""End to end in a real terminal (tmux) against a real local cluster (`ledis-console up`):
the dashboard shows each group's master and the proxy, and `q` gives the shell back."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from console.local.layout import Layout

from .test_cli_terminal import Tmux
from .test_console_cluster import console, ok
from .test_local_cluster import free_block

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


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
        t.keys("q")
        t.wait_for("DASH-EXIT=0", timeout=30)
    finally:
        t.run("kill-server")
        ok(console("down", "--run-dir", str(run_dir)))
