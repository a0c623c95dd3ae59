"""A client's transaction state (its MULTI queue and WATCHed keys), ended in one place: by
EXEC and DISCARD, UNWATCH, RESET, a refused EXEC, and a closed connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


def end_transaction(c: Client) -> None:
    c.multi = None
    c.multi_failed = False
    unwatch_all(c)


def unwatch_all(c: Client) -> None:
    watchers = c.server.keyspace.watchers
    for mkey in c.watched:
        clients = watchers.get(mkey)
        if clients is not None:
            clients.discard(c)
            if not clients:
                del watchers[mkey]
    c.watched.clear()
    c.watch_broken = False
