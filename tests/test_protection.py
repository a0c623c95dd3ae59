"""Secure defaults as Redis 7: protected mode, DEBUG off, protected configs.

"Local" is Redis 7.0.15's rule: 127.0.0.1 or ::1 only; a client at 127.0.0.2 is not local to
Redis (protected mode denies it, ``enable-debug-command local`` refuses it), so loopback
aliases serve as peers that are not local, compared with the real redis-server. A network
namespace adds a peer outside 127.0.0.0/8 where ``unshare`` is allowed.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.core import errors
from stack.server.protection import denies_connection, is_local_peer, startup_warnings

from .respclient import RawClient
from .servers import LedisServer, RedisServer

DENIED = b"-" + errors.DENIED.encode() + b"\r\n"


def test_local_is_redis_7_0s_rule() -> None:
    assert is_local_peer(("127.0.0.1", 5000))
    assert is_local_peer(("::1", 5000, 0, 0))
    assert is_local_peer(("::ffff:127.0.0.1", 5000, 0, 0))
    assert is_local_peer("/tmp/ledis.sock")
    for peer in (("127.0.0.2", 1), ("10.1.2.3", 1), ("::ffff:10.0.0.1", 1, 0, 0), ("fe80::1%lo", 1), None):
        assert not is_local_peer(peer)


def test_protected_mode_decision() -> None:
    def config(**kw: str) -> dict[str, str]:
        return {"protected-mode": "yes", "requirepass": "", "bind": "127.0.0.1"} | kw

    assert denies_connection(config(), local=False)
    assert not denies_connection(config(), local=True)
    assert not denies_connection(config(requirepass="pw"), local=False)
    assert not denies_connection(config(**{"protected-mode": "no"}), local=False)
    assert startup_warnings(config()) == []
    assert startup_warnings(config(bind="127.0.0.1 ::1")) == []
    assert "protected mode is on" in startup_warnings(config(bind="0.0.0.0"))[0]
    assert "anyone who can" in startup_warnings(config(bind="0.0.0.0", **{"protected-mode": "no"}))[0]
    assert startup_warnings(config(bind="0.0.0.0", requirepass="pw")) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _from(source: str, port: int, data: bytes = b"", limit: float = 10) -> tuple[bytes, bool]:
    """What a client at ``source`` receives (reads until closed or quiet)."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(limit)
    s.connect(("127.0.0.1", port))
    out = b""
    try:
        if data:
            s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, True
            out += chunk
            if data and out.endswith(b"\r\n") and out.count(b"\r\n") >= data.count(b"\r\n"):
                return out, False
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        return out, True
    finally:
        s.close()


@pytest.fixture
def tcp_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server on a TCP port of 127.0.0.1, with the test's settings."""
    extra: list[str] = getattr(request, "param", [])
    for _ in range(5):  # a free port can be taken between the look-up and the start
        server = RedisServer(tmp_path / "redis", *(extra or ["--protected-mode", "yes"]), port=_free_port())
        try:
            server.start()
            break
        except RuntimeError:
            continue
    else:
        pytest.fail("could not start redis-server on a TCP port")
    yield server
    server.stop()


def test_protected_mode_denies_a_peer_that_is_not_local(fresh_server: LedisServer, tcp_redis: RedisServer) -> None:
    fresh_server.start()  # defaults: bind 127.0.0.1, protected-mode yes, no password
    ours = _from("127.0.0.2", fresh_server.port)
    theirs = _from("127.0.0.2", tcp_redis.port)
    assert ours == theirs == (DENIED, True)
    assert _from("127.0.0.1", fresh_server.port, b"PING\r\n") == (b"+PONG\r\n", False)
    info = RawClient(fresh_server.port).call("INFO", "stats")
    assert b"rejected_connections:1\r\n" in info


