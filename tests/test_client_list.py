"""CLIENT LIST / INFO / KILL / SETNAME / NO-EVICT against the real Redis 7.0: the fields that
describe a client's state (flags, db, subscriptions, transaction, last command, protocol) and
every refusal, byte for byte."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .respclient import RawClient
from .servers import LedisServer, RedisServer, wait_until
from .twin import Id, Twins, twins_fixture

FIELDS = [
    *("id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub"),
    *("ssub", "multi", "qbuf", "qbuf-free", "argv-mem", "multi-mem", "rbs", "rbp", "obl"),
    *("oll", "omem", "tot-mem", "events", "cmd", "user", "redir", "resp"),
]
COMPARED = ("name", "flags", "db", "sub", "psub", "ssub", "multi", "cmd", "user", "resp")


def parse(text: bytes) -> list[dict[str, str]]:
    rows = []
    for line in text.decode().splitlines():
        line = line.removeprefix("txt:")  # RESP3's verbatim string
        if line.startswith("id="):
            fields = dict(kv.split("=", 1) for kv in line.split(" "))
            assert list(fields) == FIELDS
            fields["flags"] = fields["flags"].replace("U", "") or "N"  # Redis's unix socket
            rows.append(fields)
    return rows


def states(text: bytes) -> list[tuple[str, ...]]:
    """The compared fields of each client, in a stable order (Redis rotates its list)."""
    return sorted((*(r[k] for k in COMPARED), str(r["redir"] != "-1")) for r in parse(text))


@pytest.fixture
def twins(ledis_server: LedisServer, redis_server: RedisServer) -> Iterator[Twins]:
    yield from twins_fixture(ledis_server, redis_server)


def _kill_all_but(twins: Twins, keep: str) -> None:
    """Other tests' connections would show up in CLIENT LIST: close them."""
    for c in twins.pairs[keep]:
        c.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        c.call("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")


@pytest.mark.differential
def test_client_states_as_redis(twins: Twins) -> None:
    o = twins.open("o")
    _kill_all_but(twins, "o")
    a = twins.open("a", resp=3)
    a.run(
        ("CLIENT", "SETNAME", "alpha"),
        ("SELECT", "2"),
        ("MULTI",),
        ("SET", "x", "1"),
        ("GET", "x"),
    )
    b = twins.open("b")
    b.run(("SUBSCRIBE", "c1", "c2"), ("PSUBSCRIBE", "p*"))
    c = twins.open("c")
    c.run(("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "u:"))
    d = twins.open("d")
    d.send(("BLPOP", "nolist", "0"))
    m = twins.open("m")
    m.call("MONITOR")
    e = twins.open("e", resp=3)
    e.run(("WATCH", "w"), ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "TRACKING", "on"), ("GET", "z"))
    o.run(("SET", "w", "1"), ("NOSUCH",))
    wait_until(
        lambda: all(b" flags=b" in c.call("CLIENT", "LIST") for c in o.clients),
        "the BLPOP to block",
    )
    theirs, ours = (states(c.call("CLIENT", "LIST")) for c in o.clients)
    assert ours == theirs
    assert ("alpha", "x", "2", "0", "0", "0", "2", "get", "default", "3", "False") in ours
    for kind in ("pubsub", "normal", "replica", "master"):
        theirs, ours = (states(c.call("CLIENT", "LIST", "TYPE", kind)) for c in o.clients)
        assert ours == theirs, kind
    theirs, ours = (states(c.call("CLIENT", "INFO")) for c in o.clients)
    assert (
        ours
        == theirs
        == [("", "N", "0", "0", "0", "0", "-1", "client|info", "default", "2", "False")]
    )
    theirs, ours = (
        states(c.call("CLIENT", "LIST", "ID", str(i), "12345678"))
        for c, i in zip(o.clients, twins.ids["a"], strict=True)
    )
    assert ours == theirs and len(ours) == 1
    o.run(
        ("CLIENT", "LIST", "TYPE", "normal", "ID", "1"),
        ("CLIENT", "LIST", "ID", "abc"),
        ("CLIENT", "LIST", "ID", "0", "-1"),
        ("CLIENT", "LIST", "TYPE", "x"),
        ("CLIENT", "LIST", "foo"),
        ("CLIENT", "LIST", "ID"),
    )
    o.call("LPUSH", "nolist", "v")  # wakes the BLPOP
    d.read()


@pytest.mark.differential
def test_resp3_shown_after_hello_and_reset(twins: Twins) -> None:
    c = twins.open("c", resp=3)
    for resp in ("3", "2"):
        theirs, ours = (parse(x.call("CLIENT", "INFO"))[0]["resp"] for x in c.clients)
        assert ours == theirs == resp
        c.call("RESET")


@pytest.mark.differential
def test_kill_setname_no_evict_refusals_as_redis(twins: Twins) -> None:
    o = twins.open("o")
    o.run(
        ("CLIENT", "KILL", "ID", "0"),
        ("CLIENT", "KILL", "ID", "x"),
        ("CLIENT", "KILL", "TYPE", "x", "y"),
        ("CLIENT", "KILL", "TYPE", "bogus"),
        ("CLIENT", "KILL", "SKIPME", "maybe"),
        ("CLIENT", "KILL", "USER", "nobody"),
        ("CLIENT", "KILL", "1.2.3.4:5"),
        ("CLIENT", "KILL", "ADDR", "1.2.3.4:5", "ID", "999"),
        ("CLIENT", "KILL", "FOO", "bar"),
        ("CLIENT", "KILL", "ID", "1", "TYPE"),
        ("CLIENT", "SETNAME", ""),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "a b"),
        ("CLIENT", "SETNAME", "a\nb"),
        ("CLIENT", "SETNAME", "ok"),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", "\xe9"),
        ("CLIENT", "SETNAME", ""),
        ("CLIENT", "GETNAME"),
        ("CLIENT", "NO-EVICT", "maybe"),
        ("CLIENT", "NO-EVICT", "ON"),
        ("CLIENT", "NO-EVICT", "off"),
        ("CLIENT", "ID", "extra"),
        ("CLIENT", "NOSUCH"),
    )
    victim = twins.open("victim")
    assert o.call("CLIENT", "KILL", "ID", Id("victim")) == b":1\r\n"
    for c in victim.clients:
        with pytest.raises(ConnectionError):
            c.call("PING")


