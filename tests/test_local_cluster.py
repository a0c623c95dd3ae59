"""``ledis-console up --detach`` and ``down``: real etcd and servers from one port base."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import redis

from console.local.layout import Layout
from console.local.supervisor import pid_alive

from .ports import free_block
from .servers import wait_until
from .test_console_cluster import console, ok

DEADLINE = 60.0


def pids(run_dir: Path) -> dict[str, int]:
    return {p.parent.name: int(p.read_text()) for p in run_dir.glob("*/pid")}


def test_up_detach_down_and_up_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base = free_block(6)
    layout = Layout(run_dir, base, groups=1, replicas=1, proxies=0)
    out = ok(console("up", "--run-dir", str(run_dir), "--port-base", str(base), "--groups", "1",
                     "--replicas", "1", "--proxies", "0", "--detach"))  # fmt: skip
    try:
        assert f"127.0.0.1:{base + 2}" in out and "down --run-dir" in out
        procs = pids(run_dir)
        assert set(procs) == {"etcd", "g1-master", "g1-replica1", "controller1"}
        assert all(pid_alive(p) for p in procs.values())
        supervisor = int((run_dir / "up.pid").read_text())
        config = run_dir / "ledis-console.toml"
        doc = json.loads(ok(console("--config", str(config), "cluster", "status", "--json")))
        master, replica = layout.server_port(1, 0), layout.server_port(1, 1)
        assert doc["cluster"] == "local" and doc["etcd"] == [f"127.0.0.1:{base}"]
        assert doc["groups"][0]["master"] == f"127.0.0.1:{master}"
        assert doc["groups"][0]["replicas"] == [f"127.0.0.1:{replica}"]
        assert doc["slots"] == [{"from": 0, "to": 16383, "group": 1, "state": "online"}]
        assert doc["leader"] == "controller1"  # up starts one ledis-failover by default
        epoch = doc["epoch"]
        r = redis.Redis(port=master, socket_timeout=30)
        r.set("kept", "yes")
        # a crashed server is restarted by the supervisor, on the same data
        os.kill(procs["g1-master"], signal.SIGKILL)
        wait_until(
            lambda: pids(run_dir).get("g1-master", procs["g1-master"]) != procs["g1-master"],
            "a restart",
        )
        wait_until(lambda: _get(master, "kept") == b"yes", "the restarted master")
        assert "g1-master (127.0.0.1:" in (run_dir / "supervisor.log").read_text()
        # a second `up --detach` while it runs (make run twice) says so and lists it; in
        # the foreground, or with another shape, it is refused
        again = ok(console("up", "--run-dir", str(run_dir), "--detach"))
        assert f"already running from {run_dir}" in again and "g1-master" in again
        assert "dashboard: " in again
        again = console("up", "--run-dir", str(run_dir), "--detach", "--proxies", "3")
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = ok(console("down", "--run-dir", str(run_dir)))
    assert "stopped" in down
    assert not pid_alive(supervisor)
    assert not any(pid_alive(p) for p in procs.values())
    # flags that contradict the run dir are refused
    bad = console("up", "--run-dir", str(run_dir), "--groups", "3", "--detach")
    assert bad.returncode == 1 and "--groups 1" in bad.stderr
    # the second up reuses the data and the topology (no new init)
    ok(console("up", "--run-dir", str(run_dir), "--detach"))
    try:
        wait_until(lambda: _get(replica, "kept") == b"yes", "the replica's data")
        assert _get(master, "kept") == b"yes"
        role = redis.Redis(port=replica, socket_timeout=30).execute_command("ROLE")
        assert role[0] == b"slave" and role[2] == master
        doc = json.loads(ok(console("--config", str(config), "cluster", "status", "--json")))
        assert doc["epoch"] == epoch
        events = ok(console("--config", str(config), "cluster", "events"))
        assert events.count("/init ") == 1
    finally:
        ok(console("down", "--run-dir", str(run_dir)))
    assert not pids(run_dir)
    assert "nothing is running" in ok(console("down", "--run-dir", str(run_dir)))


def _get(port: int, key: str) -> bytes | None:
    try:
        return redis.Redis(port=port, socket_timeout=5).get(key)  # type: ignore[return-value]
    except redis.ConnectionError:
        return None


def test_down_cleans_up_after_a_killed_supervisor(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base = free_block(5)
    ok(console("up", "--run-dir", str(run_dir), "--port-base", str(base), "--groups", "1",
               "--replicas", "0", "--proxies", "0", "--detach"))  # fmt: skip
    procs = pids(run_dir)
    os.kill(int((run_dir / "up.pid").read_text()), signal.SIGKILL)
    out = ok(console("down", "--run-dir", str(run_dir)))
    assert "left without a supervisor" in out
    assert not any(pid_alive(p) for p in procs.values())


def test_port_in_use_is_named(tmp_path: Path) -> None:
    base = free_block(5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 2))
        s.listen()
        r = console("up", "--run-dir", str(tmp_path / "run"), "--port-base", str(base),
                    "--groups", "1", "--replicas", "0", "--proxies", "0", "--detach")  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"port {base + 2} (for g1-master) is in use" in r.stderr


def test_foreground_up_stops_everything_on_sigterm(tmp_path: Path) -> None:
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    base = free_block(5)
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.main", "up", "--run-dir", str(run_dir), "--port-base",
         str(base), "--groups", "1", "--replicas", "0", "--proxies", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: (run_dir / "up.ready").exists() or proc.poll() is not None, "up")
        assert proc.poll() is None
        procs = pids(run_dir)
        redis.Redis(port=base + 2, socket_timeout=30).set("flushed", "1")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out and "Traceback" not in out
    assert not any(pid_alive(p) for p in procs.values())
    # the server shut down cleanly (SIGTERM, not SIGKILL)
    assert "did not stop" not in out
