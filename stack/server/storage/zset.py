"""Sorted sets on disk, and the ranges their commands walk.

Each member has two sub-keys under the key's version: ``m member -> score`` and
``s score member -> ""``, where the score is a double encoded so that byte order is numeric
order (``scores.py``). Ranges by score walk the ``s`` index directly; ranks count along it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stack.core.resp import ReplyError

from . import keyformat as kf
from .collections import ZSET_MEMBER, ZSET_SCORE, Collection
from .engine import Engine
from .hints import remember
from .keyspace import Database
from .numbers import c_strtod
from .scores import decode_score, encode_score

ZSET_TYPE = kf.TYPE_ZSET
MEMBER = ZSET_MEMBER
SCORE = ZSET_SCORE
RANGE_NOT_FLOAT = "ERR min or max is not a float"
LEX_ERROR = "ERR min or max not valid string range item"


@dataclass(frozen=True)
class ScoreBound:
    value: float
    exclusive: bool

    @classmethod
    def parse(cls, raw: bytes) -> ScoreBound:
        """Redis's zslParseRange: plain strtod, so "", " 1" and "1e400" (inf) are bounds."""
        exclusive = raw[:1] == b"("
        parsed = c_strtod(raw[1:] if exclusive else raw)
        if parsed is None or math.isnan(parsed[0]):
            raise ReplyError(RANGE_NOT_FLOAT)
        return cls(parsed[0], exclusive)

    def above(self, x: float) -> bool:
        """x is on the allowed side of this bound used as a minimum."""
        return x > self.value if self.exclusive else x >= self.value

    def below(self, x: float) -> bool:
        return x < self.value if self.exclusive else x <= self.value


@dataclass(frozen=True)
class LexBound:
    value: bytes
    exclusive: bool
    infinite: int  # -1 for "-", +1 for "+", 0 otherwise

    @classmethod
    def parse(cls, raw: bytes) -> LexBound:
        if raw == b"-":
            return cls(b"", False, -1)
        if raw == b"+":
            return cls(b"", False, 1)
        if raw[:1] == b"(":
            return cls(raw[1:], True, 0)
        if raw[:1] == b"[":
            return cls(raw[1:], False, 0)
        raise ReplyError(LEX_ERROR)

    def above(self, m: bytes) -> bool:
        if self.infinite:
            return self.infinite < 0
        return m > self.value if self.exclusive else m >= self.value

    def below(self, m: bytes) -> bool:
        if self.infinite:
            return self.infinite > 0
        return m < self.value if self.exclusive else m <= self.value


