"""Specs of the generic (keyspace) commands."""

from __future__ import annotations

from .keyspec import ks
from .spec import (
    Arg,
    CommandSpec,
    block,
    command,
    container,
    help_sub,
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

G = "generic"

_condition = oneof(
    "condition", token("NX"), token("XX"), token("GT"), token("LT"), optional=True, since="7.0.0"
)


def _expire(name: str, unit_arg: Arg, summary: str, since: str) -> CommandSpec:
    return command(
        name, -3, "write fast", G, summary, since, key(), unit_arg, _condition, keys=ks("RW UPDATE")
    )


def _object_sub(sub: str, summary: str) -> CommandSpec:
    return command(
        f"object|{sub}",
        3,
        "readonly",
        G,
        summary,
        "2.2.3",
        key(),
        keys=ks("RO", 2),
        tips=("nondeterministic_output",),
    )


def sort_args(store: bool) -> tuple[Arg, ...]:
    """SORT's arguments (and LedisDB's XLSORT ...): BY and GET patterns name keys (spec 1)."""
    args = (
        key(),
        optional(pattern(token="BY", spec=1)),
        optional(block("limit", integer("offset"), integer("count"), token="LIMIT")),
        optional(multiple(pattern(token="GET", spec=1))),
        oneof("order", token("ASC"), token("DESC"), optional=True),
        optional(token("ALPHA", name="sorting")),
    )
    return (*args, optional(key("destination", spec=2, token="STORE"))) if store else args


# SORT's keys: the sorted key; the keys its BY and GET patterns name (only its content says
# which); the STORE destination, which may come anywhere (the "sort" key procedure finds it).
_BY_GET = "Keys named by the BY and GET patterns: which ones depends on the sorted values"
_STORE = "The STORE destination: the option may come anywhere among the others"
SORT_KEYS = (
    ks("RO ACCESS"),
    ks("RO ACCESS", unknown=True, notes=_BY_GET),
    ks("OW UPDATE", unknown=True, notes=_STORE),
)


SPECS = (
    command(
        "copy",
        -3,
        "write denyoom",
        G,
        "Copy a key",
        "6.2.0",
        key("source"),
        key("destination", spec=1),
        optional(integer("destination-db", token="DB")),
        optional(token("REPLACE")),
        complexity="O(N) worst case for collections, where N is the number of nested items.",
        keys=(
            ks("RO ACCESS"),
            ks("OW UPDATE", 2),
        ),
    ),
    command(
        "del",
        -2,
        "write",
        G,
        "Delete a key",
        "1.0.0",
        multiple(key()),
        complexity="O(N) where N is the number of keys that will be removed.",
        keys=ks("RM DELETE", 1, -1),
        tips=(
            "request_policy:multi_shard",
            "response_policy:agg_sum",
        ),
    ),
    command(
        "dump",
        2,
        "readonly",
        G,
        "Return a serialized version of the value stored at the specified key.",
        "2.6.0",
        key(),
        complexity="O(1) to access the key and additional O(N*M) to serialize it",
        keys=ks("RO ACCESS"),
        tips=("nondeterministic_output",),
    ),
    command(
        "exists",
        -2,
        "readonly fast",
        G,
        "Determine if a key exists",
        "1.0.0",
        multiple(key()),
        complexity="O(N) where N is the number of keys to check.",
        keys=ks("RO", 1, -1),
        tips=(
            "request_policy:multi_shard",
            "response_policy:agg_sum",
        ),
    ),
    _expire("expire", integer("seconds"), "Set a key's time to live in seconds", "1.0.0"),
    _expire(
        "expireat",
        unix_time("unix-time-seconds"),
        "Set the expiration for a key as a UNIX timestamp",
        "1.2.0",
    ),
    command(
        "expiretime",
        2,
        "readonly fast",
        G,
        "Get the expiration Unix timestamp for a key",
        "7.0.0",
        key(),
        keys=ks("RO ACCESS"),
    ),
    command(
        "keys",
        2,
        "readonly",
        G,
        "Find all keys matching the given pattern",
        "1.0.0",
        pattern(),
        complexity="O(N) with N being the number of keys in the database",
        tips=(
            "request_policy:all_shards",
            "nondeterministic_output_order",
        ),
        acl="keyspace dangerous",
    ),
    command(
        "move",
        3,
        "write fast",
        G,
        "Move a key to another database",
        "1.0.0",
        key(),
        integer("db"),
        keys=ks("RW ACCESS UPDATE"),
    ),
    container(
        "object",
        G,
        "A container for object introspection commands",
        "2.2.3",
        _object_sub("encoding", "Inspect the internal encoding of a Redis object"),
        _object_sub("freq", "Get the logarithmic access frequency counter of a Redis object"),
        _object_sub("idletime", "Get the time since a Redis object was last accessed"),
        _object_sub("refcount", "Get the number of references to the value of the key"),
        help_sub("object", G, "6.2.0"),
    ),
    command(
        "persist",
        2,
        "write fast",
        G,
        "Remove the expiration from a key",
        "2.2.0",
        key(),
        keys=ks("RW UPDATE"),
    ),
    _expire(
        "pexpire", integer("milliseconds"), "Set a key's time to live in milliseconds", "2.6.0"
    ),
    _expire(
        "pexpireat",
        unix_time("unix-time-milliseconds"),
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        "2.6.0",
    ),
    command(
        "pexpiretime",
        2,
        "readonly fast",
        G,
        "Get the expiration Unix timestamp for a key in milliseconds",
        "7.0.0",
        key(),
        keys=ks("RO ACCESS"),
    ),
    command(
        "pttl",
        2,
        "readonly fast",
        G,
        "Get the time to live for a key in milliseconds",
        "2.6.0",
        key(),
        keys=ks("RO ACCESS"),
        tips=("nondeterministic_output",),
    ),
    command(
        "randomkey",
        1,
        "readonly",
        G,
        "Return a random key from the keyspace",
        "1.0.0",
        tips=(
            "request_policy:all_shards",
            "nondeterministic_output",
        ),
    ),
    command(
        "rename",
        3,
        "write",
        G,
        "Rename a key",
        "1.0.0",
        key(),
        key("newkey", spec=1),
        keys=(
            ks("RW ACCESS DELETE"),
            ks("OW UPDATE", 2),
        ),
    ),
    command(
        "renamenx",
        3,
        "write fast",
        G,
        "Rename a key, only if the new key does not exist",
        "1.0.0",
        key(),
        key("newkey", spec=1),
        keys=(
            ks("RW ACCESS DELETE"),
            ks("OW INSERT", 2),
        ),
    ),
    command(
        "restore",
        -4,
        "write denyoom",
        G,
        "Create a key using the provided serialized value, previously obtained using DUMP.",
        "2.6.0",
        key(),
        integer("ttl"),
        string("serialized-value"),
        optional(token("REPLACE", since="3.0.0")),
        optional(token("ABSTTL", since="5.0.0")),
        optional(integer("seconds", token="IDLETIME", since="5.0.0")),
        optional(integer("frequency", token="FREQ", since="5.0.0")),
        complexity="O(1) to create the new key and additional O(N*M) to reconstruct it",
        keys=ks("OW UPDATE"),
        acl="keyspace dangerous",
    ),
    command(
        "scan",
        -2,
        "readonly",
        G,
        "Incrementally iterate the keys space",
        "2.8.0",
        integer("cursor"),
        optional(pattern(token="MATCH")),
        optional(integer("count", token="COUNT")),
        optional(string("type", token="TYPE", since="6.0.0")),
        complexity="O(1) for every call. O(N) for a complete iteration.",
        tips=(
            "nondeterministic_output",
            "request_policy:special",
        ),
    ),
    command(
        "sort",
        -2,
        "write denyoom",
        G,
        "Sort the elements in a list, set or sorted set",
        "1.0.0",
        *sort_args(store=True),
        complexity="O(N+M*log(M))",
        keys=SORT_KEYS,
        key_proc="sort",
        acl="set sortedset list dangerous",
    ),
    command(
        "sort_ro",
        -2,
        "readonly",
        G,
        "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
        "7.0.0",
        *sort_args(store=False),
        complexity="O(N+M*log(M))",
        keys=SORT_KEYS[:2],
        key_proc="sort_ro",
        acl="set sortedset list dangerous",
    ),
    command(
        "touch",
        -2,
        "readonly fast",
        G,
        "Alters the last access time of a key(s). Returns the number of existing keys specified.",
        "3.2.1",
        multiple(key()),
        complexity="O(N) where N is the number of keys that will be touched.",
        keys=ks("RO", 1, -1),
        tips=(
            "request_policy:multi_shard",
            "response_policy:agg_sum",
        ),
    ),
    command(
        "ttl",
        2,
        "readonly fast",
        G,
        "Get the time to live for a key in seconds",
        "1.0.0",
        key(),
        keys=ks("RO ACCESS"),
        tips=("nondeterministic_output",),
    ),
    command(
        "type",
        2,
        "readonly fast",
        G,
        "Determine the type stored at key",
        "1.0.0",
        key(),
        keys=ks("RO"),
    ),
    command(
        "unlink",
        -2,
        "write fast",
        G,
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
        "4.0.0",
        multiple(key()),
        complexity="O(1) for each key removed regardless of its size.",
        keys=ks("RM DELETE", 1, -1),
        tips=(
            "request_policy:multi_shard",
            "response_policy:agg_sum",
        ),
    ),
)
