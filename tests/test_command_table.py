"""The command table is the single source of truth; check it against handlers and Redis."""

from __future__ import annotations

import pytest
import redis

from stack.core.commands import TABLE
from stack.server.commands import load_all
from stack.server.dispatch import Dispatcher

from .respclient import RawClient, parse_reply
from .servers import LedisServer, RedisServer


def test_every_spec_has_a_handler_and_every_handler_a_spec() -> None:
    handlers = load_all()
    runnable = {s.name for s in TABLE.all_specs() if not s.subcommands or s.name == "command"}
    assert set(handlers) == runnable
    assert Dispatcher().missing_handlers() == []


# Where we follow a later Redis on purpose: ZRANK/ZREVRANK ... WITHSCORE (7.2).
INTENDED_ARITY = {"zrank": -3, "zrevrank": -3}


def test_arity_and_keys_match_redis(redis_server: RedisServer) -> None:
    real = RawClient(unix=str(redis_server.socket))
    mismatches = []
    for spec in TABLE.all_specs():
        info = parse_reply(real.call("COMMAND", "INFO", spec.name))
        assert isinstance(info, list)
        if info[0] is None:
            continue  # a command Redis does not have (none yet) is skipped
        entry = info[0]
        _name, arity, _flags, first, last, step = entry[:6]
        ours = (spec.arity, spec.first_key, spec.last_key, spec.key_step)
        theirs = (INTENDED_ARITY.get(spec.name, arity), first, last, step)
        if ours != theirs:
            mismatches.append((spec.name, ours, theirs))
    assert mismatches == []


def test_command_replies(ledis_server: LedisServer) -> None:
    raw = RawClient(ledis_server.port)
    assert raw.call("COMMAND", "COUNT") == b":%d\r\n" % len(TABLE)
    info = parse_reply(raw.call("COMMAND", "INFO", "get", "nosuch"))
    assert isinstance(info, list)
    assert info[0][:6] == [b"get", 2, [b"readonly", b"fast"], 1, 1, 1]
    assert info[1] is None
    docs = parse_reply(raw.call("COMMAND", "DOCS", "set"))
    assert isinstance(docs, list)
    assert docs[0] == b"set"
    fields = dict(zip(docs[1][::2], docs[1][1::2], strict=True))
    assert fields[b"summary"] == b"Set the string value of a key"
    assert fields[b"group"] == b"string"
    names = set(parse_reply(raw.call("COMMAND", "LIST")))  # type: ignore[call-overload]
    assert {b"get", b"config|get", b"client|kill"} <= names
    pattern = parse_reply(raw.call("COMMAND", "LIST", "FILTERBY", "PATTERN", "cl*"))
    expected = {s.name.encode() for s in TABLE.all_specs() if s.name.startswith("cl")}
    assert set(pattern) == expected  # type: ignore[call-overload]
    assert {b"cluster", b"client", b"client|kill"} <= expected
    strings = parse_reply(raw.call("COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"))
    assert b"get" in strings and b"ping" not in strings  # type: ignore[operator]
    keys = parse_reply(raw.call("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"))
    assert keys == [b"a", b"b"]


@pytest.mark.parametrize(
    ("command", "hint"),
    [
        ("set", "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|"
                "PXAT unix-time-milliseconds|KEEPTTL]"),
        ("mset", "key value [key value ...]"),
        ("get", "key"),
        ("scan", "cursor [MATCH pattern] [COUNT count] [TYPE type]"),
    ],
)
def test_hints_from_the_argument_tree(command: str, hint: str) -> None:
    spec = TABLE.get(command)
    assert spec is not None
    assert spec.hint() == hint


def test_redis_py_can_read_command_table(ledis_server: LedisServer) -> None:
    c = redis.Redis(port=ledis_server.port, protocol=2)
    table = c.command()
    assert table["get"]["arity"] == 2
