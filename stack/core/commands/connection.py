"""Specs of the connection commands."""

from __future__ import annotations

from . import redaction
from .spec import (
    Arg,
    CommandSpec,
    block,
    command,
    container,
    help_sub,
    integer,
    multiple,
    oneof,
    optional,
    string,
    token,
)

G = "connection"
PRE_AUTH = "noscript loading stale fast no_auth allow_busy"
CLIENT = "admin noscript loading stale"


def _client(
    sub: str,
    arity: int,
    flags: str,
    summary: str,
    since: str,
    *args: Arg,
    tips: tuple[str, ...] = (),
    complexity: str = "O(1)",
) -> CommandSpec:
    return command(
        f"client|{sub}", arity, flags, G, summary, since, *args, tips=tips, complexity=complexity
    )


SPECS = (
    command(
        "auth",
        -2,
        PRE_AUTH,
        G,
        "Authenticate to the server",
        "1.0.0",
        optional(string("username", since="6.0.0")),
        string("password"),
        complexity="O(N) where N is the number of passwords defined for the user",
        redact=redaction.AUTH,
    ),
    container(
        "client",
        G,
        "A container for client connection commands",
        "2.4.0",
        _client(
            "caching",
            3,
            "noscript loading stale",
            "Instruct the server about tracking or not keys in the next request",
            "6.0.0",
            oneof("mode", token("YES"), token("NO")),
        ),
        _client(
            "getredir",
            2,
            "noscript loading stale",
            "Get tracking notifications redirection client ID if any",
            "6.0.0",
        ),
        _client("getname", 2, "noscript loading stale", "Get the current connection name", "2.6.9"),
        _client(
            "id",
            2,
            "noscript loading stale",
            "Returns the client ID for the current connection",
            "5.0.0",
        ),
        _client(
            "info",
            2,
            "noscript loading stale",
            "Returns information about the current client connection.",
            "6.2.0",
            tips=("nondeterministic_output",),
        ),
        _client(
            "kill",
            -3,
            CLIENT,
            "Kill the connection of a client",
            "2.4.0",
            oneof(
                "filter",
                string("ip:port", display="ip:port"),
                block(
                    "new-format",
                    optional(integer("client-id", token="ID")),
                    optional(
                        oneof(
                            "client-type",
                            token("NORMAL"),
                            token("MASTER"),
                            token("SLAVE"),
                            token("REPLICA"),
                            token("PUBSUB"),
                            token="TYPE",
                        )
                    ),
                    optional(string("username", token="USER")),
                    optional(string("ip:port", token="ADDR")),
                    optional(string("ip:port", token="LADDR")),
                    optional(oneof("skipme", token("YES"), token("NO"), token="SKIPME")),
                    optional(integer("maxage", token="MAXAGE", since="7.4.0")),
                    multiple=True,
                ),
            ),
        ),
        _client(
            "list",
            -2,
            CLIENT,
            "Get the list of client connections",
            "2.4.0",
            optional(
                oneof(
                    "client-type",
                    token("NORMAL"),
                    token("MASTER"),
                    token("REPLICA"),
                    token("PUBSUB"),
                    token="TYPE",
                )
            ),
            optional(block("client-id", integer("client-id"), token="ID", multiple=True)),
            tips=("nondeterministic_output",),
        ),
        _client(
            "no-evict",
            3,
            CLIENT,
            "Set client eviction mode for the current connection",
            "7.0.0",
            oneof("enabled", token("ON"), token("OFF")),
        ),
        _client(
            "pause",
            -3,
            CLIENT,
            "Stop processing commands from clients for some time",
            "2.9.50",
            integer("timeout"),
            optional(oneof("mode", token("WRITE"), token("ALL"), since="6.2.0")),
        ),
        _client(
            "reply",
            3,
            "noscript loading stale",
            "Instruct the server whether to reply to commands",
            "3.2.0",
            oneof("on_off_skip", token("ON"), token("OFF"), token("SKIP")),
        ),
        _client(
            "setname",
            3,
            "noscript loading stale",
            "Set the current connection name",
            "2.6.9",
            string("connection-name"),
        ),
        _client(
            "tracking",
            -3,
            "noscript loading stale",
            "Enable or disable server assisted client side caching support",
            "6.0.0",
            oneof("status", token("ON"), token("OFF")),
            optional(integer("client-id", token="REDIRECT")),
            optional(multiple(string("prefix", token="PREFIX", multiple_token=True))),
            optional(token("BCAST")),
            optional(token("OPTIN")),
            optional(token("OPTOUT")),
            optional(token("NOLOOP")),
            complexity="O(1). Some options may introduce additional complexity.",
        ),
        _client(
            "trackinginfo",
            2,
            "noscript loading stale",
            "Return information about server assisted client side caching for the current "
            "connection",
            "6.2.0",
        ),
        _client(
            "unblock",
            -3,
            CLIENT,
            "Unblock a client blocked in a blocking command from a different connection",
            "5.0.0",
            integer("client-id"),
            optional(oneof("timeout_error", token("TIMEOUT"), token("ERROR"))),
            complexity="O(log N) where N is the number of client connections",
        ),
        _client("unpause", 2, CLIENT, "Resume processing of clients that were paused", "6.2.0"),
        help_sub("client", G),
    ),
    command(
        "echo", 2, "loading stale fast", G, "Echo the given string", "1.0.0", string("message")
    ),
    command(
        "hello",
        -1,
        PRE_AUTH,
        G,
        "Handshake with Redis",
        "6.0.0",
        optional(
            block(
                "arguments",
                integer("protover"),
                optional(
                    block("username-password", string("username"), string("password"), token="AUTH")
                ),
                optional(string("clientname", token="SETNAME")),
            )
        ),
        redact=redaction.HELLO,
    ),
    command(
        "ping",
        -1,
        "fast",
        G,
        "Ping the server",
        "1.0.0",
        optional(string("message")),
        tips=(
            "request_policy:all_shards",
            "response_policy:all_succeeded",
        ),
    ),
    command(
        "quit",
        -1,
        "allow_busy noscript loading stale fast no_auth",
        G,
        "Close the connection",
        "1.0.0",
    ),
    command("reset", 1, PRE_AUTH, G, "Reset the connection", "6.2.0"),
    command(
        "select",
        2,
        "loading stale fast",
        G,
        "Change the selected database for the current connection",
        "1.0.0",
        integer("index"),
    ),
)