def test_kill_filters_together_and_maxage(ledis_server: LedisServer) -> None:
    """Filters combine (a client must match all); MAXAGE (Redis 7.4) kills clients connected
    longer than that many seconds; the caller is skipped unless SKIPME no."""
    admin = RawClient(ledis_server.port)
    old = RawClient(ledis_server.port)
    old.call("CLIENT", "SETNAME", "old")
    old_id = int(old.call("CLIENT", "ID")[1:-2])
    time.sleep(1.1)  # an age of at least one second (MAXAGE counts whole seconds)
    young = RawClient(ledis_server.port)
    young_id = int(young.call("CLIENT", "ID")[1:-2])
    assert admin.call("CLIENT", "KILL", "ID", str(young_id), "TYPE", "pubsub") == b":0\r\n"
    assert (
        admin.call("CLIENT", "KILL", "MAXAGE", "x")
        == b"-ERR value is not an integer or out of range\r\n"
    )
    killed = int(admin.call("CLIENT", "KILL", "MAXAGE", "0", "ID", str(old_id))[1:-2])
    assert killed == 1
    with pytest.raises(ConnectionError):
        old.call("PING")
    assert young.call("PING") == b"+PONG\r\n"
    me = int(admin.call("CLIENT", "ID")[1:-2])
    assert admin.call("CLIENT", "KILL", "ID", str(me)) == b":0\r\n"  # SKIPME yes by default
    assert admin.call("CLIENT", "KILL", "ID", str(me), "SKIPME", "no") == b":1\r\n"
    with pytest.raises(ConnectionError):
        admin.call("PING")
    young.close()


def test_client_list_memory_fields(ledis_server: LedisServer) -> None:
    """qbuf, multi-mem, omem and tot-mem come from what the server holds for the client."""
    c = RawClient(ledis_server.port)
    other = RawClient(ledis_server.port)
    c.call("MULTI")
    c.call("SET", "k", "v" * 1000)
    cid = c.call("CLIENT", "ID")  # queued
    assert cid == b"+QUEUED\r\n"
    rows = parse(other.call("CLIENT", "LIST"))
    row = next(r for r in rows if r["flags"] == "x" and r["cmd"] == "client|id")
    assert row["multi"] == "2"
    assert int(row["multi-mem"]) >= 1004
    assert int(row["tot-mem"]) >= int(row["multi-mem"]) + int(row["qbuf"]) + int(row["omem"])
    assert int(row["fd"]) > 0
    c.call("DISCARD")
    c.close()
    other.close()
