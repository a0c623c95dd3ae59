"""Random members (SRANDMEMBER, SPOP, HRANDFIELD, ZRANDMEMBER), with their counts bounded.

A positive count asks for distinct members, so its reply is never larger than the collection. A
negative count asks for that many picks with repetitions: its reply grows with the count alone,
and Redis 7.0 builds it in memory until the machine runs out (``SRANDMEMBER s -2147483648``).
Here such a reply is refused before any work when its expected size is over the client's output
buffer limit (a reply that big would get the client closed anyway); one that fits is encoded
once per distinct member and joined in slices, so memory holds the reply and little else.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from stack.core import errors
from stack.core.resp import Chunks, Double, Pairs, ReplyError, encode, encode_bulk

from ..storage.collections import Members
from .args import INT64_MAX, to_range

if TYPE_CHECKING:
    from ..client import Client
    from ..storage.engine import Engine

PICKS_PER_CHUNK = 1 << 16
FEW_PICKS = 512  # up to this many picks the reply is built as a list, as for other replies


class HasItems(Protocol):
    def items(self) -> Iterator[tuple[bytes, bytes]]: ...


class Seekable(Protocol):
    @property
    def size(self) -> int: ...

    def items(self, start: bytes = b"", reverse: bool = False) -> Iterator[tuple[bytes, bytes]]: ...

    def last(self) -> tuple[bytes, bytes] | None: ...

    def first(self, start: bytes = b"") -> tuple[bytes, bytes] | None: ...


SMALL = 128  # members up to which a pick reads them all (Redis's small encodings' bound)
STEP_ON = 0.125  # chance of going on to the next member, again and again (see random_member)


def random_member(col: Seekable) -> tuple[bytes, bytes]:
    """One random (member, value) of a non-empty collection: uniformly among all of a small
    one (up to ``SMALL`` members), and in a few seeks in a bigger one, whatever its size
    (SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER without a count; reading every member was
    O(N) per call and held the loop ~20 ms for a 25k-member set).

    Members are read as numbers (``_Digits``: in the alphabet their first and last members
    use); a point is drawn uniformly from the first member minus the mean gap between members
    (so the first has a gap of its own) to the last, and the first member at or after it is
    taken, then, with a chance of ``STEP_ON`` each time, the one after it (so a member whose
    number equals the one before it comes out too). Members spread evenly over the alphabet
    (``user:1`` to ``user:99999``) come out about evenly; one after a wide gap comes out more
    often (Redis's own pick is not uniform either: it favours members alone in their hash
    bucket). Read as bytes (base 256), such members made most of the gaps: SPOP emptied a set of
    ``element:<digits>`` from its largest members, and each seek then stepped over the
    tombstones of those before it (20 ms a call)."""
    if col.size <= SMALL:
        items = list(col.items())
        if items:
            return random.choice(items)
    first = col.first()
    if first is None:  # pragma: no cover - a collection of more than SMALL members
        raise LookupError("a pick from an empty collection")
    last = col.last() or first
    if first[0] == last[0]:
        return first
    digits = _digits(first[0], last[0])
    low, high = digits.number(first[0]), digits.number(last[0])
    point = random.randint(low - max(1, (high - low) // max(1, col.size - 1)), high)
    picked = first if point <= low else col.first(digits.key(point)) or last
    while picked[0] != last[0] and random.random() < STEP_ON:
        picked = col.first(picked[0] + b"\0") or last
    return picked


_DIGITS_KEPT = 256  # (first, last) pairs whose _Digits are kept (then all are dropped at once)
_digits_of: dict[tuple[bytes, bytes], _Digits] = {}


def _digits(first: bytes, last: bytes) -> _Digits:
    """``_Digits(first, last)``, made once per pair: successive picks of a collection mostly
    find the same first and last members."""
    digits = _digits_of.get((first, last))
    if digits is None:
        if len(_digits_of) >= _DIGITS_KEPT:
            _digits_of.clear()
        digits = _digits_of[first, last] = _Digits(first, last)
    return digits


class _Digits:
    """Members between two members as numbers, in the order of their bytes (equal numbers for
    some neighbours, never a smaller one for a greater member): after the prefix the two share
    (so every member between them does), a byte is a digit from the least to the greatest byte
    of the members given (a byte below counts as the least, one above as the greatest), and,
    when their lengths differ, 0 is the end of a shorter member."""

    def __init__(self, first: bytes, *others: bytes) -> None:
        last = others[-1]
        n = 0
        while n < min(len(first), len(last)) and first[n] == last[n]:
            n += 1
        self.prefix = first[:n]
        tails = [m[n:] for m in (first, *others)]
        chars = b"".join(tails)
        self.lo, self.hi = min(chars), max(chars)
        self.end = int(len({len(t) for t in tails}) > 1)  # a digit for the end, or none
        self.base = self.hi - self.lo + 1 + self.end
        self.width = max(len(t) for t in tails) + 1  # one more: points between neighbours

    def number(self, member: bytes) -> int:
        lo, hi, end = self.lo, self.hi, self.end
        value = 0
        tail = member[len(self.prefix) : len(self.prefix) + self.width]
        for c in tail:
            value = value * self.base + end + (0 if c < lo else hi - lo if c > hi else c - lo)
        return value * self.base ** (self.width - len(tail))

    def key(self, point: int) -> bytes:
        """The least bytes whose number is ``point`` or more (seek there for the first member
        at or after the point)."""
        digits = []
        for _ in range(self.width):
            point, d = divmod(point, self.base)
            digits.append(d)
        digits.reverse()
        while digits and digits[-1] == 0:  # trailing 0s: a shorter member has the same number
            digits.pop()
        out = bytearray(self.prefix)
        for i, d in enumerate(digits):
            if d < self.end:  # the end here, unless a later digit says more: then the least byte
                if any(digits[i + 1 :]):
                    out.append(0)
                break
            out.append(self.lo + d - self.end)  # a byte below lo comes before: rarely seen
        return bytes(out)


def spop_pick(engine: Engine, base: bytes, size: int) -> bytes:
    """The member SPOP removes from the set whose members start with ``base`` and that holds
    ``size`` of them (``random_member``), its deletion noted (``Engine.note_deletes``, as
    ``Collection.remove`` does): the C lane's SPOP deletes its record and saves the size."""
    member = random_member(Members(engine, base, size))[0]
    engine.note_deletes(base, 1, size - 1)
    return member


