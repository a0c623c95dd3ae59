"""The shape of a command spec, and small builders that keep the tables readable.

A spec follows Redis 7's per-command model: arity (positive = exact, negative = at least),
flags, key specs (``keyspec.py``: the single source of key positions; the legacy first/last/step
and ``movablekeys`` are derived from them), group, ACL categories (derived from flags and group,
with explicit ones where a command differs), summary, since-version, complexity, tips and a typed
argument tree (``key``, ``string``, ``integer``, ``double``, ``pattern``, ``unix-time``,
``pure-token``, ``oneof``, ``block``; each optionally ``optional`` / ``multiple``, with a
``token`` that introduces it). Container commands (CONFIG, CLIENT, ...) carry subcommands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from .keyspec import KEY_PROCS, KeyRef, KeySpec, keys_of, legacy_range
from .redaction import Redaction

ArgType = Literal[
    "key", "string", "integer", "double", "pattern", "unix-time", "pure-token", "oneof", "block"
]

# Flags as Redis spells them, in the order COMMAND INFO prints them (may_replicate is never
# printed, as in Redis; movablekeys is derived from the key specs, never written by hand).
FLAG_ORDER = (
    "write",
    "readonly",
    "denyoom",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
)
HIDDEN_FLAGS = frozenset({"may_replicate"})
FLAGS = frozenset(FLAG_ORDER) | HIDDEN_FLAGS

# ACL categories in the order COMMAND INFO prints them.
ACL_ORDER = (
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
)
# The category a command's group gives it, unless the spec names its own (``acl``).
GROUP_CATEGORY = {
    "string": "string",
    "bitmap": "bitmap",
    "generic": "keyspace",
    "hash": "hash",
    "list": "list",
    "set": "set",
    "sorted-set": "sortedset",
    "connection": "connection",
    "transactions": "transaction",
    "scripting": "scripting",
}


@dataclass(frozen=True)
class Arg:
    """One node of a command's argument tree."""

    name: str
    type: ArgType
    token: str | None = None
    optional: bool = False
    multiple: bool = False
    multiple_token: bool = False
    since: str | None = None
    display: str | None = None
    args: tuple[Arg, ...] = ()
    key_spec_index: int | None = None

    def hint(self) -> str:
        """The argument as ``redis-cli`` hints it: ``[EX seconds|PX milliseconds]``."""
        if self.type == "pure-token":
            text = self.token or self.name
        elif self.display:
            text = self.display
        elif self.type == "oneof":
            text = "|".join(a.hint() for a in self.args)
        elif self.type == "block":
            text = " ".join(a.hint() for a in self.args)
        else:
            text = self.name
        if self.token and self.type != "pure-token":
            text = f"{self.token} {text}"
        if self.multiple:
            text = f"{text} [{text} ...]"
        if self.optional:
            text = f"[{text}]"
        return text


CHANNEL_FLAGS = frozenset({"PUBLISH", "SUBSCRIBE", "UNSUBSCRIBE", "PATTERN"})


@dataclass(frozen=True)
class ChannelSpec:
    """Which arguments of a Pub/Sub command are channels, and what it does with them (Redis 7's
    channel table, read by ACL channel permissions): ``count`` arguments from ``start`` (-1:
    every argument from there). ``PATTERN``: the arguments are patterns (PSUBSCRIBE)."""

    flags: frozenset[str]
    start: int = 1
    count: int = -1

    def positions(self, argc: int) -> range:
        stop = argc if self.count < 0 else min(argc, self.start + self.count)
        return range(self.start, stop)


def channel_spec(flags: str, start: int = 1, count: int = -1) -> ChannelSpec:
    """``channel_spec("PUBLISH", count=1)``: PUBLISH's channel; ``channel_spec("SUBSCRIBE")``:
    every argument."""
    names = frozenset(flags.split())
    if names - CHANNEL_FLAGS:
        raise ValueError(f"unknown channel flags {sorted(names - CHANNEL_FLAGS)}")
    return ChannelSpec(names, start, count)


