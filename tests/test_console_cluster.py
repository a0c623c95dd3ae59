"""``ledis-console`` end to end: real etcd, real ledis-servers, the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import ConfigError, load
from stack.cluster.etcd_server import EtcdServer, free_port
from stack.cluster.store import Store

from .servers import LedisServer


def console(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def config(tmp_path: Path, etcd: EtcdServer, cluster_name: str) -> Iterator[Path]:
    path = tmp_path / "ledis-console.toml"
    path.write_text(f'[cluster]\nname = "{cluster_name}"\netcd = ["{etcd.endpoint}"]\n')
    yield path
    with Store([etcd.endpoint], cluster_name) as s:
        s.delete_cluster()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[LedisServer]]:
    started = [LedisServer(tmp_path / f"s{i}").start() for i in range(3)]
    yield started
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()


def addr(s: LedisServer) -> str:
    return f"127.0.0.1:{s.port}"


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def test_cluster_end_to_end(config: Path, servers: list[LedisServer]) -> None:
    c = str(config)
    assert "create cluster" in ok(console("--config", c, "cluster", "init"))
    m1, r1, m2 = servers
    out = ok(console("--config", c, "cluster", "add-group", addr(m1), "--yes"))
    assert f"add group 1 with master {addr(m1)}" in out and "epoch 1 -> 2" in out
    ok(
        console("cluster", "add-group", addr(m2), "--yes", "--config", c)
    )  # --config after the command
    m1.client().set("before", "1")
    out = ok(console("--config", c, "cluster", "add-node", "1", addr(r1), "--yes"))
    assert f"{addr(r1)} replicates {addr(m1)}" in out
    role = r1.client().execute_command("ROLE")
    assert role[0] == b"slave" and role[2] == m1.port and role[3] == b"connected"
    m1.client().set("after", "2")
    deadline = time.monotonic() + 30
    while r1.client().get("after") != b"2":
        assert time.monotonic() < deadline, "the replica never got the write"
        time.sleep(0.05)
    assert r1.client().get("before") == b"1"
    ok(console("--config", c, "cluster", "assign", "--slots", "0-8191", "--group", "1", "--yes"))
    ok(
        console(
            "--config", c, "cluster", "assign", "--slots", "8192-16383", "--group", "2", "--yes"
        )
    )
    doc = json.loads(ok(console("--config", c, "cluster", "status", "--json", "--probe")))
    assert doc["epoch"] == 6
    assert doc["groups"] == [
        {"id": 1, "master": addr(m1), "replicas": [addr(r1)], "slots": 8192, "epoch": 4},
        {"id": 2, "master": addr(m2), "replicas": [], "slots": 8192, "epoch": 3},
    ]
    assert doc["slots"] == [
        {"from": 0, "to": 8191, "group": 1, "state": "online"},
        {"from": 8192, "to": 16383, "group": 2, "state": "online"},
    ]
    assert doc["proxies"] == [] and doc["migrations"] == []
    assert doc["nodes"][addr(r1)]["role"] == "replica" and doc["nodes"][addr(m1)]["keys"] == 2
    human = ok(console("--config", c, "cluster", "status"))
    assert addr(m1) in human and "8192" in human
    events = ok(console("--config", c, "cluster", "events"))
    assert [line.split(" ", 3)[2] for line in events.strip().splitlines()] == [
        "console/init", "console/add-group", "console/add-group",
        "console/add-node", "console/assign", "console/assign",
    ]  # fmt: skip
    # a replica leaves: it is told REPLICAOF NO ONE and SLOTSMAP RESET, and keeps its data
    ok(console("--config", c, "cluster", "remove-node", addr(r1), "--yes"))
    assert r1.client().execute_command("ROLE")[0] == b"master"
    assert r1.client().get("after") == b"2"


def test_add_group_checks_the_node(config: Path, servers: list[LedisServer]) -> None:
    c = str(config)
    ok(console("--config", c, "cluster", "init"))
    m1, r1, _ = servers
    m1.client().set("k", "v")
    r = console("--config", c, "cluster", "add-group", addr(m1), "--yes")
    assert r.returncode == 1 and "holds 1 keys" in r.stderr and "--force" in r.stderr
    ok(console("--config", c, "cluster", "add-group", addr(m1), "--yes", "--force"))
    r1.client().execute_command("REPLICAOF", "127.0.0.1", str(m1.port))
    r = console("--config", c, "cluster", "add-group", addr(r1), "--yes")
    assert r.returncode == 1 and "is not a master" in r.stderr
    r = console("--config", c, "cluster", "add-group", f"127.0.0.1:{free_port()}", "--yes")
    assert r.returncode == 1 and "does not answer" in r.stderr
    r = console("--config", c, "cluster", "add-group", addr(m1), "--yes", "--force")
    assert r.returncode == 1 and "already the master of group 1" in r.stderr


def test_plan_needs_yes_without_a_terminal(config: Path, servers: list[LedisServer]) -> None:
    c = str(config)
    ok(console("--config", c, "cluster", "init"))
    r = console("--config", c, "cluster", "add-group", addr(servers[0]))
    assert r.returncode == 1 and "add --yes" in r.stderr
    assert f"add group 1 with master {addr(servers[0])}" in r.stdout  # the preview was shown
    with Store(load(config).cluster.etcd, load(config).cluster.name) as s:
        assert not s.load().groups


def test_status_without_a_cluster(config: Path) -> None:
    r = console("--config", str(config), "cluster", "status")
    assert r.returncode == 1 and "ledis-console up" in r.stderr and "Traceback" not in r.stderr
    r = console("--config", str(config))
    assert r.returncode == 1 and "ledis-console up" in r.stdout


def test_etcd_down_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "c.toml"
    path.write_text(f'[cluster]\netcd = ["127.0.0.1:{port}"]\ntimeout = 2\n')
    r = console("--config", str(path), "cluster", "status")
    assert r.returncode == 1
    assert f"error: etcd at 127.0.0.1:{port} is unreachable" in r.stderr
    assert "Traceback" not in r.stderr
    r = console("--config", str(path))
    assert r.returncode == 1 and "ledis-console up" in r.stdout


def test_help_explains_every_command() -> None:
    out = ok(console("--help"))
    for word in ("cluster", "up", "down", "examples:", "--config", "--log-level"):
        assert word in out
    out = ok(console("cluster", "--help"))
    for action in ("init", "add-group", "add-node", "remove-node", "assign", "status", "events"):
        assert f"ledis-console cluster {action}" in out
    assert "example: ledis-console cluster add-node 1" in ok(
        console("cluster", "add-node", "--help")
    )
    assert "--port-base" in ok(console("up", "--help"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[cluster\nname = 1", "not valid TOML"),
        ("cluster = 3\n", "key 'cluster': must be a table"),
        ("[cluster]\nnmae = 'x'\n", "key 'cluster.nmae': unknown setting"),
        ("[cluster]\nname = 5\n", "key 'cluster.name': expected str, got 5"),
        ("[cluster]\nname = 'a/b'\n", "key 'cluster.name': cluster name 'a/b'"),
        ("[cluster]\netcd = '127.0.0.1:2379'\n", "key 'cluster.etcd': expected list"),
        ("[cluster]\netcd = []\n", "key 'cluster.etcd': at least one endpoint"),
        ("[cluster]\netcd = ['nohost']\n", "key 'cluster.etcd[0]': expected 'host:port'"),
        ("[cluster]\netcd = ['h:99999']\n", "key 'cluster.etcd[0]': port 99999"),
        ("[cluster]\ntimeout = 0\n", "key 'cluster.timeout': must be more than 0"),
        ("[cluster]\ntimeout = true\n", "key 'cluster.timeout': expected int or float"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: ") and problem in str(e.value)


def test_bad_config_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[cluster]\netcd = ['nohost']\n")
    r = console("--config", str(path), "cluster", "status")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"error: {path}: key 'cluster.etcd[0]'" in r.stderr
    r = console("--config", str(tmp_path / "missing.toml"), "cluster", "status")
    assert r.returncode == 1 and "missing.toml: no such file" in r.stderr
    path.write_bytes(b"\xff\xfe")
    assert "not UTF-8" in console("--config", str(path), "cluster", "init").stderr


def test_default_config_is_read_from_the_current_directory(tmp_path: Path, config: Path) -> None:
    ok(console("cluster", "init", cwd=config.parent))
    assert load(config).cluster.name in ok(
        console("cluster", "status", "--json", cwd=config.parent)
    )


def test_migrate_rate_defaults_to_the_engines_and_max_is_full_speed() -> None:
    """``--rate``: unset, the engine's default (another client's p99 held near 2x, docs/
    cluster.md "Speed"); ``0`` or ``max``, as fast as the nodes go; a word, a clear error."""
    from types import SimpleNamespace

    from console.main import build_parser
    from console.migrations import _settings
    from stack.cluster.migration import DEFAULT_RATE

    ctx = SimpleNamespace(settings=SimpleNamespace(password=None))
    parse = build_parser().parse_args
    base = ["cluster", "migrate", "--slots", "0-9", "--to", "2"]
    assert _settings(ctx, parse(base)).rate == DEFAULT_RATE  # type: ignore[arg-type]
    for word in ("max", "MAX", "0"):
        assert _settings(ctx, parse([*base, "--rate", word])).rate == 0.0  # type: ignore[arg-type]
    assert _settings(ctx, parse([*base, "--rate", "5000"])).rate == 5000.0  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        parse([*base, "--rate", "fast"])
