"""Argument shapes shared by commands over several keys (LMPOP, ZMPOP, SINTERCARD, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ..blocking import Retry
from ..storage.collections import Collection
from .args import INT64_MAX, syntax_error, to_positive, to_range

NUMKEYS_ERROR = "ERR numkeys should be greater than 0"

if TYPE_CHECKING:
    from ..client import Client
    from ..storage.keyspace import Database


class View(Protocol):
    """A typed view over one collection key (ListView, ZSet, ...)."""

    col: Collection


V = TypeVar("V", bound=View)


def first_nonempty(
    c: Client, keys: list[bytes], open_view: Callable[[Database, bytes], V]
) -> tuple[bytes, V] | None:
    """The first of ``keys`` that holds a collection, opened with ``open_view``: the key the
    multi-key pops (LMPOP, BLPOP, ZMPOP, BZPOPMIN, ...) take from. A key of another type on
    the way raises WRONGTYPE, as in Redis."""
    for key in keys:
        view = open_view(c.db, key)
        if view.col.exists:
            return key, view
    return None


def parse_multi_pop(
    args: list[bytes], at: int, ends: tuple[bytes, bytes]
) -> tuple[list[bytes], bool, int]:
    """``numkeys key... END [COUNT n]`` from ``args[at]``, END one of ``ends``.

    Returns (keys, whether END is the second choice, count). As in Redis, numkeys past the
    arguments there are is a syntax error."""
    numkeys = to_range(args[at], 1, INT64_MAX, NUMKEYS_ERROR)
    if numkeys > len(args) - at - 2:
        raise syntax_error()
    keys = args[at + 1 : at + 1 + numkeys]
    rest = args[at + 1 + numkeys :]
    if rest[0].upper() not in ends:
        raise syntax_error()
    count = 1
    if len(rest) == 3 and rest[1].upper() == b"COUNT":
        count = to_range(rest[2], 1, INT64_MAX, "ERR count should be greater than 0")
    elif len(rest) != 1:
        raise syntax_error()
    return keys, rest[0].upper() == ends[1], count


def parse_limit(rest: list[bytes]) -> int:
    """Trailing ``LIMIT n`` options (the last one counts; 0 = no limit), as SINTERCARD and
    ZINTERCARD take them."""
    limit = 0
    i = 0
    while i < len(rest):
        if rest[i].upper() == b"LIMIT" and i + 1 < len(rest):
            limit = to_positive(rest[i + 1], "ERR LIMIT can't be negative")
            i += 2
        else:
            raise syntax_error()
    return limit


def one_key_mpop(args: list[bytes], numkeys: int) -> Retry:
    """BLMPOP/BZMPOP run again for one ready key: ``timeout 1 key`` and the rest as given."""
    rest = args[3 + numkeys :]
    return lambda key: [args[0], args[1], b"1", key, *rest]
