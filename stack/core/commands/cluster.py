"""Specs of the cluster commands this server answers (slot arithmetic, per-slot keys, ASKING)."""

from __future__ import annotations

from .spec import command, container, help_sub, integer, string

G = "cluster"

SPECS = (
    command(
        "asking",
        1,
        "fast",
        G,
        "Sent by cluster clients after an -ASK redirect",
        "3.0.0",
        acl="connection",
    ),
    container(
        "cluster",
        G,
        "A container for cluster commands",
        "3.0.0",
        command(
            "cluster|countkeysinslot",
            3,
            "stale",
            G,
            "Return the number of local keys in the specified hash slot",
            "3.0.0",
            integer("slot"),
            complexity="O(N) where N is the number of keys in the slot",
        ),
        command(
            "cluster|getkeysinslot",
            4,
            "stale",
            G,
            "Return local key names in the specified hash slot",
            "3.0.0",
            integer("slot"),
            integer("count"),
            complexity="O(N) where N is the number of requested keys",
            tips=("nondeterministic_output",),
        ),
        command(
            "cluster|keyslot",
            3,
            "stale",
            G,
            "Returns the hash slot of the specified key",
            "3.0.0",
            string("key"),
            complexity="O(N) where N is the number of bytes in the key",
        ),
        help_sub("cluster", G),
    ),
)
