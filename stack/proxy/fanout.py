"""Commands that span slots or groups: split per slot and merged, or sent to every group.

- ``split``: MGET, MSET, DEL, UNLINK, EXISTS, TOUCH whose keys span slots are cut into one
  command per slot (keys in their original order within it), sent like any single-slot
  command, and merged: MGET's values back in the order of its keys, MSET's ``+OK`` once all
  parts said OK, the others' counts summed; the first error reply wins. A part in a
  migrating slot makes the whole command an exclusive step (each part through the
  migration path).
- ``to_all``: DBSIZE (sum), KEYS (concatenated), FLUSHALL / FLUSHDB (``+OK`` when every group
  said OK): sent to the master of every group that owns slots.
- ``scan``: one cursor across groups: the low 10 bits say which group (in id order), the
  rest is that group's own SCAN cursor; a group's 0 moves on to the next group.
- ``randomkey``: groups in random order until one has a key.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from stack.core.resp import encode_error
from stack.core.slots import key_slot

from .backend import Batch, Deferred, call, encode_requests
from .migration import is_redirect, run_on_slot
from .replies import CLUSTERDOWN, parse_int, split_aggregate

if TYPE_CHECKING:
    from .client import Client
    from .rules import Rule

GROUP_BITS = 10
_OK = b"+OK\r\n"


def _parts_by_slot(rule: Rule, args: list[bytes]) -> tuple[list[int], dict[int, list[int]]]:
    """The slot of each key (in order) and, per slot, the indexes of its keys."""
    step = 2 if rule.merge == "all_ok" else 1
    slots = [key_slot(k) for k in args[1::step]]
    by_slot: dict[int, list[int]] = {}
    for i, s in enumerate(slots):
        by_slot.setdefault(s, []).append(i)
    return slots, by_slot


def _sub_command(rule: Rule, args: list[bytes], indexes: list[int]) -> list[bytes]:
    if rule.merge == "all_ok":  # MSET: key value pairs
        out = [args[0]]
        for i in indexes:
            out += [args[1 + 2 * i], args[2 + 2 * i]]
        return out
    return [args[0], *(args[1 + i] for i in indexes)]


def merge(rule: Rule, nkeys: int, parts: list[tuple[list[int], bytes]], resp3: bool) -> bytes:
    """One reply from the per-slot replies (``(key indexes, raw reply)`` each)."""
    for _, raw in parts:
        if raw[:1] in (b"-", b"!"):
            return raw
    if rule.merge == "all_ok":
        return _OK
    if rule.merge == "sum":
        total = 0
        for _, raw in parts:
            n = parse_int(raw)
            if n is None:
                return raw
            total += n
        return b":%d\r\n" % total
    values: list[bytes] = [b""] * nkeys
    for indexes, raw in parts:
        items = split_aggregate(raw)
        for i, item in zip(indexes, items, strict=True):
            values[i] = item
    return b"*%d\r\n%b" % (nkeys, b"".join(values))


class _Merge(Deferred):
    """A split command's reply slot: filled once every part is in."""

    __slots__ = ("args", "client", "left", "nkeys", "parts", "rule")

    def __init__(
        self, client: Client, rule: Rule, args: list[bytes], nkeys: int, count: int
    ) -> None:
        super().__init__()
        self.client = client
        self.rule = rule
        self.args = args
        self.nkeys = nkeys
        self.left = count
        self.parts: list[tuple[list[int], bytes]] = []

    def part(self, indexes: list[int]):  # type: ignore[no-untyped-def]
        def done(batch: Batch) -> None:
            self.parts.append((indexes, batch.parts[0]))
            self.left -= 1
            if not self.left:
                self.finish()

        return done

    def finish(self) -> None:
        c = self.client
        if any(is_redirect(raw) for _, raw in self.parts):
            c.spawn(self._again())
            return
        self.data = merge(self.rule, self.nkeys, self.parts, c.protocol == 3)
        c.slot_ready(self)

    async def _again(self) -> None:
        c = self.client
        fixed = []
        for indexes, raw in self.parts:
            if is_redirect(raw):
                sub = _sub_command(self.rule, self.args, indexes)
                keys = sub[1 :: 2 if self.rule.merge == "all_ok" else 1]
                raw = await run_on_slot(c, key_slot(keys[0]), sub, keys)
            fixed.append((indexes, raw))
        self.parts = fixed
        self.data = merge(self.rule, self.nkeys, self.parts, c.protocol == 3)
        c.slot_ready(self)


