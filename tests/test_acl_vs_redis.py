"""ACL held to a real Redis 7.0.15, over RESP2 and RESP3: every ACL subcommand, NOPERM for
commands, subcommands, keys (read/write patterns) and channels, AUTH and HELLO, MULTI/EXEC,
the ACL log, ACL SAVE / LOAD and their errors, CLIENT KILL USER and disconnections."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.core.commands import TABLE

from .acl_pair import (
    Both,
    error_norm,
    getuser_norm,
    hello_norm,
    list_norm,
    log_norm,
    pair_servers,
    parse,
)
from .servers import LedisServer, RedisServer

pytestmark = pytest.mark.differential

Servers = tuple[LedisServer, RedisServer, Path, Path]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    yield from pair_servers(tmp_path_factory.mktemp("acl"))


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def acl(request: pytest.FixtureRequest, servers: Servers) -> Iterator[Both]:
    """An admin connection to each server, both back to a fresh start: only the default
    user (on, nopass, everything), no password, an empty ACL log, an empty ACL file."""
    ledis, redis, ledis_file, redis_file = servers
    both = Both(ledis, redis, request.param)
    both.ledis_file, both.redis_file = str(ledis_file), str(redis_file)
    for f in (ledis_file, redis_file):
        f.write_text("")
    for c in (both.ours, both.theirs):
        c.call("AUTH", "default", "x")  # in case a test left a password: any works if nopass
    both.call("ACL", "LOAD")
    both.call("CONFIG", "SET", "requirepass", "")
    both.call("CONFIG", "SET", "acllog-max-len", "128", "acl-pubsub-default", "resetchannels")
    both.call("ACL", "LOG", "RESET")
    both.call("FLUSHALL")
    both.hello()
    yield both
    both.close()


def connect(servers: Servers, resp: int = 2) -> Both:
    ledis, redis, _, _ = servers
    both = Both(ledis, redis, resp)
    if resp == 3:
        both.hello()
    return both


# --- SETUSER / GETUSER / LIST / USERS / DELUSER / WHOAMI -----------------------------------------

RULE_CASES: list[list[str]] = [
    [],
    ["on"],
    ["on", "off"],
    ["on", ">pw", ">pw", ">other"],
    ["#" + "a" * 64, "#" + "b" * 64],
    ["#" + "A" * 64],
    ["#abc"],
    [">pw", "<pw"],
    [">pw", "<nope"],
    [">pw", "!" + "c" * 64],
    [">pw", "nopass"],
    ["nopass", "resetpass"],
    ["nopass", ">x"],
    ["~cache:*", "~cache:*", "%R~ro:*", "%W~wo:*", "%RW~rw:*", "%R~cache:*"],
    ["%r~lower", "%w~x", "%WR~both"],
    ["%RR~x"],
    ["%X~x"],
    ["%~x"],
    ["%"],
    ["%R"],
    ["~"],
    ["~*"],
    ["allkeys"],
    ["~*", "~a"],
    ["allkeys", "resetkeys", "~a"],
    ["%R~*", "~a"],
    ["&chan*", "&chan*", "&news"],
    ["&*"],
    ["allchannels", "&x"],
    ["allchannels", "resetchannels", "&x"],
    ["+@read"],
    ["+@read", "-keys"],
    ["+@all", "-@dangerous"],
    ["+@all", "-config|set"],
    ["-@all", "+config|get"],
    ["+@read", "+@write"],
    ["+@all", "-@write"],
    ["+@hash", "+@set"],
    ["+@string", "-append"],
    ["+get", "+set", "+del"],
    ["+GET", "-Set"],
    ["+select|0", "+select|1", "+select|1"],
    ["+@all", "-@keyspace", "+del"],
    ["+@fast"],
    ["+@slow"],
    ["+@admin"],
    ["+@connection"],
    ["+@pubsub", "-publish"],
    ["+@all", "-@read"],
    ["+@sortedset", "-zadd"],
    ["+@bitmap", "+@string"],
    ["+client", "-client|kill"],
    ["+@blocking"],
    ["+@transaction"],
    ["+@keyspace"],
    ["+@list", "-@blocking"],
    ["+@all", "-@slow"],
    ["allcommands", "-get", "+get"],
    ["nocommands", "+get"],
    ["+@READ", "-@Write"],
    ["+@nosuch"],
    ["+@"],
    ["+nosuch"],
    ["-nosuch"],
    ["+config|nosuch"],
    ["+config|get|x"],
    ["-config|get|x"],
    ["+get|"],
    ["+config|"],
    ["-select|0"],
    ["+"],
    ["bogus"],
    ["reset"],
    ["on", ">pw", "~*", "&*", "+@all", "reset"],
    ["sanitize-payload"],
    ["skip-sanitize-payload"],
    ["(~sel:* +get)", "(%R~ro +@read)"],
    ["(~sel:*", "+get)"],
    ["(+get", "(+set", "~x)"],
    ["(~x", "+get"],
    ['("+get" ~x)'],
    ['("abc)'],
    ["()"],
    ["(on)"],
    ["(~x nosuch)"],
    ["(+get)", "clearselectors"],
    ["~a b"],
    ["&a\tb"],
    ["", "on"],
]


@pytest.mark.parametrize("rules", RULE_CASES, ids=[" ".join(r) or "none" for r in RULE_CASES])
def test_setuser_getuser_list(acl: Both, rules: list[str]) -> None:
    acl.call("ACL", "SETUSER", "u", *rules)
    acl.call("ACL", "GETUSER", "u", norm=getuser_norm)
    acl.call("ACL", "LIST", norm=list_norm)
    acl.call("ACL", "USERS")


def test_setuser_is_all_or_nothing_and_updates_in_place(acl: Both) -> None:
    acl.call("ACL", "SETUSER", "u", "on", ">pw", "~a", "+get")
    acl.call("ACL", "SETUSER", "u", "off", "~b", "+nosuch", "+set")  # refused: nothing changes
    acl.call("ACL", "GETUSER", "u", norm=getuser_norm)
    acl.call("ACL", "SETUSER", "u", "~b", "+set", ">pw2")
    acl.call("ACL", "GETUSER", "u", norm=getuser_norm)
    acl.call("ACL", "SETUSER", "bad name")
    acl.call("ACL", "SETUSER", "tab\tname")
    acl.call("ACL", "SETUSER", "nul\x00name")
    acl.call("ACL", "SETUSER", "u", "<nope\r\nx")  # an error that would break the line
    acl.call("ACL", "SETUSER")
    acl.call("ACL", "GETUSER", "nosuch")
    acl.call("ACL", "GETUSER")
    acl.call("ACL", "GETUSER", "a", "b")
    acl.call("ACL", "USERS")


def test_default_user_rules(acl: Both, servers: Servers) -> None:
    acl.call("ACL", "GETUSER", "default", norm=getuser_norm)
    acl.call("ACL", "SETUSER", "root", "on", ">pw", "+@all", "~*", "&*")
    root = connect(servers, acl.resp)
    root.call("AUTH", "root", "pw")
    try:
        acl.call("ACL", "SETUSER", "default", "-@dangerous", "resetchannels", "&news")
        root.call("ACL", "LIST", norm=list_norm)
        acl.call("ACL", "LIST")
        acl.call("KEYS", "*")
        acl.call("PUBLISH", "news", "x")
        acl.call("PUBLISH", "other", "x")
    finally:
        root.call("ACL", "SETUSER", "default", "+@all", "allchannels")
    acl.call("ACL", "LIST", norm=list_norm)


def test_deluser_and_whoami(acl: Both, servers: Servers) -> None:
    acl.call("ACL", "WHOAMI")
    acl.call("ACL", "DELUSER", "default")
    acl.call("ACL", "DELUSER", "nosuch", "default")
    acl.call("ACL", "SETUSER", "a", "on", "nopass", "+@all", "~*")
    acl.call("ACL", "SETUSER", "b")
    alice = connect(servers)
    alice.call("AUTH", "a", "anything")
    alice.call("ACL", "WHOAMI")
    acl.call("ACL", "DELUSER", "a", "b", "a", "nosuch")
    acl.call("ACL", "USERS")
    # a deleted user's connection is closed
    for c in (alice.ours, alice.theirs):
        assert c.read_until_closed(10) == (b"", True)
    acl.call("ACL", "DELUSER", "a")
    acl.call("ACL", "DELUSER")


def test_deleting_its_own_user_answers_then_closes(acl: Both, servers: Servers) -> None:
    acl.call("ACL", "SETUSER", "self", "on", "nopass", "+@all", "~*")
    me = connect(servers)
    me.call("AUTH", "self", "x")
    me.call("ACL", "DELUSER", "self")
    for c in (me.ours, me.theirs):
        assert c.read_until_closed(10) == (b"", True)


# --- CAT / GENPASS / HELP / errors --------------------------------------------------------------


def shared_commands(acl: Both) -> set[bytes]:
    theirs = parse(acl.theirs.call("COMMAND", "LIST"))
    names: set[bytes] = set()
    for name in theirs:  # type: ignore[attr-defined]
        names.add(name)
        for sub in parse(acl.theirs.call("COMMAND", "INFO", name))[0][9]:  # type: ignore[index]
            names.add(sub[0])
    ours = {s.name.encode() for s in TABLE.all_specs()}
    return names & ours


def test_cat(acl: Both) -> None:
    categories = acl.call("ACL", "CAT")
    shared = shared_commands(acl)
    for category in [*categories, b"READ"]:  # type: ignore[misc]
        ours, theirs = (parse(r) for r in acl.raw("ACL", "CAT", category))
        assert isinstance(ours, list) and isinstance(theirs, list)
        assert set(ours) & shared == set(theirs) & shared, category
        assert len(set(ours)) == len(ours)
    acl.call("ACL", "CAT", "nosuch")
    acl.call("ACL", "CAT", "x" * 300)
    acl.call("ACL", "CAT", "read", "extra")


def test_genpass(acl: Both) -> None:
    for bits in ("1", "4", "5", "7", "8", "255", "256", "4096"):
        ours, theirs = (parse(r) for r in acl.raw("ACL", "GENPASS", bits))
        assert isinstance(ours, bytes) and isinstance(theirs, bytes)
        assert len(ours) == len(theirs) and all(c in b"0123456789abcdef" for c in ours)
    a, b = (parse(r) for r in acl.raw("ACL", "GENPASS"))
    assert len(a) == len(b) == 64  # type: ignore[arg-type]
    assert parse(acl.ours.call("ACL", "GENPASS")) != a
    for bad in ("0", "-1", "4097", "x", "1.5", "99999999999999999999"):
        acl.call("ACL", "GENPASS", bad)
    acl.call("ACL", "GENPASS", "1", "2")


def test_help_and_subcommand_errors(acl: Both) -> None:
    acl.call("ACL", "HELP")
    acl.call("ACL", "HELP", "x")
    acl.call("ACL")
    acl.call("ACL", "NOSUCH")
    acl.call("ACL", "LIST", "x")
    acl.call("ACL", "USERS", "x")
    acl.call("ACL", "WHOAMI", "x")
    acl.call("ACL", "SAVE", "x")
    acl.call("ACL", "LOAD", "x")
    acl.call("ACL", "LOG", "1", "2")


# --- NOPERM ---------------------------------------------------------------------------------------


def as_user(servers: Servers, resp: int, user: str, *rules: str) -> Both:
    admin = connect(servers)
    admin.call("ACL", "SETUSER", user, "on", ">pw", *rules)
    admin.close()
    both = connect(servers, resp)
    both.call("AUTH", user, "pw")
    return both


def test_noperm_commands_and_subcommands(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "~*", "-@all", "+@read", "-keys", "+config|get", "+client")
    u.call("SET", "k", "v")
    u.call("GET", "k")
    u.call("KEYS", "*")
    u.call("CONFIG", "GET", "maxclients", norm=error_norm)
    u.call("CONFIG", "SET", "maxclients", "10")
    u.call("CONFIG", "RESETSTAT")
    u.call("CONFIG", "NOSUCH")
    u.call("CONFIG")
    u.call("NOSUCH")
    u.call("GET")  # arity first
    u.call("CLIENT", "ID", norm=lambda r: type(r).__name__)
    u.call("FLUSHALL")
    u.call("ACL", "WHOAMI")
    u.call("PING")
    u.call("AUTH", "u", "pw")  # no_auth commands are always allowed
    u.call("SELECT", "1")
    u.call("MULTI")
    u.call("EXEC")
    acl.call("ACL", "SETUSER", "u", "+select|0", "+multi")
    u.call("SELECT", "0")
    u.call("select", "0")
    u.call("SELECT", "1")
    u.call("MULTI")
    u.call("GET", "k")
    u.call("SET", "k", "v")
    u.call("EXEC")
    acl.call("ACL", "LOG", norm=log_norm)


def test_noperm_keys_read_and_write(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "+@all", "-@dangerous", "%R~r:*", "%W~w:*", "~rw:*", "&*")
    acl.call("MSET", "r:1", "a", "w:1", "b", "rw:1", "c", "other", "d")
    for call in [
        ("GET", "r:1"),
        ("GET", "w:1"),
        ("GET", "rw:1"),
        ("GET", "other"),
        ("SET", "r:1", "x"),
        ("SET", "w:1", "x"),
        ("SET", "w:1", "x", "GET"),
        ("SET", "rw:1", "x", "GET"),
        ("APPEND", "w:1", "x"),
        ("APPEND", "rw:1", "x"),
        ("STRLEN", "w:1"),
        ("EXISTS", "w:1", "r:1", "other"),
        ("TYPE", "w:1"),
        ("DEL", "r:1"),
        ("DEL", "w:1"),
        ("UNLINK", "rw:1", "other"),
        ("COPY", "r:1", "w:2"),
        ("COPY", "r:1", "r:2"),
        ("RENAME", "w:2", "w:3"),
        ("RENAME", "rw:1", "rw:2"),
        ("LMOVE", "r:l", "w:l", "LEFT", "RIGHT"),
        ("LMOVE", "rw:l", "w:l", "LEFT", "RIGHT"),
        ("MGET", "r:1", "rw:2", "other"),
        ("MGET", "other", "r:1", "w:1"),
        ("MSET", "w:1", "x", "rw:2", "y"),
        ("MSET", "w:1", "x", "r:1", "y"),
        ("SINTERSTORE", "w:s", "r:a", "rw:b"),
        ("SINTERSTORE", "w:s", "r:a", "w:b"),
        ("ZUNIONSTORE", "w:z", "2", "r:a", "rw:b"),
        ("ZUNIONSTORE", "w:z", "2", "r:a", "w:b"),
        ("ZUNIONSTORE", "w:z", "x", "r:a"),
        ("BITOP", "AND", "w:b", "r:1", "rw:2"),
        ("OBJECT", "ENCODING", "w:1"),
        ("EXPIRE", "w:1", "100"),
        ("TTL", "w:1"),
        ("INCR", "w:n"),
        ("SORT", "r:l"),
        ("SORT", "r:l", "STORE", "w:d"),
        ("SORT", "r:l", "STORE", "r:d"),
        ("SORT", "r:l", "BY", "nosort"),
        ("SORT", "r:l", "BY", "w:*"),
        ("SORT", "r:l", "GET", "#"),
        ("SORT_RO", "r:l", "BY", "w:*"),
    ]:
        u.call(*call)
    acl.call("ACL", "LOG", norm=log_norm)
    acl.call("ACL", "LOG", "3", norm=log_norm)


def test_sort_patterns_need_every_key_readable(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "+@all", "%R~*", "~w:*")
    acl.call("RPUSH", "l", "2", "1")
    u.call("SORT", "l", "BY", "w_*")
    u.call("SORT", "l", "GET", "#", "GET", "x*")
    u.call("SORT", "l", "STORE", "w:dest")
    v = as_user(servers, acl.resp, "v", "+@all", "~*", "(+sort %R~w:*)")
    v.call("SORT", "l", "BY", "w_*")
    w = as_user(servers, acl.resp, "w", "+@all", "~l", "(+sort %R~*)", "(+sort %W~*)")
    w.call("SORT", "l", "BY", "w_*", "LIMIT", "0", "1")
    w.call("SORT", "l", "GET", "#", "LIMIT", "x", "1")


def test_noperm_channels(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "+@all", "~*", "&news.*", "&exact")
    u.call("PUBLISH", "news.today", "x")
    u.call("PUBLISH", "sport", "x")
    u.call("PUBLISH", "exact", "x")
    u.call("PUBSUB", "NUMSUB", "sport")
    u.call("SUBSCRIBE", "news.a", "exact", replies=2)
    u.call("UNSUBSCRIBE", "sport")
    u.call("SUBSCRIBE", "news.b", "sport")
    u.call("UNSUBSCRIBE", "news.a", "exact")
    u.call("PSUBSCRIBE", "news.*")
    u.call("PSUBSCRIBE", "news.a*")
    u.call("PSUBSCRIBE", "exact")
    u.call("PUNSUBSCRIBE", "news.*")
    acl.call("ACL", "LOG", norm=log_norm)
    v = as_user(servers, acl.resp, "v", "+@all", "~*")  # acl-pubsub-default resetchannels
    v.call("PUBLISH", "any", "x")
    acl.call("CONFIG", "SET", "acl-pubsub-default", "allchannels")
    acl.call("CONFIG", "GET", "acl-pubsub-default")
    acl.call("ACL", "SETUSER", "w", "on", ">pw", "+@all")
    acl.call("ACL", "SETUSER", "x", "reset")
    acl.call("ACL", "SETUSER", "y", "(+get)")
    acl.call("ACL", "LIST", norm=list_norm)


def test_selectors_decide_together(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "-@all", "+get", "~a", "(+set ~b)", "(+get +set %R~c &ch)")
    for call in [
        ("GET", "a"),
        ("GET", "b"),
        ("GET", "c"),
        ("SET", "a", "1"),
        ("SET", "b", "1"),
        ("SET", "c", "1"),
        ("DEL", "a"),
        ("MGET", "a", "b"),
        ("PUBLISH", "ch", "x"),
    ]:
        u.call(*call)
    acl.call("ACL", "LOG", norm=log_norm)
    acl.call("ACL", "GETUSER", "u", norm=getuser_norm)


# --- MULTI / EXEC ---------------------------------------------------------------------------------


def test_multi_checked_when_queued_and_at_exec(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "+@all", "~k*", "&c")
    u.call("MULTI")
    u.call("GET", "k1")
    u.call("GET", "other")
    u.call("EXEC")
    u.call("MULTI")
    u.call("SET", "k1", "v")
    u.call("GET", "k1")
    u.call("PUBLISH", "c", "m")
    u.call("INCR", "k2")
    acl.call("ACL", "SETUSER", "u", "-set", "resetkeys", "~k2", "resetchannels")
    u.call("EXEC")
    acl.call("ACL", "LOG", norm=log_norm)
    u.call("MULTI")
    acl.call("ACL", "SETUSER", "u", "-exec")
    u.call("EXEC")
    u.call("MULTI")
    u.call("DISCARD")


# --- AUTH / HELLO ---------------------------------------------------------------------------------


def test_auth_variants(acl: Both, servers: Servers) -> None:
    c = connect(servers, acl.resp)
    c.call("AUTH", "pw")
    c.call("AUTH", "default", "anything")
    c.call("AUTH", "nosuch", "pw")
    c.call("AUTH", "a", "b", "c")
    acl.call("ACL", "SETUSER", "on-user", "on", ">pw", "+@all", "~*")
    acl.call("ACL", "SETUSER", "off-user", "off", ">pw", "+@all", "~*")
    acl.call("ACL", "SETUSER", "open-user", "on", "nopass", "+acl|whoami")
    acl.call("ACL", "SETUSER", "no-pass-user", "on", "+@all")
    c.call("AUTH", "on-user", "wrong")
    c.call("AUTH", "off-user", "pw")
    c.call("AUTH", "no-pass-user", "")
    c.call("AUTH", "open-user", "whatever")
    c.call("ACL", "WHOAMI")
    c.call("AUTH", "on-user", "pw")
    c.call("ACL", "WHOAMI")
    c.call("auth", "nobody", "pw")  # the log names the command as typed
    acl.call("ACL", "LOG", norm=log_norm)


def test_requirepass_is_the_default_users_password(acl: Both, servers: Servers) -> None:
    acl.call("CONFIG", "SET", "requirepass", "s3cret")
    acl.call("ACL", "GETUSER", "default", norm=getuser_norm)
    acl.call("ACL", "LIST", norm=list_norm)
    c = connect(servers)
    c.call("GET", "k")
    c.call("HELLO", "3", norm=hello_norm)
    c.call("AUTH", "wrong")
    c.call("AUTH", "s3cret")
    c.call("GET", "k")
    d = connect(servers)
    d.call("HELLO", "3", "AUTH", "default", "nope", norm=hello_norm)
    d.call("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "n", norm=hello_norm)
    d.call("CLIENT", "GETNAME")
    d.call("RESET", norm=lambda r: r)
    d.call("GET", "k")
    d.call("HELLO", "2", "SETNAME", "x", "AUTH", "default", "s3cret", norm=hello_norm)
    d.call("CLIENT", "GETNAME")
    e = connect(servers)
    e.call("HELLO", "2", "AUTH", "default", "s3cret", "BOGUS", norm=hello_norm)
    e.call("GET", "k")  # the AUTH before the bad option was done, as in Redis
    acl.call("ACL", "SETUSER", "default", "nopass")
    f = connect(servers)
    f.call("GET", "k")
    acl.call("CONFIG", "GET", "requirepass")
    acl.call("ACL", "SETUSER", "default", ">again")
    c.call("GET", "k")  # logged in: stays
    f.call("GET", "k")  # logged in when it connected (the default user needed no password)
    g = connect(servers)
    g.call("GET", "k")
    acl.call("ACL", "SETUSER", "default", "nopass")
    g.call("GET", "k")  # the default user needs no password now
    g.call("HELLO", "2", norm=hello_norm)  # ... but HELLO wants a real login
    acl.call("ACL", "SETUSER", "default", "resetpass")
    g.call("GET", "k")
    acl.call("CONFIG", "SET", "requirepass", "")
    g.call("GET", "k")
    acl.call("ACL", "LOG", norm=log_norm)


def test_disabled_default_user(acl: Both, servers: Servers) -> None:
    acl.call("ACL", "SETUSER", "admin", "on", ">pw", "+@all", "~*", "&*")
    acl.call("ACL", "SETUSER", "default", "off")
    c = connect(servers)
    c.call("GET", "k")
    c.call("AUTH", "x")
    c.call("AUTH", "default", "x")
    c.call("AUTH", "admin", "pw")
    c.call("ACL", "SETUSER", "default", "on")


# --- ACL LOG --------------------------------------------------------------------------------------


def test_log_groups_counts_and_resets(acl: Both, servers: Servers) -> None:
    u = as_user(servers, acl.resp, "u", "+get", "~a")
    for _ in range(3):
        u.call("GET", "b")
    u.call("SET", "a", "1")
    u.call("GET", "c")
    u.call("GET", "b")
    acl.call("ACL", "LOG", norm=log_norm)
    acl.call("ACL", "LOG", "2", norm=log_norm)
    acl.call("ACL", "LOG", "0")
    acl.call("ACL", "LOG", "-5")
    acl.call("ACL", "LOG", "x")
    acl.call("ACL", "LOG", "reset")
    acl.call("ACL", "LOG")
    acl.call("CONFIG", "SET", "acllog-max-len", "2")
    for key in ("k1", "k2", "k3"):
        u.call("GET", key)
    acl.call("ACL", "LOG", norm=log_norm)
    acl.call("CONFIG", "SET", "acllog-max-len", "1")
    acl.call("ACL", "LOG", norm=log_norm)  # shortened only when the next entry comes
    u.call("GET", "k4")
    acl.call("ACL", "LOG", norm=log_norm)
    acl.call("CONFIG", "GET", "acllog-max-len")


# --- DRYRUN ---------------------------------------------------------------------------------------


def test_dryrun(acl: Both) -> None:
    acl.call("ACL", "SETUSER", "u", "+get", "+config|get", "%R~r*", "&c", "+publish")
    for call in [
        ("u", "GET", "r1"),
        ("u", "GET", "x"),
        ("u", "SET", "r1", "v"),
        ("u", "CONFIG", "GET", "x"),
        ("u", "CONFIG", "SET", "x", "y"),
        ("u", "CONFIG", "NOSUCH"),
        ("u", "CONFIG"),
        ("u", "NOSUCH"),
        ("u", "GET"),
        ("u", "GET", "a", "b"),
        ("u", "PUBLISH", "c", "m"),
        ("u", "PUBLISH", "d", "m"),
        ("nosuch", "GET", "x"),
        ("default", "FLUSHALL"),
        ("u",),
    ]:
        acl.call("ACL", "DRYRUN", *call)
    acl.call("ACL", "LOG")  # a dry run logs nothing


# --- SAVE / LOAD ----------------------------------------------------------------------------------


def test_save_and_load(acl: Both, servers: Servers) -> None:
    _, _, ledis_file, redis_file = servers
    acl.call("ACL", "SETUSER", "b", "on", ">pw", "~x", "&c", "+get", "(+set ~y)")
    acl.call("ACL", "SETUSER", "a", "off", "#" + "d" * 64, "allkeys", "+@read")
    acl.call("ACL", "SAVE")
    assert ledis_file.read_bytes().count(b"\n") == redis_file.read_bytes().count(b"\n") == 3
    assert list_norm(ledis_file.read_bytes().splitlines()) == list_norm(
        redis_file.read_bytes().splitlines()
    )
    acl.call("ACL", "DELUSER", "a", "b")
    acl.call("ACL", "LOAD")
    acl.call("ACL", "LIST", norm=list_norm)
    c = connect(servers)
    c.call("AUTH", "b", "pw")
    acl.call("ACL", "LOAD")  # reloading drops the connections of every user but default
    for side in (c.ours, c.theirs):
        assert side.read_until_closed(10) == (b"", True)


LOAD_ERRORS = [
    "user a on\n# a comment\n",
    "User a on\n",
    "user\n",
    "usera on\n",
    "user  c on\n",
    "user a on\nuser a off\n",
    "user d on +nosuch +nosuch2 %X~a #bad &x\n",
    "user e on #bad\nuser f on +nosuch\n",
    "user g on ~* ~x\n",
    'user "q on\n',
    "user a on\r\n\r\n\t\nuser b off\t\n",
    "user default off +nosuch\n",
    "user a on ~x&y (+get ~z)\n",
    "user a on (~a +get) (~b +nosuch)\n",
]


@pytest.mark.parametrize("text", LOAD_ERRORS)
def test_load_errors_leave_users_unchanged(acl: Both, servers: Servers, text: str) -> None:
    _, _, ledis_file, redis_file = servers
    acl.call("ACL", "SETUSER", "keep", "on", ">pw")
    for f in (ledis_file, redis_file):
        f.write_text(text)
    acl.call("ACL", "LOAD")
    acl.call("ACL", "LIST", norm=list_norm)


def test_load_missing_file_and_no_file_configured(acl: Both, servers: Servers) -> None:
    _, _, ledis_file, redis_file = servers
    ledis_file.unlink()
    redis_file.unlink()
    try:
        acl.call("ACL", "LOAD")
    finally:
        ledis_file.write_text("")
        redis_file.write_text("")


# --- CLIENT ---------------------------------------------------------------------------------------


def test_client_kill_user_and_client_info(acl: Both, servers: Servers) -> None:
    acl.call("ACL", "SETUSER", "k", "on", "nopass", "+@all", "~*")
    c = connect(servers)
    c.call("AUTH", "k", "x")
    for side in (c.ours, c.theirs):
        info = side.call("CLIENT", "INFO")
        assert b" user=k " in info
    acl.call("CLIENT", "KILL", "USER", "nosuch")
    acl.call("CLIENT", "KILL", "USER", "k")
    for side in (c.ours, c.theirs):
        assert side.read_until_closed(10) == (b"", True)
    acl.call("CLIENT", "KILL", "USER", "k")


def test_changed_channel_rules_drop_subscribers_that_lost_a_channel(
    acl: Both, servers: Servers
) -> None:
    acl.call("ACL", "SETUSER", "s", "on", "nopass", "+@all", "~*", "&a", "&b*")
    keeps = connect(servers)
    keeps.call("AUTH", "s", "x")
    keeps.call("SUBSCRIBE", "a")
    loses = connect(servers)
    loses.call("AUTH", "s", "x")
    loses.call("PSUBSCRIBE", "b*")
    plain = connect(servers)
    plain.call("AUTH", "s", "x")
    acl.call("ACL", "SETUSER", "s", "&c")  # a superset: nobody is dropped
    acl.call("ACL", "SETUSER", "s", "resetchannels", "&a", "&c")
    for side in (loses.ours, loses.theirs):
        assert side.read_until_closed(10) == (b"", True)
    keeps.call("PING")
    plain.call("GET", "k")
