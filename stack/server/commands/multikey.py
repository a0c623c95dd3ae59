"""Argument shapes shared by commands over several keys (LMPOP, ZMPOP, SINTERCARD, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from stack.core.resp import ReplyError

from ..storage.collections import Collection
from .args import syntax_error, to_int

if TYPE_CHECKING:
    from ..client import Client


class View(Protocol):
    """A typed view over one collection key (ListView, ZSet, ...)."""

    col: Collection


V = TypeVar("V", bound=View)


def first_nonempty(
    c: Client, keys: list[bytes], open_view: Callable[[Client, bytes], V]
) -> tuple[bytes, V] | None:
    """The first of ``keys`` that holds a collection, opened with ``open_view``: the key the
    multi-key pops (LMPOP, BLPOP, ZMPOP, BZPOPMIN, ...) take from. A key of another type on
    the way raises WRONGTYPE, as in Redis."""
    for key in keys:
        view = open_view(c, key)
        if view.col.exists:
            return key, view
    return None


def parse_multi_pop(
    args: list[bytes], at: int, ends: tuple[bytes, bytes]
) -> tuple[list[bytes], bool, int]:
    """``numkeys key... END [COUNT n]`` from ``args[at]``, END one of ``ends``.

    Returns (keys, whether END is the second choice, count)."""
    numkeys = to_int(args[at], "ERR numkeys should be greater than 0")
    if numkeys <= 0:
        raise ReplyError("ERR numkeys should be greater than 0")
    if numkeys > len(args) - at - 1:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    keys = args[at + 1 : at + 1 + numkeys]
    rest = args[at + 1 + numkeys :]
    if not rest or rest[0].upper() not in ends:
        raise syntax_error()
    count = 1
    if len(rest) == 3 and rest[1].upper() == b"COUNT":
        count = to_int(rest[2], "ERR count should be greater than 0")
        if count <= 0:
            raise ReplyError("ERR count should be greater than 0")
    elif len(rest) != 1:
        raise syntax_error()
    return keys, rest[0].upper() == ends[1], count


def parse_limit(rest: list[bytes]) -> int:
    """An optional trailing ``LIMIT n`` (0 = no limit), as SINTERCARD and ZINTERCARD take."""
    if not rest:
        return 0
    if len(rest) != 2 or rest[0].upper() != b"LIMIT":
        raise syntax_error()
    limit = to_int(rest[1])
    if limit < 0:
        raise ReplyError("ERR LIMIT can't be negative")
    return limit
