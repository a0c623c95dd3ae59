"""MULTI/EXEC/WATCH against real Redis 7.0 in the same run, over RESP2 and RESP3: which errors
while queueing abort EXEC (and with what text), which do not, RESET and QUIT inside a
transaction, and exactly when FLUSHALL, FLUSHDB, SWAPDB, other clients' writes and expiry
make a WATCHed transaction fail."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from .multiclient import Clients, clients_fixture  # noqa: F401 (the fixture)
from .servers import wait_until

pytestmark = pytest.mark.differential

Cmd = Sequence[str | bytes | int]


def run(clients: Clients, commands: Sequence[Cmd], client: int = 0) -> None:
    for cmd in commands:
        clients.call(client, *cmd)


@pytest.mark.parametrize("bad", [
    ("SET", "b"), ("GET", "a", "b"), ("NOSUCH", "x"), ("CONFIG", "FOO"), ("CONFIG",),
    ("CLIENT", "NOSUCH"), ("SAVE",), ("OBJECT", "FOO", "a"), ("COMMAND", "NOPE"),
], ids=lambda c: " ".join(map(str, c)))
def test_an_error_while_queueing_aborts_exec(clients: Clients, bad: Cmd) -> None:
    run(clients, [("SET", "a", "0"), ("MULTI",), ("INCR", "a"), bad, ("INCR", "a"), ("EXEC",),
                  ("GET", "a"), ("EXEC",)])


def test_errors_that_do_not_abort(clients: Clients) -> None:
    run(clients, [
        ("MULTI",), ("WATCH", "x"), ("MULTI",), ("SET", "a", "1"), ("EXEC",),
        ("MULTI",), ("SET", "s", "x"), ("INCR", "s"), ("LPUSH", "s", "v"), ("GET", "s"),
        ("CONFIG", "SET", "nosuch", "1"), ("EXEC",),
    ])


def test_exec_and_discard_out_of_place(clients: Clients) -> None:
    run(clients, [
        ("EXEC",), ("DISCARD",), ("EXEC", "x"), ("DISCARD", "x"), ("MULTI", "x"),
        ("MULTI",), ("SET", "a", "1"), ("EXEC", "x"), ("GET", "a"), ("EXEC",),
        ("MULTI",), ("DISCARD", "x"), ("EXEC",), ("WATCH",), ("UNWATCH", "x"),
    ])


def test_reset_inside_multi_and_watch(clients: Clients) -> None:
    run(clients, [("SET", "w", "1"), ("WATCH", "w"), ("MULTI",), ("SET", "a", "1"), ("RESET",),
                  ("EXEC",), ("GET", "a")])
    clients.call(1, "SET", "w", "changed by another client")
    run(clients, [("MULTI",), ("SET", "a", "2"), ("EXEC",), ("GET", "a")])  # no longer watched


def test_quit_inside_multi(clients: Clients) -> None:
    run(clients, [("MULTI",), ("SET", "q", "1"), ("QUIT",)], client=1)
    clients.call(0, "EXISTS", "q")


def test_exec_runs_when_nothing_watched_changed(clients: Clients) -> None:
    run(clients, [("SET", "w", "1"), ("WATCH", "w", "missing"), ("GET", "w"),
                  ("SET", "other", "1"), ("MULTI",), ("INCR", "w"), ("EXEC",)])


@pytest.mark.parametrize("change", [
    [("SET", "w", "2")], [("DEL", "w")], [("EXPIRE", "w", "100")], [("SET", "missing", "x")],
    [("RENAME", "w", "w2")], [("LPUSH", "list", "x")], [("SELECT", 1), ("SWAPDB", 0, 1)],
    [("FLUSHDB",)], [("FLUSHALL",)], [("FLUSHALL", "ASYNC")],
], ids=["set", "del", "expire", "create", "rename", "push", "swapdb", "flushdb", "flushall",
        "flushall-async"])
def test_a_change_by_another_client_fails_exec(clients: Clients, change: list[Cmd]) -> None:
    run(clients, [("SET", "w", "1"), ("RPUSH", "list", "a"), ("WATCH", "w", "missing", "list")])
    run(clients, change, client=1)
    run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",), ("EXISTS", "x")])


@pytest.mark.parametrize("change", [
    [("FLUSHDB",)], [("FLUSHALL",)], [("SELECT", 1), ("FLUSHDB",)],
    [("SELECT", 2), ("SET", "w", "in db 2"), ("SWAPDB", 1, 2)], [("SWAPDB", 1, 2)],
    [("SELECT", 1), ("SET", "w", "x"), ("DEL", "w")],
], ids=["flushdb", "flushall", "flushdb-other-db", "swapdb-other-dbs", "swapdb-empty",
        "other-db"])
def test_flushes_and_swaps_of_missing_keys_change_nothing(
    clients: Clients, change: list[Cmd]
) -> None:
    """FLUSHDB/FLUSHALL break a WATCH only if the key was there; SWAPDB only if it is there
    on either side (Redis 7.0)."""
    run(clients, [("WATCH", "w")])
    run(clients, change, client=1)
    run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",)])


def test_swapdb_bringing_the_key_fails_exec(clients: Clients) -> None:
    run(clients, [("WATCH", "w")])
    run(clients, [("SELECT", 1), ("SET", "w", "in db 1"), ("SWAPDB", 0, 1)], client=1)
    run(clients, [("MULTI",), ("GET", "w"), ("EXEC",)])


def test_watch_follows_the_database_through_swapdb_and_flushdb(clients: Clients) -> None:
    """After the swap (or flush), a write to the key in the client's own database still
    counts, and one to the database it used to see does not."""
    for shuffle in ([("SWAPDB", 0, 1)], [("FLUSHDB",)]):
        run(clients, [("WATCH", "w", "v")])  # two keys: each must move once, not twice
        run(clients, shuffle, client=1)
        run(clients, [("SELECT", 1), ("SET", "w", "db1"), ("SELECT", 0)], client=1)
        run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",)])
        run(clients, [("WATCH", "v", "w")])
        run(clients, [("SET", "w", "db0")], client=1)
        run(clients, [("MULTI",), ("SET", "x", "2"), ("EXEC",), ("FLUSHALL",)])


def _expire_soon(clients: Clients, key: str, ms: int = 1500) -> float:
    """Give ``key`` on both servers the same absolute expiry ``ms`` from now (room for a busy
    machine between the two servers' commands); the time.time() it expires at."""
    at = int(time.time() * 1000) + ms
    run(clients, [("SET", key, "v"), ("PEXPIREAT", key, at)])
    return at / 1000


def _sleep_past(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()) + 0.05)


