"""Calls of every command built from the command table's typed argument trees.

``calls(spec)`` gives one call with only the required arguments, then one call per way of
writing each argument (each choice of a ``oneof``, each optional argument or block present),
every other argument as in the first. Each call is a tuple of ``Part``s that remember what
they are (a token, a key, a number, the value after a token...), so tests can take calls
apart: the keyspace-notification sweep runs them against keys of every type, the syntax
sweep misspells their tokens, repeats their blocks and drops their values.

Values come from ``sweep.py``'s tables (a count is 2, a field is ``f1``...), so that with the
keys ``sweep.PREPARE`` makes, calls find what they look for.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

from stack.core.commands import Arg, CommandSpec

from . import sweep

NUMERIC = sweep.NUMERIC


@dataclass(frozen=True)
class Part:
    """One argument word of a call.

    ``kind``: ``word`` (the command name), ``token`` (a keyword that introduces a value or a
    block, like ``EX`` or ``LIMIT``), ``pure`` (a keyword alone, like ``NX``), ``key``,
    ``number``, ``numkeys``, ``payload`` (a DUMP payload, filled in per server) or ``value``.
    ``group`` numbers the argument it belongs to (all parts of one block share it), and
    ``optional`` tells whether that argument could have been left out."""

    text: bytes
    kind: str
    name: str = ""
    group: int = 0
    optional: bool = False
    key_type: str = ""


Call = tuple[Part, ...]


class _Groups:
    def __init__(self) -> None:
        self.next = itertools.count(1)


def _value(arg: Arg, spec: CommandSpec, key_type: str) -> tuple[bytes, str]:
    cmd = spec.name
    if arg.type in NUMERIC or (cmd, arg.name) in sweep.DOCUMENTED_NUMERIC:
        if arg.name == "numkeys":
            return b"", "numkeys"
        if arg.name == "timeout":
            return b"0.01", "number"  # a blocking call on a missing key ends at once
        value = sweep.DEFAULTS.get(arg.name, b"1")
        if arg.type == "unix-time":
            value = b"%d" % ((int(time.time()) + 1000) * (1000 if "milli" in arg.name else 1))
        return value, "number"
    if arg.name == "serialized-value":
        return b"", "payload"
    if arg.name in ("member", "element") and key_type in sweep.MEMBER:
        return sweep.MEMBER[key_type], "value"
    text = sweep.COMMAND_STRING_DEFAULTS.get((cmd, arg.name)) or sweep.STRING_DEFAULTS.get(
        arg.name, b"x"
    )
    return text, "value"


def _ways(
    arg: Arg, spec: CommandSpec, key_type: str, groups: _Groups, optional: bool = False
) -> list[list[Part]]:
    """Every way of writing ``arg`` present: the first is the plainest (a oneof's first
    choice, a block without its optional parts)."""
    group = next(groups.next)
    optional = optional or arg.optional
    if arg.type == "pure-token":
        return [[Part((arg.token or arg.name).encode(), "pure", arg.name, group, optional)]]
    head = [Part(arg.token.encode(), "token", arg.name, group, optional)] if arg.token else []
    if arg.type == "oneof":
        out: list[list[Part]] = []
        for choice in arg.args:
            for way in _ways(replace(choice, optional=False), spec, key_type, groups, optional):
                out.append(head + [replace(p, group=group) for p in way])
        return out
    if arg.type == "block":
        subs = [_ways_or_absent(a, spec, key_type, groups) for a in arg.args]
        plain = [p for ways in subs for p in ways[0]]
        out = [head + plain]
        for i, ways in enumerate(subs):
            for way in ways[1:]:
                parts = [p for ways2 in subs[:i] for p in ways2[0]]
                parts += way
                parts += [p for ways2 in subs[i + 1 :] for p in ways2[0]]
                out.append(head + parts)
        return [[replace(p, group=group, optional=optional) for p in way] for way in out]
    if arg.type == "key":
        return [[*head, Part(b"", "key", arg.name, group, optional, key_type)]]
    text, kind = _value(arg, spec, key_type)
    return [[*head, Part(text, kind, arg.name, group, optional)]]


def _ways_or_absent(
    arg: Arg, spec: CommandSpec, key_type: str, groups: _Groups
) -> list[list[Part]]:
    """As ``_ways``, with "left out" first for an optional argument."""
    ways = _ways(arg, spec, key_type, groups)
    return [[], *ways] if arg.optional else ways


def key_type_of(spec: CommandSpec) -> str:
    return sweep.NAME_TYPE.get(spec.name) or sweep.GROUP_TYPE.get(spec.group, "string")


def _per_arg(spec: CommandSpec) -> tuple[list[Part], list[list[list[Part]]]]:
    """The command's words, and for each argument its ways (left out first if optional)."""
    key_type = key_type_of(spec)
    words = [Part(w.encode(), "word") for w in spec.name.split("|")]
    groups = _Groups()
    return words, [_ways_or_absent(a, spec, key_type, groups) for a in spec.args]


