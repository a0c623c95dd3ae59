"""Sorted-set commands. The type, its two sub-key spaces and its ranges are
``storage/zset.py``'s."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core.resp import NIL, NIL_ARRAY, Chunks, Double, Pairs, Raw, ReplyError, bulk_array

from ..blocking import Block, parse_timeout
from ..notifications import ZSET, notify, notify_emptied, notify_stored
from ..storage import keyformat as kf
from ..storage.collections import Collection
from ..storage.keyspace import WrongType
from ..storage.picks import random_member
from ..storage.scores import decode_score, encode_score, format_score
from ..storage.zset import MEMBER, SCORE, LexBound, ScoreBound, ZSet
from . import handler
from .args import syntax_error, to_float, to_int, to_positive
from .multikey import first_nonempty, one_key_mpop, parse_limit, parse_multi_pop
from .sampling import parse_count, sample_reply
from .scanning import scan_collection

if TYPE_CHECKING:
    from ..client import Client

ZSET_TYPE = kf.TYPE_ZSET
NOT_FLOAT = "ERR value is not a valid float"


parse_score = to_float


def flat(items: list[tuple[bytes, float]], with_scores: bool) -> Chunks | Pairs:
    """Members (and scores: flat in RESP2, [member, score] pairs in RESP3)."""
    if with_scores:
        return Pairs(items)
    return bulk_array(m for m, _s in items)


# --- ZADD and friends -------------------------------------------------------------------------


@handler("zadd")
def zadd(c: Client, args: list[bytes]) -> object:
    flags: set[bytes] = set()
    i = 2
    while i < len(args) and args[i].upper() in (b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR"):
        flags.add(args[i].upper())
        i += 1
    pairs = args[i:]
    if not pairs or len(pairs) % 2:
        raise syntax_error()
    if b"NX" in flags and b"XX" in flags:
        raise ReplyError("ERR XX and NX options at the same time are not compatible")
    if len(flags & {b"GT", b"LT", b"NX"}) > 1:
        raise ReplyError("ERR GT, LT, and/or NX options at the same time are not compatible")
    incr = b"INCR" in flags
    if incr and len(pairs) != 2:
        raise ReplyError("ERR INCR option supports a single increment-element pair")
    scores = [parse_score(pairs[j]) for j in range(0, len(pairs), 2)]
    z = ZSet(c.db, args[1])
    added = changed = 0
    result: float | None = None
    for score, member in zip(scores, pairs[1::2], strict=True):
        old = z.score(member)
        if (b"NX" in flags and old is not None) or (b"XX" in flags and old is None):
            continue
        new = score
        if incr and old is not None:  # a new member takes the increment as it is (-0 too)
            new = old + score
            if math.isnan(new):
                raise ReplyError("ERR resulting score is not a number (NaN)")
        if old is not None and (
            (b"GT" in flags and not new > old) or (b"LT" in flags and not new < old)
        ):
            continue
        result = new
        if old is None:
            added += 1
        elif old == new:
            continue
        else:
            changed += 1
        z.set(member, new, old)
    if added:
        z.save()
    elif changed:
        z.col.touch()
    if added or changed:
        notify(c, ZSET, "zincr" if incr else "zadd", args[1])
    if incr:
        return NIL if result is None else score_reply(c, result)
    return added + changed if b"CH" in flags else added


@handler("zincrby")
def zincrby(c: Client, args: list[bytes]) -> object:
    delta = parse_score(args[2])
    z = ZSet(c.db, args[1])
    old = z.score(args[3])
    new = delta if old is None else old + delta
    if math.isnan(new):
        raise ReplyError("ERR resulting score is not a number (NaN)")
    z.set(args[3], new, old)
    z.save()
    notify(c, ZSET, "zincr", args[1])
    return score_reply(c, new)


def score_reply(c: Client, score: float) -> object:
    """The new score ZINCRBY and ZADD INCR answer; -0 (an increment of -0 on a new member)
    is printed as such by Redis, though it stores 0."""
    if score == 0 and math.copysign(1.0, score) < 0:
        return Raw(b",-0\r\n" if c.resp3 else b"$2\r\n-0\r\n")
    return Double(score)


@handler("zrem")
def zrem(c: Client, args: list[bytes]) -> object:
    z = ZSet(c.db, args[1])
    removed = 0
    for member in dict.fromkeys(args[2:]):
        score = z.score(member)
        if score is not None:
            z.remove(member, score)
            removed += 1
    if removed:
        z.save()
        notify_emptied(c, ZSET, "zrem", args[1], not z.col.exists)
    return removed


@handler("zcard")
def zcard(c: Client, args: list[bytes]) -> object:
    return ZSet(c.db, args[1], for_read=True).size


@handler("zscore")
def zscore(c: Client, args: list[bytes]) -> object:
    score = ZSet(c.db, args[1], for_read=True).score(args[2])
    return NIL if score is None else Double(score)


@handler("zmscore")
def zmscore(c: Client, args: list[bytes]) -> object:
    z = ZSet(c.db, args[1], for_read=True)
    return [None if (s := z.score(m)) is None else Double(s) for m in args[2:]]


@handler("zcount")
def zcount(c: Client, args: list[bytes]) -> object:
    lo, hi = ScoreBound.parse(args[2]), ScoreBound.parse(args[3])
    return len(ZSet(c.db, args[1], for_read=True).score_range(lo, hi, False))


@handler("zlexcount")
def zlexcount(c: Client, args: list[bytes]) -> object:
    lo, hi = LexBound.parse(args[2]), LexBound.parse(args[3])
    return len(ZSet(c.db, args[1], for_read=True).lex_range(lo, hi, False))


def _rank(c: Client, args: list[bytes], reverse: bool) -> object:
    with_score = False
    if len(args) == 4:
        if args[3].upper() != b"WITHSCORE":
            raise syntax_error()
        with_score = True
    elif len(args) > 4:
        raise syntax_error()
    z = ZSet(c.db, args[1], for_read=True)
    rank = z.rank(args[2], reverse)
    if rank is None:
        return NIL_ARRAY if with_score else NIL
    if with_score:
        return [rank, Double(z.score(args[2]) or 0.0)]
    return rank


@handler("zrank")
def zrank(c: Client, args: list[bytes]) -> object:
    return _rank(c, args, reverse=False)


@handler("zrevrank")
def zrevrank(c: Client, args: list[bytes]) -> object:
    return _rank(c, args, reverse=True)


# --- ranges -----------------------------------------------------------------------------------


@dataclass
class RangeQuery:
    by: bytes  # b"RANK", b"SCORE" or b"LEX"
    start: bytes
    stop: bytes
    reverse: bool = False
    offset: int = 0
    count: int = -1
    with_scores: bool = False
    limited: bool = False
    ranks: tuple[int, int] = (0, -1)
    scores: tuple[ScoreBound, ScoreBound] | None = None
    lex: tuple[LexBound, LexBound] | None = None

    def parse_bounds(self) -> None:
        """Read start and stop as ranks, scores or names (before the key is looked up)."""
        if self.by == b"RANK":
            self.ranks = (to_int(self.start), to_int(self.stop))
            return
        lo_raw, hi_raw = (self.stop, self.start) if self.reverse else (self.start, self.stop)
        if self.by == b"SCORE":
            self.scores = (ScoreBound.parse(lo_raw), ScoreBound.parse(hi_raw))
        else:
            self.lex = (LexBound.parse(lo_raw), LexBound.parse(hi_raw))

    def run(self, z: ZSet) -> list[tuple[bytes, float]]:
        if self.scores is not None:
            lo, hi = self.scores
            return z.score_range(lo, hi, self.reverse, self.offset, self.count)
        if self.lex is not None:
            llo, lhi = self.lex
            return z.lex_range(llo, lhi, self.reverse, self.offset, self.count)
        return z.rank_range(self.ranks[0], self.ranks[1], self.reverse)


def parse_range(
    args: list[bytes],
    at: int,
    by: bytes = b"RANK",
    reverse: bool = False,
    allow_by: bool = True,
    allow_scores: bool = True,
) -> RangeQuery:
    """``start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`` from args[at]:
    options first, then the range, as Redis reads them."""
    q = RangeQuery(by, args[at], args[at + 1], reverse)
    i = at + 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"WITHSCORES" and allow_scores:
            q.with_scores = True
        elif opt == b"LIMIT" and i + 2 < len(args):
            q.offset, q.count = to_int(args[i + 1]), to_int(args[i + 2])
            q.limited = True
            i += 2
        elif allow_by and opt in (b"BYSCORE", b"BYLEX") and q.by == b"RANK":  # once
            q.by = b"SCORE" if opt == b"BYSCORE" else b"LEX"
        elif allow_by and opt == b"REV" and not q.reverse:
            q.reverse = True
        else:
            raise syntax_error()
        i += 1
    if q.limited and q.count != -1 and q.by == b"RANK":  # Redis: a count of -1 is no LIMIT
        raise ReplyError(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    if q.with_scores and q.by == b"LEX":
        raise ReplyError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    q.parse_bounds()
    return q


def _range_reply(c: Client, key: bytes, q: RangeQuery) -> object:
    return flat(q.run(ZSet(c.db, key, for_read=True)), q.with_scores)


@handler("zrange")
def zrange(c: Client, args: list[bytes]) -> object:
    return _range_reply(c, args[1], parse_range(args, 2))


@handler("zrevrange")
def zrevrange(c: Client, args: list[bytes]) -> object:
    return _range_reply(c, args[1], parse_range(args, 2, reverse=True, allow_by=False))


@handler("zrangebyscore")
def zrangebyscore(c: Client, args: list[bytes]) -> object:
    return _range_reply(c, args[1], parse_range(args, 2, b"SCORE", allow_by=False))


@handler("zrevrangebyscore")
def zrevrangebyscore(c: Client, args: list[bytes]) -> object:
    return _range_reply(c, args[1], parse_range(args, 2, b"SCORE", True, allow_by=False))


@handler("zrangebylex")
def zrangebylex(c: Client, args: list[bytes]) -> object:
    q = parse_range(args, 2, b"LEX", allow_by=False, allow_scores=False)
    return _range_reply(c, args[1], q)


@handler("zrevrangebylex")
def zrevrangebylex(c: Client, args: list[bytes]) -> object:
    q = parse_range(args, 2, b"LEX", True, allow_by=False, allow_scores=False)
    return _range_reply(c, args[1], q)


@handler("zrangestore")
def zrangestore(c: Client, args: list[bytes]) -> object:
    q = parse_range(args, 3, allow_scores=False)
    items = q.run(ZSet(c.db, args[2], for_read=True))
    store(c, args[1], items, "zrangestore")
    return len(items)


def store(c: Client, key: bytes, items: list[tuple[bytes, float]], event: str) -> None:
    """Overwrite ``key`` (whatever its type) with a sorted set of ``items``, announced as
    ``event`` (``del`` when an empty result removed the key)."""
    mkey, record = c.db.read(key)
    col = Collection(c.server.keyspace, mkey, record, ZSET_TYPE)
    members: list[tuple[bytes, bytes]] = []
    for member, score in items:
        encoded = encode_score(score)
        members.append((MEMBER + member, encoded))
        members.append((SCORE + encoded + member, b""))
    col.replace_with(members, size=len(items))
    notify_stored(c, ZSET, event, key, bool(items), record is not None)


def _remove_items(z: ZSet, items: list[tuple[bytes, float]]) -> int:
    for member, score in items:
        z.remove(member, score)
    if items:
        z.save()
    return len(items)


def _remove_range(c: Client, args: list[bytes], z: ZSet, items: list[tuple[bytes, float]]) -> int:
    removed = _remove_items(z, items)
    if removed:
        event = args[0].decode("latin-1").lower()
        notify_emptied(c, ZSET, event, args[1], not z.col.exists)
    return removed


@handler("zremrangebyrank")
def zremrangebyrank(c: Client, args: list[bytes]) -> object:
    start, stop = to_int(args[2]), to_int(args[3])
    z = ZSet(c.db, args[1])
    return _remove_range(c, args, z, z.rank_range(start, stop, False))


@handler("zremrangebyscore")
def zremrangebyscore(c: Client, args: list[bytes]) -> object:
    lo, hi = ScoreBound.parse(args[2]), ScoreBound.parse(args[3])
    z = ZSet(c.db, args[1])
    return _remove_range(c, args, z, z.score_range(lo, hi, False))


@handler("zremrangebylex")
def zremrangebylex(c: Client, args: list[bytes]) -> object:
    lo, hi = LexBound.parse(args[2]), LexBound.parse(args[3])
    z = ZSet(c.db, args[1])
    return _remove_range(c, args, z, z.lex_range(lo, hi, False))


# --- popping ----------------------------------------------------------------------------------


def pop(c: Client, key: bytes, z: ZSet, count: int, highest: bool) -> list[tuple[bytes, float]]:
    """ZPOPMIN/ZPOPMAX and the blocking and multi-key pops: remove up to ``count`` members
    from one end, with Redis's events (zpopmin or zpopmax, then del if it emptied)."""
    items = z.pop(count, highest)
    if items:
        notify_emptied(c, ZSET, "zpopmax" if highest else "zpopmin", key, not z.col.exists)
    return items


