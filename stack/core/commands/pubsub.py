"""Specs of the publish/subscribe commands."""

from __future__ import annotations

from .spec import command, container, help_sub, multiple, optional, pattern, string

G = "pubsub"
SUB = "pubsub noscript loading stale"

SPECS = (
    command(
        "psubscribe",
        -2,
        SUB,
        G,
        "Listen for messages published to channels matching the given patterns",
        "2.0.0",
        multiple(pattern()),
        complexity="O(N) where N is the number of patterns the client is already subscribed to.",
    ),
    command(
        "publish",
        3,
        "pubsub loading stale fast may_replicate",
        G,
        "Post a message to a channel",
        "2.0.0",
        string("channel"),
        string("message"),
        complexity="O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
    ),
    container(
        "pubsub",
        G,
        "A container for Pub/Sub commands",
        "2.8.0",
        command(
            "pubsub|channels",
            -2,
            "pubsub loading stale",
            G,
            "List active channels",
            "2.8.0",
            optional(pattern()),
            complexity="O(N) where N is the number of active channels",
        ),
        command(
            "pubsub|numpat",
            2,
            "pubsub loading stale",
            G,
            "Get the count of unique patterns pattern subscriptions",
            "2.8.0",
        ),
        command(
            "pubsub|numsub",
            -2,
            "pubsub loading stale",
            G,
            "Get the count of subscribers for channels",
            "2.8.0",
            optional(multiple(string("channel"))),
            complexity="O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        ),
        help_sub("pubsub", G, "6.2.0"),
    ),
    command(
        "punsubscribe",
        -1,
        SUB,
        G,
        "Stop listening for messages posted to channels matching the given patterns",
        "2.0.0",
        optional(multiple(pattern())),
        complexity="O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
    ),
    command(
        "subscribe",
        -2,
        SUB,
        G,
        "Listen for messages published to the given channels",
        "2.0.0",
        multiple(string("channel")),
        complexity="O(N) where N is the number of channels to subscribe to.",
    ),
    command(
        "unsubscribe",
        -1,
        SUB,
        G,
        "Stop listening for messages posted to the given channels",
        "2.0.0",
        optional(multiple(string("channel"))),
        complexity="O(N) where N is the number of clients already subscribed to a channel.",
    ),
)
