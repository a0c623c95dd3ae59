"""Key specs: every key argument tied to a spec, and COMMAND INFO / GETKEYS / GETKEYSANDFLAGS /
LIST / DOCS held equal to a real Redis 7.0 for every command both have (RESP2 and RESP3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack.core.commands import TABLE, CommandSpec, CommandTable
from stack.core.commands.introspection import command_info
from stack.core.commands.keyspec import Index, KeyNum, Range
from stack.core.commands.planned import PLANNED
from stack.core.commands.spec import Arg
from stack.core.reply_parser import ReplyParser
from stack.core.resp import encode

from .respclient import RawClient
from .servers import LedisServer, RedisServer

# Where we follow a later Redis on purpose: ZRANK/ZREVRANK ... WITHSCORE (7.2).
INTENDED_ARITY = {"zrank": 3, "zrevrank": 3}

_SAMPLE = {
    "integer": "1",
    "double": "1.5",
    "string": "v",
    "pattern": "p*",
    "unix-time": "1700000000",
}


def generate(spec: CommandSpec) -> tuple[list[bytes], list[tuple[int, int]]]:
    """A call of ``spec`` built from its argument tree (every optional present, the first
    choice of each oneof, two of each multiple, numkeys counting them), and the positions of
    its key arguments with the index of the key spec each names."""
    call = [p.encode() for p in spec.name.split("|")]
    keys: list[tuple[int, int]] = []

    def emit(arg: Arg) -> None:
        if arg.type == "pure-token":
            call.append((arg.token or arg.name).encode())
            return
        if arg.token:
            call.append(arg.token.encode())
        if arg.type == "oneof":
            emit(arg.args[0])
        elif arg.type == "block":
            for child in arg.args:
                emit_all(child)
        elif arg.type == "key":
            keys.append((len(call), arg.key_spec_index or 0))
            call.append(b"k%d" % len(keys))
        elif arg.name == "numkeys":
            call.append(b"2")
        else:
            call.append(_SAMPLE[arg.type].encode())

    def emit_all(arg: Arg) -> None:
        for _ in range(2 if arg.multiple else 1):
            if arg.multiple and arg.token and _ and arg.type != "pure-token":
                emit(Arg(arg.name, arg.type, args=arg.args, key_spec_index=arg.key_spec_index))
            else:
                emit(arg)

    for arg in spec.args:
        emit_all(arg)
    return call, keys


def runnable(table: CommandTable) -> Iterator[CommandSpec]:
    for spec in table.all_specs():
        if not spec.subcommands:
            yield spec


def walk(args: tuple[Arg, ...]) -> Iterator[Arg]:
    for arg in args:
        yield arg
        yield from walk(arg.args)


@pytest.mark.parametrize("table", [TABLE, PLANNED], ids=["table", "planned"])
def test_every_key_argument_is_tied_to_a_key_spec(table: CommandTable) -> None:
    problems = []
    for spec in runnable(table):
        tree = list(walk(spec.args))
        named = {a.key_spec_index for a in tree if a.key_spec_index is not None}
        for arg in tree:
            if arg.type == "key" and not (
                arg.key_spec_index is not None and arg.key_spec_index < len(spec.key_specs)
            ):
                problems.append((spec.name, arg.name, "no key spec"))
        if named != set(range(len(spec.key_specs))):
            problems.append((spec.name, sorted(named), f"{len(spec.key_specs)} key specs"))
        call, keys = generate(spec)
        if not spec.arity_ok(len(call)):
            problems.append((spec.name, "generated call breaks the arity", call))
            continue
        found = [(ref.pos, ref.flags) for ref in table.keys(call)]
        # Each key argument is found, with its spec's flags (a key procedure decides the
        # flags of VARIABLE_FLAGS specs).
        expected = [(pos, spec.key_specs[i].flags) for pos, i in keys]
        variable = any("VARIABLE_FLAGS" in k.flags for k in spec.key_specs)
        if any("INCOMPLETE" in k.flags for k in spec.key_specs):
            # which keys count depends on the arguments (MIGRATE's KEYS only when its key
            # argument is empty): the keys found are some of the key arguments
            if not {p for p, _ in found} <= {p for p, _ in expected}:
                problems.append((spec.name, call, found, expected))
            continue
        if sorted(p for p, _ in found) != sorted(p for p, _ in expected) or (
            not variable and sorted(found, key=str) != sorted(expected, key=str)
        ):
            problems.append((spec.name, call, found, expected))
    assert problems == []


def test_legacy_range_and_movable_keys_are_derived() -> None:
    for name, legacy, movable in [
        ("get", (1, 1, 1), False),
        ("mset", (1, -1, 2), False),
        ("bitop", (2, -1, 1), False),
        ("rename", (1, 2, 1), False),
        ("zunionstore", (1, 1, 1), True),
        ("sort", (1, 1, 1), True),
        ("lmpop", (0, 0, 0), True),
        ("blpop", (1, -2, 1), False),
        ("ping", (0, 0, 0), False),
    ]:
        spec = TABLE.get(name)
        assert spec is not None
        assert (spec.first_key, spec.last_key, spec.key_step) == legacy, name
        assert spec.movable_keys is movable, name
        assert ("movablekeys" in spec.printed_flags()) is movable
    zunionstore = TABLE.get("zunionstore")
    assert zunionstore is not None
    assert isinstance(zunionstore.key_specs[1].begin_search, Index)
    assert isinstance(zunionstore.key_specs[1].find_keys, KeyNum)
    assert isinstance(zunionstore.key_specs[0].find_keys, Range)


def test_the_proxy_function() -> None:
    """``TABLE.keys``: what the proxy calls for each command of a pipeline."""
    assert [r.pos for r in TABLE.keys([b"MSET", b"a", b"1", b"b", b"2"])] == [1, 3]
    assert [r.pos for r in TABLE.keys([b"sort", b"s", b"LIMIT", b"0", b"1", b"store", b"d"])] == [
        1,
        6,
    ]
    assert [r.pos for r in TABLE.keys([b"ZUNIONSTORE", b"d", b"2", b"a", b"b"])] == [1, 3, 4]
    assert [r.pos for r in TABLE.keys([b"OBJECT", b"ENCODING", b"k"])] == [2]
    assert TABLE.keys([b"PING"]) == []
    assert TABLE.keys([b"NOSUCH", b"k"]) == []
    assert TABLE.keys([b"GET"]) == []  # wrong arity
    flags = TABLE.keys([b"SET", b"k", b"v", b"GET"])[0].flags
    assert flags == {"RW", "ACCESS", "UPDATE"}
    assert TABLE.keys([b"SET", b"k", b"v"])[0].flags == {"OW", "UPDATE"}


# --- against a real Redis --------------------------------------------------------------------


def parse(raw: bytes) -> object:
    p = ReplyParser()
    p.feed(raw)
    return p.get()


def typed(value: object) -> object:
    """A reply with its RESP types made visible (set vs array vs map), for comparison."""
    if isinstance(value, list):
        return (type(value).__name__, [typed(v) for v in value])
    return (type(value).__name__, value)


def without_notes(value: object) -> object:
    """Key spec notes are our own words: drop them before comparing."""
    if isinstance(value, list):
        if len(value) >= 2 and value[0] == b"notes":
            return without_notes(type(value)(value[2:]))
        return type(value)(without_notes(v) for v in value)
    return value


def sorted_subcommands(entry: list[object]) -> list[object]:
    """Subcommands in name order (Redis prints them in its dict's order), only those we have
    (a subcommand we lack is a missing feature, not a difference in COMMAND INFO)."""
    subs = entry[9]
    if isinstance(subs, list) and subs:
        ours = {s.name.encode() for s in TABLE.all_specs()}
        kept = sorted((e for e in subs if e[0] in ours), key=lambda e: e[0])  # type: ignore[index]
        entry = [*entry[:9], type(subs)(kept)]
    return entry


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def clients(
    request: pytest.FixtureRequest, ledis_server: LedisServer, redis_server: RedisServer
) -> Iterator[tuple[RawClient, RawClient]]:
    ours, theirs = RawClient(ledis_server.port), RawClient(unix=str(redis_server.socket))
    for c in (ours, theirs):
        c.call("HELLO", request.param)
    yield ours, theirs
    ours.close()
    theirs.close()


def redis_names(theirs: RawClient) -> set[str]:
    return {n.decode() for n in parse(theirs.call("COMMAND", "LIST"))}  # type: ignore[union-attr]


@pytest.mark.differential
def test_command_info_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    ours, theirs = clients
    shared = redis_names(theirs)
    compared = 0
    for spec in TABLE:
        if spec.name not in shared:
            continue
        a = parse(ours.call("COMMAND", "INFO", spec.name))[0]  # type: ignore[index]
        b = parse(theirs.call("COMMAND", "INFO", spec.name))[0]  # type: ignore[index]
        if spec.name in INTENDED_ARITY:
            b[1] = -INTENDED_ARITY[spec.name]
        a, b = (sorted_subcommands(without_notes(x)) for x in (a, b))
        assert typed(a) == typed(b), spec.name
        compared += 1
    assert compared > 150


def extra_calls() -> list[list[str]]:
    """Calls beside the generated ones: the edges of movable keys and variable flags."""
    return [
        ["ZUNIONSTORE", "d", "0", "a"],
        ["ZUNIONSTORE", "d", "2abc", "a", "b"],
        ["ZUNIONSTORE", "d", "5", "a", "b"],
        ["ZUNIONSTORE", "d", "-1", "a"],
        ["ZINTER", "2", "a", "b", "WEIGHTS", "1", "2"],
        ["ZDIFF", "x", "a"],
        ["SINTERCARD", "1", "a", "LIMIT", "5"],
        ["LMPOP", "2", "a", "b", "LEFT"],
        ["BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"],
        ["ZMPOP", "1", "z", "MIN"],
        ["BZMPOP", "1.5", "1", "z", "MAX"],
        ["SORT", "k"],
        ["SORT", "k", "STORE", "d"],
        ["SORT", "k", "BY", "w*", "LIMIT", "0", "1", "GET", "#", "STORE", "d", "STORE", "e"],
        ["SORT", "k", "GET", "store", "ALPHA"],
        ["SORT", "k", "LIMIT", "store", "x"],
        ["SORT_RO", "k", "BY", "x"],
        ["SET", "k", "v"],
        ["SET", "k", "v", "GET"],
        ["SET", "k", "v", "get", "EX", "5"],
        ["BITFIELD", "b", "GET", "u8", "0"],
        ["BITFIELD", "b", "GET", "u8", "0", "INCRBY", "u8", "0", "1"],
        ["BITFIELD", "b", "OVERFLOW", "SAT"],
        ["BITFIELD", "b"],
        ["BITFIELD", "b", "GET"],
        ["BITOP", "AND", "d", "a", "b"],
        ["MSET", "a", "1", "b"],
        ["BLPOP", "a", "b", "0"],
        ["OBJECT", "ENCODING", "k"],
        ["OBJECT", "NOSUCH", "k"],
        ["CONFIG", "GET", "x"],
        ["PING", "x"],
        ["NOSUCH", "x"],
        ["GET", "a", "b"],
        ["EXISTS", "a", "b", "c"],
        ["MIGRATE", "h", "1", "k", "0", "5"],
        ["MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b"],
        ["MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "KEYS", "KEYS", "a"],
        ["EVAL", "s", "0"],
        ["EVAL", "s", "2", "a", "b", "c"],
        ["EVAL", "s", "3", "a"],
        ["FCALL_RO", "f", "1", "a"],
        ["ZRANK", "z", "m"],
        ["XREAD", "STREAMS", "a", "b", "0", "0"],
        ["XREAD", "COUNT", "1", "STREAMS", "a", "0"],
        ["XREAD", "STREAMS", "a", "b", "0"],
    ]


@pytest.mark.differential
def test_getkeys_and_flags_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    ours, theirs = clients
    shared = redis_names(theirs)
    calls: list[list[bytes]] = []
    for spec in runnable(TABLE):
        if spec.name in shared and spec.name not in INTENDED_ARITY:
            calls.append(generate(spec)[0])
    calls += [[a.encode() for a in c] for c in extra_calls()]
    planned = {s.name for s in PLANNED}
    mismatches = []
    for call in calls:
        for sub in (b"GETKEYS", b"GETKEYSANDFLAGS"):
            expected = theirs.call("COMMAND", sub, *call)
            if call[0].decode().lower() in planned:
                refs = PLANNED.keys(call)  # not served yet: the core function itself
                if sub == b"GETKEYS" and not expected.startswith(b"-"):
                    got = encode([call[r.pos] for r in refs])
                    if got != expected:
                        mismatches.append((sub, call, got, expected))
                continue
            got = ours.call("COMMAND", sub, *call)
            if got != expected:
                mismatches.append((sub, call, got, expected))
    assert mismatches == []


@pytest.mark.differential
def test_command_list_filters_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    ours, theirs = clients
    ours_all = {n.decode() for n in parse(ours.call("COMMAND", "LIST"))}  # type: ignore[union-attr]
    theirs_all = redis_names(theirs)
    ledis_only = ours_all - theirs_all
    assert all(TABLE.resolve([n.split("|")[0].encode()]) for n in ledis_only)
    filters = [
        ("ACLCAT", "read"),
        ("ACLCAT", "write"),
        ("ACLCAT", "keyspace"),
        ("ACLCAT", "string"),
        ("ACLCAT", "fast"),
        ("ACLCAT", "slow"),
        ("ACLCAT", "dangerous"),
        ("ACLCAT", "admin"),
        ("ACLCAT", "connection"),
        ("ACLCAT", "blocking"),
        ("ACLCAT", "pubsub"),
        ("ACLCAT", "transaction"),
        ("ACLCAT", "sortedset"),
        ("ACLCAT", "nosuch"),
        ("PATTERN", "z*"),
        ("PATTERN", "client|*"),
        ("PATTERN", "*get*"),
        ("MODULE", "x"),
    ]
    for kind, value in filters:
        a = {n.decode() for n in parse(ours.call("COMMAND", "LIST", "FILTERBY", kind, value))}  # type: ignore[union-attr]
        b = {n.decode() for n in parse(theirs.call("COMMAND", "LIST", "FILTERBY", kind, value))}  # type: ignore[union-attr]
        assert a - ledis_only == b & ours_all, (kind, value)
    assert ours.call("COMMAND", "LIST", "FILTERBY", "NOPE", "x") == theirs.call(
        "COMMAND", "LIST", "FILTERBY", "NOPE", "x"
    )


@pytest.mark.differential
def test_command_docs_key_arguments_as_redis(clients: tuple[RawClient, RawClient]) -> None:
    """COMMAND DOCS names, for each key argument, the key spec that finds it, as Redis."""
    ours, theirs = clients
    shared = redis_names(theirs)

    def key_args(docs: object) -> list[tuple[bytes, int]]:
        out: list[tuple[bytes, int]] = []

        def visit(args: list[object]) -> None:
            for arg in args:
                fields = dict(zip(arg[::2], arg[1::2], strict=True))  # type: ignore[index]
                if b"key_spec_index" in fields:
                    out.append((fields[b"name"], fields[b"key_spec_index"]))
                visit(fields.get(b"arguments", []))

        entry = dict(zip(docs[1][::2], docs[1][1::2], strict=True))  # type: ignore[index]
        visit(entry.get(b"arguments", []))
        return [(b"", i) for _, i in out]  # names may differ; which spec each names may not

    for spec in runnable(TABLE):
        if spec.name not in shared or spec.parent:
            continue
        a = parse(ours.call("COMMAND", "DOCS", spec.name))
        b = parse(theirs.call("COMMAND", "DOCS", spec.name))
        assert key_args(a) == key_args(b), spec.name


def test_command_info_encodes_key_specs_like_redis() -> None:
    spec = TABLE.get("zunionstore")
    assert spec is not None
    info = command_info(spec)
    assert info[3:6] == [1, 1, 1]
    raw = encode(info[8], resp3=True)
    assert raw.startswith(b"~2\r\n%3\r\n$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n")
    assert b"$6\r\nkeynum\r\n$4\r\nspec\r\n%3\r\n$9\r\nkeynumidx\r\n:0\r\n" in raw
