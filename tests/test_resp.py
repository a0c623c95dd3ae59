"""The RESP codec on bytes alone (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stack.core.resp import (
    NIL,
    Limits,
    ProtocolError,
    Raw,
    ReplyError,
    RequestParser,
    Status,
    encode,
    encode_command,
    split_args,
    strict_int,
)


def parse_all(data: bytes, **kw: object) -> list[list[bytes]]:
    p = RequestParser(Limits(**kw))  # type: ignore[arg-type]
    p.feed(data)
    return p.parse()


def test_multibulk_and_pipeline() -> None:
    data = encode_command(["SET", "k", "v"]) + encode_command(["GET", "k"])
    assert parse_all(data) == [[b"SET", b"k", b"v"], [b"GET", b"k"]]


def test_byte_at_a_time_gives_the_same_commands() -> None:
    data = encode_command(["SET", "key", "x" * 300]) + b"PING\r\n" + encode_command(["GET", "k"])
    p = RequestParser()
    got: list[list[bytes]] = []
    for i in range(len(data)):
        p.feed(data[i : i + 1])
        got += p.parse()
    assert got == [[b"SET", b"key", b"x" * 300], [b"PING"], [b"GET", b"k"]]
    assert p.buffered() == 0


def test_large_bulk_in_chunks_is_joined_once() -> None:
    value = b"v" * (3 * 1024 * 1024)
    data = encode_command([b"SET", b"k", value])
    p = RequestParser()
    out: list[list[bytes]] = []
    for i in range(0, len(data), 65536):
        p.feed(data[i : i + 65536])
        out += p.parse()
    assert out == [[b"SET", b"k", value]]


@pytest.mark.parametrize("how", ["parse", "consumed"])
def test_a_finished_command_leaves_no_need_behind(how: str) -> None:
    """What a long command needed while it arrived must not hold back a later, shorter one
    that arrives in pieces after commands taken one at a time (parse(1), or a caller that
    consumes commands itself as the proxy's C router does): once a command is taken, the bytes
    it needed say nothing about the next (a client hung with its request in the buffer)."""
    p = RequestParser()
    long_set = encode_command(["SET", "k", "v" * 500])
    p.feed(long_set[:100])
    assert p.parse() == []
    p.feed(long_set[100:])
    assert p.parse() == [[b"SET", b"k", b"v" * 500]]
    get = encode_command(["GET", "k"])
    p.feed(encode_command(["PING"]) + get[:-3])
    if how == "parse":
        assert p.parse(1) == [[b"PING"]]
    else:
        head = p.unparsed()
        assert head is not None
        p.consumed(head[1] + len(encode_command(["PING"])))
    p.feed(get[-3:])
    assert p.parse(1) == [[b"GET", b"k"]]


@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=5), max_size=8),
       st.integers(1, 50))
def test_roundtrip_any_split(commands: list[list[bytes]], step: int) -> None:
    data = b"".join(encode_command(c) for c in commands)
    p = RequestParser()
    out: list[list[bytes]] = []
    for i in range(0, len(data), step):
        p.feed(data[i : i + step])
        out += p.parse()
    assert out == commands


def test_inline_commands() -> None:
    assert parse_all(b"set a b\r\nget a\n") == [[b"set", b"a", b"b"], [b"get", b"a"]]
    assert parse_all(b"\r\n\r\n  \r\nping\r\n") == [[b"ping"]]


def test_split_args_quotes_and_escapes() -> None:
    assert split_args(b'set "a b" \'c d\'') == [b"set", b"a b", b"c d"]
    assert split_args(b'"\\x41\\n\\t\\"q"') == [b"A\n\t\"q"]
    assert split_args(b"'it\\'s'") == [b"it's"]
    assert split_args(b'a"b c"') == [b"ab c"]
    assert split_args(b'"" x') == [b"", b"x"]
    for bad in (b'"abc', b"'abc", b'"a"b', b"'a'b"):
        with pytest.raises(ProtocolError):
            split_args(bad)


def test_errors_after_good_commands_arrive_next_call() -> None:
    p = RequestParser()
    p.feed(b"PING\r\n*1\r\nfoo\r\n")
    assert p.parse() == [[b"PING"]]
    with pytest.raises(ProtocolError) as e:
        p.parse()
    assert e.value.reply == "Protocol error: expected '$', got 'f'"


def test_unauthenticated_limits() -> None:
    p = RequestParser()
    p.authenticated = False
    p.feed(b"*11\r\n")
    with pytest.raises(ProtocolError, match="unauthenticated multibulk length"):
        p.parse(1)


def test_claimed_count_allocates_nothing() -> None:
    p = RequestParser()
    p.feed(b"*2000000000\r\n$3\r\nGET\r\n")
    assert p.parse() == []  # waits for more, without allocating for the claim
    assert p.buffered() < 100


def test_strict_int() -> None:
    assert strict_int(b"0") == 0
    assert strict_int(b"-5") == -5
    assert strict_int(b"9223372036854775807") == 2**63 - 1
    for bad in (b"", b"01", b"+1", b" 1", b"-0", b"1 ", b"9223372036854775808", b"1e3", b"0x1"):
        assert strict_int(bad) is None, bad


def test_encode() -> None:
    assert encode(b"x") == b"$1\r\nx\r\n"
    assert encode(None) == NIL
    assert encode(5) == b":5\r\n"
    assert encode(-1) == b":-1\r\n"
    assert encode(Status("OK")) == b"+OK\r\n"
    assert encode([b"a", [1, None]]) == b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n"
    assert encode(Raw(b"+X\r\n")) == b"+X\r\n"
    assert encode(ReplyError("ERR bad\r\nline")) == b"-ERR bad  line\r\n"
    assert encode(1.5) == b"$3\r\n1.5\r\n"
    assert encode(float("inf")) == b"$3\r\ninf\r\n"
