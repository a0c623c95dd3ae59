"""Random picks of one member in a few seeks (SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER
without a count; the C lane's SPOP through ``spop_pick``). A storage rule: commands/sampling.py
and the lane both ask it, so it lives below both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from .collections import Members
from .hints import remember

if TYPE_CHECKING:
    from .engine import Engine


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
        digits = _Digits(first, last)
        remember(_digits_of, (first, last), digits, _DIGITS_KEPT)
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
        lo, hi, end, base, width = self.lo, self.hi, self.end, self.base, self.width
        value = 0
        tail = member[len(self.prefix) : len(self.prefix) + width]
        for n, c in enumerate(tail, 1):
            # A byte outside [lo, hi] ends the number: above hi, the member comes after every
            # member with the same bytes before it, so it takes the greatest number they can
            # have (read as hi, b'a\xff' came before b'a\xfe\x00' for hi = 0xfe); below lo,
            # the least (as if the member ended here).
            if c > hi:
                return (value * base + base) * base ** (width - n) - 1
            if c < lo:
                return value * base ** (width - n + 1)
            value = value * base + end + c - lo
        return value * base ** (width - len(tail))

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
