"""Specs of the slot commands: Codis's (same names and replies, see its doc/redis_change_zh.md),
the receiving side of a chunked move (SLOTSSTAGE) and the node's slot map (SLOTSMAP).

Their key-like arguments are plain strings, not key specs: these commands are about slots and
migrations, run by the operator, the migration engine or another node, and never routed by
the slot of an argument (so a node with a slot map runs them whatever it owns).
docs/cluster.md ("What a node knows") describes each one.
"""

from __future__ import annotations

from .spec import (
    CommandSpec,
    block,
    command,
    container,
    help_sub,
    integer,
    multiple,
    optional,
    string,
    token,
)

G = "slots"

_TARGET = (string("host"), integer("port"), integer("timeout"))
# SLOTSMGRTSLOT / SLOTSMGRTTAGSLOT: the batch a call moves, beyond Codis's arguments.
_BATCH = (
    optional(integer("maxkeys", token="MAXKEYS")),
    optional(integer("maxbytes", token="MAXBYTES")),
    optional(token("WITHBYTES")),
)


def _move_one(name: str, summary: str) -> CommandSpec:
    return command(
        name, 5, "write admin no_multi", G, summary, "codis", *_TARGET, string("key"),
        complexity="O(N) where N is the size of the keys moved",
    )  # fmt: skip


def _move_slot(name: str, summary: str) -> CommandSpec:
    return command(
        name, -5, "write admin no_multi", G, summary, "codis", *_TARGET, integer("slot"),
        *_BATCH, complexity="O(N) where N is the size of the keys moved",
    )  # fmt: skip


SPECS = (
    command(
        "slotsinfo",
        -1,
        "readonly admin no_multi",
        G,
        "List the slots that hold keys and how many each holds",
        "codis",
        optional(integer("start")),
        optional(integer("count")),
        complexity="O(N) where N is the number of keys in the slots asked for",
    ),
    command(
        "slotsscan",
        -3,
        "readonly",
        G,
        "Incrementally iterate over the keys of one slot",
        "codis",
        integer("slot"),
        integer("cursor"),
        optional(integer("count", token="COUNT")),
        complexity="O(1) for every call",
        tips=("nondeterministic_output",),
    ),
    command(
        "slotsdel",
        -2,
        "write admin no_multi",
        G,
        "Delete every key of the given slots",
        "codis",
        multiple(integer("slot")),
        complexity="O(N) where N is the number of keys in the slots",
    ),
    command(
        "slotshashkey",
        -1,
        "readonly fast",
        G,
        "Return the slot of each key",
        "codis",
        optional(multiple(string("key"))),
        complexity="O(N) where N is the number of keys",
    ),
    _move_one("slotsmgrtone", "Move one key to another node"),
    _move_one("slotsmgrttagone", "Move one key and the keys that share its hash tag"),
    _move_slot("slotsmgrtslot", "Move a bounded batch of a slot's keys to another node"),
    _move_slot("slotsmgrttagslot", "Move a bounded batch of a slot's keys, tags kept together"),
    command(
        "slotsrestore",
        -4,
        "write admin denyoom noscript no_multi",
        G,
        "Create (or replace) keys from DUMP payloads: the receiving side of a move",
        "codis",
        multiple(block("data", string("key"), integer("ttl"), string("payload"))),
        complexity="O(N) where N is the size of the keys restored",
    ),
    command(
        "slotsstage",
        -5,
        "write admin denyoom noscript no_multi",
        G,
        "Receive one part of a big key; the last part (COMMIT) makes the key appear whole",
        "ledis",
        string("key"),
        string("token"),
        integer("seq"),
        string("payload"),
        optional(token("COMMIT")),
        optional(integer("ttl")),
        optional(integer("size")),
        complexity="O(N) where N is the size of the part",
    ),
    command(
        "slotsforget",
        -4,
        "write admin noscript no_multi",
        G,
        "The undo of a move whose reply the sender never got: close the connections of its"
        " lost link, delete each key whose value is still the one sent",
        "ledis",
        string("link-name"),
        multiple(block("data", string("key"), string("check"))),
        complexity="O(N) where N is the size of the keys checked",
    ),
    container(
        "slotsdoubt",
        G,
        "A container for the keys a move sent without an answer (held until settled)",
        "ledis",
        command(
            "slotsdoubt|list",
            2,
            "admin noscript",
            G,
            "The keys in doubt: key, target, state",
            "ledis",
        ),
        command(
            "slotsdoubt|release",
            -3,
            "admin noscript no_multi",
            G,
            "Release keys in doubt here without their undo (ALL: every one)",
            "ledis",
            multiple(string("key")),
        ),
        help_sub("slotsdoubt", G),
    ),
    container(
        "slotsmap",
        G,
        "A container for the node's slot map",
        "ledis",
        command(
            "slotsmap|set",
            4,
            "write admin",
            G,
            "Give the node its slot map (refused when older than the one it has)",
            "ledis",
            integer("epoch"),
            string("json"),
        ),
        command(
            "slotsmap|get",
            2,
            "admin",
            G,
            "The node's slot map, or nil when it has none",
            "ledis",
        ),
        command(
            "slotsmap|reset",
            2,
            "write admin",
            G,
            "Forget the slot map: the node serves every key again",
            "ledis",
        ),
        help_sub("slotsmap", G),
    ),
)
