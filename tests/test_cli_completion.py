"""The completer and the hint builder are pure functions of the typed text."""

from __future__ import annotations

import pytest

from console.cli.completion import arity_problem, hint, suggest, toolbar
from console.cli.history import is_sensitive
from console.cli.lexer import classify


def texts(line: str) -> list[str]:
    return [s.text for s in suggest(line)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("se", ["select", "set", "setbit", "setex", "setnx", "setrange", "sexpire", "sexpireat"]),
        ("SE", ["SELECT", "SET", "SETBIT", "SETEX", "SETNX", "SETRANGE", "SEXPIRE", "SEXPIREAT"]),
        ("ZADD k ", ["NX", "XX", "GT", "LT", "CH", "INCR"]),
        ("ZRANGE k 0 -1 ", ["BYSCORE", "BYLEX", "REV", "LIMIT", "WITHSCORES"]),
        ("SET k v ", ["NX", "XX", "GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL"]),
        ("set k v ", ["nx", "xx", "get", "ex", "px", "exat", "pxat", "keepttl"]),
        ("SET k v NX ", ["GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL"]),  # oneof used up
        ("SET k v e", ["ex", "exat"]),
        ("SET k v EX ", []),  # a number comes next, nothing to offer
        ("SET k ", []),  # the value
        ("GETEX k ", ["EX", "PX", "EXAT", "PXAT", "PERSIST"]),
        ("config ", ["get", "resetstat", "rewrite", "set", "help"]),
        ("CLIENT K", ["KILL"]),
        ("CLIENT KILL ", ["ID", "TYPE", "USER", "ADDR", "LADDR", "SKIPME", "MAXAGE"]),
        ("CLIENT KILL TYPE ", ["NORMAL", "MASTER", "SLAVE", "REPLICA", "PUBSUB"]),
        ("SCAN 0 ", ["MATCH", "COUNT", "TYPE"]),
        ("SCAN 0 COUNT 10 ", ["MATCH", "TYPE"]),
        ("BITCOUNT k 0 1 ", ["BYTE", "BIT"]),
        ("BITFIELD k ", ["GET", "OVERFLOW", "SET", "INCRBY"]),
        ("BITFIELD k OVERFLOW ", ["WRAP", "SAT", "FAIL"]),
        ("BITOP ", ["AND", "OR", "XOR", "NOT"]),
        ("EXPIRE k 10 ", ["NX", "XX", "GT", "LT"]),
        ("FLUSHALL ", ["ASYNC", "SYNC"]),
        ("LCS a b ", ["LEN", "IDX", "MINMATCHLEN", "WITHMATCHLEN"]),
        ("COPY a b ", ["DB", "REPLACE"]),
        ("SHUTDOWN ", ["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"]),
        ("help @st", ["@string"]),
        ("GET k ", []),
    ],
)
def test_completions(line: str, expected: list[str]) -> None:
    assert texts(line) == expected


def test_command_completion_carries_summary() -> None:
    (s,) = [s for s in suggest("GETD")]
    assert s.text == "GETDEL" and s.meta == "Get the value of a key and delete the key"
    assert s.replace == 4


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("SET", " key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|"
                "PXAT unix-time-milliseconds|KEEPTTL]"),
        ("SET k", " value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|"
                  "PXAT unix-time-milliseconds|KEEPTTL]"),
        ("SET k v ", "[NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|"
                     "PXAT unix-time-milliseconds|KEEPTTL]"),
        ("SET k v GET ", "[NX|XX] [EX seconds|PX milliseconds|EXAT unix-time-seconds|"
                         "PXAT unix-time-milliseconds|KEEPTTL]"),
        ("SET k v EX ", "seconds [NX|XX] [GET]"),
        ("SET k v EX 5", " [NX|XX] [GET]"),
        ("MSET ", "key value [key value ...]"),
        ("MSET a 1 ", "[key value ...]"),
        ("MSET a 1 b", " value [key value ...]"),
        ("GET k", ""),
        ("GET ", "key"),
        ("CONFIG ", "GET|RESETSTAT|REWRITE|SET|HELP"),
        ("CONFIG SET ", "parameter value [parameter value ...]"),
        ("SCAN 0 MATCH ", "pattern [COUNT count] [TYPE type]"),
        ("BITPOS k 1 ", "[start [end [BYTE|BIT]]]"),
        ("EXPIRE k ", "seconds [NX|XX|GT|LT]"),
        ("SET k v BOGUS ", ""),  # no hint for a line that does not match
        ("NOSUCH ", ""),
    ],
)
def test_hints(line: str, expected: str) -> None:
    assert hint(line) == expected


def test_classification_for_highlighting() -> None:
    line = 'SET "my key" 12 EX 10 NX'
    kinds = [kind for _s, _e, kind in classify(line)]
    assert kinds == ["command", "key", "string", "token", "number", "token"]
    assert [k for _s, _e, k in classify("config get max*")] == ["command", "command", "string"]
    assert [k for _s, _e, k in classify("nosuch a")] == ["unknown", "string"]


def test_toolbar_shows_summary_group_since_and_slot() -> None:
    bar = toolbar("GET {user1000}.followers")
    assert "Get the value of a key" in bar and "group: string" in bar and "since 1.0.0" in bar
    assert "slot 3443" in bar


def test_arity_checked_before_sending() -> None:
    assert arity_problem(["GET"]) is not None
    assert arity_problem(["GET", "a"]) is None
    assert arity_problem(["MSET", "a"]) is not None
    assert arity_problem(["NOSUCH"]) is None  # unknown commands go to the server


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("AUTH s3cret", True),
        ("auth default s3cret", True),
        ("HELLO 2 AUTH default s3cret", True),
        ("CONFIG SET requirepass x", True),
        ("config set maxclients 5 masterauth x", True),
        ("CONFIG SET maxclients 5", False),
        ("SET auth 1", False),
        ("HELLO 2", False),
    ],
)
def test_sensitive_lines(line: str, secret: bool) -> None:
    assert is_sensitive(line) is secret
