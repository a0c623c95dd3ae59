"""Flags, the TOML config file, CONFIG GET/SET/REWRITE, and clear errors for bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .servers import LedisServer


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.server.main", *args],
        capture_output=True, text=True, timeout=60,
    )


def test_help_explains_flags() -> None:
    out = run_server("--help")
    assert out.returncode == 0
    for flag in ("--port", "--bind", "--data-dir", "--databases", "--requirepass", "--maxclients",
                 "--timeout", "--appendfsync", "--config", "--ready-file", "--loglevel"):
        assert flag in out.stdout
    assert "always" in out.stdout and "everysec" in out.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('prot = 1\n', "key 'prot': unknown setting"),
        ('port = "abc"\n', "key 'port': argument couldn't be parsed into an integer"),
        ("port = 70000\n", "key 'port': argument must be between 0 and 65535"),
        ('appendfsync = "sometimes"\n', "key 'appendfsync': argument must be one of"),
        ("port = [\n", "not valid TOML"),
        ('proto-max-bulk-len = "9gb"\n', "key 'proto-max-bulk-len': argument must be between"),
    ],
)
def test_bad_config_file_names_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "ledis.toml"
    cfg.write_text(content)
    out = run_server("--config", str(cfg))
    assert out.returncode == 2
    assert str(cfg) in out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    out = run_server("--config", str(tmp_path / "nope.toml"))
    assert out.returncode == 2 and "not found" in out.stderr


def test_bad_flag_value() -> None:
    out = run_server("--maxclients", "lots")
    assert out.returncode == 2
    assert "--maxclients" in out.stderr and "Traceback" not in out.stderr


def test_flags_override_file_and_rewrite_persists(fresh_server: LedisServer, tmp_path: Path) -> None:
    cfg = tmp_path / "ledis.toml"
    cfg.write_text('maxclients = 100\ntimeout = 5\n')
    fresh_server.extra += ["--config", str(cfg), "--timeout", "7"]
    fresh_server.start()
    c = fresh_server.client()
    assert c.config_get("maxclients") == {"maxclients": "100"}
    assert c.config_get("timeout") == {"timeout": "7"}
    assert c.config_set("maxclients", "50")
    assert c.config_get("maxc*") == {"maxclients": "50"}
    with pytest.raises(Exception, match="can't set immutable config"):
        c.config_set("databases", "1")
    with pytest.raises(Exception, match="Unknown option"):
        c.config_set("nosuch", "1")
    with pytest.raises(Exception, match="argument couldn't be parsed into an integer"):
        c.config_set("maxclients", "many")
    assert c.config_rewrite()
    text = cfg.read_text()
    assert "maxclients = 50" in text and "timeout = 7" in text
    fresh_server.stop()
    fresh_server.extra = ["--config", str(cfg)]
    fresh_server.start()
    assert fresh_server.client().config_get("maxclients") == {"maxclients": "50"}


def test_yes_no_settings_take_toml_booleans(fresh_server: LedisServer, tmp_path: Path) -> None:
    cfg = tmp_path / "ledis.toml"
    cfg.write_text("protected-mode = false\nlatency-tracking = true\n")
    fresh_server.extra += ["--config", str(cfg)]
    fresh_server.start()
    c = fresh_server.client()
    assert c.config_get("protected-mode") == {"protected-mode": "no"}
    assert c.config_get("latency-tracking") == {"latency-tracking": "yes"}
    bad = tmp_path / "bad.toml"
    bad.write_text("maxclients = true\n")
    out = run_server("--config", str(bad))
    assert out.returncode != 0 and "maxclients" in out.stderr


def test_rewrite_without_config_file(r: object, ledis_server: LedisServer) -> None:
    c = ledis_server.client()
    with pytest.raises(Exception, match="running without a config file"):
        c.config_rewrite()


def test_requirepass_set_at_runtime(fresh_server: LedisServer) -> None:
    fresh_server.start()
    c = fresh_server.client()
    assert c.config_set("requirepass", "pw")
    other = fresh_server.client()
    with pytest.raises(Exception, match="Authentication required"):
        other.get("x")
    other2 = fresh_server.client(password="pw")
    assert other2.ping()


def test_leveldb_sizes_reach_leveldb(tmp_path: Path) -> None:
    """leveldb-write-buffer-size is LevelDB's memtable: 3 MB of values stay in its log under the
    8 MB default and become table files under 1 MB. Both settings are fixed at start."""
    tables = {}
    for name, extra in (("default", []), ("small", ["--leveldb-write-buffer-size", "1mb",
                                                     "--leveldb-max-file-size", "1mb"])):
        server = LedisServer(tmp_path / name, *extra).start()
        try:
            r = server.client()
            for i in range(48):  # 3 MB of values, 6 MB with their binlog records
                r.set(f"k{i}", bytes([i]) * 65536)
            assert r.config_get("leveldb-*") == {
                "leveldb-write-buffer-size": "1048576" if extra else str(8 << 20),
                "leveldb-max-file-size": "1048576" if extra else str(2 << 20),
            }
            with pytest.raises(redis.ResponseError, match="can't set immutable config"):
                r.config_set("leveldb-write-buffer-size", "2mb")
        finally:
            server.stop()
        tables[name] = len(list(server.data_dir.glob("*.ldb")))
    assert tables["default"] == 0 and tables["small"] >= 3, tables
