"""COMMAND, COMMAND INFO and COMMAND DOCS replies, generated from the command table in Redis 7's
reply shapes (maps are flat arrays in RESP2). Shared by the server and the proxy."""

from __future__ import annotations

from ..resp import Map, SetReply, Status
from .spec import Arg, CommandSpec


def key_specs(spec: CommandSpec) -> SetReply:
    if spec.first_key <= 0:
        return SetReply()
    flags = ["RW", "update"] if spec.is_write else ["RO", "access"]
    last = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
    return SetReply(
        [
            Map(
                [
                    b"flags",
                    SetReply(Status(f) for f in flags),
                    b"begin_search",
                    Map([b"type", b"index", b"spec", Map([b"index", spec.first_key])]),
                    b"find_keys",
                    Map(
                        [
                            b"type",
                            b"range",
                            b"spec",
                            Map([b"lastkey", last, b"keystep", spec.key_step or 1, b"limit", 0]),
                        ]
                    ),
                ]
            )
        ]
    )


def command_info(spec: CommandSpec) -> list[object]:
    """One COMMAND INFO entry (ten fields, as Redis 7.0; flags and categories are sets)."""
    return [
        spec.name.encode(),
        spec.arity,
        SetReply(Status(f) for f in sorted(spec.flags)),
        spec.first_key,
        spec.last_key,
        spec.key_step,
        SetReply(Status(c) for c in spec.acl_categories()),
        SetReply(t.encode() for t in spec.tips),
        key_specs(spec),
        [command_info(sub) for sub in spec.subcommands],
    ]


def arg_doc(arg: Arg) -> Map:
    out = Map([b"name", arg.name.encode(), b"type", arg.type.encode()])
    if arg.display:
        out += [b"display_text", arg.display.encode()]
    if arg.key_spec_index is not None:
        out += [b"key_spec_index", arg.key_spec_index]
    if arg.token:
        out += [b"token", arg.token.encode()]
    if arg.since:
        out += [b"since", arg.since.encode()]
    flags = [
        Status(f)
        for f, on in (
            ("optional", arg.optional),
            ("multiple", arg.multiple),
            ("multiple_token", arg.multiple_token),
        )
        if on
    ]
    if flags:
        out += [b"flags", flags]
    if arg.args:
        out += [b"arguments", [arg_doc(a) for a in arg.args]]
    return out


def command_docs(spec: CommandSpec) -> Map:
    """The value of one COMMAND DOCS entry (a map)."""
    out = Map(
        [
            b"summary",
            spec.summary.encode(),
            b"since",
            spec.since.encode(),
            b"group",
            spec.group.encode(),
            b"complexity",
            spec.complexity.encode(),
        ]
    )
    if spec.doc_flags:
        out += [b"doc_flags", [Status(f) for f in spec.doc_flags]]
    if spec.history:
        out += [b"history", [[v.encode(), d.encode()] for v, d in spec.history]]
    if spec.args:
        out += [b"arguments", [arg_doc(a) for a in spec.args]]
    if spec.subcommands:
        subs = Map()
        for sub in spec.subcommands:
            subs += [sub.name.encode(), command_docs(sub)]
        out += [b"subcommands", subs]
    return out
