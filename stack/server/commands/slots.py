"""Codis's slot commands, SLOTSSTAGE and SLOTSMAP (specs in stack/core/commands/slots.py).

Replies and argument errors follow Codis's (its redis patches, slots.c) where Codis has the
command. What may touch many keys (SLOTSINFO, SLOTSDEL, the SLOTSMGRT* family) works in
bounded steps over several loop turns and answers when done (deferral.py); the moves
themselves are migrate.py's, the receiving side staging.py's, the map slotmap.py's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, OK, ReplyError, strict_int
from stack.core.slots import SLOT_COUNT, key_slot

from ..client import BACKGROUND_TURN_SECONDS
from ..deferral import defer
from ..migrate import (
    BATCH_BYTES,
    BATCH_KEYS,
    FORGET_KEYS,
    MAX_BATCH_BYTES,
    MAX_BATCH_KEYS,
    MigrateError,
)
from ..migrate import Target as MoveTarget
from ..slotmap import MapError
from ..storage import dump
from ..storage.keyspace import Database, now_ms
from ..storage.restore import restore_object
from ..storage.slotkeys import STEP_RECORDS, count_slots, live_step, slot_range
from . import handler, help_lines
from .args import syntax_error, to_cursor, to_int, upper

if TYPE_CHECKING:
    from ..client import Client

SCAN_MAX = 10_000  # SLOTSSCAN examines at most this many records per call
INT32_MAX = 2**31 - 1


# -- arguments, as Codis reads them ------------------------------------------------------------


def codis_int(raw: bytes) -> int:
    """Codis's parse_int: a long that must fit an int."""
    n = to_int(raw)
    if not -(2**31) <= n <= INT32_MAX:
        raise ReplyError(errors.SLOTS_VALUE_RANGE)
    return n


def codis_slot(raw: bytes) -> int:
    n = codis_int(raw)
    if not 0 <= n < SLOT_COUNT:
        raise ReplyError(errors.invalid_slot(n))
    return n


def _target(c: Client, args: list[bytes]) -> MoveTarget:
    """host port timeout of the SLOTSMGRT* commands (timeout in ms; 0 means 100 ms)."""
    port = codis_int(args[2])
    if not 0 < port < 65536:
        raise ReplyError(errors.SLOTS_VALUE_RANGE)
    timeout = codis_int(args[3])
    if timeout < 0:
        raise ReplyError(errors.invalid_migrate_timeout(timeout))
    host = args[1].decode("utf-8", "replace")
    return MoveTarget(host, port, (timeout or 100) / 1000)


# -- reading slots -------------------------------------------------------------------------------


@handler("slotshashkey")
def slotshashkey(c: Client, args: list[bytes]) -> object:
    return [key_slot(k) for k in args[1:]]


@handler("slotsinfo")
def slotsinfo(c: Client, args: list[bytes]) -> object:
    first, end = 0, SLOT_COUNT
    if len(args) >= 2:
        first = codis_slot(args[1])
    if len(args) >= 3:
        count = codis_int(args[2])
        if count < 0:
            raise ReplyError(errors.invalid_slot_count(count))
        end = min(end, first + count)
    if len(args) >= 4:
        raise errors.wrong_arity("slotsinfo")
    if first >= end:
        return []
    db = c.db

    def shape(counts: object) -> object:
        assert isinstance(counts, dict)
        return [[s, n] for s, n in sorted(counts.items()) if n]

    return defer(c, count_slots(c.server.keyspace, db, first, end - 1), reply=shape)


@handler("slotsscan")
def slotsscan(c: Client, args: list[bytes]) -> object:
    slot = codis_slot(args[1])
    cursor = to_cursor(args[2])
    count = 10
    if len(args) not in (3, 5):
        raise errors.wrong_arity("slotsscan")
    if len(args) == 5:
        if upper(args[3]) != b"COUNT":
            raise syntax_error()
        count = codis_int(args[4])
        if count < 1:
            raise syntax_error()
    ks = c.server.keyspace
    start, stop = slot_range(c.db, slot)
    after = b""
    if cursor:
        saved = ks.load_cursor(cursor, start)
        after = saved or b""  # a cursor this node forgot starts the slot again
    step = live_step(ks, start, stop, after, min(count, SCAN_MAX))
    keys = [mkey[7:] for mkey, _rec in step.records]
    nxt = 0 if step.done else ks.save_cursor(start, step.after, slot)
    return [b"%d" % nxt, keys]