class ZSet:
    """A sorted-set key."""

    def __init__(self, db: Database, key: bytes, for_read: bool = False) -> None:
        self.col = Collection.open(db, key, ZSET_TYPE, for_read)

    @property
    def size(self) -> int:
        return self.col.size

    def score(self, member: bytes) -> float | None:
        raw = self.col.get(MEMBER + member)
        return None if raw is None else decode_score(raw)

    def set(self, member: bytes, score: float, old: float | None) -> None:
        meta = self.col.ensure()
        if old is not None:
            self.col.delete(SCORE + encode_score(old) + member)
        else:
            meta.size += 1
        encoded = encode_score(score)
        self.col.put(MEMBER + member, encoded)
        self.col.put(SCORE + encoded + member, b"")
        engine = self.col.ks.engine
        if engine.floors or engine.ceilings:
            self._widen(engine, self.col.prefix + SCORE, self.col.prefix + SCORE + encoded + member)

    @staticmethod
    def _widen(engine: Engine, base: bytes, key: bytes) -> None:
        """A score index entry was written: the known ends of the live scores still hold."""
        floor = engine.floors.get(base)
        if floor is not None and key < floor:
            engine.floors[base] = key
        ceiling = engine.ceilings.get(base)
        if ceiling is not None and key > ceiling:
            engine.ceilings[base] = key

    def remove(self, member: bytes, score: float) -> None:
        assert self.col.meta is not None
        self.col.delete(MEMBER + member)
        self.col.delete(SCORE + encode_score(score) + member)
        self.col.meta.size -= 1

    def save(self) -> None:
        self.col.save()

    def ordered(
        self, reverse: bool = False, start: float | None = None
    ) -> Iterator[tuple[bytes, float]]:
        """(member, score) by score then member; from ``start`` when given.

        The walk starts at the known end of the live scores (``Engine.floors``/``ceilings``)
        when that is nearer, so it does not step again over the tombstones that pops left
        below (LevelDB keeps them until a compaction): a ZPOPMIN seeks to its member instead of
        walking every member popped before. A walk from that end records the first key it
        finds as the new end."""
        col = self.col
        if col.meta is None:
            return
        engine = col.ks.engine
        base = col.prefix + SCORE
        lo, hi = base, kf.prefix_end(base)
        ends = engine.ceilings if reverse else engine.floors
        end = ends.get(base)
        from_end = start is None  # no live key before the walk's first one
        if start is not None:
            if reverse:
                hi = kf.prefix_end(base + encode_score(start))
            else:
                lo = base + encode_score(start)
        if end is not None:
            if reverse and end + b"\x00" <= hi:
                hi, from_end = end + b"\x00", True
            elif not reverse and end >= lo:
                lo, from_end = end, True
        cut = len(base)
        for k, _v in engine.scan(lo, hi, reverse):
            if from_end:
                from_end = False
                remember(ends, base, k, ENDS_MAX)
            yield k[cut + 8 :], decode_score(k[cut : cut + 8])

    def end(self, highest: bool) -> tuple[bytes, float] | None:
        """The (member, score) with the lowest (``highest``: the highest) score, in one seek
        from the known end of the live scores (see ``ordered``); the C lane's ZPOPMIN seeks
        the same way."""
        col = self.col
        if col.meta is None:
            return None
        engine = col.ks.engine
        base = col.prefix + SCORE
        lo, hi = base, kf.prefix_end(base)
        known = (engine.ceilings if highest else engine.floors).get(base)
        if known is not None:
            if highest:
                hi = known + b"\x00"
            else:
                lo = known
        found = engine.first(lo, hi, highest)
        if found is None:
            return None
        cut = len(base)
        return found[0][cut + 8 :], decode_score(found[0][cut : cut + 8])

    def pop(self, count: int, highest: bool) -> list[tuple[bytes, float]]:
        """Remove up to ``count`` members with the lowest (``highest``: the highest) scores,
        save, and return them in that order. The end of the live scores moves past them."""
        items: list[tuple[bytes, float]] = []
        if count == 1:  # ZPOPMIN key: one seek
            item = self.end(highest)
            if item is not None:
                items.append(item)
        else:
            for item in self.ordered(reverse=highest):
                if len(items) >= count:
                    break
                items.append(item)
        if not items:
            return items
        for member, score in items:
            self.remove(member, score)
        base = self.col.prefix + SCORE
        self.save()
        engine = self.col.ks.engine
        ends = engine.ceilings if highest else engine.floors
        if self.col.exists:  # nothing live is left beyond the last one popped
            member, score = items[-1]
            remember(ends, base, base + encode_score(score) + member, ENDS_MAX)
        else:
            ends.pop(base, None)
        return items

    def rank_range(self, start: int, stop: int, reverse: bool) -> list[tuple[bytes, float]]:
        size = self.size
        if start < 0:
            start = max(start + size, 0)
        if stop < 0:
            stop += size
        stop = min(stop, size - 1)
        if start > stop or start >= size:
            return []
        out = []
        for n, item in enumerate(self.ordered(reverse)):
            if n > stop:
                break
            if n >= start:
                out.append(item)
        return out

    def score_range(
        self, lo: ScoreBound, hi: ScoreBound, reverse: bool, offset: int = 0, count: int = -1
    ) -> list[tuple[bytes, float]]:
        """Members with lo <= score <= hi (bounds per their exclusivity)."""
        first = hi.value if reverse else lo.value
        items = self.ordered(reverse, None if math.isnan(first) else first)
        return _window(items, lambda item: item[1], lo, hi, reverse, offset, count)

    def lex_range(
        self, lo: LexBound, hi: LexBound, reverse: bool, offset: int = 0, count: int = -1
    ) -> list[tuple[bytes, float]]:
        """Members between lo and hi by name (meaningful when all scores are equal)."""
        return _window(self.ordered(reverse), lambda item: item[0], lo, hi, reverse, offset, count)

    def rank(self, member: bytes, reverse: bool) -> int | None:
        if self.score(member) is None:
            return None
        for n, (m, _s) in enumerate(self.ordered(reverse)):
            if m == member:
                return n
        return None  # pragma: no cover - the two indexes agree


Bound = ScoreBound | LexBound
ENDS_MAX = 10_000  # sorted sets whose ends are remembered (then all are forgotten at once)


def _window(
    items: Iterator[tuple[bytes, float]],
    value: Callable[[tuple[bytes, float]], Any],
    lo: Bound,
    hi: Bound,
    reverse: bool,
    offset: int,
    count: int,
) -> list[tuple[bytes, float]]:
    """The items between two bounds, walked in order (stopping at the far bound), after
    skipping ``offset`` and keeping at most ``count`` (negative: all), as LIMIT does."""
    out: list[tuple[bytes, float]] = []
    if offset < 0:
        return out
    near, far = (hi.below, lo.above) if reverse else (lo.above, hi.below)
    for item in items:
        v = value(item)
        if not near(v):
            continue
        if not far(v):
            break
        if offset:
            offset -= 1
            continue
        if count == 0:
            break
        out.append(item)
        count -= 1
    return out
