"""The commands as ACL rules see them: an id per command and subcommand, and the category
masks, all derived from the command table (``stack.core.commands``), never written by hand.

A selector's allowed commands are one integer used as a bit set over these ids. Ids follow the
table's order (each container followed by its subcommands), which is also the order in which a
user's single-command rules are described (Redis walks its command dictionary instead, in hash
order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stack.core.commands import TABLE, CommandSpec, CommandTable
from stack.core.commands.spec import ACL_ORDER

# ACL CAT's categories, in Redis's order (the same as COMMAND INFO's).
CATEGORIES = ACL_ORDER


@dataclass(frozen=True)
class Catalog:
    """Ids, names and category masks of every command and subcommand."""

    specs: tuple[CommandSpec, ...]  # by id
    ids: dict[str, int]  # full lower-case name ("get", "config|get") -> id
    subs: dict[int, tuple[int, ...]]  # a container's id -> its subcommands' ids
    top: tuple[int, ...]  # ids of the top-level commands, in table order
    members: dict[str, int]  # category -> mask of the commands in it
    grants: dict[str, int]  # category -> mask that +@category sets (containers bring subs)
    no_auth: int  # mask of commands every user may run (AUTH, HELLO, QUIT ...)
    all: int = field(init=False)  # every id

    def __post_init__(self) -> None:
        object.__setattr__(self, "all", (1 << len(self.specs)) - 1)

    @classmethod
    def build(cls, table: CommandTable = TABLE) -> Catalog:
        specs: list[CommandSpec] = []
        ids: dict[str, int] = {}
        subs: dict[int, tuple[int, ...]] = {}
        top: list[int] = []
        for spec in table:
            cid = len(specs)
            ids[spec.name] = cid
            specs.append(spec)
            top.append(cid)
            children = []
            for sub in spec.subcommands:
                ids[sub.name] = len(specs)
                children.append(len(specs))
                specs.append(sub)
            if children:
                subs[cid] = tuple(children)
        members = dict.fromkeys(CATEGORIES, 0)
        grants = dict.fromkeys(CATEGORIES, 0)
        no_auth = 0
        for cid, spec in enumerate(specs):
            bit = 1 << cid
            family = bit
            for sub in subs.get(cid, ()):
                family |= 1 << sub
            for cat in spec.categories:
                members[cat] |= bit
                grants[cat] |= family
            if "no_auth" in spec.flags:
                no_auth |= bit
        return cls(tuple(specs), ids, subs, tuple(top), members, grants, no_auth)

    def family(self, cid: int) -> int:
        """The mask a rule on this command changes: itself and, for a container, every
        subcommand (``+config`` allows ``config|get``)."""
        mask = 1 << cid
        for sub in self.subs.get(cid, ()):
            mask |= 1 << sub
        return mask

    def lookup(self, name: bytes) -> int | None:
        """The id of ``get`` or ``config|get`` (any case), or None: an unknown command, a
        subcommand a container does not have, or ``get|x`` of a command without
        subcommands."""
        try:
            text = name.decode("ascii").lower()
        except UnicodeDecodeError:
            return None
        return self.ids.get(text)

    def name(self, cid: int) -> str:
        return self.specs[cid].name

    def is_sub(self, cid: int) -> bool:
        return self.specs[cid].parent is not None


CATALOG = Catalog.build()
