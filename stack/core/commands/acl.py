"""Specs of ACL (users, permissions, the ACL log), in Redis's ``server`` group."""

from __future__ import annotations

from . import redaction
from .spec import command, container, help_sub, integer, multiple, oneof, optional, string, token

G = "server"
ADMIN = "admin noscript loading stale"
PLAIN = "noscript loading stale"

SPECS = (
    container(
        "acl",
        G,
        "A container for Access List Control commands",
        "6.0.0",
        command(
            "acl|cat",
            -2,
            PLAIN,
            G,
            "List the ACL categories or the commands inside a category",
            "6.0.0",
            optional(string("categoryname")),
            complexity="O(1) since the categories and commands are a fixed set.",
        ),
        command(
            "acl|deluser",
            -3,
            ADMIN,
            G,
            "Remove the specified ACL users and the associated rules",
            "6.0.0",
            multiple(string("username")),
            complexity="O(1) amortized time considering the typical user.",
        ),
        command(
            "acl|dryrun",
            -4,
            ADMIN,
            G,
            "Returns whether the user can execute the given command without executing the command.",
            "7.0.0",
            string("username"),
            string("command"),
            optional(multiple(string("arg"))),
            complexity="O(1).",
        ),
        command(
            "acl|genpass",
            -2,
            PLAIN,
            G,
            "Generate a pseudorandom secure password to use for ACL users",
            "6.0.0",
            optional(integer("bits")),
        ),
        command(
            "acl|getuser",
            3,
            ADMIN,
            G,
            "Get the rules for a specific ACL user",
            "6.0.0",
            string("username"),
            complexity="O(N). Where N is the number of password, command and pattern rules "
            "that the user has.",
            history=(
                ("6.2.0", "Added Pub/Sub channel patterns."),
                (
                    "7.0.0",
                    "Added selectors and changed the format of key and channel patterns from a "
                    "list to their rule representation.",
                ),
            ),
        ),
        help_sub("acl", G, "6.0.0"),
        command(
            "acl|list",
            2,
            ADMIN,
            G,
            "List the current ACL rules in ACL config file format",
            "6.0.0",
            complexity="O(N). Where N is the number of configured users.",
        ),
        command(
            "acl|load",
            2,
            ADMIN,
            G,
            "Reload the ACLs from the configured ACL file",
            "6.0.0",
            complexity="O(N). Where N is the number of configured users.",
        ),
        command(
            "acl|log",
            -2,
            ADMIN,
            G,
            "List latest events denied because of ACLs in place",
            "6.0.0",
            optional(oneof("operation", integer("count"), token("RESET"))),
            complexity="O(N) with N being the number of entries shown.",
        ),
        command(
            "acl|save",
            2,
            ADMIN,
            G,
            "Save the current ACL rules in the configured ACL file",
            "6.0.0",
            complexity="O(N). Where N is the number of configured users.",
        ),
        command(
            "acl|setuser",
            -3,
            ADMIN,
            G,
            "Modify or create the rules for a specific ACL user",
            "6.0.0",
            string("username"),
            optional(multiple(string("rule"))),
            complexity="O(N). Where N is the number of rules provided.",
            history=(
                ("6.2.0", "Added Pub/Sub channel patterns."),
                ("7.0.0", "Added selectors and key based permissions."),
            ),
            redact=redaction.ACL_SETUSER,
        ),
        command(
            "acl|users",
            2,
            ADMIN,
            G,
            "List the username of all the configured ACL rules",
            "6.0.0",
            complexity="O(N). Where N is the number of configured users.",
        ),
        command(
            "acl|whoami",
            2,
            PLAIN,
            G,
            "Return the name of the user associated to the current connection",
            "6.0.0",
        ),
    ),
)
