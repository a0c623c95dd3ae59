"""SORT and SORT_RO (Redis semantics), and LedisDB's typed XLSORT / XSSORT / XZSORT."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE
from stack.core.resp import ReplyError

from ..notifications import LIST, notify_stored
from ..storage import keyformat as kf
from ..storage.collections import LIST_ORIGIN, Collection
from ..storage.keyspace import WrongType
from ..storage.numbers import c_strtod
from ..storage.zset import ZSet
from . import handler
from .args import syntax_error, to_int, wrap_int64

if TYPE_CHECKING:
    from ..client import Client

SORTABLE = {kf.TYPE_LIST, kf.TYPE_SET, kf.TYPE_ZSET}
NOT_DOUBLE = "ERR One or more scores can't be converted into double"


@dataclass
class SortSpec:
    by: bytes | None = None
    offset: int = 0
    count: int = -1
    gets: list[bytes] = field(default_factory=list)
    desc: bool = False
    alpha: bool = False
    store: bytes | None = None


def parse_sort(args: list[bytes], allow_store: bool, patterns_ok: bool = True) -> SortSpec:
    """``patterns_ok``: the user may read every key (ACL), so BY and GET patterns are allowed
    (a BY without ``*`` reads no key and is always allowed), as in Redis 7."""
    spec = SortSpec()
    i = 2
    while i < len(args):
        opt = args[i].upper()
        left = len(args) - i - 1
        if opt == b"ASC":
            spec.desc = False
        elif opt == b"DESC":
            spec.desc = True
        elif opt == b"ALPHA":
            spec.alpha = True
        elif opt == b"LIMIT" and left >= 2:
            spec.offset, spec.count = to_int(args[i + 1]), to_int(args[i + 2])
            i += 2
        elif opt == b"STORE" and left >= 1 and allow_store:
            spec.store = args[i + 1]
            i += 1
        elif opt == b"BY" and left >= 1:
            spec.by = args[i + 1]
            if not patterns_ok and b"*" in spec.by:
                raise ReplyError(errors.SORT_BY_DENIED)
            i += 1
        elif opt == b"GET" and left >= 1:
            if not patterns_ok:
                raise ReplyError(errors.SORT_GET_DENIED)
            spec.gets.append(args[i + 1])
            i += 1
        else:
            raise syntax_error()
        i += 1
    return spec


def lookup(c: Client, pattern: bytes, element: bytes) -> bytes | None:
    """The value a BY/GET pattern names for ``element`` (``key`` or ``key->field``)."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    name = pattern[:star] + element + pattern[star + 1 : arrow if arrow > 0 else len(pattern)]
    if arrow > 0 and arrow + 2 < len(pattern):
        try:
            return Collection.open(c.db, name, kf.TYPE_HASH, for_read=True).get(
                pattern[arrow + 2 :]
            )
        except WrongType:
            return None
    try:
        return c.db.lookup_string(name)
    except WrongType:
        return None


def elements_of(c: Client, key: bytes, kinds: set[int]) -> tuple[int, list[bytes]]:
    record = c.db.lookup(key)
    if record is None:
        return 0, []
    kind = kf.rtype(record)
    if kind not in kinds:
        raise WrongType()
    col = Collection.open(c.db, key, kind, for_read=True)
    if kind == kf.TYPE_ZSET:
        return kind, [m for m, _s in ZSet(c.db, key, for_read=True).ordered()]
    if kind == kf.TYPE_LIST:
        return kind, [v for _k, v in col.items()]
    return kind, list(col.members())


def run_sort(c: Client, args: list[bytes], allow_store: bool, kinds: set[int]) -> object:
    patterns_ok = c.server.acl.all_keys_readable(c, TABLE.get(args[0]), args)  # type: ignore[arg-type]
    spec = parse_sort(args, allow_store, patterns_ok)
    kind, elements = elements_of(c, args[1], kinds)
    dont_sort = spec.by is not None and b"*" not in spec.by
    if not dont_sort:
        keyed: list[tuple[tuple[object, bytes], bytes]] = []
        for element in elements:
            weight = lookup(c, spec.by, element) if spec.by else element
            if spec.alpha:
                keyed.append(((weight is not None, weight or b""), element))
            else:
                keyed.append(((_score(weight), element), element))
        keyed.sort(key=lambda pair: pair[0], reverse=spec.desc)  # type: ignore[arg-type, return-value]
        elements = [e for _k, e in keyed]
    elif spec.desc and kind == kf.TYPE_ZSET:
        elements.reverse()  # BY nosort on a sorted set still honours DESC, as Redis
    elements = limit_window(elements, spec.offset, spec.count)
    out: list[bytes | None] = []
    for element in elements:
        if spec.gets:
            out += [lookup(c, g, element) for g in spec.gets]
        else:
            out.append(element)
    if spec.store is not None:
        mkey, record = c.db.read(spec.store)
        col = Collection(c.server.keyspace, mkey, record, kf.TYPE_LIST)
        col.replace_with([(kf.U64.pack(LIST_ORIGIN + n), v or b"") for n, v in enumerate(out)])
        notify_stored(c, LIST, "sortstore", spec.store, bool(out), record is not None)
        return len(out)
    return out


def limit_window(elements: list[bytes], offset: int, count: int) -> list[bytes]:
    """Redis's LIMIT arithmetic: a negative offset is 0, a negative count is "all", and
    offset + count - 1 wraps around as a C long does (so a huge count past a non-zero offset
    selects nothing, as in Redis)."""
    n = len(elements)
    start = max(offset, 0)
    end = n - 1 if count < 0 else wrap_int64(start + count - 1)
    if start >= n:
        start, end = n - 1, n - 2
    end = min(end, n - 1)
    return elements[start : end + 1] if 0 <= start <= end else []


def _score(weight: bytes | None) -> float:
    if weight is None:
        return 0.0
    parsed = c_strtod(weight)
    if parsed is None or parsed[1] or math.isnan(parsed[0]):
        raise ReplyError(NOT_DOUBLE)
    return parsed[0]


@handler("sort")
def sort(c: Client, args: list[bytes]) -> object:
    return run_sort(c, args, allow_store=True, kinds=SORTABLE)


@handler("sort_ro")
def sort_ro(c: Client, args: list[bytes]) -> object:
    return run_sort(c, args, allow_store=False, kinds=SORTABLE)


_TYPED = {b"xlsort": kf.TYPE_LIST, b"xssort": kf.TYPE_SET, b"xzsort": kf.TYPE_ZSET}


@handler("xlsort", "xssort", "xzsort")
def xsort(c: Client, args: list[bytes]) -> object:
    """LedisDB's SORT restricted to one type's keyspace."""
    return run_sort(c, args, allow_store=True, kinds={_TYPED[args[0].lower()]})
