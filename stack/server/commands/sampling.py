"""Random members (SRANDMEMBER, SPOP, HRANDFIELD, ZRANDMEMBER), with their counts bounded (one
member without a count: ``storage/picks.py``'s ``random_member``).

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

from .args import INT64_MAX, to_range

if TYPE_CHECKING:
    from ..client import Client

PICKS_PER_CHUNK = 1 << 16
FEW_PICKS = 512  # up to this many picks the reply is built as a list, as for other replies


class HasItems(Protocol):
    def items(self) -> Iterator[tuple[bytes, bytes]]: ...


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