# -- deleting slots --------------------------------------------------------------------------


async def _delete_slots(c: Client, db: Database, slots: list[int]) -> list[list[int]]:
    server = c.server
    ks = server.keyspace
    held = server.slots.locked
    for slot in dict.fromkeys(slots):
        start, stop = slot_range(db, slot)
        after = b""
        while True:
            step = live_step(ks, start, stop, after, STEP_RECORDS // 4)
            for mkey, rec in step.records:
                if mkey not in held:  # a key on its way is the migration's to delete
                    ks.delete(mkey, rec)
            server._commit_and_release()
            if step.done:
                break
            after = step.after
            await asyncio.sleep(0)
    counts = await count_slots(c.server.keyspace, db, min(slots), max(slots))
    return [[s, counts.get(s, 0)] for s in slots]


@handler("slotsdel")
def slotsdel(c: Client, args: list[bytes]) -> object:
    slots = [codis_slot(a) for a in args[1:]]
    return defer(c, _delete_slots(c, c.db, slots))


# -- moving keys -----------------------------------------------------------------------------


@handler("slotsmgrtone", "slotsmgrttagone")
def slotsmgrtone(c: Client, args: list[bytes]) -> object:
    target = _target(c, args)
    tag = args[0].lower() == b"slotsmgrttagone"
    work = c.server.migrator.move_keys(c.db, args[4], target, tag)
    return defer(c, work, (MigrateError,))


@handler("slotsmgrtslot", "slotsmgrttagslot")
def slotsmgrtslot(c: Client, args: list[bytes]) -> object:
    target = _target(c, args)
    slot = codis_slot(args[4])
    max_keys, max_bytes, with_bytes = BATCH_KEYS, BATCH_BYTES, False
    i = 5
    while i < len(args):
        opt = upper(args[i])
        if opt == b"WITHBYTES":
            with_bytes = True
        elif opt in (b"MAXKEYS", b"MAXBYTES") and i + 1 < len(args):
            i += 1
            n = to_int(args[i])
            if opt == b"MAXKEYS":
                if not 1 <= n <= MAX_BATCH_KEYS:
                    raise ReplyError(errors.out_of_range(1, MAX_BATCH_KEYS))
                max_keys = n
            else:
                if not 1 <= n <= MAX_BATCH_BYTES:
                    raise ReplyError(errors.out_of_range(1, MAX_BATCH_BYTES))
                max_bytes = n
        else:
            raise syntax_error()
        i += 1

    def shape(result: object) -> object:
        assert isinstance(result, tuple)
        return list(result) if with_bytes else list(result[:2])

    work = c.server.migrator.move_slot(c.db, slot, target, max_keys, max_bytes)
    return defer(c, work, (MigrateError,), shape)


# -- receiving keys ----------------------------------------------------------------------------


@handler("slotsrestore")
def slotsrestore(c: Client, args: list[bytes]) -> object:
    c.turn_seconds = BACKGROUND_TURN_SECONDS  # a migration's link: short turns
    c.server.migrator.lag.touch()  # and turns put after a rest while others wait (server.py)
    if (len(args) - 1) % 3:
        raise errors.wrong_arity("slotsrestore")
    decoded = []
    for i in range(1, len(args), 3):  # everything checked before anything is written
        ttl = to_int(args[i + 1])
        if ttl < 0:
            raise ReplyError(errors.SLOTSRESTORE_BAD_TTL)
        try:
            decoded.append((args[i], ttl, *dump.decode(args[i + 2])))
        except dump.BadChecksum:
            raise ReplyError(errors.SLOTSRESTORE_BAD_PAYLOAD) from None
        except dump.BadFormat:
            raise ReplyError(errors.SLOTSRESTORE_BAD_FORMAT) from None
    now = now_ms()
    ks = c.server.keyspace
    olds = c.db.read_many([args[i] for i in range(1, len(args), 3)])
    for (_key, ttl, kind, value, entries), (mkey, old) in zip(decoded, olds, strict=True):
        restore_object(ks, mkey, old, kind, value, entries, now + ttl if ttl else 0)
    return OK


@handler("slotsstage")
def slotsstage(c: Client, args: list[bytes]) -> object:
    c.turn_seconds = BACKGROUND_TURN_SECONDS
    c.server.migrator.lag.touch()
    commit = None
    if len(args) == 8 and upper(args[5]) == b"COMMIT":
        ttl, size = to_int(args[6]), to_int(args[7])
        commit = (ttl, size)
    elif len(args) != 5:
        raise syntax_error()
    seq = strict_int(args[3])
    if seq is None or seq < 0:
        raise ReplyError(errors.NOT_INTEGER)
    c.server.migrator.stagings.receive(c.db, args[1], args[2], seq, args[4], commit)
    return OK


@handler("slotsforget")
def slotsforget(c: Client, args: list[bytes]) -> object:
    """SLOTSFORGET link-name key check [key check ...]: the undo of a move whose reply the
    source never got. Every other connection named ``link-name`` is closed first (what it
    still queues never runs: the restore may be among it), then each key is deleted whose
    value is still the one sent: ``check`` is the hex fingerprint of a whole key's payload
    (migrate.py ``fingerprint``) or ``commit:<token>`` for a big key's COMMIT (the
    staging of that token, unfinished, is given up). A key of a slot this node owns (its
    slot map) is left alone: the slot is served here, its value is a client's. The reply:
    how many keys were deleted."""
    if len(args) % 2:
        raise errors.wrong_arity("slotsforget")
    name = args[1]
    if not name:
        raise ReplyError(errors.SLOTSFORGET_NO_NAME)
    if (len(args) - 2) // 2 > FORGET_KEYS:
        raise ReplyError(errors.slotsforget_too_many(FORGET_KEYS))
    c.turn_seconds = BACKGROUND_TURN_SECONDS
    server = c.server
    for other in list(server.clients.values()):
        if other is not c and other.name == name:
            other.close_now()
    stagings = server.migrator.stagings
    ks = server.keyspace
    m = server.slots.map
    gone = 0
    for i in range(2, len(args), 2):
        key, check = args[i], args[i + 1]
        if m is not None and m.serves(key_slot(key)):
            continue
        token = check[7:] if check.startswith(b"commit:") else None
        if token is not None:
            stagings.forget_token(c.db, token)
        mkey, old = c.db.read(key)
        if old is None:
            continue
        if token is not None:
            same = stagings.committed.get(token) == (mkey, old)
        else:
            same = server.migrator.fingerprint(mkey, old) == check
        if same:
            ks.delete(mkey, old)
            gone += 1
    return gone


@handler("slotsdoubt|list")
def slotsdoubt_list(c: Client, args: list[bytes]) -> object:
    return c.server.migrator.doubts()


@handler("slotsdoubt|release")
def slotsdoubt_release(c: Client, args: list[bytes]) -> object:
    keys = None if len(args) == 3 and upper(args[2]) == b"ALL" else args[2:]
    return c.server.migrator.release_doubts(c.db, keys)


@handler("slotsdoubt|help")
def slotsdoubt_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "SLOTSDOUBT",
        [
            "LIST",
            "    The keys a move sent without an answer, held here until settled:",
            "    [key, target, state] (awaiting-reply, undoing, undo-unreachable,",
            "    undo-refused:<why>).",
            "RELEASE <key> [<key> ...] | ALL",
            "    Release them here, whole, without their undo (the target may keep a copy).",
        ],
    )


# -- the slot map -------------------------------------------------------------------------------


@handler("slotsmap|set")
def slotsmap_set(c: Client, args: list[bytes]) -> object:
    epoch = to_int(args[2])
    if epoch < 0:
        raise ReplyError(errors.invalid_slot_map("the epoch cannot be negative"))
    try:
        c.server.slots.set(epoch, args[3])
    except MapError as e:
        raise ReplyError(errors.invalid_slot_map(str(e))) from None
    except ValueError as e:
        raise ReplyError(str(e)) from None
    return OK


@handler("slotsmap|get")
def slotsmap_get(c: Client, args: list[bytes]) -> object:
    m = c.server.slots.map
    return NIL if m is None else m.raw


@handler("slotsmap|reset")
def slotsmap_reset(c: Client, args: list[bytes]) -> object:
    c.server.slots.reset()
    return OK


@handler("slotsmap|help")
def slotsmap_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "SLOTSMAP",
        [
            "SET <epoch> <json>",
            "    Give the node its slot map (docs/cluster.md); an older epoch is refused.",
            "GET",
            "    Return the node's slot map, or nil when it has none.",
            "RESET",
            "    Forget the slot map: every key is served here again.",
        ],
    )