def split(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if rule.merge == "all_ok" and len(args) % 2 == 0:  # MSET needs key value pairs
        from stack.core import errors

        return c.fail(errors.wrong_arity(rule.name).message)
    slots, by_slot = _parts_by_slot(rule, args)
    proxy = c.proxy
    ops = proxy.stats.slot_ops
    routes = proxy.routes.routes
    if len(by_slot) == 1:
        keys = args[1 :: 2 if rule.merge == "all_ok" else 1]
        return c.to_slot(slots[0], args, keys, False)
    for s in by_slot:
        route = routes[s]
        if route.backend is None:
            c.proxy.stats.errors += 1
            c.reply(encode_error(CLUSTERDOWN))
            return True
        if route.target is not None:
            return c.exclusive(lambda: _split_slowly(c, rule, args, by_slot))
    c.close_batch()
    c.raw_chunk = None
    slot = _Merge(c, rule, args, len(slots), len(by_slot))
    c.queue.append(slot)
    pinned = c.pinned
    for s, indexes in by_slot.items():
        ops[s] += 1
        backend = routes[s].backend
        assert backend is not None  # checked above
        sub = _sub_command(rule, args, indexes)
        link = pinned.link if pinned is not None and pinned.backend is backend else None
        if link is None:
            link = c.link_to(backend)
        link.send(encode_requests([sub]), Batch(slot.part(indexes), [sub], c.t0))
    return True


async def _split_slowly(
    c: Client, rule: Rule, args: list[bytes], by_slot: dict[int, list[int]]
) -> bytes:
    step = 2 if rule.merge == "all_ok" else 1
    parts = []
    for s, indexes in by_slot.items():
        c.proxy.stats.slot_ops[s] += 1
        sub = _sub_command(rule, args, indexes)
        parts.append((indexes, await run_on_slot(c, s, sub, sub[1::step])))
    return merge(rule, len(args[1::step]), parts, c.protocol == 3)


async def to_all(c: Client, rule: Rule, args: list[bytes]) -> bytes:
    groups = c.proxy.routes.group_backends()
    if not groups:
        return encode_error(CLUSTERDOWN)
    replies = await asyncio.gather(*(call(b.link(c.protocol, c.id), args) for _, b in groups))
    for raw in replies:
        if raw[:1] in (b"-", b"!"):
            return raw
    if rule.merge == "all_ok":
        return _OK
    if rule.merge == "sum":
        return b":%d\r\n" % sum(parse_int(r) or 0 for r in replies)
    items = [item for raw in replies for item in split_aggregate(raw)]
    return b"*%d\r\n%b" % (len(items), b"".join(items))


def _bulk_int(raw: bytes) -> int | None:
    """A bulk string holding a decimal integer (a SCAN cursor)."""
    if raw[:1] != b"$":
        return None
    nl = raw.find(b"\r\n")
    try:
        return int(raw[nl + 2 : -2])
    except ValueError:
        return None


async def scan(c: Client, args: list[bytes], at: int, cursor: int) -> bytes:
    groups = c.proxy.routes.group_backends()
    index = cursor & ((1 << GROUP_BITS) - 1)
    inner = cursor >> GROUP_BITS
    if index >= len(groups):
        return b"*2\r\n$1\r\n0\r\n*0\r\n"
    backend = groups[index][1]
    sub = [*args[:at], b"%d" % inner, *args[at + 1 :]]
    raw = await call(backend.link(c.protocol, c.id), sub)
    if raw[:1] != b"*":
        return raw
    cursor_raw, keys_raw = split_aggregate(raw)
    nxt = _bulk_int(cursor_raw)
    if nxt is None:
        return raw
    if nxt:
        out = (nxt << GROUP_BITS) | index
    else:
        out = index + 1 if index + 1 < len(groups) else 0
    text = b"%d" % out
    return b"*2\r\n$%d\r\n%b\r\n%b" % (len(text), text, keys_raw)


async def randomkey(c: Client, args: list[bytes]) -> bytes:
    groups = c.proxy.routes.group_backends()
    if not groups:
        return encode_error(CLUSTERDOWN)
    random.shuffle(groups)
    raw = b"$-1\r\n"
    for _, backend in groups:
        raw = await call(backend.link(c.protocol, c.id), args)
        if raw[:1] == b"$" and raw != b"$-1\r\n":
            return raw
        if raw[:1] in (b"-", b"!"):
            return raw
    return raw