def test_watched_keys_that_expire(clients: Clients) -> None:
    run(clients, [("SET", "gone", "v", "PX", "1")])
    time.sleep(0.05)  # "gone" has expired before WATCH sees it
    run(clients, [("WATCH", "gone")])
    for side in (clients.ours, clients.theirs):  # the active sweep deletes it: no change
        wait_until(lambda c=side[1]: c.call("DBSIZE") == b":0\r\n", "the active sweep")
    run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",)])  # gone was already gone
    expires = _expire_soon(clients, "soon")
    run(clients, [("WATCH", "soon")])
    _sleep_past(expires)
    run(clients, [("MULTI",), ("SET", "x", "2"), ("EXEC",), ("GET", "x")])


def test_watch_then_lazy_expiry_by_another_client(clients: Clients) -> None:
    expires = _expire_soon(clients, "soon")
    run(clients, [("WATCH", "soon")])
    _sleep_past(expires)
    clients.call(1, "GET", "soon")  # expires it
    run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",)])


def test_a_transaction_is_one_unit_for_other_clients(clients: Clients) -> None:
    run(clients, [("MULTI",), ("SET", "a", "1"), ("SET", "b", "2")])
    clients.call(1, "MGET", "a", "b")
    run(clients, [("EXEC",)])
    clients.call(1, "MGET", "a", "b")


def test_unwatched_after_a_swap_stays_unwatched(clients: Clients) -> None:
    """A transaction after WATCH, SWAPDB and EXEC watches nothing any more: a later write to
    the key it watched does not fail the next transaction."""
    run(clients, [("WATCH", "w", "v"), ("MULTI",), ("EXEC",)])  # EXEC unwatches
    run(clients, [("WATCH", "w", "v")])
    run(clients, [("SWAPDB", 0, 1)], client=1)
    run(clients, [("MULTI",), ("SET", "x", "1"), ("EXEC",)])
    run(clients, [("SET", "w", "1"), ("SET", "v", "1")], client=1)
    run(clients, [("MULTI",), ("SET", "x", "2"), ("EXEC",)])