def _pop_command(c: Client, args: list[bytes], highest: bool) -> object:
    if len(args) > 3:
        raise syntax_error()
    if len(args) == 2:  # one member: a flat [member, score] in RESP3 too
        items = pop(c, args[1], ZSet(c.db, args[1]), 1, highest)
        return [part for m, s in items for part in (m, Double(s))]
    count = to_positive(args[2])
    return flat(pop(c, args[1], ZSet(c.db, args[1]), count, highest), True)


@handler("zpopmin")
def zpopmin(c: Client, args: list[bytes]) -> object:
    return _pop_command(c, args, highest=False)


@handler("zpopmax")
def zpopmax(c: Client, args: list[bytes]) -> object:
    return _pop_command(c, args, highest=True)


def parse_zmpop(args: list[bytes], at: int) -> tuple[list[bytes], bool, int]:
    """``numkeys key... MIN|MAX [COUNT n]``: (keys, highest first, count)."""
    return parse_multi_pop(args, at, (b"MIN", b"MAX"))


def mpop(c: Client, keys: list[bytes], highest: bool, count: int) -> list[object] | None:
    found = first_nonempty(c, keys, ZSet)
    if found is None:
        return None
    key, z = found
    return [key, [[m, Double(s)] for m, s in pop(c, key, z, count, highest)]]