@dataclass(frozen=True)
class CommandSpec:
    """Everything the server, proxy and console know about one command."""

    name: str  # lower case; a subcommand is "container|sub"
    arity: int
    flags: frozenset[str]
    group: str
    summary: str
    since: str
    complexity: str = "O(1)"
    key_specs: tuple[KeySpec, ...] = ()
    key_proc: str | None = None  # a KEY_PROCS entry for what the specs cannot say
    acl: tuple[str, ...] | None = None  # categories beyond the flags' (None: the group's)
    args: tuple[Arg, ...] = ()
    subcommands: tuple[CommandSpec, ...] = ()
    doc_flags: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    tips: tuple[str, ...] = ()
    redact: Redaction | None = None  # secret arguments (shown as "(redacted)")
    channels: ChannelSpec | None = None  # Pub/Sub channel arguments (ACL channel rules)
    parent: str | None = field(default=None, compare=False)

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    @property
    def display_name(self) -> str:
        return self.name.replace("|", " ").upper()

    @cached_property
    def _legacy(self) -> tuple[tuple[int, int, int], bool]:
        return legacy_range(self.key_specs)

    @property
    def first_key(self) -> int:
        """COMMAND INFO's first key, derived from the key specs."""
        return self._legacy[0][0]

    @property
    def last_key(self) -> int:
        return self._legacy[0][1]

    @property
    def key_step(self) -> int:
        return self._legacy[0][2]

    @property
    def movable_keys(self) -> bool:
        return self._legacy[1]

    def keys(self, args: Sequence[bytes]) -> list[KeyRef]:
        """The keys of a call (``args[0]`` is the command name): positions and flags."""
        return keys_of(self, args)

    def shown(self, args: list[bytes]) -> list[bytes]:
        """A call as the slow log, MONITOR and logs may show it: secrets redacted."""
        return args if self.redact is None else self.redact.shown(args)

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    def subcommand(self, name: str) -> CommandSpec | None:
        full = f"{self.name}|{name.lower()}"
        for sub in self.subcommands:
            if sub.name == full:
                return sub
        return None

    def hint(self) -> str:
        return " ".join(a.hint() for a in self.args)

    @cached_property
    def categories(self) -> tuple[str, ...]:
        """ACL categories (without ``@``), in Redis's order: those the flags imply (write,
        readonly, admin, pubsub, fast or slow, blocking) plus the spec's own or its group's."""
        cats = set(self.acl if self.acl is not None else ())
        if self.acl is None and not self.subcommands and self.group in GROUP_CATEGORY:
            cats.add(GROUP_CATEGORY[self.group])
        flags = self.flags
        if "write" in flags:
            cats.add("write")
        if "readonly" in flags and "scripting" not in cats:
            cats.add("read")
        if "admin" in flags:
            cats |= {"admin", "dangerous"}
        if "pubsub" in flags:
            cats.add("pubsub")
        if "fast" in flags:
            cats.add("fast")
        if "blocking" in flags:
            cats.add("blocking")
        if "fast" not in cats:
            cats.add("slow")
        return tuple(c for c in ACL_ORDER if c in cats)

    def acl_categories(self) -> list[str]:
        return [f"@{c}" for c in self.categories]

    def printed_flags(self) -> list[str]:
        """Flags as COMMAND INFO prints them, in Redis's order."""
        flags = self.flags | ({"movablekeys"} if self.movable_keys else set())
        return [f for f in FLAG_ORDER if f in flags]


# --- builders --------------------------------------------------------------------------------


def key(name: str = "key", spec: int = 0, **kw: object) -> Arg:
    """A key argument; ``spec`` is the index of the key spec that finds it."""
    return Arg(name, "key", key_spec_index=spec, **kw)  # type: ignore[arg-type]


def string(name: str, **kw: object) -> Arg:
    return Arg(name, "string", **kw)  # type: ignore[arg-type]


