"""List commands. The type (u64 positions in [head, tail), O(1) at either end, LINSERT and
LREM rewriting under a new version) is ``storage/listview.py``'s. Blocking pops wait in FIFO
order per key (see ``blocking.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, NIL_ARRAY, OK, ReplyError

from ..blocking import Block, parse_timeout, same_args
from ..notifications import LIST, notify, notify_emptied
from ..storage import keyformat as kf
from ..storage.listview import ListView
from . import handler
from .args import INT64_MIN, syntax_error, to_int, to_positive
from .multikey import first_nonempty, one_key_mpop, parse_multi_pop

if TYPE_CHECKING:
    from ..client import Client

LIST_TYPE = kf.TYPE_LIST
U64 = kf.U64
INDEX_ERROR = "ERR index out of range"


# --- push and pop ---------------------------------------------------------------------------


def _push(c: Client, args: list[bytes], left: bool, only_existing: bool) -> object:
    lst = ListView(c.db, args[1])
    if only_existing and not lst.col.exists:
        return 0
    size = lst.push(args[2:], left)
    notify(c, LIST, "lpush" if left else "rpush", args[1])
    return size


@handler("lpush")
def lpush(c: Client, args: list[bytes]) -> object:
    return _push(c, args, left=True, only_existing=False)


@handler("rpush")
def rpush(c: Client, args: list[bytes]) -> object:
    return _push(c, args, left=False, only_existing=False)


@handler("lpushx")
def lpushx(c: Client, args: list[bytes]) -> object:
    return _push(c, args, left=True, only_existing=True)


@handler("rpushx")
def rpushx(c: Client, args: list[bytes]) -> object:
    return _push(c, args, left=False, only_existing=True)


def _pop(c: Client, args: list[bytes], left: bool) -> object:
    if len(args) > 3:
        raise errors.wrong_arity("lpop" if left else "rpop")
    count = None
    if len(args) == 3:
        count = to_positive(args[2])
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        return NIL if count is None else NIL_ARRAY
    popped = lst.pop(1 if count is None else count, left)
    popped_event(c, args[1], lst, left)
    return popped[0] if count is None else popped


def popped_event(c: Client, key: bytes, lst: ListView, left: bool) -> None:
    """Redis's events after elements left a list: lpop or rpop, then del if it is empty."""
    notify_emptied(c, LIST, "lpop" if left else "rpop", key, not lst.col.exists)


@handler("lpop")
def lpop(c: Client, args: list[bytes]) -> object:
    return _pop(c, args, left=True)


@handler("rpop")
def rpop(c: Client, args: list[bytes]) -> object:
    return _pop(c, args, left=False)


# --- reading ----------------------------------------------------------------------------------


@handler("llen")
def llen(c: Client, args: list[bytes]) -> object:
    return ListView(c.db, args[1], for_read=True).size


@handler("lindex")
def lindex(c: Client, args: list[bytes]) -> object:
    lst = ListView(c.db, args[1], for_read=True)  # Redis looks the key up before the index
    if not lst.col.exists:
        return NIL
    value = lst.index(to_int(args[2]))
    return NIL if value is None else value


@handler("lrange")
def lrange(c: Client, args: list[bytes]) -> object:
    start, stop = to_int(args[2]), to_int(args[3])
    return ListView(c.db, args[1], for_read=True).stream(start, stop)


@handler("lpos")
def lpos(c: Client, args: list[bytes]) -> object:
    rank, count, maxlen = 1, None, 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if i + 1 >= len(args) or opt not in (b"RANK", b"COUNT", b"MAXLEN"):
            raise syntax_error()
        raw = args[i + 1]
        if opt == b"RANK":
            rank = to_int(raw)
            if rank == 0:
                raise ReplyError(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                    "second ... or use negative to start from the end of the list"
                )
        elif opt == b"COUNT":
            count = to_positive(raw, "ERR COUNT can't be negative")
        else:
            maxlen = to_positive(raw, "ERR MAXLEN can't be negative")
        i += 2
    lst = ListView(c.db, args[1], for_read=True)
    if not lst.col.exists:
        return NIL if count is None else []
    # Redis negates a negative rank in a C long: -LONG_MIN stays LONG_MIN, so every match
    # counts from the first one and COUNT stops nothing (its arithmetic wraps).
    wrapped = rank == INT64_MIN
    size = lst.size
    elements = lst.elements()
    order = range(size) if rank > 0 else range(size - 1, -1, -1)
    skip = 0 if wrapped else abs(rank) - 1
    found: list[int] = []
    for scanned, pos in enumerate(order, 1):
        if maxlen and scanned > maxlen:
            break
        if elements[pos] == args[2]:
            if skip:
                skip -= 1
                continue
            found.append(pos)
            if count is None or (count and not wrapped and len(found) >= count):
                break
    if count is None:
        return found[0] if found else NIL
    return found


# --- changing in place ------------------------------------------------------------------------


@handler("lset")
def lset(c: Client, args: list[bytes]) -> object:
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        raise ReplyError("ERR no such key")
    if not lst.set(to_int(args[2]), args[3]):
        raise ReplyError(INDEX_ERROR)
    notify(c, LIST, "lset", args[1])
    return OK


