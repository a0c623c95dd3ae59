"""CONFIG SET port rebinds the listener, as Redis 7 does: new clients connect to the new port,
the old one is closed, connections made before keep working, INFO's tcp_port follows and
CONFIG REWRITE writes it; a port that cannot be bound fails with Redis's reply and changes
nothing. The same scenario runs against the real redis-server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stack.cluster.etcd_server import free_port
from stack.server.config import Config, ConfigError, Value

from .respclient import RawClient, encode_command
from .servers import LedisServer, RedisServer

UNABLE = (
    b"-ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this "
    b"port. Check server logs.\r\n"
)


@pytest.fixture(params=["ledis", "redis"])
def server_port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """The TCP port of a private ledis-server (with a config file) or redis-server."""
    if request.param == "redis":
        real = RedisServer(tmp_path / "redis", port=free_port()).start()
        yield real.port
        real.stop()
        return
    (tmp_path / "ledis.toml").write_text("# ledis\nport = 0\n")
    ours = LedisServer(tmp_path, "--config", str(tmp_path / "ledis.toml")).start()
    yield ours.port
    assert ours.stop() == 0, ours.log()


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_config_set_port_moves_the_listener(server_port: int) -> None:
    before = RawClient(server_port)
    assert before.call("SET", "k", "v") == b"+OK\r\n"
    new = free_port()
    assert before.call("CONFIG", "SET", "port", str(new)) == b"+OK\r\n"
    assert refused(server_port)  # the old listener is closed at once
    assert before.call("GET", "k") == b"$1\r\nv\r\n"  # a connection made before still works
    after = redis.Redis(port=new, socket_timeout=30)
    assert after.get("k") == b"v"
    assert after.info("server")["tcp_port"] == new
    assert after.config_get("port") == {"port": str(new)}
    assert after.config_set("port", str(new))  # the same port: nothing to do

    # a port that cannot be bound: Redis's reply, and the server stays where it was
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert before.call("CONFIG", "SET", "port", str(taken)) == UNABLE
    assert after.info("server")["tcp_port"] == new and after.ping()
    assert redis.Redis(port=new, socket_timeout=30).ping()  # still listening
    assert after.config_get("port") == {"port": str(new)}

    # values are parsed (all of them) before the listener moves
    other = free_port()
    assert before.call("CONFIG", "SET", "port", str(other), "maxmemory", "lots") == (
        b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be "
        b"a memory value\r\n"
    )
    assert before.call("CONFIG", "SET", "port", "65536") == (
        b"-ERR CONFIG SET failed (possibly related to argument 'port') - argument must be "
        b"between 0 and 65535 inclusive\r\n"
    )
    assert refused(other) and after.info("server")["tcp_port"] == new
    before.close()
    after.close()


def test_config_rewrite_writes_the_new_port(tmp_path: Path) -> None:
    cfg = tmp_path / "ledis.toml"
    cfg.write_text("# where it listens\nport = 0\ntimeout = 5\n")
    server = LedisServer(tmp_path, "--config", str(cfg)).start()
    try:
        new = free_port()
        c = server.client()
        assert c.config_set("port", str(new))
        assert (tmp_path / "ready").read_text().strip() == str(new)  # the ready-file follows
        assert c.config_rewrite()
        text = cfg.read_text()  # (the flags the test passes are added after)
        assert text.startswith(f"# where it listens\nport = {new}\ntimeout = 5\n"), text
        c.close()
    finally:
        assert server.stop() == 0, server.log()


def test_two_moves_in_one_pipeline_leave_the_last(server_port: int) -> None:
    """The second move comes before the event loop served the first port: that one closes."""
    c = RawClient(server_port)
    first, second = free_port(), free_port()
    c.send(b"".join(encode_command(("CONFIG", "SET", "port", p)) for p in (first, second)))
    assert [c.read_reply() for _ in range(2)] == [b"+OK\r\n", b"+OK\r\n"]
    assert refused(server_port) and refused(first)
    assert redis.Redis(port=second, socket_timeout=30).info("server")["tcp_port"] == second
    assert c.call("PING") == b"+PONG\r\n"
    c.close()


def test_a_failed_apply_undoes_those_applied_before_it() -> None:
    """Config's appliers (only ``port`` has one today): all or nothing, as Redis restores."""
    cfg = Config()
    calls: list[tuple[Value, Value]] = []
    cfg.applier("maxclients", lambda new, old: calls.append((new, old)))

    def refuse(new: Value, old: Value) -> None:
        raise ConfigError("no way")

    cfg.applier("timeout", refuse)
    before = cfg["maxclients"]
    with pytest.raises(ConfigError, match=r"^CONFIG SET failed \(possibly related to argument "
                                          r"'timeout'\) - no way$"):  # fmt: skip
        cfg.set_many([("maxclients", "50"), ("timeout", "9")])
    assert calls == [(50, before), (before, 50)]
    assert cfg["maxclients"] == before and cfg["timeout"] == 0