def integer(name: str, **kw: object) -> Arg:
    return Arg(name, "integer", **kw)  # type: ignore[arg-type]


def double(name: str, **kw: object) -> Arg:
    return Arg(name, "double", **kw)  # type: ignore[arg-type]


def pattern(name: str = "pattern", spec: int | None = None, **kw: object) -> Arg:
    """A glob pattern; ``spec`` when it names keys (SORT's BY and GET)."""
    return Arg(name, "pattern", key_spec_index=spec, **kw)  # type: ignore[arg-type]


def unix_time(name: str, **kw: object) -> Arg:
    return Arg(name, "unix-time", **kw)  # type: ignore[arg-type]


def token(tok: str, name: str | None = None, **kw: object) -> Arg:
    return Arg(name or tok.lower(), "pure-token", token=tok, **kw)  # type: ignore[arg-type]


def oneof(name: str, *choices: Arg, **kw: object) -> Arg:
    return Arg(name, "oneof", args=choices, **kw)  # type: ignore[arg-type]


def block(name: str, *parts: Arg, **kw: object) -> Arg:
    return Arg(name, "block", args=parts, **kw)  # type: ignore[arg-type]


def optional(arg: Arg) -> Arg:
    return replace(arg, optional=True)


def multiple(arg: Arg) -> Arg:
    return replace(arg, multiple=True)


def command(
    name: str,
    arity: int,
    flags: str,
    group: str,
    summary: str,
    since: str,
    *args: Arg,
    keys: tuple[KeySpec, ...] | KeySpec = (),
    key_proc: str | None = None,
    acl: str | None = None,
    complexity: str = "O(1)",
    subcommands: tuple[CommandSpec, ...] = (),
    history: tuple[tuple[str, str], ...] = (),
    doc_flags: tuple[str, ...] = (),
    tips: tuple[str, ...] = (),
    redact: Redaction | None = None,
    channels: ChannelSpec | None = None,
) -> CommandSpec:
    """Build a spec; ``flags`` is a space-separated list of FLAGS, ``keys`` the key specs,
    ``acl`` a space-separated list of categories replacing the group's."""
    flag_set = frozenset(flags.split())
    unknown = flag_set - FLAGS
    if unknown or "movablekeys" in flag_set:
        raise ValueError(f"{name}: unknown or derived flags {sorted(unknown or flag_set)}")
    if key_proc is not None and key_proc not in KEY_PROCS:
        raise ValueError(f"{name}: unknown key procedure {key_proc!r}")
    key_specs = (keys,) if isinstance(keys, KeySpec) else keys
    subs = tuple(replace(s, parent=name) for s in subcommands)
    return CommandSpec(
        name=name,
        arity=arity,
        flags=flag_set,
        group=group,
        summary=summary,
        since=since,
        complexity=complexity,
        key_specs=key_specs,
        key_proc=key_proc,
        acl=tuple(acl.split()) if acl is not None else None,
        args=args,
        subcommands=subs,
        history=history,
        doc_flags=doc_flags,
        tips=tips,
        redact=redact,
        channels=channels,
    )


def container(
    name: str,
    group: str,
    summary: str,
    since: str,
    *subs: CommandSpec,
    arity: int = -2,
    flags: str = "",
    acl: str | None = None,
    tips: tuple[str, ...] = (),
) -> CommandSpec:
    """A command whose first argument selects a subcommand (CONFIG GET, CLIENT LIST, ...)."""
    return command(
        name,
        arity,
        flags,
        group,
        summary,
        since,
        complexity="Depends on subcommand.",
        subcommands=subs,
        acl=acl,
        tips=tips,
    )


def help_sub(parent: str, group: str, since: str = "5.0.0", acl: str | None = None) -> CommandSpec:
    return command(
        f"{parent}|help",
        2,
        "loading stale",
        group,
        "Show helpful text about the different subcommands",
        since,
        acl=acl,
    )
