"""``ledis-console up`` with a proxy: the local cluster's front door, end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import redis

from console.local.layout import Layout

from .ports import free_block
from .servers import wait_until
from .test_console_cluster import console, ok


def test_up_with_a_proxy_then_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base = free_block(5)  # etcd (2), two masters, one proxy
    layout = Layout(run_dir, base, groups=2, replicas=0, proxies=1)
    out = ok(console("up", "--run-dir", str(run_dir), "--port-base", str(base), "--groups", "2",
                     "--replicas", "0", "--proxies", "1", "--detach"))  # fmt: skip
    try:
        port = layout.proxy_port(1)
        assert f"127.0.0.1:{port}" in out and "not part of this build" not in out
        r = redis.Redis(port=port, socket_timeout=30)
        assert r.mset({"a": 1, "b": 2, "c": 3})
        assert r.mget("a", "b", "c") == [b"1", b"2", b"3"]
        masters = [redis.Redis(port=layout.server_port(g, 0)) for g in (1, 2)]
        assert sorted(m.dbsize() for m in masters) == [1, 2]  # both groups hold keys
        cli = subprocess.run(["redis-cli", "-p", str(port), "GET", "b"], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert cli.stdout.strip() == "2"
        config = str(run_dir / "ledis-console.toml")

        def registered() -> bool:
            doc = json.loads(ok(console("--config", config, "cluster", "status", "--json")))
            return [p["addr"] for p in doc["proxies"]] == [f"127.0.0.1:{port}"]

        wait_until(registered, "the proxy in the status", 60)
        r.close()
        for m in masters:
            m.close()
    finally:
        ok(console("down", "--run-dir", str(run_dir)))
    assert "ledis-proxy stopped" in (run_dir / "proxy1" / "proxy.log").read_text()