@handler("zmpop")
def zmpop(c: Client, args: list[bytes]) -> object:
    keys, highest, count = parse_zmpop(args, 1)
    result = mpop(c, keys, highest, count)
    return NIL_ARRAY if result is None else result


def _bzpop(c: Client, args: list[bytes], highest: bool) -> object:
    timeout = parse_timeout(args[-1])
    keys = args[1:-1]
    found = first_nonempty(c, keys, ZSet)
    if found is None:
        raise Block(c, keys, timeout, ZSET_TYPE, lambda key: [args[0], key, args[-1]])
    key, z = found
    member, score = pop(c, key, z, 1, highest)[0]
    return [key, member, Double(score)]


@handler("bzpopmin")
def bzpopmin(c: Client, args: list[bytes]) -> object:
    return _bzpop(c, args, highest=False)


@handler("bzpopmax")
def bzpopmax(c: Client, args: list[bytes]) -> object:
    return _bzpop(c, args, highest=True)


@handler("bzmpop")
def bzmpop(c: Client, args: list[bytes]) -> object:
    timeout = parse_timeout(args[1])
    keys, highest, count = parse_zmpop(args, 2)
    result = mpop(c, keys, highest, count)
    if result is None:
        raise Block(c, keys, timeout, ZSET_TYPE, one_key_mpop(args, len(keys)))
    return result


