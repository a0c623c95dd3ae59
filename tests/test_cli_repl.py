"""The interactive REPL, driven through prompt-toolkit's pipe input against a real server."""

from __future__ import annotations

import io
from pathlib import Path

import redis
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from console.cli.connection import Connection, Target
from console.cli.repl import Repl, help_text

from .servers import LedisServer


def run_session(server: LedisServer, keys: str, history: Path | None = None,
                **target: object) -> str:
    """Type ``keys`` into a REPL (then Ctrl-D) and return what it printed."""
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text(keys + "\x04")
        conn = Connection(Target(port=server.port, **target))  # type: ignore[arg-type]
        repl = Repl(conn, history_path=history, input=inp, output=DummyOutput(), out=out)
        assert repl.run() == 0
        conn.close()
    return out.getvalue()


def test_commands_and_replies(r: object, ledis_server: LedisServer) -> None:
    out = run_session(ledis_server, "SET greeting hello\rGET greeting\rINCR c\rMGET greeting no\r")
    assert out == 'OK\n"hello"\n(integer) 1\n1) "hello"\n2) (nil)\n'


def test_history_never_stores_auth(fresh_server: LedisServer, tmp_path: Path) -> None:
    fresh_server.extra += ["--requirepass", "s3cret"]
    fresh_server.start()
    history = tmp_path / "history"
    out = run_session(fresh_server,
                      "AUTH s3cret\rSET a 1\rCONFIG SET requirepass s3cret\rGET a\r"
                      "HELLO 2 AUTH default s3cret\r", history=history)
    assert out.startswith("OK\nOK\nOK\n\"1\"\n")
    saved = history.read_text()
    assert "SET a 1" in saved and "GET a" in saved
    assert "s3cret" not in saved


def test_flushall_asks_first(r: object, ledis_server: LedisServer) -> None:
    out = run_session(ledis_server, "SET keep 1\rFLUSHALL\rn\rGET keep\rFLUSHALL\ry\rGET keep\r")
    assert out.count("(cancelled)") == 1
    assert out.endswith('"1"\nOK\n(nil)\n')


def test_wrong_arity_is_flagged_before_sending(r: object, ledis_server: LedisServer) -> None:
    # GET with no key does not leave the prompt; Ctrl-C abandons the line.
    out = run_session(ledis_server, "GET\r\x03PING\r")
    assert out == "PONG\n"
    assert "wrong number of arguments" not in out


def test_help() -> None:
    assert "Groups: @bitmap" in help_text([])
    text = help_text(["set"])
    assert "SET key value [NX|XX]" in text and "summary: Set the string value of a key" in text
    assert "group: string" in text and "since: 1.0.0" in text
    assert "GETRANGE" in help_text(["@string"]) and "PING" not in help_text(["@string"])
    assert "CONFIG GET" in help_text(["config", "get"])


def test_prompt_shows_db_and_reconnects_after_restart(fresh_server: LedisServer) -> None:
    fresh_server.start()
    out = io.StringIO()
    conn = Connection(Target(port=fresh_server.port))
    repl = Repl(conn, input=None, output=DummyOutput(), out=out)
    assert repl.connect(initial=True)
    assert repl.prompt_text() == f"127.0.0.1:{fresh_server.port}> "
    repl.handle("SELECT 2")
    repl.handle("SET x 1")
    assert repl.prompt_text() == f"127.0.0.1:{fresh_server.port}[2]> "
    fresh_server.stop()
    port = fresh_server.port
    fresh_server.extra += ["--port", str(port)]  # come back on the same port
    repl.handle("GET x")  # the old connection is gone
    assert "Error:" in out.getvalue()
    assert repl.prompt_text() == "not connected> "
    fresh_server.start()
    repl.handle("GET x")
    text = out.getvalue()
    assert f"Reconnected to 127.0.0.1:{port}, database 2 selected again." in text
    assert text.endswith('"1"\n')
    conn.close()


def test_subscribe_prints_messages(r: object, ledis_server: LedisServer) -> None:
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli.main", "--config", "/nonexistent", "-p",
         str(ledis_server.port), "SUBSCRIBE", "news"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"subscribe\n"
        publisher = ledis_server.client()
        for _ in range(200):  # wait until the subscription is registered (bounded)
            if publisher.publish("news", "hello") == 1:
                break
            time.sleep(0.01)
        lines = [proc.stdout.readline() for _ in range(5)]
        assert lines[2:5] == [b"message\n", b"news\n", b"hello\n"]
    finally:
        proc.terminate()
        proc.wait(10)


def _repl(server: LedisServer, **target: object) -> tuple[Repl, io.StringIO]:
    out = io.StringIO()
    conn = Connection(Target(port=server.port, **target))  # type: ignore[arg-type]
    repl = Repl(conn, input=None, output=DummyOutput(), out=out)
    assert repl.connect(initial=True)
    return repl, out


def test_resp3_maps_and_tracking_invalidations(r: redis.Redis, ledis_server: LedisServer) -> None:
    repl, out = _repl(ledis_server, protocol=3)
    r.hset("h", mapping={"a": "1"})
    r.set("x", "1")
    r.set("y", "1")
    for line in ("HGETALL h", "CLIENT TRACKING on", "GET x", "GET y"):
        repl.handle(line)
    r.mset({"x": "2", "y": "2"})  # another client: both keys invalidated (pushes)
    repl.handle("PING")
    assert out.getvalue() == (
        '1# "a" => "1"\nOK\n"1"\n"1"\n'
        "-> invalidate: 'x'\n-> invalidate: 'y'\nPONG\n"
    )
    repl.conn.close()


def test_shutdown_leaves_not_connected_quietly(fresh_server: LedisServer) -> None:
    fresh_server.start()
    out = io.StringIO()
    with create_pipe_input() as inp:
        inp.send_text("y\r")  # the confirmation SHUTDOWN asks for
        repl = Repl(Connection(Target(port=fresh_server.port)), input=inp, output=DummyOutput(),
                    out=out)
        assert repl.connect(initial=True)
        repl.handle("SHUTDOWN NOSAVE")
    assert fresh_server.proc is not None and fresh_server.proc.wait(30) == 0
    assert out.getvalue() == ""  # redis-cli prints nothing either
    assert repl.prompt_text() == "not connected> "


def test_missing_db_and_refused_password_warn(fresh_server: LedisServer) -> None:
    fresh_server.extra += ["--requirepass", "pw"]
    fresh_server.start()
    warnings: list[str] = []
    out = io.StringIO()
    conn = Connection(Target(port=fresh_server.port, password="pw", db=99), warn=warnings.append)
    repl = Repl(conn, input=None, output=DummyOutput(), out=out)
    assert repl.connect(initial=True)
    assert warnings == ["SELECT 99 failed: ERR DB index is out of range"]
    assert repl.prompt_text() == f"127.0.0.1:{fresh_server.port}> "
    conn.close()
    conn = Connection(Target(port=fresh_server.port, password="bad"), warn=warnings.append)
    repl = Repl(conn, input=None, output=DummyOutput(), out=out)
    assert repl.connect(initial=True)
    assert warnings[1].startswith("AUTH failed: WRONGPASS")
    repl.handle("GET k")
    assert out.getvalue() == "(error) NOAUTH Authentication required.\n"
    conn.close()
