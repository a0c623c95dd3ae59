"""The shape of a command spec, and small builders that keep the tables readable.

A spec follows Redis 7's per-command model: arity (positive = exact, negative = at least),
flags, key positions (first, last, step), group, summary, since-version, complexity and a typed
argument tree (``key``, ``string``, ``integer``, ``double``, ``pattern``, ``unix-time``,
``pure-token``, ``oneof``, ``block``; each optionally ``optional`` / ``multiple``, with a
``token`` that introduces it). Container commands (CONFIG, CLIENT, ...) carry subcommands.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

ArgType = Literal[
    "key", "string", "integer", "double", "pattern", "unix-time", "pure-token", "oneof", "block"
]

# Flags as Redis spells them in COMMAND INFO.
FLAGS = frozenset(
    {
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
        "fast",
        "no_auth",
        "may_replicate",
        "no_mandatory_keys",
        "no_multi",
        "no_async_loading",
        "movablekeys",
        "allow_busy",
    }
)


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
    first_key: int = 0
    last_key: int = 0
    key_step: int = 0
    keynum: int = 0  # index of a "numkeys" argument followed by that many keys (movablekeys)
    args: tuple[Arg, ...] = ()
    subcommands: tuple[CommandSpec, ...] = ()
    doc_flags: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    tips: tuple[str, ...] = ()
    parent: str | None = field(default=None, compare=False)

    @property
    def is_write(self) -> bool:
        return "write" in self.flags

    @property
    def display_name(self) -> str:
        return self.name.replace("|", " ").upper()

    def key_positions(self, argc: int) -> range:
        """Indexes of key arguments in a call with ``argc`` arguments (name included).

        Commands whose keys follow a numkeys argument need the arguments: see ``keys``."""
        if self.first_key <= 0 or argc <= self.first_key:
            return range(0)
        last = self.last_key if self.last_key >= 0 else argc + self.last_key
        last = min(last, argc - 1)
        return range(self.first_key, last + 1, self.key_step or 1)

    def keys(self, args: list[bytes]) -> list[bytes]:
        """The key arguments of a call: fixed positions, then those counted by numkeys."""
        found = [args[i] for i in self.key_positions(len(args))]
        if self.keynum:
            try:
                count = int(args[self.keynum])
            except (IndexError, ValueError):
                return found
            start = self.keynum + 1
            found += args[start : start + max(count, 0)]
        return found

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

    def acl_categories(self) -> list[str]:
        cats: list[str] = []
        if "write" in self.flags:
            cats.append("@write")
        if "readonly" in self.flags:
            cats.append("@read")
        if self.group in _GROUP_CATEGORY:
            cats.append(_GROUP_CATEGORY[self.group])
        if "admin" in self.flags:
            cats += ["@admin", "@dangerous"]
        cats.append("@fast" if "fast" in self.flags else "@slow")
        if "blocking" in self.flags:
            cats.append("@blocking")
        if self.group == "connection":
            cats.append("@connection")
        return cats


_GROUP_CATEGORY = {
    "string": "@string",
    "bitmap": "@bitmap",
    "generic": "@keyspace",
    "hash": "@hash",
    "list": "@list",
    "set": "@set",
    "sorted-set": "@sortedset",
    "pubsub": "@pubsub",
    "transactions": "@transaction",
}


# --- builders --------------------------------------------------------------------------------


def key(name: str = "key", **kw: object) -> Arg:
    return Arg(name, "key", key_spec_index=0, **kw)  # type: ignore[arg-type]


def string(name: str, **kw: object) -> Arg:
    return Arg(name, "string", **kw)  # type: ignore[arg-type]


def integer(name: str, **kw: object) -> Arg:
    return Arg(name, "integer", **kw)  # type: ignore[arg-type]


def double(name: str, **kw: object) -> Arg:
    return Arg(name, "double", **kw)  # type: ignore[arg-type]


def pattern(name: str = "pattern", **kw: object) -> Arg:
    return Arg(name, "pattern", **kw)  # type: ignore[arg-type]


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
    keys: tuple[int, int, int] = (0, 0, 0),
    keynum: int = 0,
    complexity: str = "O(1)",
    subcommands: tuple[CommandSpec, ...] = (),
    history: tuple[tuple[str, str], ...] = (),
    doc_flags: tuple[str, ...] = (),
    tips: tuple[str, ...] = (),
) -> CommandSpec:
    """Build a spec; ``flags`` is a space-separated list of FLAGS."""
    flag_set = frozenset(flags.split()) | ({"movablekeys"} if keynum else frozenset())
    unknown = flag_set - FLAGS
    if unknown:
        raise ValueError(f"{name}: unknown flags {sorted(unknown)}")
    subs = tuple(replace(s, parent=name) for s in subcommands)
    return CommandSpec(
        name=name,
        arity=arity,
        flags=flag_set,
        group=group,
        summary=summary,
        since=since,
        complexity=complexity,
        first_key=keys[0],
        last_key=keys[1],
        key_step=keys[2],
        keynum=keynum,
        args=args,
        subcommands=subs,
        history=history,
        doc_flags=doc_flags,
        tips=tips,
    )


def container(
    name: str, group: str, summary: str, since: str, *subs: CommandSpec, arity: int = -2
) -> CommandSpec:
    """A command whose first argument selects a subcommand (CONFIG GET, CLIENT LIST, ...)."""
    return command(
        name,
        arity,
        "",
        group,
        summary,
        since,
        complexity="Depends on subcommand.",
        subcommands=subs,
    )


def help_sub(parent: str, group: str, since: str = "5.0.0") -> CommandSpec:
    return command(
        f"{parent}|help",
        2,
        "loading stale",
        group,
        "Show helpful text about the different subcommands",
        since,
    )
