"""Blocking commands against real Redis 7.0 in the same run, over RESP2 and RESP3: which
writes wake a blocked client and which do not (a key pushed and deleted or replaced inside
MULTI/EXEC, SWAPDB, MOVE, COPY, RENAME, RESTORE, *STORE destinations), which key it is served
from, first come first served, CLIENT UNBLOCK, blocking commands inside MULTI, timeouts,
CLIENT LIST flags, and disconnecting while blocked.

Every step runs on both servers and every reply must be the same bytes. Whether a client is
still blocked is asked of the server after the step (INFO's blocked_clients, the key's
contents), never guessed from a silence: a served client is served before the server reads
the next command of anyone."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from .multiclient import Clients, clients_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.differential

Cmd = Sequence[str | bytes | int]


# --- wake-up rules ------------------------------------------------------------------------------


def test_pushed_then_deleted_in_one_transaction_wakes_nobody(clients: Clients) -> None:
    clients.send(1, "BLPOP", "k", 0)
    clients.blocked(1)
    clients.call(0, "MULTI")
    clients.call(0, "RPUSH", "k", "a")
    clients.call(0, "DEL", "k")
    clients.call(0, "EXEC")
    clients.still_blocked(1)
    clients.call(0, "RPUSH", "k", "b")
    clients.read(1)


def test_pushed_then_replaced_by_another_type_wakes_nobody(clients: Clients) -> None:
    clients.send(1, "BLPOP", "k", 0)
    clients.send(2, "BZPOPMIN", "k", 0)
    clients.blocked(2)
    for cmd in (("MULTI",), ("RPUSH", "k", "a"), ("SET", "k", "now a string"), ("EXEC",)):
        clients.call(0, *cmd)
    clients.still_blocked(2)
    clients.call(0, "DEL", "k")
    clients.call(0, "ZADD", "k", "1", "m")  # a sorted set: the list waiter keeps waiting
    clients.read(2)
    clients.still_blocked(1)
    clients.call(0, "RPUSH", "k", "b")
    clients.read(1)


def test_a_key_still_there_after_the_transaction_is_served(clients: Clients) -> None:
    clients.send(1, "BRPOP", "k", 0)
    clients.blocked(1)
    for cmd in (("MULTI",), ("RPUSH", "k", "a", "b", "c"), ("RPOP", "k"), ("LPOP", "k"),
                ("EXEC",)):
        clients.call(0, *cmd)
    clients.read(1)
    clients.call(0, "EXISTS", "k")


def test_served_from_the_key_that_became_ready_first(clients: Clients) -> None:
    clients.send(1, "BLPOP", "a", "b", 0)
    clients.send(2, "BLMPOP", 0, 2, "a", "b", "RIGHT", "COUNT", 5)
    clients.blocked(2)
    for cmd in (("MULTI",), ("RPUSH", "b", "x", "y"), ("RPUSH", "a", "z"), ("EXEC",)):
        clients.call(0, *cmd)
    clients.read(1)
    clients.read(2)
    clients.call(0, "LRANGE", "a", 0, -1)
    clients.call(0, "LRANGE", "b", 0, -1)


def test_served_after_each_command_of_a_pipeline(clients: Clients) -> None:
    """The waiter gets the element before the writer's next command runs."""
    clients.send(1, "BLPOP", "q", 0)
    clients.blocked(1)
    clients.send(0, "RPUSH", "q", "first")
    clients.send(0, "LPOP", "q")
    clients.send(0, "RPUSH", "q", "second")
    for _ in range(3):
        clients.read(0)
    clients.read(1)
    clients.call(0, "LRANGE", "q", 0, -1)


def test_swapdb_and_flushdb_follow_the_database(clients: Clients) -> None:
    clients.send(1, "BLPOP", "k", 0)
    clients.call(2, "SELECT", 1)
    clients.send(2, "BLPOP", "other", 0)
    clients.blocked(2)
    clients.call(0, "SELECT", 1)
    clients.call(0, "RPUSH", "k", "from-db1")
    clients.call(0, "SWAPDB", 0, 1)  # db 0 now holds k: its waiter is served
    clients.read(1)
    clients.still_blocked(1)
    clients.call(0, "FLUSHDB")  # db 1 gets fresh data; its waiter still waits on "other"
    clients.call(0, "RPUSH", "other", "x")
    clients.read(2)