@handler("zrandmember")
def zrandmember(c: Client, args: list[bytes]) -> object:
    count = parse_count(args[2], pairs=False) if len(args) >= 3 else None
    if len(args) > 4 or (len(args) == 4 and args[3].upper() != b"WITHSCORES"):
        raise syntax_error()
    with_scores = len(args) == 4
    if with_scores:
        count = parse_count(args[2], pairs=True)
    z = ZSet(c.db, args[1], for_read=True)
    col = z.col
    if count is None:
        if not col.exists:
            return NIL
        return random_member(_MembersView(col))[0]
    if count == 0 or not col.exists:
        return []
    return sample_reply(c, _MembersView(col), count, with_scores, decode_score)


class _MembersView:
    """The ``m`` sub-keys of a sorted set, shaped like a collection for random picks."""

    def __init__(self, col: Collection) -> None:
        self.col = col

    def items(self, start: bytes = b"", reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.col.items(start, reverse, space=MEMBER)

    def last(self) -> tuple[bytes, bytes] | None:
        return self.col.last(space=MEMBER)

    def first(self, start: bytes = b"") -> tuple[bytes, bytes] | None:
        return self.col.first(start, space=MEMBER)

    @property
    def size(self) -> int:
        return self.col.size


@handler("zscan")
def zscan(c: Client, args: list[bytes]) -> object:
    return scan_collection(
        c,
        lambda: ZSet(c.db, args[1], for_read=True).col,
        args,
        2,
        pairs=True,
        space=MEMBER,
        value=lambda v: format_score(decode_score(v)),
    )


# --- combining --------------------------------------------------------------------------------


def _scores_of(c: Client, key: bytes) -> dict[bytes, float]:
    """A sorted set's members and scores; a plain set counts as scores of 1 (as in Redis).
    (The key was looked up, and counted as a hit or a miss, by ``combine_keys``.)"""
    record = c.db.read(key)[1]
    if record is None:
        return {}
    kind = kf.rtype(record)
    if kind == kf.TYPE_SET:
        col = Collection.open(c.db, key, kf.TYPE_SET)
        return dict.fromkeys(col.members(), 1.0)
    return {m: s for m, s in ZSet(c.db, key).ordered()}


@dataclass
class Combine:
    keys: list[bytes]
    weights: list[float]
    aggregate: bytes = b"SUM"
    with_scores: bool = False
    limit: int = 0


def combine_keys(c: Client, args: list[bytes], at: int, name: str) -> list[bytes]:
    """The input keys after ``numkeys`` at ``args[at]``, each a sorted set, a set or missing
    (checked before any option is read, as Redis does)."""
    numkeys = to_int(args[at])
    if numkeys <= 0:
        raise ReplyError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - at - 1:
        raise syntax_error()
    keys = args[at + 1 : at + 1 + numkeys]
    for key in keys:
        record = c.db.lookup(key)
        if record is not None and kf.rtype(record) not in (kf.TYPE_ZSET, kf.TYPE_SET):
            raise WrongType()
    return keys


def parse_combine(
    c: Client,
    args: list[bytes],
    at: int,
    name: str,
    allow_scores: bool,
    allow_weights: bool = True,
) -> Combine:
    keys = combine_keys(c, args, at, name)
    numkeys = len(keys)
    spec = Combine(keys, [1.0] * numkeys)
    i = at + 1 + numkeys
    while i < len(args):
        opt = args[i].upper()
        if opt == b"WEIGHTS" and allow_weights and i + numkeys < len(args):
            spec.weights = [
                parse_score(w, "ERR weight value is not a float")
                for w in args[i + 1 : i + 1 + numkeys]
            ]
            i += numkeys + 1
        elif opt == b"AGGREGATE" and allow_weights and i + 1 < len(args):
            spec.aggregate = args[i + 1].upper()
            if spec.aggregate not in (b"SUM", b"MIN", b"MAX"):
                raise syntax_error()
            i += 2
        elif opt == b"WITHSCORES" and allow_scores:
            spec.with_scores = True
            i += 1
        else:
            raise syntax_error()
    return spec


def _aggregate(a: float, b: float, how: bytes) -> float:
    if how == b"MIN":
        return min(a, b)
    if how == b"MAX":
        return max(a, b)
    total = a + b
    return 0.0 if math.isnan(total) else total  # inf + -inf is 0 in Redis


def combine(c: Client, spec: Combine, op: str) -> list[tuple[bytes, float]]:
    inputs = [_scores_of(c, k) for k in spec.keys]
    result: dict[bytes, float] = {}
    if op == "diff":
        first = inputs[0]
        rest = set().union(*inputs[1:]) if len(inputs) > 1 else set()
        result = {m: s for m, s in first.items() if m not in rest}
    else:
        for n, (scores, weight) in enumerate(zip(inputs, spec.weights, strict=True)):
            weighted = {m: _weigh(s, weight) for m, s in scores.items()}
            if op == "inter":
                if n == 0:
                    result = weighted
                else:
                    result = {
                        m: _aggregate(result[m], s, spec.aggregate)
                        for m, s in weighted.items()
                        if m in result
                    }
            else:
                for m, s in weighted.items():
                    result[m] = _aggregate(result[m], s, spec.aggregate) if m in result else s
    return sorted(result.items(), key=lambda item: (item[1], item[0]))


def _weigh(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if math.isnan(value) else value


def _combine_reply(c: Client, args: list[bytes], op: str) -> object:
    spec = parse_combine(c, args, 1, args[0].decode("latin-1").lower(), True, op != "diff")
    return flat(combine(c, spec, op), spec.with_scores)


def _combine_store(c: Client, args: list[bytes], op: str) -> object:
    spec = parse_combine(c, args, 2, args[0].decode("latin-1").lower(), False, op != "diff")
    items = combine(c, spec, op)
    store(c, args[1], items, args[0].decode("latin-1").lower())
    return len(items)


_COMBINE_OPS = {b"zunion": "union", b"zinter": "inter", b"zdiff": "diff"}


@handler("zunion", "zinter", "zdiff")
def zcombine(c: Client, args: list[bytes]) -> object:
    return _combine_reply(c, args, _COMBINE_OPS[args[0].lower()])


@handler("zunionstore", "zinterstore", "zdiffstore")
def zcombinestore(c: Client, args: list[bytes]) -> object:
    return _combine_store(c, args, _COMBINE_OPS[args[0].lower()[:-5]])


@handler("zintercard")
def zintercard(c: Client, args: list[bytes]) -> object:
    keys = combine_keys(c, args, 1, "zintercard")
    limit = parse_limit(args[2 + len(keys) :])
    spec = Combine(list(keys), [1.0] * len(keys))
    size = len(combine(c, spec, "inter"))
    return min(size, limit) if limit else size
