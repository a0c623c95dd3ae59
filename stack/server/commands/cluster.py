"""CLUSTER subcommands about slots: the slot of a key and the keys stored in a slot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import ReplyError
from stack.core.slots import SLOT_COUNT, key_slot

from . import handler
from .args import to_int
from .keys import help_lines

if TYPE_CHECKING:
    from ..client import Client


def _slot(raw: bytes) -> int:
    slot = to_int(raw, "ERR Invalid slot")
    if not 0 <= slot < SLOT_COUNT:
        raise ReplyError("ERR Invalid slot")
    return slot


@handler("cluster|keyslot")
def keyslot(c: Client, args: list[bytes]) -> object:
    return key_slot(args[2])


@handler("cluster|countkeysinslot")
def countkeysinslot(c: Client, args: list[bytes]) -> object:
    slot = _slot(args[2])
    return sum(1 for _ in c.server.keyspace.iter_slot(c.db, slot))


@handler("cluster|getkeysinslot")
def getkeysinslot(c: Client, args: list[bytes]) -> object:
    slot = _slot(args[2])
    count = to_int(args[3], "ERR Invalid number of keys")
    if count < 0:
        raise ReplyError("ERR Invalid number of keys")
    out: list[bytes] = []
    for key in c.server.keyspace.iter_slot(c.db, slot):
        if len(out) >= count:
            break
        out.append(key)
    return out


@handler("cluster|help")
def cluster_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "CLUSTER",
        [
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by this node in a slot.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
        ],
    )