def test_swapdb_brings_a_key_of_the_wrong_type(clients: Clients) -> None:
    clients.send(1, "BLPOP", "k", 0)
    clients.blocked(1)
    clients.call(0, "SELECT", 1)
    clients.call(0, "ZADD", "k", 1, "m")
    clients.call(0, "SWAPDB", 0, 1)
    clients.still_blocked(1)
    clients.call(0, "SWAPDB", 0, 1)
    clients.call(0, "SELECT", 0)
    clients.call(0, "RPUSH", "k", "v")
    clients.read(1)


@pytest.mark.parametrize("how", [
    [("SELECT", 1), ("RPUSH", "k", "v"), ("MOVE", "k", 0)],
    [("RPUSH", "src", "v"), ("RENAME", "src", "k")],
    [("RPUSH", "src", "v"), ("SET", "k", "x"), ("RENAME", "src", "k")],
    [("RPUSH", "src", "v"), ("COPY", "src", "k")],
    [("SELECT", 1), ("RPUSH", "src", "v"), ("COPY", "src", "k", "DB", 0)],
    [("RPUSH", "src", "v"), ("LMOVE", "src", "k", "LEFT", "RIGHT")],
    [("RPUSH", "src", "v"), ("SORT", "src", "ALPHA", "STORE", "k")],
    [("RPUSH", "src", "3", "1"), ("SORT", "src", "BY", "nosort", "STORE", "k")],
    [("SET", "k", "string"), ("RPUSH", "src", "v"), ("SORT", "src", "ALPHA", "STORE", "k")],
], ids=["move", "rename", "rename-over", "copy", "copy-db", "lmove", "sort-store",
        "sort-nosort", "sort-over-a-string"])
def test_writes_that_create_the_key_wake_the_waiter(clients: Clients, how: list[Cmd]) -> None:
    """A write that makes the key exist as a list serves the waiter; one that overwrites a
    key of another type does not (Redis 7.0 signals keys when they are created)."""
    clients.send(1, "BLPOP", "k", 0)
    clients.blocked(1)
    for cmd in how:
        clients.call(0, *cmd)
    if how[0] == ("SET", "k", "string"):
        clients.still_blocked(1)
        clients.call(0, "DEL", "k")
        clients.call(0, "RPUSH", "k", "now")
    clients.read(1)


def test_restore_wakes_the_waiter(clients: Clients) -> None:
    payloads = []
    for c in clients.pairs(0):  # each server restores a payload of its own
        c.call("RPUSH", "tmp", "restored")
        payloads.append(c.call("DUMP", "tmp").split(b"\r\n", 1)[1][:-2])
        c.call("DEL", "tmp")
    clients.send(1, "BLPOP", "k", 0)
    clients.blocked(1)
    for c, payload in zip(clients.pairs(0), payloads, strict=True):
        assert c.call("RESTORE", "k", "0", payload) == b"+OK\r\n"
    clients.read(1)


def test_zset_destinations_wake_bzpopmin(clients: Clients) -> None:
    clients.call(0, "ZADD", "z1", 1, "a", 2, "b")
    clients.send(1, "BZPOPMIN", "dst", 0)
    clients.send(2, "BZMPOP", 0, 1, "dst2", "MAX", "COUNT", 2)
    clients.send(3, "BZPOPMAX", "dst3", 0)
    clients.blocked(3)
    clients.call(0, "ZUNIONSTORE", "dst", 1, "z1")
    clients.call(0, "ZRANGESTORE", "dst2", "z1", 0, -1)
    clients.call(0, "ZINTERSTORE", "dst3", 2, "z1", "dst2")  # dst2 was emptied: nothing
    clients.still_blocked(1)
    clients.call(0, "ZADD", "dst3", 5, "late")
    for i in (1, 2, 3):
        clients.read(i)


