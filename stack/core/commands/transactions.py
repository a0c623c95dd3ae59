"""Specs of the transaction commands."""

from __future__ import annotations

from .keyspec import ks
from .spec import command, key, multiple

G = "transactions"
FLAGS = "noscript loading stale fast allow_busy"

SPECS = (
    command(
        "discard",
        1,
        FLAGS,
        G,
        "Discard all commands issued after MULTI",
        "2.0.0",
        complexity="O(N), when N is the number of queued commands",
    ),
    command(
        "exec",
        1,
        "noscript loading stale skip_slowlog",
        G,
        "Execute all commands issued after MULTI",
        "1.2.0",
        complexity="Depends on commands in the transaction",
    ),
    command("multi", 1, FLAGS, G, "Mark the start of a transaction block", "1.2.0"),
    command("unwatch", 1, FLAGS, G, "Forget about all watched keys", "2.2.0"),
    command(
        "watch",
        -2,
        FLAGS,
        G,
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        "2.2.0",
        multiple(key()),
        complexity="O(1) for every key.",
        keys=ks("RO", 1, -1),
    ),
)
