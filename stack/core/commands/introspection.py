"""COMMAND, COMMAND INFO and COMMAND DOCS replies, generated from the command table in Redis 7's
reply shapes (maps are flat arrays in RESP2). Shared by the server and the proxy."""

from __future__ import annotations

from ..resp import Map, SetReply, Status
from .keyspec import Index, KeyNum, KeyRef, KeySpec, Keyword, Range, flag_names
from .spec import Arg, CommandSpec


def _begin_search(spec: KeySpec) -> Map:
    begin = spec.begin_search
    if isinstance(begin, Index):
        return Map([b"type", b"index", b"spec", Map([b"index", begin.pos])])
    if isinstance(begin, Keyword):
        detail = Map([b"keyword", begin.keyword.encode(), b"startfrom", begin.startfrom])
        return Map([b"type", b"keyword", b"spec", detail])
    return Map([b"type", b"unknown", b"spec", Map()])


def _find_keys(spec: KeySpec) -> Map:
    find = spec.find_keys
    if isinstance(find, Range):
        detail = Map([b"lastkey", find.lastkey, b"keystep", find.keystep, b"limit", find.limit])
        return Map([b"type", b"range", b"spec", detail])
    if isinstance(find, KeyNum):
        detail = Map(
            [b"keynumidx", find.keynumidx, b"firstkey", find.firstkey, b"keystep", find.keystep]
        )
        return Map([b"type", b"keynum", b"spec", detail])
    return Map([b"type", b"unknown", b"spec", Map()])


def key_specs(spec: CommandSpec) -> SetReply:
    """COMMAND INFO's key specifications, as Redis 7.0 prints them."""
    out = SetReply()
    for k in spec.key_specs:
        entry = Map()
        if k.notes:
            entry += [b"notes", k.notes.encode()]
        entry += [
            b"flags",
            SetReply(Status(f) for f in flag_names(k.flags)),
            b"begin_search",
            _begin_search(k),
            b"find_keys",
            _find_keys(k),
        ]
        out.append(entry)
    return out


def command_info(spec: CommandSpec) -> list[object]:
    """One COMMAND INFO entry (ten fields, as Redis 7.0; flags and categories are sets)."""
    return [
        spec.name.encode(),
        spec.arity,
        SetReply(Status(f) for f in spec.printed_flags()),
        spec.first_key,
        spec.last_key,
        spec.key_step,
        SetReply(Status(c) for c in spec.acl_categories()),
        SetReply(t.encode() for t in spec.tips),
        key_specs(spec),
        # Redis 7.0 answers an empty set when there are no subcommands, an array otherwise
        [command_info(sub) for sub in spec.subcommands] if spec.subcommands else SetReply(),
    ]


def keys_and_flags(refs: list[KeyRef], args: list[bytes]) -> list[object]:
    """COMMAND GETKEYSANDFLAGS's reply: each key with its flags."""
    return [[args[r.pos], SetReply(Status(f) for f in flag_names(r.flags))] for r in refs]


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