def test_blmove_chain_serves_the_next_waiter(clients: Clients) -> None:
    clients.send(1, "BLMOVE", "a", "b", "LEFT", "RIGHT", 0)
    clients.blocked(1)
    clients.send(2, "BRPOPLPUSH", "b", "c", 0)
    clients.blocked(2)
    clients.send(3, "BLPOP", "c", 0)
    clients.blocked(3)
    clients.call(0, "RPUSH", "a", "travels")
    for i in (1, 2, 3):
        clients.read(i)
    clients.call(0, "KEYS", "*")


def test_blmove_to_a_key_of_the_wrong_type(clients: Clients) -> None:
    clients.call(0, "SET", "dst", "string")
    clients.send(1, "BLMOVE", "src", "dst", "LEFT", "LEFT", 0)
    clients.blocked(1)
    clients.call(0, "RPUSH", "src", "v")
    clients.read(1)
    clients.call(0, "LRANGE", "src", 0, -1)


# --- first come first served --------------------------------------------------------------------


def test_first_come_first_served_per_key(clients: Clients) -> None:
    clients.send(1, "BRPOP", "q", 0)
    clients.blocked(1)
    clients.send(2, "BLMPOP", 0, 1, "q", "LEFT", "COUNT", 2)
    clients.blocked(2)
    clients.send(3, "BLMOVE", "q", "out", "RIGHT", "LEFT", 0)
    clients.blocked(3)
    clients.call(0, "RPUSH", "q", "a", "b", "c", "d", "e")
    for i in (1, 2, 3):
        clients.read(i)
    clients.call(0, "LRANGE", "q", 0, -1)
    clients.call(0, "LRANGE", "out", 0, -1)


def test_first_come_first_served_on_sorted_sets(clients: Clients) -> None:
    clients.send(1, "BZPOPMAX", "z", "y", 0)
    clients.blocked(1)
    clients.send(2, "BZMPOP", 0, 2, "y", "z", "MIN", "COUNT", 10)
    clients.blocked(2)
    clients.send(3, "BZPOPMIN", "z", 0)
    clients.blocked(3)
    clients.call(0, "ZADD", "z", 1, "a", 2, "b", 3, "c")
    clients.read(1)
    clients.read(2)
    clients.still_blocked(1)
    clients.call(0, "ZADD", "y", 1, "a")  # nobody waits on y any more
    clients.still_blocked(1)
    clients.call(0, "ZADD", "z", 7, "late")
    clients.read(3)
    clients.call(0, "ZRANGE", "y", 0, -1)


def test_a_client_that_leaves_gives_up_its_turn(clients: Clients) -> None:
    clients.send(1, "BLPOP", "q", 0)
    clients.blocked(1)
    clients.send(2, "BLPOP", "q", 0)
    clients.blocked(2)
    for c in clients.pairs(1):
        c.close()
    clients.blocked(1)
    clients.call(0, "RPUSH", "q", "v")
    clients.read(2)
    clients.call(0, "EXISTS", "q")


def test_commands_after_a_blocking_one_wait_their_turn(clients: Clients) -> None:
    clients.send(1, "BLPOP", "q", 0)
    clients.send(1, "SET", "after", "1")
    clients.blocked(1)
    clients.call(0, "EXISTS", "after")
    clients.call(0, "RPUSH", "q", "v")
    clients.read(1)
    clients.read(1)
    clients.call(0, "GET", "after")


# --- CLIENT UNBLOCK, MULTI, timeouts, CLIENT LIST -----------------------------------------------


