"""Specs of the replication commands."""

from __future__ import annotations

from .spec import block, command, integer, multiple, oneof, string, token

G = "server"
REPL = "admin noscript stale"

SPECS = (
    command(
        "lsync",
        3,
        "admin noscript stale no_multi",
        G,
        "Start replication from a LogID (used by replicas; ledis)",
        "ledis",
        integer("log-id"),
        integer("checksum"),
    ),
    command(
        "replconf",
        -1,
        "admin noscript loading stale allow_busy",
        G,
        "An internal command for configuring the replication stream",
        "3.0.0",
        multiple(string("arg")),
    ),
    command(
        "replicaof",
        3,
        "admin noscript stale no_async_loading",
        G,
        "Make the server a replica of another instance, or promote it as master.",
        "5.0.0",
        oneof(
            "args",
            block("host-port", string("host"), integer("port")),
            block("no-one", token("NO"), token("ONE")),
        ),
    ),
    command(
        "slaveof",
        3,
        "admin noscript stale no_async_loading",
        G,
        "Make the server a replica of another instance, or promote it as master.",
        "1.0.0",
        oneof(
            "args",
            block("host-port", string("host"), integer("port")),
            block("no-one", token("NO"), token("ONE")),
        ),
        doc_flags=("deprecated",),
    ),
    command(
        "nodeepoch",
        -2,
        "admin noscript loading stale fast",
        "ledis",
        "The cluster epoch this node serves under and whether it may take writes in it "
        "(set by the failover controller: a fenced node refuses writes; ledis)",
        "ledis",
        oneof(
            "action",
            block("get", token("GET")),
            block(
                "set",
                token("SET"),
                integer("epoch"),
                oneof("state", token("MASTER"), token("FENCED")),
            ),
        ),
    ),
    command(
        "role",
        1,
        "noscript loading stale fast",
        G,
        "Return the role of the instance in the context of replication",
        "2.8.12",
        acl="admin dangerous",
    ),
    command(
        "wait",
        3,
        "noscript",
        "generic",
        "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
        "3.0.0",
        integer("numreplicas"),
        integer("timeout"),
        complexity="O(1)",
        tips=(
            "request_policy:all_shards",
            "response_policy:agg_min",
        ),
        acl="connection",
    ),
)
