"""Specs of LedisDB's own commands, kept so that LedisDB users' scripts run unchanged.

LedisDB keeps one keyspace per type; here the keyspace is shared, so a typed command (HCLEAR,
LTTL, ...) acts only when the key holds its type, and otherwise behaves as if it were absent.
"""

from __future__ import annotations

from .spec import (
    CommandSpec,
    command,
    integer,
    key,
    multiple,
    oneof,
    optional,
    pattern,
    string,
    token,
    unix_time,
)

G = "ledis"
K1 = (1, 1, 1)
TYPES = {"h": "hash", "l": "list", "s": "set", "z": "sorted set"}


def _typed(prefix: str) -> tuple[CommandSpec, ...]:
    kind = TYPES[prefix]
    return (
        command(
            f"{prefix}clear",
            2,
            "write",
            G,
            f"Delete a {kind} key (LedisDB)",
            "ledis",
            key(),
            keys=K1,
            complexity="O(N)",
        ),
        command(
            f"{prefix}mclear",
            -2,
            "write",
            G,
            f"Delete several {kind} keys (LedisDB)",
            "ledis",
            multiple(key()),
            keys=(1, -1, 1),
            complexity="O(N)",
        ),
        command(
            f"{prefix}expire",
            -3,
            "write fast",
            G,
            f"Set a {kind} key's time to live in seconds (LedisDB)",
            "ledis",
            key(),
            integer("seconds"),
            keys=K1,
        ),
        command(
            f"{prefix}expireat",
            -3,
            "write fast",
            G,
            f"Set a {kind} key's expiry as a UNIX timestamp (LedisDB)",
            "ledis",
            key(),
            unix_time("timestamp"),
            keys=K1,
        ),
        command(
            f"{prefix}ttl",
            -2,
            "readonly fast",
            G,
            f"Get a {kind} key's time to live in seconds, -1 if none (LedisDB)",
            "ledis",
            key(),
            keys=K1,
        ),
        command(
            f"{prefix}persist",
            -2,
            "write fast",
            G,
            f"Remove a {kind} key's expiry (LedisDB)",
            "ledis",
            key(),
            keys=K1,
        ),
        command(
            f"{prefix}keyexists",
            2,
            "readonly fast",
            G,
            f"Determine if a {kind} key exists (LedisDB)",
            "ledis",
            key(),
            keys=K1,
        ),
    )


def _xscan_options() -> tuple:  # type: ignore[type-arg]
    return (
        optional(pattern(token="MATCH")),
        optional(integer("count", token="COUNT")),
        oneof("order", token("ASC"), token("DESC"), optional=True),
    )


_sort_args = (key(), optional(pattern(token="BY")), optional(string("limit", token="LIMIT")))

SPECS = (
    *_typed("h"),
    *_typed("l"),
    *_typed("s"),
    *_typed("z"),
    command(
        "ltrim_front",
        3,
        "write",
        G,
        "Delete count elements from the head of a list (LedisDB)",
        "ledis",
        key(),
        integer("count"),
        keys=K1,
        complexity="O(N)",
    ),
    command(
        "ltrim_back",
        3,
        "write",
        G,
        "Delete count elements from the tail of a list (LedisDB)",
        "ledis",
        key(),
        integer("count"),
        keys=K1,
        complexity="O(N)",
    ),
    command(
        "xscan",
        -3,
        "readonly",
        G,
        "Iterate the keys of one type, by key cursor (LedisDB)",
        "ledis",
        oneof("type", token("KV"), token("HASH"), token("LIST"), token("SET"), token("ZSET")),
        string("cursor"),
        *_xscan_options(),
        complexity="O(1) for every call",
    ),
    command(
        "xhscan",
        -3,
        "readonly",
        G,
        "Iterate a hash's fields, by field cursor (LedisDB)",
        "ledis",
        key(),
        string("cursor"),
        *_xscan_options(),
        keys=K1,
    ),
    command(
        "xsscan",
        -3,
        "readonly",
        G,
        "Iterate a set's members, by member cursor (LedisDB)",
        "ledis",
        key(),
        string("cursor"),
        *_xscan_options(),
        keys=K1,
    ),
    command(
        "xzscan",
        -3,
        "readonly",
        G,
        "Iterate a sorted set's members, by member cursor (LedisDB)",
        "ledis",
        key(),
        string("cursor"),
        *_xscan_options(),
        keys=K1,
    ),
    command(
        "xlsort",
        -2,
        "write denyoom",
        G,
        "SORT a list key (LedisDB)",
        "ledis",
        *_sort_args,
        keys=K1,
        complexity="O(N+M*log(M))",
    ),
    command(
        "xssort",
        -2,
        "write denyoom",
        G,
        "SORT a set key (LedisDB)",
        "ledis",
        *_sort_args,
        keys=K1,
        complexity="O(N+M*log(M))",
    ),
    command(
        "xzsort",
        -2,
        "write denyoom",
        G,
        "SORT a sorted set key (LedisDB)",
        "ledis",
        *_sort_args,
        keys=K1,
        complexity="O(N+M*log(M))",
    ),
)