@handler("ltrim")
def ltrim(c: Client, args: list[bytes]) -> object:
    start, stop = to_int(args[2]), to_int(args[3])
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        return OK
    bounds = lst.bounds(start, stop)
    meta = lst._meta()
    keep_from, keep_to = (bounds[0], bounds[1] + 1) if bounds else (meta.size, meta.size)
    for offset in list(range(0, keep_from)) + list(range(keep_to, meta.size)):
        lst.col.delete(U64.pack(meta.head + offset))
    meta.tail = meta.head + keep_to
    meta.head += keep_from
    meta.size = keep_to - keep_from if bounds else 0
    lst.col.save()
    notify_emptied(c, LIST, "ltrim", args[1], not lst.col.exists)
    return OK


@handler("lrem")
def lrem(c: Client, args: list[bytes]) -> object:
    count = to_int(args[2])
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        return 0
    elements = lst.elements()
    order = list(range(len(elements))) if count >= 0 else list(range(len(elements) - 1, -1, -1))
    drop: set[int] = set()
    for pos in order:
        if elements[pos] == args[3]:
            drop.add(pos)
            if count and len(drop) >= abs(count):
                break
    if drop:
        lst.rewrite([e for pos, e in enumerate(elements) if pos not in drop])
        notify_emptied(c, LIST, "lrem", args[1], not lst.col.exists)
    return len(drop)


@handler("linsert")
def linsert(c: Client, args: list[bytes]) -> object:
    where = args[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise syntax_error()
    lst = ListView(c.db, args[1])
    if not lst.col.exists:
        return 0
    elements = lst.elements()
    try:
        pos = elements.index(args[3])
    except ValueError:
        return -1
    elements.insert(pos if where == b"BEFORE" else pos + 1, args[4])
    lst.rewrite(elements)
    notify(c, LIST, "linsert", args[1])
    return len(elements)


# --- moving between lists ---------------------------------------------------------------------


def _side(raw: bytes) -> bool:
    side = raw.upper()
    if side not in (b"LEFT", b"RIGHT"):
        raise syntax_error()
    return side == b"LEFT"


def move(c: Client, src_key: bytes, dst_key: bytes, from_left: bool, to_left: bool) -> bytes | None:
    """LMOVE: pop from one list, push onto another, with Redis's events (the push, then the
    pop, then del if the source emptied)."""
    src = ListView(c.db, src_key)
    if not src.col.exists:
        return None
    if dst_key == src_key:  # a rotation: the list never stops existing
        value = src.pop(1, from_left, save=False)[0]
        src.push([value], to_left)
    else:
        dst = ListView(c.db, dst_key)  # type-checks the destination before anything moves
        value = src.pop(1, from_left)[0]
        dst.push([value], to_left)
    notify(c, LIST, "lpush" if to_left else "rpush", dst_key)
    popped_event(c, src_key, src, from_left)
    return value


@handler("lmove")
def lmove(c: Client, args: list[bytes]) -> object:
    value = move(c, args[1], args[2], _side(args[3]), _side(args[4]))
    return NIL if value is None else value


@handler("rpoplpush")
def rpoplpush(c: Client, args: list[bytes]) -> object:
    value = move(c, args[1], args[2], False, True)
    return NIL if value is None else value


def parse_mpop(args: list[bytes], at: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key... LEFT|RIGHT [COUNT n]``: (keys, left, count)."""
    keys, right, count = parse_multi_pop(args, at, (b"LEFT", b"RIGHT"))
    return keys, not right, count


def mpop(c: Client, keys: list[bytes], left: bool, count: int) -> object:
    found = first_nonempty(c, keys, ListView)
    if found is None:
        return None
    key, lst = found
    popped = lst.pop(count, left)
    popped_event(c, key, lst, left)
    return [key, popped]


@handler("lmpop")
def lmpop(c: Client, args: list[bytes]) -> object:
    keys, left, count = parse_mpop(args, 1)
    result = mpop(c, keys, left, count)
    return NIL_ARRAY if result is None else result


# --- blocking ---------------------------------------------------------------------------------


def _bpop(c: Client, args: list[bytes], left: bool) -> object:
    timeout = parse_timeout(args[-1])
    keys = args[1:-1]
    found = first_nonempty(c, keys, ListView)
    if found is None:
        raise Block(c, keys, timeout, LIST_TYPE, lambda key: [args[0], key, args[-1]])
    key, lst = found
    value = lst.pop(1, left)[0]
    popped_event(c, key, lst, left)
    return [key, value]


@handler("blpop")
def blpop(c: Client, args: list[bytes]) -> object:
    return _bpop(c, args, left=True)


@handler("brpop")
def brpop(c: Client, args: list[bytes]) -> object:
    return _bpop(c, args, left=False)


def _bmove(c: Client, args: list[bytes], from_left: bool, to_left: bool) -> object:
    timeout = parse_timeout(args[-1])
    value = move(c, args[1], args[2], from_left, to_left)
    if value is None:
        raise Block(c, [args[1]], timeout, LIST_TYPE, same_args(args), in_exec_reply=NIL)
    return value


@handler("blmove")
def blmove(c: Client, args: list[bytes]) -> object:
    return _bmove(c, args, _side(args[3]), _side(args[4]))


@handler("brpoplpush")
def brpoplpush(c: Client, args: list[bytes]) -> object:
    return _bmove(c, args, False, True)


@handler("blmpop")
def blmpop(c: Client, args: list[bytes]) -> object:
    timeout = parse_timeout(args[1])
    keys, left, count = parse_mpop(args, 2)
    result = mpop(c, keys, left, count)
    if result is None:
        raise Block(c, keys, timeout, LIST_TYPE, one_key_mpop(args, len(keys)))
    return result
