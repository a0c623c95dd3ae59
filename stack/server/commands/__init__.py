"""Command handlers, bound by name to their specs in ``stack.core.commands``.

A handler takes the calling client and the argument list (command name included) and returns a
reply value for ``stack.core.resp.encode`` (or raises ``ReplyError``). Arity, authentication and
statistics are handled by the dispatcher from the spec, never in a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stack.core.resp import Status

if TYPE_CHECKING:
    from ..client import Client

Handler = Callable[["Client", list[bytes]], Any]

HANDLERS: dict[str, Handler] = {}


def handler(*names: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler of the named commands (``config|get`` style)."""

    def register(fn: Handler) -> Handler:
        for name in names:
            if name in HANDLERS:
                raise ValueError(f"two handlers for {name!r}")
            HANDLERS[name] = fn
        return fn

    return register


def help_lines(container: str, lines: list[str]) -> list[Status]:
    """A HELP subcommand's reply: the usage line, the subcommands' lines, then HELP's own."""
    head = f"{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return [Status(x) for x in [head, *lines, "HELP", "    Prints this help."]]


def load_all() -> dict[str, Handler]:
    """Import every handler module (registration happens on import)."""
    from . import (  # noqa: F401
        acl,
        bitmaps,
        cluster,
        connection,
        diagnostics,
        dumps,
        hashes,
        keys,
        ledis,
        lists,
        persistence,
        pubsub,
        replication,
        scripting,
        server,
        sets,
        slots,
        sortedsets,
        sorting,
        strings,
        transactions,
    )

    return HANDLERS
