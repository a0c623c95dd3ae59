"""The proxy's own commands, in the core's spec shape (not in the server's table).

``PROXY SLOTSTATS [start end]``: operations routed per slot since the proxy started (or since
``CONFIG RESETSTAT``), for the dashboard: an array of ``[slot, ops]`` pairs for the slots in
the range that saw any. ``PROXY ROUTE key``: where a key goes now: ``[slot, group, master,
state, target]``.
"""

from __future__ import annotations

from stack.core.commands.spec import command, container, help_sub, integer, optional, string

G = "proxy"

PROXY_TABLE = (
    container(
        "proxy",
        G,
        "A container for ledis-proxy's own commands",
        "0.1.0",
        command(
            "proxy|slotstats",
            -2,
            "loading stale",
            G,
            "Operations the proxy routed per slot (slots that saw any, in a range)",
            "0.1.0",
            optional(integer("start")),
            optional(integer("end")),
            complexity="O(N) where N is the number of slots in the range",
        ),
        command(
            "proxy|route",
            3,
            "loading stale",
            G,
            "The slot, group, master and state a key is routed to now",
            "0.1.0",
            string("key"),
        ),
        help_sub("proxy", G, "0.1.0"),
    ),
)

HELP = {
    "proxy": [
        "PROXY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "SLOTSTATS [<start> <end>]",
        "    Operations routed per slot, as [slot, ops] pairs (slots that saw any).",
        "ROUTE <key>",
        "    The slot, group, master address, state and migration target of a key.",
        "HELP",
        "    Print this help.",
    ],
}
