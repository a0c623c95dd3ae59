"""Specs of commands the server does not run yet, whose key shapes the proxy must already
know: MIGRATE (a key, or the keys after a KEYS keyword searched from the end) and XREAD (the
keys after STREAMS, half of what follows). They are not in TABLE (a spec there needs a handler); the work
that adds a handler moves its spec there. ``PLANNED.keys(args)`` finds their keys meanwhile."""

from __future__ import annotations

from . import CommandTable
from .keyspec import ks
from .spec import (
    block,
    command,
    integer,
    key,
    multiple,
    oneof,
    optional,
    string,
    token,
)

SPECS = (
    command(
        "migrate",
        -6,
        "write",
        "generic",
        "Atomically transfer a key from a Redis instance to another one.",
        "2.6.0",
        string("host"),
        integer("port"),
        oneof("key-selector", key(), token('""', name="empty-string")),
        integer("destination-db"),
        integer("timeout"),
        optional(token("COPY")),
        optional(token("REPLACE")),
        optional(
            oneof(
                "authentication",
                string("password", token="AUTH"),
                block("auth2", string("username"), string("password2"), token="AUTH2"),
            )
        ),
        optional(multiple(key("key", spec=1, token="KEYS"))),
        keys=(
            ks("RW ACCESS DELETE", 3),
            ks(
                "RW ACCESS DELETE INCOMPLETE",
                keyword="KEYS",
                startfrom=-2,
                lastkey=-1,
                notes="Only when the key argument is empty",
            ),
        ),
        key_proc="migrate",
        acl="keyspace dangerous",
        tips=("nondeterministic_output",),
    ),
    command(
        "xread",
        -4,
        "readonly blocking",
        "stream",
        "Return never seen elements in multiple streams",
        "5.0.0",
        optional(integer("count", token="COUNT")),
        optional(integer("milliseconds", token="BLOCK")),
        block(
            "streams",
            multiple(key()),
            multiple(string("id")),
            token="STREAMS",
        ),
        keys=ks("RO ACCESS", keyword="STREAMS", startfrom=1, lastkey=-1, keystep=1, limit=2),
        acl="stream",
    ),
)


PLANNED = CommandTable(SPECS)
