"""The proxy's pure parts, with bytes and values alone: the reply splitter, the rule table,
the merge of split commands, the latency histogram, the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.core.commands import TABLE
from stack.core.reply_parser import ReplyParser
from stack.core.resp import ProtocolError
from stack.proxy.config import ConfigError, ProxyConfig, from_mapping, load_file
from stack.proxy.fanout import merge
from stack.proxy.replies import ReplySplitter, split_aggregate
from stack.proxy.rules import ALL, DEFAULT, DENY, KEYED, LOCAL, SPLIT, all_rules, lookup
from stack.proxy.stats import Histogram, bucket_floor, bucket_of

from .test_key_specs import generate, runnable
from .test_reply_parser import encode3, values


def split_in_pieces(wire: bytes, cuts: list[int]) -> list[bytes]:
    splitter = ReplySplitter()
    out: list[bytes] = []
    start = 0
    for cut in sorted({*cuts, len(wire)}):
        out += splitter.feed(wire[start:cut])
        start = cut
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=8), st.data())
def test_splitter_cuts_replies_as_they_came(replies: list[object], data: st.DataObject) -> None:
    wire = b"".join(encode3(v) for v in replies)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=8))
    assert split_in_pieces(wire, cuts) == [encode3(v) for v in replies]


def test_splitter_at_every_split_point() -> None:
    wire = b"+OK\r\n:-12\r\n$3\r\na\r\n\r\n$-1\r\n-ERR x\r\n*2\r\n$1\r\na\r\n:1\r\n$0\r\n\r\n"
    expected = [
        b"+OK\r\n", b":-12\r\n", b"$3\r\na\r\n\r\n", b"$-1\r\n", b"-ERR x\r\n",
        b"*2\r\n$1\r\na\r\n:1\r\n", b"$0\r\n\r\n",
    ]  # fmt: skip
    for i in range(len(wire) + 1):
        for j in range(i, len(wire) + 1):
            assert split_in_pieces(wire, [i, j]) == expected


@pytest.mark.parametrize(
    "bad", [b"$3\r\nabcd\r\n", b":12x\r\n", b"$-5\r\n", b"?\r\n", b"*1\r\n$2\r\nab!!"]
)
def test_splitter_refuses_what_is_not_resp(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        split_in_pieces(bad, [])


def test_splitter_agrees_with_the_reply_parser_on_big_bulks() -> None:
    value = b"x" * 100_000
    wire = b"$%d\r\n%b\r\n" % (len(value), value) * 3
    pieces = split_in_pieces(wire, list(range(0, len(wire), 4096)))
    parser = ReplyParser(raw=True)
    parser.feed(wire)
    assert pieces == list(parser)


def test_split_aggregate() -> None:
    assert split_aggregate(b"*3\r\n$1\r\na\r\n$-1\r\n:3\r\n") == [
        b"$1\r\na\r\n",
        b"$-1\r\n",
        b":3\r\n",
    ]
    assert split_aggregate(b"*0\r\n") == [] and split_aggregate(b"*-1\r\n") == []
    assert split_aggregate(b"%1\r\n+k\r\n+v\r\n") == [b"+k\r\n", b"+v\r\n"]
    with pytest.raises(ProtocolError):
        split_aggregate(b"$1\r\na\r\n")


# -- rules --------------------------------------------------------------------------------------


def test_every_command_has_a_rule() -> None:
    names = {r.name for r in all_rules()}
    for spec in TABLE.all_specs():
        assert spec.name in names


def test_keyed_commands_route_by_their_keys() -> None:
    for spec in runnable(TABLE):
        rule = lookup(spec.name.split("|")[0].encode())
        assert rule is not None
        if rule.container:
            rule = rule.subs[spec.name.split("|")[1].encode()]
        if spec.key_specs and rule.kind not in (SPLIT, LOCAL):
            assert rule.kind == KEYED, spec.name
        if not spec.key_specs:
            assert rule.kind in (LOCAL, DEFAULT, ALL, DENY), spec.name


def test_the_inline_path_takes_only_one_key_at_argument_one() -> None:
    """The inline path routes by argument 1 without the key-spec walk: it must agree with the
    core's one keys-of-a-call function on every call the argument trees describe."""
    singles = 0
    for spec in runnable(TABLE):
        rule = lookup(spec.name.split("|")[0].encode())
        assert rule is not None
        if rule.container:
            continue
        call, _ = generate(spec)
        if not rule.single:
            continue
        singles += 1
        refs = TABLE.keys(call)
        assert [r.pos for r in refs] in ([1], []), (spec.name, call, refs)
        assert [r.pos for r in TABLE.keys([call[0], b"k"] + [b"x"] * 6)] in ([1], [])
    assert singles > 100
    assert lookup(b"SET").single and lookup(b"get").fast  # type: ignore[union-attr]
    assert not lookup(b"BLPOP").fast and lookup(b"BLPOP").blocking  # type: ignore[union-attr]
    assert not lookup(b"SORT").single  # type: ignore[union-attr]


