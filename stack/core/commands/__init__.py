"""The command table: the single source of truth about every command.

The server dispatches and checks arity from it, the proxy finds keys with it, the REPL completes
and hints from it, and ``COMMAND`` / ``COMMAND DOCS`` are generated from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import (
    acl,
    bitmaps,
    cluster,
    connection,
    hashes,
    keys,
    ledis,
    lists,
    pubsub,
    replication,
    scripting,
    server,
    sets,
    slots,
    sortedsets,
    strings,
    transactions,
)
from .keyspec import KeyRef, KeySpec, keys_of
from .spec import Arg, CommandSpec


class CommandTable:
    """Specs by lower-case name, with lookup of subcommands."""

    def __init__(self, specs: tuple[CommandSpec, ...]) -> None:
        self.commands: dict[str, CommandSpec] = {}
        for spec in specs:
            if spec.name in self.commands:
                raise ValueError(f"duplicate command spec {spec.name!r}")
            self.commands[spec.name] = spec

    def __len__(self) -> int:
        return len(self.commands)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.commands.values())

    def get(self, name: str | bytes) -> CommandSpec | None:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        return self.commands.get(name.lower())

    def resolve(self, args: Sequence[bytes], strict: bool = False) -> CommandSpec | None:
        """The spec a call runs: the subcommand's for containers (when one matches; with
        ``strict``, None when none does, as Redis's command lookup)."""
        spec = self.get(args[0])
        if spec is not None and spec.subcommands and len(args) > 1:
            sub = spec.subcommand(args[1].decode("latin-1"))
            return sub if sub is not None or strict else spec
        return spec

    def keys(self, args: Sequence[bytes]) -> list[KeyRef]:
        """THE function a proxy calls: the keys of one call (``args[0]`` is the command name),
        with their positions and flags, as COMMAND GETKEYSANDFLAGS gives them. Unknown
        commands, commands without keys and calls that do not fit their specs give []."""
        spec = self.resolve(args, strict=True)
        if spec is None or not spec.arity_ok(len(args)):
            return []
        return spec.keys(args)

    def all_specs(self) -> list[CommandSpec]:
        """Every command and subcommand."""
        out: list[CommandSpec] = []
        for spec in self.commands.values():
            out.append(spec)
            out.extend(spec.subcommands)
        return out

    def groups(self) -> list[str]:
        return sorted({s.group for s in self.commands.values()})


TABLE = CommandTable(
    strings.SPECS
    + bitmaps.SPECS
    + keys.SPECS
    + server.SPECS
    + acl.SPECS
    + connection.SPECS
    + cluster.SPECS
    + transactions.SPECS
    + hashes.SPECS
    + sets.SPECS
    + lists.SPECS
    + sortedsets.SPECS
    + pubsub.SPECS
    + ledis.SPECS
    + replication.SPECS
    + slots.SPECS
    + scripting.SPECS
)


def command_keys(args: Sequence[bytes]) -> list[KeyRef]:
    """The keys of one call, from the command table: ``TABLE.keys``."""
    return TABLE.keys(args)


__all__ = [
    "TABLE",
    "Arg",
    "CommandSpec",
    "CommandTable",
    "KeyRef",
    "KeySpec",
    "command_keys",
    "keys_of",
]
