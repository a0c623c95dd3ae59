"""ACL in a running ledis-server: users survive a restart (ACL file, config file, CONFIG
REWRITE), bad users stop the start with a clear message, real clients (redis-py, redis-cli) log
in as users, and a restricted user's pipelines never slip through the C fast lane."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .respclient import RawClient
from .servers import LedisServer

ALICE = [
    "alice",
    "on",
    ">alice-pw",
    "~cache:*",
    "&news",
    "-@all",
    "+@read",
    "+set",
    "+client|info",
    "(+del ~tmp:*)",
]


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.server.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_acl_file_survives_restart(fresh_server: LedisServer, tmp_path: Path) -> None:
    acl_file = tmp_path / "users.acl"
    acl_file.write_text("")
    fresh_server.extra += ["--aclfile", str(acl_file)]
    fresh_server.start()
    admin = fresh_server.client()
    admin.execute_command("ACL", "SETUSER", *ALICE)
    admin.execute_command("ACL", "SETUSER", "default", ">admin-pw")
    admin.execute_command("ACL", "SAVE")
    saved = acl_file.read_text()
    assert saved.startswith("user alice on #") and "\nuser default on #" in saved
    assert "alice-pw" not in saved and "admin-pw" not in saved  # hashes only
    assert not list(tmp_path.glob("users.acl.tmp*"))
    before = admin.execute_command("ACL", "LIST")
    admin.close()
    assert fresh_server.stop() == 0
    fresh_server.start()
    with pytest.raises(redis.AuthenticationError):
        fresh_server.client().ping()
    admin = fresh_server.client(password="admin-pw")
    assert admin.execute_command("ACL", "LIST") == before
    alice = fresh_server.client(username="alice", password="alice-pw")
    assert alice.set("cache:1", "v") and alice.get("cache:1") == b"v"
    with pytest.raises(redis.exceptions.NoPermissionError):
        alice.get("other")
    assert b"user=alice" in alice.execute_command("CLIENT", "INFO")
    # ACL LOAD after an edit by hand; a bad edit changes nothing and names the line
    acl_file.write_text(saved + "user bob on nopass +@all ~*\n")
    assert admin.execute_command("ACL", "LOAD") == b"OK"
    assert b"bob" in admin.execute_command("ACL", "USERS")
    acl_file.write_text(saved + "user carol on +nosuch\n")
    with pytest.raises(redis.ResponseError, match=f"{acl_file}:3: Error in applying operation"):
        admin.execute_command("ACL", "LOAD")
    assert b"bob" in admin.execute_command("ACL", "USERS")


def monitor_rules() -> str:
    """The read-only user docs/acl.md recommends for the console, as written there."""
    text = (Path(__file__).parent.parent / "docs" / "acl.md").read_text()
    block = text.split("<!-- ledis-monitor rules")[1].split("<!-- end ledis-monitor rules")[0]
    return block.split("```")[1].strip()


def test_users_in_the_config_file_and_config_rewrite(
    fresh_server: LedisServer, tmp_path: Path
) -> None:
    monitor = monitor_rules().replace(">CHANGE-ME", ">mon-pw")
    cfg = tmp_path / "ledis.toml"
    cfg.write_text(
        'requirepass = "root-pw"\n'
        "users = [\n"
        '  "alice on >alice-pw ~cache:* +@read",\n'
        f'  "user {monitor}",\n'
        "]\n"
    )
    fresh_server.extra += ["--config", str(cfg)]
    fresh_server.start()
    admin = fresh_server.client(password="root-pw")
    assert sorted(admin.execute_command("ACL", "USERS")) == [b"alice", b"default", b"ledis-monitor"]
    mon = fresh_server.client(username="ledis-monitor", password="mon-pw")
    assert mon.ping() and "redis_version" in mon.info()
    assert b"user=ledis-monitor" in mon.execute_command("CLIENT", "LIST")
    admin.set("k", "v")
    assert mon.get("k") == b"v" and mon.dbsize() == 1 and mon.scan() == (0, [b"k"])
    mon.execute_command("SLOWLOG", "GET")
    mon.execute_command("ROLE")
    for call in [
        ("SET", "k", "v"),
        ("DEL", "k"),
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "requirepass"),
        ("CONFIG", "SET", "maxclients", "1"),
        ("ACL", "SETUSER", "x"),
        ("SHUTDOWN",),
        ("DEBUG", "DIGEST"),
        ("CLIENT", "KILL", "ID", "1"),
        ("PUBLISH", "c", "m"),
    ]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            mon.execute_command(*call)
    admin.execute_command("ACL", "SETUSER", "carol", "on", ">carol-pw", "+ping")
    admin.execute_command("ACL", "DELUSER", "alice")
    assert admin.execute_command("CONFIG", "REWRITE") == b"OK"
    text = cfg.read_text()
    assert "carol" in text and "alice" not in text and "carol-pw" not in text
    assert "default" not in text  # requirepass alone describes it
    admin.close()
    mon.close()
    assert fresh_server.stop() == 0
    fresh_server.start()
    carol = fresh_server.client(username="carol", password="carol-pw")
    assert carol.ping()
    with pytest.raises(redis.AuthenticationError):
        fresh_server.client(username="alice", password="alice-pw").ping()


@pytest.mark.parametrize(
    ("content", "extra", "message", "code"),
    [
        (
            'users = ["alice on +nosuch"]\n',
            [],
            "key 'users': users entry 1 (alice): Error in ACL "
            "SETUSER modifier '+nosuch': Unknown command or category name in ACL",
            2,
        ),
        ('users = "alice on"\n', [], "key 'users': expected a list of strings", 2),
        ('users = ["a on", "a off"]\n', [], "users entry 2 (a): Duplicate user", 2),
        ('users = ["a on"]\n', ["--aclfile", "{acl}"], "define them in one place", 1),
        (
            "",
            ["--aclfile", "{missing}"],
            "Aborting startup because of ACL errors: Error loading "
            "ACLs, opening file '{missing}': No such file or directory",
            1,
        ),
        (
            "",
            ["--aclfile", "{bad}"],
            "Aborting startup because of ACL errors: {bad}:1 should start with user keyword",
            1,
        ),
    ],
)
def test_users_that_cannot_load_stop_the_start(
    tmp_path: Path, content: str, extra: list[str], message: str, code: int
) -> None:
    paths = {
        "acl": tmp_path / "ok.acl",
        "missing": tmp_path / "nope.acl",
        "bad": tmp_path / "b.acl",
    }
    paths["acl"].write_text("")
    paths["bad"].write_text("# a comment\n")
    cfg = tmp_path / "ledis.toml"
    cfg.write_text(content)
    args = [a.format(**paths) for a in extra]
    out = run_server("--port", "0", "--data-dir", str(tmp_path / "d"), "--config", str(cfg), *args)
    assert out.returncode == code, out.stderr
    assert message.format(**paths) in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("fastlane", ["1", "0"])
def test_restricted_pipelines_are_checked_one_by_one(tmp_path: Path, fastlane: str) -> None:
    server = LedisServer(tmp_path, env={"LEDIS_FASTLANE": fastlane}).start()
    try:
        admin = RawClient(server.port)
        admin.call("ACL", "SETUSER", "u", "on", ">pw", "+get", "+set", "+incr", "+mset", "~ok:*")
        c = RawClient(server.port)
        assert c.call("AUTH", "u", "pw") == b"+OK\r\n"
        calls = [
            ("SET", "ok:1", "a"),
            ("SET", "no:1", "a"),
            ("GET", "ok:1"),
            ("GET", "no:1"),
            ("INCR", "ok:n"),
            ("INCR", "no:n"),
            ("MSET", "ok:2", "b", "no:2", "c"),
            ("DECR", "ok:n"),
        ]
        c.send(b"".join(_encode(call) for call in calls * 50))
        replies = [c.read_reply() for _ in range(len(calls) * 50)]
        key_error = (
            b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
        )
        expected = [
            b"+OK\r\n",
            key_error,
            b"$1\r\na\r\n",
            key_error,
            None,
            key_error,
            key_error,
            b"-NOPERM this user has no permissions to run the 'decr' command\r\n",
        ]
        for i, reply in enumerate(replies):
            want = expected[i % len(calls)]
            if want is not None:
                assert reply == want, (i, calls[i % len(calls)])
        assert admin.call("EXISTS", "no:1", "no:n", "no:2", "ok:2") == b":0\r\n"
        assert admin.call("GET", "ok:n") == b"$2\r\n50\r\n"
    finally:
        assert server.stop() == 0, server.log()


def _encode(call: tuple[str, ...]) -> bytes:
    from stack.core.resp import encode_command

    return encode_command(call)


def redis_cli(server: LedisServer, *args: str) -> str:
    out = subprocess.run(
        [
            "redis-cli",
            "-p",
            str(server.port),
            "--user",
            "cli",
            "--pass",
            "cli-pw",
            "--no-auth-warning",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-tools not installed")
def test_redis_cli_logs_in_as_a_user(ledis_server: LedisServer) -> None:
    admin = ledis_server.client()
    admin.execute_command(
        "ACL", "SETUSER", "cli", "on", ">cli-pw", "~*", "+@read", "+ping", "+acl|whoami"
    )
    try:
        assert redis_cli(ledis_server, "ACL", "WHOAMI") == "cli"
        assert redis_cli(ledis_server, "SET", "k", "v") == (
            "NOPERM this user has no permissions to run the 'set' command"
        )
        resp3 = redis.Redis(
            host="127.0.0.1", port=ledis_server.port, username="cli", password="cli-pw", protocol=3
        )
        assert resp3.execute_command("ACL", "WHOAMI") == b"cli"
        resp3.close()
    finally:
        admin.execute_command("ACL", "DELUSER", "cli")
        admin.close()
