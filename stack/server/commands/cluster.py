"""CLUSTER subcommands about slots (the slot of a key, the keys stored in a slot) and ASKING."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import OK, ReplyError
from stack.core.slots import SLOT_COUNT, key_slot

from ..deferral import defer
from ..storage.slotkeys import count_slots, count_step, slot_range
from . import handler, help_lines
from .args import to_int

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
    start, stop = slot_range(c.db, slot)
    counts: dict[int, int] = {}
    after, done = count_step(c.server.keyspace, start, stop, counts)
    while not done and c.in_exec:  # EXEC cannot wait: counted at once
        after, done = count_step(c.server.keyspace, start, stop, counts, after)
    if done:
        return counts.get(slot, 0)
    # a big slot: counted in steps over several loop turns, the others served between
    counting = count_slots(c.server.keyspace, c.db, slot, slot)
    return defer(c, counting, reply=lambda n: n.get(slot, 0))  # type: ignore[attr-defined]


@handler("asking")
def asking(c: Client, args: list[bytes]) -> object:
    """The next command may touch a slot migrating to this node (slotmap.py)."""
    c.asking = True
    return OK


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
