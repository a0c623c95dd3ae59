"""Specs of the Lua scripting commands: EVAL, EVALSHA, their read-only forms, SCRIPT, and Redis
7 functions (FCALL, FCALL_RO, FUNCTION).

A script's keys are counted by its numkeys argument (Redis 7's key specs: RW ACCESS UPDATE for
EVAL/EVALSHA, RO ACCESS for the _RO forms); the gate and a proxy see the declared KEYS."""

from __future__ import annotations

from .keyspec import ks
from .spec import (
    CommandSpec,
    command,
    container,
    help_sub,
    integer,
    key,
    multiple,
    oneof,
    optional,
    string,
    token,
)

G = "scripting"

SCRIPT_KEYS = ks(
    "RW ACCESS UPDATE", 2, keynum=(0, 1, 1), notes="A script may do anything with its keys"
)
SCRIPT_RO_KEYS = ks("RO ACCESS", 2, keynum=(0, 1, 1))


def script_call(
    name: str, first: str, flags: str, summary: str, since: str, readonly: bool
) -> CommandSpec:
    """EVAL-shaped: a script (or its name), numkeys, the keys, then the arguments."""
    return command(
        name,
        -3,
        flags,
        G,
        summary,
        since,
        string(first),
        integer("numkeys"),
        optional(multiple(key())),
        optional(multiple(string("arg"))),
        keys=SCRIPT_RO_KEYS if readonly else SCRIPT_KEYS,
        key_proc="numkeys@2",
        complexity="Depends on the script that is executed.",
    )


_WRITES = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_READS = "readonly noscript skip_monitor no_mandatory_keys stale"
_ALL_SHARDS = ("request_policy:all_shards", "response_policy:all_succeeded")

SPECS = (
    script_call("eval", "script", _WRITES, "Execute a Lua script server side", "2.6.0", False),
    script_call("evalsha", "sha1", _WRITES, "Execute a Lua script server side", "2.6.0", False),
    script_call("fcall", "function", _WRITES, "Invoke a function", "7.0.0", False),
    script_call("fcall_ro", "function", _READS, "Invoke a read-only function", "7.0.0", True),
    script_call(
        "eval_ro", "script", _READS, "Execute a read-only Lua script server side", "7.0.0", True
    ),
    script_call(
        "evalsha_ro", "sha1", _READS, "Execute a read-only Lua script server side", "7.0.0", True
    ),
    container(
        "script",
        G,
        "A container for Lua scripts management commands",
        "2.6.0",
        command(
            "script|exists",
            -3,
            "noscript",
            G,
            "Check existence of scripts in the script cache.",
            "2.6.0",
            multiple(string("sha1")),
            complexity="O(N) with N being the number of scripts to check",
            tips=("request_policy:all_shards", "response_policy:agg_logical_and"),
        ),
        command(
            "script|flush",
            -2,
            "noscript",
            G,
            "Remove all the scripts from the script cache.",
            "2.6.0",
            optional(oneof("flush-type", token("ASYNC"), token("SYNC"))),
            complexity="O(N) with N being the number of scripts in cache",
            tips=("request_policy:all_nodes", "response_policy:all_succeeded"),
        ),
        help_sub("script", G),
        command(
            "script|kill",
            2,
            "noscript allow_busy",
            G,
            "Kill the script currently in execution.",
            "2.6.0",
            tips=("request_policy:all_shards", "response_policy:one_succeeded"),
        ),
        command(
            "script|load",
            3,
            "noscript stale",
            G,
            "Load the specified Lua script into the script cache.",
            "2.6.0",
            string("script"),
            complexity="O(N) with N being the length in bytes of the script body.",
            tips=("request_policy:all_nodes", "response_policy:all_succeeded"),
        ),
    ),
    container(
        "function",
        G,
        "A container for function commands",
        "7.0.0",
        command(
            "function|delete",
            3,
            "write noscript",
            G,
            "Delete a function by name",
            "7.0.0",
            string("library-name"),
            tips=_ALL_SHARDS,
        ),
        command(
            "function|dump",
            2,
            "noscript",
            G,
            "Dump all functions into a serialized binary payload",
            "7.0.0",
            complexity="O(N) where N is the number of functions",
        ),
        command(
            "function|flush",
            -2,
            "write noscript",
            G,
            "Deleting all functions",
            "7.0.0",
            optional(oneof("async", token("ASYNC"), token("SYNC"))),
            complexity="O(N) where N is the number of functions deleted",
            tips=_ALL_SHARDS,
        ),
        help_sub("function", G, "7.0.0"),
        command(
            "function|kill",
            2,
            "noscript allow_busy",
            G,
            "Kill the function currently in execution.",
            "7.0.0",
            tips=("request_policy:all_shards", "response_policy:one_succeeded"),
        ),
        command(
            "function|list",
            -2,
            "noscript",
            G,
            "List information about all the functions",
            "7.0.0",
            optional(string("library-name-pattern", token="LIBRARYNAME")),
            optional(token("WITHCODE")),
            complexity="O(N) where N is the number of functions",
            tips=("nondeterministic_output_order",),
        ),
        command(
            "function|load",
            -3,
            "write denyoom noscript",
            G,
            "Create a function with the given arguments (name, code, description)",
            "7.0.0",
            optional(token("REPLACE")),
            string("function-code"),
            complexity="O(1) (considering compilation time is redundant)",
            tips=_ALL_SHARDS,
        ),
        command(
            "function|restore",
            -3,
            "write denyoom noscript",
            G,
            "Restore all the functions on the given payload",
            "7.0.0",
            string("serialized-value"),
            optional(oneof("policy", token("FLUSH"), token("APPEND"), token("REPLACE"))),
            complexity="O(N) where N is the number of functions on the payload",
            tips=_ALL_SHARDS,
        ),
        command(
            "function|stats",
            2,
            "noscript allow_busy",
            G,
            "Return information about the function currently running (name, description, duration)",
            "7.0.0",
            tips=(
                "nondeterministic_output",
                "request_policy:all_shards",
                "response_policy:special",
            ),
        ),
    ),
)