def parse_count(raw: bytes, pairs: bool) -> int:
    """A RAND* count: within +-LONG_MAX, and +-LONG_MAX/2 when members come with values
    (Redis 7.0's checks and errors, in its order: the range, then the pairs' range)."""
    count = to_range(raw, -INT64_MAX, INT64_MAX)
    if pairs and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:  # C division: -LONG_MAX/2
        raise ReplyError(errors.OUT_OF_RANGE)
    return count


def random_members(col: HasItems, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` distinct random (member, value) pairs, all of them (shuffled) when the
    collection is smaller. Reads the collection once (O(N))."""
    items = list(col.items())
    if count >= len(items):
        random.shuffle(items)
        return items
    return random.sample(items, count)


def reply_limit(c: Client) -> int:
    """The largest reply a count may ask for: the client's output buffer limit."""
    return c.server.output_limit(c) or int(c.server.config["proto-max-bulk-len"])


def sample_reply(
    c: Client,
    col: HasItems,
    count: int,
    with_values: bool = False,
    convert: Callable[[bytes], object] | None = None,
) -> object:
    """The reply of SRANDMEMBER / HRANDFIELD / ZRANDMEMBER with a count (not 0).

    ``convert`` turns a stored value into its reply value (ZRANDMEMBER's scores)."""
    if count > 0:
        picked = random_members(col, count)
        if not with_values:
            return [member for member, _value in picked]
        return Pairs([(m, convert(v) if convert else v) for m, v in picked])
    picks = -count
    items = list(col.items())
    limit = reply_limit(c)
    if picks * _mean_size(items, with_values) > limit:  # before any pick is made
        raise errors.reply_too_large(limit)
    if picks <= FEW_PICKS:
        chosen = random.choices(items, k=picks)
        if not with_values:
            return [member for member, _value in chosen]
        return Pairs([(m, convert(v) if convert else v) for m, v in chosen])
    encoded = [
        _encode_item(m, convert(v) if convert else v, with_values, c.resp3) for m, v in items
    ]
    header = picks * 2 if with_values and not c.resp3 else picks
    out = Chunks([b"*%d\r\n" % header])
    choices = random.choices
    for done in range(0, picks, PICKS_PER_CHUNK):
        out.append(b"".join(choices(encoded, k=min(PICKS_PER_CHUNK, picks - done))))
    return out


def _mean_size(items: list[tuple[bytes, bytes]], with_values: bool) -> float:
    """The mean size of one pick in the reply, as bulk strings ($len CRLF data CRLF)."""
    total = 0
    for member, value in items:
        total += len(member) + len(str(len(member))) + 5
        if with_values:
            total += len(value) + len(str(len(value))) + 5
    return total / len(items)


def _encode_item(member: bytes, value: object, with_values: bool, resp3: bool) -> bytes:
    if not with_values:
        return encode_bulk(member)
    second = encode(Double(value) if type(value) is float else value, resp3)
    return (b"*2\r\n" if resp3 else b"") + encode_bulk(member) + second