def test_rules_by_name() -> None:
    kinds = {
        b"mget": SPLIT, b"ping": LOCAL, b"keys": ALL, b"publish": DEFAULT, b"shutdown": DENY,
        b"Get": KEYED, b"eXeC": LOCAL, b"scan": LOCAL,
    }  # fmt: skip
    for name, kind in kinds.items():
        rule = lookup(name)
        assert rule is not None and rule.kind == kind, name
    assert lookup(b"nosuch") is None
    config = lookup(b"config")
    assert config is not None and config.container
    assert config.subs[b"get"].kind == LOCAL and config.subs[b"set"].kind == DENY


# -- merges -------------------------------------------------------------------------------------


def test_merge_of_split_commands() -> None:
    mget = lookup(b"mget")
    parts = [([0, 2], b"*2\r\n$1\r\na\r\n$-1\r\n"), ([1], b"*1\r\n$1\r\nb\r\n")]
    assert merge(mget, 3, parts, False) == b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n"  # type: ignore[arg-type]
    dele = lookup(b"del")
    assert merge(dele, 3, [([0], b":1\r\n"), ([1, 2], b":2\r\n")], False) == b":3\r\n"  # type: ignore[arg-type]
    mset = lookup(b"mset")
    assert merge(mset, 2, [([0], b"+OK\r\n"), ([1], b"+OK\r\n")], False) == b"+OK\r\n"  # type: ignore[arg-type]
    down = b"-ERR backend 127.0.0.1:1 unavailable (x)\r\n"
    assert merge(mset, 2, [([0], b"+OK\r\n"), ([1], down)], False) == down  # type: ignore[arg-type]
    assert merge(mget, 2, [([0], down), ([1], b"*1\r\n$1\r\nb\r\n")], False) == down  # type: ignore[arg-type]


# -- latency histogram --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**12))
def test_histogram_buckets_hold_their_values(us: int) -> None:
    b = bucket_of(us)
    assert bucket_floor(b) <= us < bucket_floor(b + 1)
    assert us - bucket_floor(b) <= max(1, us // 4)  # within a quarter of the value


def test_percentiles() -> None:
    h = Histogram()
    for us in range(1, 1001):
        h.add(us)
    assert 400 <= h.percentile(50) <= 500
    assert 800 <= h.percentile(99) <= 990
    assert Histogram().percentile(99) == 0


# -- settings -----------------------------------------------------------------------------------


def test_settings_from_a_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text('[proxy]\netcd = ["127.0.0.1:2379"]\ncluster = "c"\nbackend-connections = 2\n')
    config = from_mapping(ProxyConfig(), load_file(path), str(path))
    assert config.etcd == ("127.0.0.1:2379",) and config.backend_connections == 2
    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        from_mapping(ProxyConfig(), {"nope": 1}, "x")
    with pytest.raises(ConfigError, match="backend_connections: expected an integer"):
        from_mapping(ProxyConfig(), {"backend-connections": "2"}, "x")
    assert ProxyConfig(requirepass="s").settings()["requirepass"] == "********"


def test_the_docs_name_every_command_the_proxy_does_not_just_route() -> None:
    import re

    text = (Path(__file__).parent.parent / "docs" / "proxy.md").read_text()
    words = set(re.findall(r"[A-Z][A-Z_-]+", text))
    for rule in all_rules():
        if rule.container or rule.kind == KEYED:
            continue
        parent, _, sub = rule.name.partition("|")
        assert parent.upper() in words, rule.name
        siblings = lookup(parent.encode())
        mixed = siblings is not None and len({r.kind for r in siblings.subs.values()}) > 1
        if sub and mixed:
            assert sub.upper() in words, rule.name