def _around(per_arg: list[list[list[Part]]], i: int, way: list[Part]) -> list[Part]:
    """The plainest call with argument ``i`` written as ``way``."""
    plain = [ways[0] for ways in per_arg]
    return [p for w in plain[:i] for p in w] + way + [p for w in plain[i + 1 :] for p in w]


def calls(spec: CommandSpec, limit: int = 40) -> list[Call]:
    """The plainest call of ``spec``, then one per other way of writing one argument."""
    words, per_arg = _per_arg(spec)
    out: list[list[Part]] = [words + [p for ways in per_arg for p in ways[0]]]
    for i, (arg, ways) in enumerate(zip(spec.args, per_arg, strict=True)):
        others = ways[1:]
        if arg.multiple:  # the plainest way twice (DEL k1 k2, SADD k m m)
            first = ways[1] if arg.optional else ways[0]
            others = [*others, first + first]
        for way in others:
            out.append(words + _around(per_arg, i, way))
    return [finish(parts) for parts in out[:limit]]


def combined(spec: CommandSpec, limit: int = 12) -> list[Call]:
    """Calls giving two optional arguments at once, each its first way (``SET k v NX GET``,
    ``ZADD k NX GT 1 m``, ``ZRANGE k 0 -1 BYSCORE REV``)."""
    words, per_arg = _per_arg(spec)
    optional = [i for i, a in enumerate(spec.args) if a.optional]
    out: list[list[Part]] = []
    for i, j in itertools.combinations(optional, 2):
        plain = [ways[0] for ways in per_arg]
        plain[i], plain[j] = per_arg[i][1], per_arg[j][1]
        out.append(words + [p for way in plain for p in way])
    return [finish(parts) for parts in out[:limit]]


def conflicting(spec: CommandSpec, limit: int = 12) -> list[Call]:
    """Calls giving two choices of one optional ``oneof`` at once (``SET k v NX XX``,
    ``GETEX k EX 1 PERSIST``, ``ZADD k GT LT 1 m``)."""
    words, per_arg = _per_arg(spec)
    out: list[list[Part]] = []
    for i, (arg, ways) in enumerate(zip(spec.args, per_arg, strict=True)):
        if arg.optional and arg.type == "oneof":
            for a, b in itertools.combinations(ways[1:], 2):
                out.append(words + _around(per_arg, i, a + b))
    return [finish(parts) for parts in out[:limit]]


def finish(parts: list[Part]) -> Call:
    """Name the keys (``nt:1``, ``nt:2``...) and count them into their numkeys."""
    return tuple(sweep.name_keys(parts, b"nt", "numkeys"))


def args_of(call: Call, payload: bytes = b"") -> list[bytes]:
    return [payload if p.kind == "payload" else p.text for p in call]


def keys_of(call: Call) -> dict[bytes, str]:
    """The call's keys and the type each is expected to hold."""
    return {p.text: p.key_type for p in call if p.kind == "key"}
