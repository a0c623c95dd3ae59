"""The proxy's C router (``_router.c``) against the Python path it must agree with: the
commands it routes are exactly the ones the core's parser reads, each to its slot's backend,
and the replies it cuts are exactly the careful parser's, wherever the reads are cut."""

from __future__ import annotations

import random
from array import array

import pytest

from stack.core.resp import RequestParser, encode_command
from stack.core.slots import key_slot
from stack.proxy import replies
from stack.proxy.accel import router
from stack.proxy.replies import ReplySplitter
from stack.proxy.routes import NOT_PLAIN
from stack.proxy.rules import FAST

pytestmark = pytest.mark.skipif(router is None, reason="the C router is not built")

COMMANDS = [
    ["GET", "k"], ["SET", "a", "b"], ["get", "{x}y"], ["HSET", "h", "f", "v", "g", "w"],
    ["PING"], ["MGET", "a", "b"], ["GET"], ["SET", "a"], ["LPUSH", "", "1", ""],
    ["ZADD", "{t}c", "0", "h"], ["Get", "kk"], ["MULTI"], ["EXEC"], ["INCR", "n"],
    ["SET", "x" * 40, "y" * 300], ["HELLO", "3"], ["A" * 40, "k"], ["SET", "a\r\nb", "\r\n"],
]  # fmt: skip
REPLIES = [
    b"+OK\r\n", b"-ERR x\r\n", b":12\r\n", b":-3\r\n", b"$3\r\nabc\r\n", b"$0\r\n\r\n",
    b"$-1\r\n", b"*2\r\n$1\r\na\r\n:1\r\n", b"*0\r\n", b"*-1\r\n", b"%1\r\n+a\r\n:2\r\n",
    b"_\r\n", b"#t\r\n", b",1.5\r\n", b"(123\r\n", b"=7\r\ntxt:abc\r\n", b"~1\r\n+x\r\n",
    b">2\r\n+a\r\n+b\r\n", b"*1\r\n*1\r\n*0\r\n", b"$20\r\n" + b"x" * 20 + b"\r\n",
    b"*3\r\n$1\r\n\r\r\n$2\r\n\r\n\r\n:0\r\n", b"|1\r\n+k\r\n+v\r\n+OK\r\n",
    b":9223372036854775807\r\n", b":-12\r\n", b",inf\r\n", b"(-123456789012345678901\r\n",
]  # fmt: skip


def _cuts(rng: random.Random, size: int) -> list[int]:
    return sorted(rng.sample(range(1, size), min(size - 1, rng.randint(0, 5))))


def test_routes_what_the_parser_reads() -> None:
    """Fed in random cuts, C runs + the Python parser one command at a time (as client.py
    does) read the same commands as the parser alone; each run goes where its slots say."""
    assert router is not None
    rng = random.Random(2)
    backends = bytes(rng.choice([0, 1, 1, 0, NOT_PLAIN]) for _ in range(16384))
    for _ in range(3000):
        cmds = [list(rng.choice(COMMANDS)) for _ in range(rng.randint(1, 20))]
        cmds = [[c[0], *(a + str(rng.randint(0, 9)) * (rng.random() < 0.3) for a in c[1:])]
                for c in cmds]  # fmt: skip
        data = (b"PING\r\n" if rng.random() < 0.2 else b"") + b"".join(map(encode_command, cmds))
        calls = array("Q", [0]) * len(FAST.rules)
        ops = array("Q", [0]) * 16384
        parser, got, start = RequestParser(), [], 0
        for cut in [*_cuts(rng, len(data)), len(data)]:
            parser.feed(data[start:cut])
            start = cut
            while True:
                head = parser.unparsed()
                if head is not None:
                    buf, pos = head
                    end, n, idx, order, parts, last = router.route(
                        buf, pos, FAST.names, FAST.arities, backends, calls, ops, 1 << 29, 1 << 20
                    )
                    if n:
                        run = RequestParser()
                        run.feed(buf[pos:end])
                        routed = run.parse()
                        assert len(routed) == n
                        assert FAST.rules[last].name.encode() == routed[-1][0].lower()
                        where = [backends[key_slot(a[1])] for a in routed]
                        assert NOT_PLAIN not in where
                        if order is None:
                            assert set(where) == {idx}
                        else:
                            assert parts is not None and list(order) == where
                            for i, raw in parts.items():
                                assert raw == b"".join(
                                    encode_command(a)
                                    for a, w in zip(routed, where, strict=True)
                                    if w == i
                                )
                        got += routed
                        parser.consumed(end)
                        continue
                one = parser.parse(1)
                if not one:
                    break
                got += one
        whole = RequestParser()
        whole.feed(data)
        expected = whole.parse()
        assert got == expected
        assert sum(calls) == sum(ops) <= len(expected)


def test_counts_calls_and_slot_ops() -> None:
    assert router is not None
    calls = array("Q", [0]) * len(FAST.rules)
    ops = array("Q", [0]) * 16384
    data = encode_command(["GET", "k"]) * 3 + encode_command(["set", "k", "v"])
    end, n, idx, order, parts, last = router.route(
        data, 0, FAST.names, FAST.arities, bytes(16384), calls, ops, 1 << 29, 1 << 20
    )
    assert (end, n, idx, order, parts, last) == (len(data), 4, 0, None, None, FAST.names[b"set"])
    assert calls[FAST.names[b"get"]] == 3 and calls[FAST.names[b"set"]] == 1
    assert ops[key_slot(b"k")] == 4


@pytest.mark.parametrize("use_c", [True, False], ids=["c", "python"])
def test_cuts_replies_as_the_careful_parser(use_c: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "_router", router if use_c else None)
    rng = random.Random(1)
    for _ in range(5000):
        items = [rng.choice(REPLIES) for _ in range(rng.randint(1, 12))]
        data = b"".join(items)
        splitter, out, start = ReplySplitter(), [], 0
        for cut in [*_cuts(rng, len(data)), len(data)]:
            out += splitter.feed(data[start:cut])
            start = cut
        assert out == items


def test_a_big_reply_in_many_reads_goes_to_the_careful_parser() -> None:
    value = b"v" * 1_000_000
    data = b"$%d\r\n%b\r\n+OK\r\n" % (len(value), value)
    splitter = ReplySplitter()
    out: list[bytes] = []
    for i in range(0, len(data), 4096):
        out += splitter.feed(data[i : i + 4096])
        assert len(splitter.rest) <= ReplySplitter.REST_MAX
    assert out == [data[:-5], b"+OK\r\n"]


def test_bad_replies_are_named_by_the_careful_parser() -> None:
    from stack.core.resp import ProtocolError

    for bad in (
        b"$03\r\nabc\r\n", b"?x\r\n", b":1x\r\n", b"$3\r\nabcd\r\n", b"=1\r\nx\r\n",
        b",abc\r\n", b",\r\n", b"(12x\r\n", b"(\r\n", b":007\r\n", b":-0\r\n",
        b":" + b"9" * 26 + b"\r\n", b"*1\r\n:01\r\n", b"%1\r\n+a\r\n,x\r\n",
    ):  # fmt: skip
        with pytest.raises(ProtocolError):
            ReplySplitter().feed(b"+OK\r\n" + bad)
