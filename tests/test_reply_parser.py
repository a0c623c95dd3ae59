"""The reply parser on bytes alone: every type, every split point, bounds, and linear work."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.core.reply_parser import INCOMPLETE, BigNumber, ErrorReply, ReplyParser
from stack.core.resp import Double, Map, ProtocolError, Push, SetReply, Status, Verbatim


def encode3(value: object) -> bytes:
    """A RESP3 encoder for the tests, independent of the server's (it covers every type)."""
    if value is None:
        return b"_\r\n"
    if isinstance(value, bool):
        return b"#t\r\n" if value else b"#f\r\n"
    if isinstance(value, BigNumber):
        return b"(%d\r\n" % value
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, Double):
        text = "inf" if value == math.inf else "-inf" if value == -math.inf else repr(float(value))
        return b",%s\r\n" % text.encode()
    if isinstance(value, ErrorReply):
        return b"-%s\r\n" % value.encode()
    if isinstance(value, Status):
        return b"+%s\r\n" % value.encode()
    if isinstance(value, Verbatim):
        return b"=%d\r\ntxt:%b\r\n" % (len(value) + 4, value)
    if isinstance(value, bytes):
        return b"$%d\r\n%b\r\n" % (len(value), value)
    if isinstance(value, Map):
        return b"%%%d\r\n" % (len(value) // 2) + b"".join(encode3(v) for v in value)
    for cls, mark in ((SetReply, b"~"), (Push, b">"), (list, b"*")):
        if isinstance(value, cls):
            return mark + b"%d\r\n" % len(value) + b"".join(encode3(v) for v in value)
    raise TypeError(type(value))


def parse_whole(data: bytes, **kw: object) -> list[object]:
    p = ReplyParser(**kw)  # type: ignore[arg-type]
    p.feed(data)
    return list(p)


def parse_split(data: bytes, cuts: list[int], **kw: object) -> list[object]:
    p = ReplyParser(**kw)  # type: ignore[arg-type]
    out: list[object] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        p.feed(data[start:cut])
        start = cut
        out.extend(p)
    assert p.buffered() == 0
    return out


EVERY_TYPE = (
    b"+OK\r\n-ERR bad thing\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
    b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n+b\r\n$-1\r\n"
    b"_\r\n,3.25\r\n,inf\r\n,-inf\r\n#t\r\n#f\r\n(123456789012345678901234567890\r\n"
    b"!10\r\nSYNTAX bad\r\n=9\r\ntxt:hello\r\n%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*1\r\n:2\r\n"
    b"~2\r\n+x\r\n+y\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    b"|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n"
    b"$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n"
    b"*?\r\n:1\r\n*?\r\n:2\r\n.\r\n.\r\n%?\r\n+k\r\n+v\r\n.\r\n"
    b"*2\r\n|1\r\n+a\r\n+b\r\n:7\r\n:8\r\n"
)
EVERY_VALUE: list[object] = [
    "OK",
    "ERR bad thing",
    -42,
    b"hello",
    b"",
    None,
    None,
    [],
    [1, [b"a", "b"], None],
    None,
    3.25,
    math.inf,
    -math.inf,
    True,
    False,
    123456789012345678901234567890,
    "SYNTAX bad",
    b"hello",
    Map(["a", 1, b"b", [2]]),
    SetReply(["x", "y"]),
    Push([b"message", b"ch", b"hi"]),
    b"val",
    b"Hello world",
    [1, [2]],
    Map(["k", "v"]),
    [7, 8],
]


def test_every_type() -> None:
    values = parse_whole(EVERY_TYPE)
    assert values == EVERY_VALUE
    kinds = [type(v) for v in values]
    assert kinds[:2] == [Status, ErrorReply] and kinds[15] is BigNumber
    assert type(values[10]) is Double and type(values[16]) is ErrorReply
    assert type(values[17]) is Verbatim and type(values[18]) is Map
    assert type(values[19]) is SetReply and type(values[20]) is Push
    assert values[1].code == "ERR"  # type: ignore[attr-defined]


def test_every_split_point() -> None:
    for cut in range(len(EVERY_TYPE) + 1):
        assert parse_split(EVERY_TYPE, [cut]) == EVERY_VALUE, cut
    assert parse_split(EVERY_TYPE, list(range(len(EVERY_TYPE)))) == EVERY_VALUE


def test_raw_mode_returns_each_reply_as_it_came() -> None:
    whole = parse_whole(EVERY_TYPE, raw=True)
    assert b"".join(whole) == EVERY_TYPE  # type: ignore[arg-type]
    assert len(whole) == len(EVERY_VALUE)
    assert whole[21] == b"|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n"  # attributes stay with it
    for cut in range(len(EVERY_TYPE) + 1):
        assert parse_split(EVERY_TYPE, [cut], raw=True) == whole, cut
    assert parse_split(EVERY_TYPE, list(range(0, len(EVERY_TYPE), 3)), raw=True) == whole


def test_attributes_are_kept_beside_the_reply() -> None:
    p = ReplyParser()
    p.feed(b"|1\r\n+ttl\r\n:3600\r\n$3\r\nval\r\n+next\r\n")
    assert p.get() == b"val"
    assert p.attributes == [Map(["ttl", 3600])]
    assert p.get() == "next"
    assert p.attributes == []


def test_incomplete_then_complete() -> None:
    p = ReplyParser()
    assert p.get() is INCOMPLETE
    p.feed(b"*2\r\n$3\r\nfo")
    assert p.get() is INCOMPLETE
    p.feed(b"o\r\n:")
    assert p.get() is INCOMPLETE
    p.feed(b"5\r\n")
    assert p.get() == [b"foo", 5]
    assert p.get() is INCOMPLETE


@pytest.mark.parametrize(
    "data",
    [
        b"$600\r\n" + b"x" * 600 + b"\r\n",  # over max_bulk below
        b"*2000\r\n",  # over max_count below
        b"$abc\r\n",
        b"$-2\r\n",
        b"*-2\r\n",
        b"%-1\r\n",
        b":12a\r\n",
        b":\r\n",
        b"$3\r\nfooXY",  # no CRLF after the bulk
        b"?what\r\n",
        b"#x\r\n",
        b",1.5x\r\n",
        b",1 5\r\n",
        b"(12x\r\n",
        b"=3\r\ntxt\r\n",
        b";3\r\nabc\r\n",
        b".\r\n",
        b"$?\r\n+OK\r\n",
        b"|?\r\n",
        b"_x\r\n",
        b"*1\r\n" * 10 + b":1\r\n",  # deeper than max_depth below
        b"+" + b"x" * 2000,  # a header line over max_line without CRLF
        b":" + b"1" * 30 + b"\r\n",  # more than 19 digits
    ],
)
def test_hostile_replies_are_refused(data: bytes) -> None:
    p = ReplyParser(max_bulk=500, max_count=1000, max_depth=8, max_line=1024)
    p.feed(data)
    with pytest.raises(ProtocolError):
        p.get()


def test_claimed_count_allocates_nothing() -> None:
    p = ReplyParser()
    p.feed(b"*2000000000\r\n:1\r\n")
    assert p.get() is INCOMPLETE
    assert len(p._stack[0].items) == 1  # grows as items arrive


def test_a_long_bulk_in_small_pieces_is_joined_once() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = b"$%d\r\n%b\r\n" % (len(value), value)
    p = ReplyParser()
    p.feed(data[:100])
    assert p.get() is INCOMPLETE
    for i in range(100, len(data), 4096):
        p.feed(data[i : i + 4096])
        assert len(p._buf) < 5000  # pieces wait in a list: nothing re-copied per piece
    assert p.get() == value


def _array_of(n: int) -> bytes:
    return b"*%d\r\n" % n + b"".join(b"$10\r\nelement%03d\r\n" % (i % 1000) for i in range(n))


@pytest.mark.parametrize("size", [20_000, 80_000])
def test_big_array_in_16k_pieces_is_read_once(size: int) -> None:
    """Linear in the bytes: every element header is parsed exactly once, however the array is
    cut (the old parser started over from the first element on every piece)."""
    data = _array_of(size)
    p = ReplyParser()
    replies = []
    for i in range(0, len(data), 16384):
        p.feed(data[i : i + 16384])
        replies.extend(p)
    assert len(replies) == 1 and len(replies[0]) == size  # type: ignore[arg-type]
    assert replies[0][-1] == b"element%03d" % ((size - 1) % 1000)  # type: ignore[index]
    assert p.headers == size + 1


# -- generated replies ----------------------------------------------------------------------

leaf = st.one_of(
    st.binary(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.builds(BigNumber, st.integers(min_value=-(10**40), max_value=10**40)),
    st.none(),
    st.booleans(),
    st.builds(Double, st.floats(allow_nan=False)),
    st.builds(
        Status,
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=20
        ),
    ),
    st.builds(
        ErrorReply,
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
            min_size=1,
            max_size=20,
        ),
    ),
    st.builds(Verbatim, st.binary(max_size=20)),
)
values = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.builds(SetReply, st.lists(inner, max_size=5)),
        st.builds(Push, st.lists(inner, max_size=5)),
        st.builds(
            lambda kv: Map([x for pair in kv for x in pair]),
            st.lists(st.tuples(inner, inner), max_size=3),
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=5), st.data())
def test_generated_replies_in_any_pieces(replies: list[object], data: st.DataObject) -> None:
    wire = b"".join(encode3(v) for v in replies)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=8))
    assert parse_split(wire, cuts) == replies
    assert parse_split(wire, cuts, raw=True) == [encode3(v) for v in replies]