def test_client_unblock(clients: Clients) -> None:
    ids = [clients.client_id(i) for i in (1, 2, 3)]
    clients.send(1, "BLPOP", "q", 0)
    clients.send(2, "BLMOVE", "q", "x", "LEFT", "LEFT", 0)
    clients.send(3, "BZMPOP", 0, 1, "z", "MIN")
    clients.blocked(3)
    for i, (ours_id, theirs_id), reason in zip((1, 2, 3), ids, ("TIMEOUT", "ERROR", ""), strict=True):
        extra = [reason] if reason else []
        assert clients.ours[0].call("CLIENT", "UNBLOCK", ours_id, *extra) == b":1\r\n"
        assert clients.theirs[0].call("CLIENT", "UNBLOCK", theirs_id, *extra) == b":1\r\n"
        clients.read(i)
        clients.call(i, "PING")
    clients.still_blocked(0)
    ours_id, theirs_id = ids[0]
    assert clients.ours[0].call("CLIENT", "UNBLOCK", ours_id) == b":0\r\n"  # not blocked
    assert clients.theirs[0].call("CLIENT", "UNBLOCK", theirs_id) == b":0\r\n"
    for cmd in (("CLIENT", "UNBLOCK", 1, "MAYBE"), ("CLIENT", "UNBLOCK", "x"),
                ("CLIENT", "UNBLOCK", 999999), ("CLIENT", "UNBLOCK"),
                ("CLIENT", "UNBLOCK", 1, "TIMEOUT", "x"), ("CLIENT", "UNBLOCK", -1, "error"),
                ("CLIENT", "UNBLOCK", "x", "MAYBE")):
        clients.call(0, *cmd)


def test_client_unblock_ends_wait(clients: Clients) -> None:
    """WAIT with no replicas waits for its timeout; CLIENT UNBLOCK ends it with the count."""
    ids = clients.client_id(1)
    clients.send(1, "WAIT", 1, 0)
    clients.blocked(1)
    for c, client_id in zip(clients.pairs(0), ids, strict=True):
        assert c.call("CLIENT", "UNBLOCK", client_id) == b":1\r\n"
    clients.read(1)


def test_blocking_commands_inside_multi_answer_at_once(clients: Clients) -> None:
    for cmd in (("MULTI",), ("BLPOP", "none", 0), ("BRPOP", "none", 0),
                ("BLMOVE", "none", "x", "LEFT", "LEFT", 0), ("BRPOPLPUSH", "none", "x", 0),
                ("BLMPOP", 0, 1, "none", "LEFT"), ("BZPOPMIN", "none", 0),
                ("BZPOPMAX", "none", 0), ("BZMPOP", 0, 1, "none", "MIN"),
                ("RPUSH", "full", "v"), ("BLPOP", "full", 0), ("EXEC",)):
        clients.call(0, *cmd)
    clients.still_blocked(0)


@pytest.mark.parametrize("timeout", ["-1", "abc", "1e400", "-0.5", "", "inf", "nan",
                                     "9223372036854775807", "1e20"])
def test_timeout_errors(clients: Clients, timeout: str) -> None:
    for cmd in (("BLPOP", "k", timeout), ("BZPOPMIN", "k", timeout),
                ("BLMOVE", "k", "d", "LEFT", "LEFT", timeout), ("BLMPOP", timeout, 1, "k", "LEFT")):
        clients.send(1, *cmd)
        clients.send(1, "PING")
        reply = clients.read(1)
        if reply[:1] != b"-":  # it blocked (a timeout Redis takes): release it
            pytest.fail(f"{cmd!r} blocked")
        clients.read(1)


def test_short_timeouts_answer_their_null(clients: Clients) -> None:
    for cmd in (("BLPOP", "k", "0.01"), ("BLMOVE", "k", "d", "LEFT", "LEFT", "0.01"),
                ("BZMPOP", "0.01", 1, "k", "MIN"), ("BRPOPLPUSH", "k", "d", "0.01")):
        clients.call(1, *cmd)


def test_client_list_shows_the_blocked_flag(clients: Clients) -> None:
    clients.send(1, "BLPOP", "q", 0)
    clients.blocked(1)
    for side in (clients.ours, clients.theirs):
        listing = side[0].call("CLIENT", "LIST", "TYPE", "normal").decode()
        lines = listing.split("\r\n", 1)[1].split("\n")  # the bulk's (or verbatim's) text
        flags = [x.split("flags=")[1].split()[0] for x in lines if "flags=" in x]
        flags = sorted(f.replace("U", "") or "N" for f in flags)  # U: Redis's unix socket
        assert flags == ["N", "N", "N", "b"], listing
    clients.call(0, "RPUSH", "q", "v")
    clients.read(1)