def test_protected_mode_off_or_password_lets_peers_in(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--protected-mode", "no"]
    fresh_server.start()
    assert _from("127.0.0.2", fresh_server.port, b"PING\r\n") == (b"+PONG\r\n", False)
    c = RawClient(fresh_server.port)
    assert c.call("CONFIG", "SET", "protected-mode", "yes") == b"+OK\r\n"
    assert _from("127.0.0.2", fresh_server.port) == (DENIED, True)
    assert c.call("CONFIG", "SET", "requirepass", "pw") == b"+OK\r\n"
    assert _from("127.0.0.2", fresh_server.port, b"PING\r\n") == (
        b"-NOAUTH Authentication required.\r\n",
        False,
    )


@pytest.mark.parametrize(
    "tcp_redis", [["--requirepass", "pw", "--enable-debug-command", "local"]], indirect=True
)
def test_debug_local_means_127_0_0_1(fresh_server: LedisServer, tcp_redis: RedisServer) -> None:
    fresh_server.extra += ["--requirepass", "pw", "--enable-debug-command", "local"]
    fresh_server.start()
    request = b"AUTH pw\r\nDEBUG SLEEP 0\r\n"
    ours, theirs = _from("127.0.0.2", fresh_server.port, request), _from("127.0.0.2", tcp_redis.port, request)
    assert ours == theirs
    assert ours[0].startswith(b"+OK\r\n-ERR DEBUG command not allowed.")
    assert _from("127.0.0.1", fresh_server.port, request) == (b"+OK\r\n+OK\r\n", False)


def test_debug_is_off_by_default_and_fixed_at_start(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--enable-debug-command", "no"]  # what an unconfigured server has
    fresh_server.start()
    c = RawClient(fresh_server.port)
    assert c.call("DEBUG", "DIGEST").startswith(b"-ERR DEBUG command not allowed.")
    assert c.call("CONFIG", "SET", "enable-debug-command", "yes") == (
        b"-ERR CONFIG SET failed (possibly related to argument 'enable-debug-command') - can't "
        b"set immutable config\r\n"
    )
    assert c.call("CONFIG", "GET", "enable-debug-command") == (
        b"*2\r\n$20\r\nenable-debug-command\r\n$2\r\nno\r\n"
    )


def test_default_config_has_debug_off() -> None:
    from stack.server.config import Config

    config = Config()
    assert config["enable-debug-command"] == "no"
    assert config["enable-protected-configs"] == "no"
    assert config["protected-mode"] == "yes"


PROTECTED = (
    b"-ERR CONFIG SET failed (possibly related to argument 'backup-dir') - can't set protected "
    b"config\r\n"
)


def test_backup_dir_is_a_protected_config(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.start()
    target = tmp_path / "elsewhere" / "deep"
    c = RawClient(fresh_server.port)
    assert c.call("CONFIG", "SET", "backup-dir", str(target)) == PROTECTED
    assert c.call("CONFIG", "SET", "maxclients", "50", "backup-dir", str(target)) == PROTECTED
    assert c.call("CONFIG", "GET", "maxclients") == b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    assert c.call("SAVE") == b"+OK\r\n"
    assert not (tmp_path / "elsewhere").exists()


def test_protected_configs_local(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.extra += ["--enable-protected-configs", "local", "--protected-mode", "no"]
    fresh_server.start()
    target = str(tmp_path / "backups-here")
    request = b"CONFIG SET backup-dir " + target.encode() + b"\r\n"
    assert _from("127.0.0.2", fresh_server.port, request) == (PROTECTED, False)
    assert _from("127.0.0.1", fresh_server.port, request) == (b"+OK\r\n", False)
    assert RawClient(fresh_server.port).call("SAVE") == b"+OK\r\n"
    assert any(Path(target).iterdir())


def test_protected_configs_yes(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.extra += ["--enable-protected-configs", "yes", "--protected-mode", "no"]
    fresh_server.start()
    request = b"CONFIG SET backup-dir " + str(tmp_path / "b").encode() + b"\r\n"
    assert _from("127.0.0.2", fresh_server.port, request) == (b"+OK\r\n", False)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare --net (root or user namespaces)")
def test_protected_mode_in_a_network_namespace(tmp_path: Path) -> None:
    """Bound to every address with no password: a peer outside 127.0.0.0/8 gets Redis's DENIED
    from both servers and the connection closes; a local one is served; ledis-server warns."""
    repo = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        ["unshare", "--net", sys.executable, str(repo / "tests" / "netns_peer.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=repo,
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["ledis_remote"] == got["redis_remote"] == [DENIED.decode(), True]
    assert got["ledis_local"][0] == got["redis_local"][0] == "+PONG\r\n"
    assert "WARNING: listening on 0.0.0.0 with no password set: protected mode is on" in got["ledis_log"]
