"""A generated sweep of every numeric argument of the command table, at the edges, against real
Redis and ledis-server in the same run.

The cases come from the typed argument tree (``integer``, ``double``, ``unix-time``, plus the few
positions Redis documents as numbers but types as strings): for each command, one call is built
with every argument valid; then each numeric position in turn takes each edge value, on keys
prepared with the type the command expects (and, for some edge values, on a missing key and on a
key of another type, since Redis checks arguments and types in a fixed order). Each case runs in
one pipeline: prepare the keys, run the command, read back the type, size and TTL of its keys,
delete them. Replies must be equal byte for byte (random replies: same kind and length); every
answer must come within a deadline; the server's memory must stay bounded.

``make test`` runs the short sweep (``tests/test_sweep.py``); ``python -m tests.sweep --long``
runs more edge values and every key variant, and prints what differs.
"""

from __future__ import annotations

import argparse
import itertools
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

from stack.core.commands import TABLE, Arg, CommandSpec
from stack.core.resp import encode_command

from .respclient import reply_end

NUMERIC = frozenset({"integer", "double", "unix-time"})

# Numbers Redis documents as such but types as strings (ZRANGE's start/stop are ranks unless
# BYSCORE/BYLEX is given; ZRANGESTORE's min/max likewise).
DOCUMENTED_NUMERIC = {("zrange", "start"), ("zrange", "stop"), ("zrangestore", "min"),
                      ("zrangestore", "max")}

EDGES: tuple[str, ...] = (
    "0", "-1", "1", "2147483648", "-2147483648", "2147483647", "9223372036854775807",
    "-9223372036854775808", "18446744073709551616", "-18446744073709551616",
    "1.7976931348623157e308", "-1.7976931348623157e308", "inf", "-inf", "nan", "1e400", "0x10",
    "", " 1", "1.5",
)
LONG_EDGES: tuple[str, ...] = (
    *EDGES,
    "-9223372036854775807", "9223372036854775808", "4611686018427387904",
    "-4611686018427387904", "4611686018427387903", "-4611686018427387903", "4294967295",
    "4294967296", "-2147483647", "+1", "-0", "00", "1 ", "+inf", "-nan", "1e-400", "-1e400",
    "1e18", "536870911", "536870912", "4294967288", "34359738367", "9223372036854775", "1e-5",
    "0.5", "-0.5", "3.0", "1e308", "5e-324", "9223372036854775807.0", "#1", "#-1", "0b1", "\uff11",
)
# Edge values also tried on a missing key and on a key of another type (argument checks and
# the type check must come in Redis's order).
VARIANT_EDGES = ("0", "-1", "-9223372036854775808", "18446744073709551616", "nan", "1.5", "")

# Commands never swept: they change the server itself (replication, pauses, kills), wait for
# other processes, or belong to ledis's replication protocol.
SKIP = frozenset({
    "replicaof", "slaveof", "client|kill", "client|pause", "wait", "lsync", "binlog|show",
    "debug", "shutdown", "failover", "sync", "psync", "replconf", "monitor", "slowlog|get",
    "acl|log",  # what earlier tests were refused, with ages: the server's history, not a reply
    "client|tracking",  # REDIRECT names connections by id (tests/test_tracking.py: its errors)
    "nodeepoch",
})
# Commands of ledis's own (no Redis counterpart; "slots": Codis's): checked for an answer in
# time only.
LEDIS_ONLY_GROUPS = frozenset({"ledis", "cluster", "slots"})
# Replies that depend on chance or on the server's identity (MEMORY USAGE: the bytes a key
# takes in each store): compared by kind and length.
SHAPE_ONLY = frozenset({
    "srandmember", "hrandfield", "zrandmember", "spop", "randomkey", "scan", "hscan", "sscan",
    "zscan", "hello", "client|list", "cluster|getkeysinslot", "acl|genpass", "memory|usage",
})
# Commands that change the connection or the whole server: reset after each case.
RESETS = frozenset({"select", "hello", "swapdb", "move", "copy", "flushall", "flushdb"})

GROUP_TYPE = {"string": "string", "bitmap": "string", "generic": "string", "hash": "hash",
              "list": "list", "set": "set", "sorted-set": "zset"}
NAME_TYPE = {"sort": "list", "sort_ro": "list", "hexpire": "hash", "hexpireat": "hash",
             "lexpire": "list", "lexpireat": "list", "sexpire": "set", "sexpireat": "set",
             "zexpire": "zset", "zexpireat": "zset", "ltrim_front": "list",
             "ltrim_back": "list", "xhscan": "hash", "xsscan": "set", "xzscan": "zset",
             "sintercard": "set"}
OTHER_TYPE = {"string": "hash", "hash": "string", "list": "string", "set": "string",
              "zset": "string"}
PREPARE: dict[str, list[list[bytes]]] = {
    "string": [[b"SET", b"%k", b"10"]],
    "hash": [[b"HSET", b"%k", b"f1", b"1", b"f2", b"2", b"f3", b"3"]],
    "list": [[b"RPUSH", b"%k", b"3", b"1", b"2"]],
    "set": [[b"SADD", b"%k", b"1", b"2", b"3"]],
    "zset": [[b"ZADD", b"%k", b"1", b"a", b"2", b"b", b"3", b"c"]],
}
SIZE = {"string": b"STRLEN", "hash": b"HLEN", "list": b"LLEN", "set": b"SCARD", "zset": b"ZCARD"}

# Valid values of numeric arguments that are not being swept, by argument name.
DEFAULTS: dict[str, bytes] = {
    "count": b"2", "offset": b"3", "timeout": b"1", "seconds": b"100",
    "milliseconds": b"100000", "start": b"0", "end": b"-1", "stop": b"-1", "index": b"0",
    "db": b"1", "destination-db": b"1", "index1": b"0", "index2": b"1", "increment": b"1",
    "decrement": b"1", "score": b"1", "weight": b"2", "min": b"0", "max": b"10", "slot": b"0",
    "bit": b"1", "value": b"1", "rank": b"1", "num-matches": b"0", "len": b"0",
    "protover": b"2", "numreplicas": b"0", "ttl": b"0", "frequency": b"1",
    "min-match-len": b"1", "limit": b"1", "cursor": b"0", "client-id": b"1",
}
STRING_DEFAULTS: dict[str, bytes] = {
    "field": b"f1", "value": b"v", "element": b"1", "pattern": b"*", "encoding": b"u8",
    "message": b"m", "section": b"server", "type": b"string", "pivot": b"1",
}
COMMAND_STRING_DEFAULTS: dict[tuple[str, str], bytes] = {
    ("zrangebylex", "min"): b"-", ("zrangebylex", "max"): b"+",
    ("zrevrangebylex", "min"): b"-", ("zrevrangebylex", "max"): b"+",
}
MEMBER = {"set": b"1", "zset": b"a"}


@dataclass(frozen=True)
class Part:
    """One argument of a template: fixed bytes, a key, or a number that may be swept."""

    text: bytes
    kind: str = "fixed"  # fixed, key, number, payload
    name: str = ""
    key_type: str = ""


Template = tuple[Part, ...]


def _has_numeric(arg: Arg, cmd: str) -> bool:
    return (arg.type in NUMERIC or (cmd, arg.name) in DOCUMENTED_NUMERIC
            or any(_has_numeric(a, cmd) for a in arg.args))


def _alternatives(arg: Arg, spec: CommandSpec, key_type: str) -> list[list[Part]]:
    """The ways to write one argument: several when a oneof offers numbers in more than one
    choice; none (an empty list) for an optional argument without numbers."""
    cmd = spec.name
    if arg.optional and not _has_numeric(arg, cmd):
        return [[]]
    head = [Part(arg.token.encode())] if arg.token and arg.type != "pure-token" else []
    if arg.type == "pure-token":
        return [[Part((arg.token or arg.name).encode())]]
    if arg.type == "oneof":
        numeric = [a for a in arg.args if _has_numeric(a, cmd)] or list(arg.args[:1])
        out: list[list[Part]] = []
        for choice in numeric:
            out += [head + alt for alt in _alternatives(replace(choice, optional=False), spec,
                                                        key_type)]
        return out
    if arg.type == "block":
        combos: list[list[Part]] = [head]
        for sub in arg.args:
            combos = [c + alt for c in combos for alt in _alternatives(sub, spec, key_type)]
        return combos
    if arg.type == "key":
        return [[*head, Part(b"", "key", arg.name, key_type)]]
    if arg.type in NUMERIC or (cmd, arg.name) in DOCUMENTED_NUMERIC:
        if arg.name == "numkeys":
            return [[*head, Part(b"", "numkeys", arg.name)]]
        value = DEFAULTS.get(arg.name, b"1")
        if arg.type == "unix-time":
            value = b"%d" % ((int(time.time()) + 1000) * (1000 if "milli" in arg.name else 1))
        return [[*head, Part(value, "number", arg.name)]]
    if arg.name == "serialized-value":
        return [[*head, Part(b"", "payload", arg.name)]]
    if arg.name in ("member", "element") and key_type in MEMBER:
        return [[*head, Part(MEMBER[key_type], "fixed", arg.name)]]
    text = COMMAND_STRING_DEFAULTS.get((cmd, arg.name)) or STRING_DEFAULTS.get(arg.name, b"x")
    return [[*head, Part(text, "fixed", arg.name)]]


def templates(spec: CommandSpec) -> list[Template]:
    """Calls of ``spec`` with every argument valid, one per way of reaching its numbers."""
    key_type = NAME_TYPE.get(spec.name) or GROUP_TYPE.get(spec.group, "string")
    words = [Part(w.encode()) for w in spec.name.split("|")]
    combos: list[list[Part]] = [words]
    for arg in spec.args:
        combos = [c + alt for c in combos for alt in _alternatives(arg, spec, key_type)]
    return [tuple(name_keys(parts, b"sw", "number")) for parts in combos[:12]]


class Named(Protocol):
    text: bytes
    kind: str


P = TypeVar("P", bound=Named)


def name_keys(parts: Sequence[P], prefix: bytes, numkeys_kind: str) -> list[P]:
    """Keys get names (``prefix:1``, ``prefix:2``...); a numkeys counts the keys that follow
    it (and becomes of kind ``numkeys_kind``)."""
    named: list[P] = []
    n = 0
    for i, p in enumerate(parts):
        if p.kind == "key":
            n += 1
            p = replace(p, text=b"%b:%d" % (prefix, n))  # type: ignore[type-var]
        elif p.kind == "numkeys":
            follow = 0
            for q in parts[i + 1:]:
                if q.kind != "key":
                    break
                follow += 1
            p = replace(p, text=b"%d" % follow, kind=numkeys_kind)  # type: ignore[type-var]
        named.append(p)
    return named


@dataclass
class Case:
    spec: CommandSpec
    args: list[bytes]
    swept: int  # index of the swept argument
    key_types: dict[bytes, str]  # key -> type prepared ("" = missing)
    payload_at: list[int] = field(default_factory=list)

    def label(self) -> str:
        shown = " ".join(a.decode("latin-1") if a else '""' for a in self.args)
        types = ",".join(f"{k.decode()}={t or 'missing'}" for k, t in self.key_types.items())
        return f"{shown}  [{types}]"


def cases(edges: Sequence[str], variant_edges: Sequence[str]) -> Iterator[Case]:
    for spec in TABLE.all_specs():
        if spec.name in SKIP or spec.subcommands:
            continue
        for tmpl in templates(spec):
            numbers = [i for i, p in enumerate(tmpl) if p.kind == "number"]
            keys = {p.text: p.key_type for p in tmpl if p.kind == "key"}
            for pos, edge in itertools.product(numbers, edges):
                args = [p.text for p in tmpl]
                args[pos] = edge.encode()
                variants = [keys]
                if keys and edge in variant_edges:
                    first = next(iter(keys))
                    variants.append({**keys, first: ""})
                    variants.append({**keys, first: OTHER_TYPE[keys[first]]})
                for key_types in variants:
                    if "blocking" in spec.flags and "" in key_types.values():
                        continue  # would wait for its timeout (Redis too)
                    yield Case(spec, args, pos, dict(key_types),
                               [i for i, p in enumerate(tmpl) if p.kind == "payload"])


def redis_would_hang(case: Case) -> bool:
    """Calls that Redis 7.0 accepts and then loops on without bound (random members with
    repetitions: a negative count of billions). ledis refuses them instead."""
    expected = {"srandmember": "set", "hrandfield": "hash", "zrandmember": "zset"}
    if expected.get(case.spec.name) not in case.key_types.values():
        return False  # a missing key or another type: Redis answers at once
    try:
        count = int(case.args[2])
    except (IndexError, ValueError):
        return False
    return -(2**63) < count <= -(2**24) and (len(case.args) == 3 or count >= -(2**62))


# --- running ------------------------------------------------------------------------------------


class Conn:
    """A raw RESP connection with a per-answer deadline."""

    def __init__(self, port: int | None = None, unix: str | None = None,
                 deadline: float = 20.0) -> None:
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port or 0))
        self.sock.settimeout(deadline)
        self.buf = bytearray()

    def pipeline(self, commands: list[list[bytes]]) -> list[bytes]:
        """Send every command, return every reply; TimeoutError names how many came."""
        self.sock.sendall(b"".join(encode_command(c) for c in commands))
        replies: list[bytes] = []
        pos = 0
        while len(replies) < len(commands):
            end = reply_end(self.buf, pos)  # type: ignore[arg-type]  # works on a bytearray
            if end < 0:
                try:
                    chunk = self.sock.recv(1 << 20)
                except TimeoutError:
                    raise TimeoutError(len(replies)) from None
                if not chunk:
                    raise ConnectionError(f"closed after {len(replies)} replies")
                self.buf += chunk
                continue
            replies.append(bytes(self.buf[pos:end]))
            pos = end
        del self.buf[:pos]
        return replies

    def close(self) -> None:
        self.sock.close()


def _commands(case: Case, payload: bytes) -> tuple[list[list[bytes]], int, list[str]]:
    """The pipeline of one case, where the command's reply sits, and what each probe is."""
    cmds: list[list[bytes]] = [[b"SELECT", b"0"]]
    keys = list(case.key_types)
    if keys:
        cmds.append([b"DEL", *keys])
    for key, kind in case.key_types.items():
        if kind:
            cmds += [[key if a == b"%k" else a for a in c] for c in PREPARE[kind]]
    args = list(case.args)
    for i in case.payload_at:
        args[i] = payload
    at = len(cmds)
    cmds.append(args)
    probes = []
    for key, kind in case.key_types.items():
        cmds += [[b"TYPE", key], [b"PTTL", key], [SIZE[kind or "string"], key]]
        probes += ["type", "ttl", "size"]
    if case.spec.name.split("|")[0] in RESETS:
        cmds += [[b"HELLO", b"2"], [b"SELECT", b"0"], [b"FLUSHALL"]]
        probes += ["reset"] * 3
    elif keys:
        cmds.append([b"DEL", *keys])
        probes.append("cleanup")
    return cmds, at, probes


def _kind(reply: bytes) -> bytes:
    return reply[:1]


def _length(reply: bytes) -> int:
    if reply[:1] in (b"*", b"%", b"~", b"$"):
        return int(reply[1:reply.find(b"\r\n")])
    return 0


def _same(case: Case, ours: bytes, theirs: bytes) -> bool:
    if ours == theirs:
        return True
    if ours[:1] == b"-" or theirs[:1] == b"-":
        return False
    if case.spec.name in SHAPE_ONLY:
        if case.spec.name in ("scan", "hscan", "sscan", "zscan", "hello", "client|list",
                              "cluster|getkeysinslot", "memory|usage"):
            return _kind(ours) == _kind(theirs)
        return _kind(ours) == _kind(theirs) and _length(ours) == _length(theirs)
    return False


def _expiring_soon(ttl_reply: bytes) -> bool:
    return ttl_reply[:1] == b":" and 0 <= int(ttl_reply[1:-2]) < 10_000


def _ttl_class(reply: bytes) -> bytes:
    if reply[:1] == b":" and int(reply[1:-2]) >= 0:
        return b":positive"
    return reply


@dataclass
class Result:
    cases: int = 0
    compared: int = 0
    ledis_only: int = 0
    mismatches: list[str] = field(default_factory=list)
    hung: str | None = None
    max_rss_growth: int = 0  # bytes over the server's RSS when the sweep started
    seconds: float = 0.0


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(ledis_port: int, ledis_pid: int, redis_socket: str, long: bool = False,
        deadline: float = 20.0, rss_limit: int = 512 << 20, batch: int = 40) -> Result:
    """Run the sweep; mismatches are described, a hang stops it, and so does the server's
    memory growing more than ``rss_limit`` bytes."""
    edges = LONG_EDGES if long else EDGES
    variant_edges = LONG_EDGES if long else VARIANT_EDGES
    ours = Conn(port=ledis_port, deadline=deadline)
    theirs = Conn(unix=redis_socket, deadline=deadline)
    payloads = {}
    for name, conn in (("ours", ours), ("theirs", theirs)):
        dump = conn.pipeline([[b"SET", b"sw:payload", b"10"], [b"DUMP", b"sw:payload"],
                              [b"DEL", b"sw:payload"]])[1]
        payloads[name] = dump[dump.find(b"\r\n") + 2:-2]
    result = Result()
    started = time.monotonic()
    base_rss = rss_of(ledis_pid)
    all_cases = list(cases(edges, variant_edges))
    try:
        for first in range(0, len(all_cases), batch):
            group = all_cases[first:first + batch]
            _run_group(group, ours, theirs, payloads, result)
            if result.hung:
                break
            growth = rss_of(ledis_pid) - base_rss
            result.max_rss_growth = max(result.max_rss_growth, growth)
            if growth > rss_limit:
                result.mismatches.append(
                    f"ledis RSS grew {growth >> 20} MB by {group[-1].label()}")
                break
    finally:
        ours.close()
        theirs.close()
    result.seconds = time.monotonic() - started
    return result


def _run_group(group: list[Case], ours: Conn, theirs: Conn, payloads: dict[str, bytes],
               result: Result) -> None:
    plans = [_commands(c, payloads["ours"]) for c in group]
    ours_cmds = [cmd for cmds, _at, _p in plans for cmd in cmds]
    try:
        ours_replies = ours.pipeline(ours_cmds)
    except TimeoutError as e:
        got = e.args[0] if e.args else 0
        for case, (cmds, _at, _p) in zip(group, plans, strict=True):
            if got < len(cmds):
                result.hung = f"ledis did not answer in time: {case.label()}"
                return
            got -= len(cmds)
        result.hung = "ledis did not answer in time"
        return
    compared = [c for c in group if c.spec.group not in LEDIS_ONLY_GROUPS
                and not redis_would_hang(c)]
    their_plans = {id(c): _commands(c, payloads["theirs"]) for c in compared}
    their_cmds = [cmd for c in compared for cmd in their_plans[id(c)][0]]
    their_replies = iter(theirs.pipeline(their_cmds)) if their_cmds else iter(())
    pos = 0
    for case, (cmds, at, probes) in zip(group, plans, strict=True):
        mine = ours_replies[pos:pos + len(cmds)]
        pos += len(cmds)
        result.cases += 1
        if case.spec.group in LEDIS_ONLY_GROUPS:
            result.ledis_only += 1
            continue
        if redis_would_hang(case):
            result.ledis_only += 1
            if not mine[at].startswith(b"-ERR value is out of range"):
                result.mismatches.append(
                    f"{case.label()}: Redis loops without bound here; ledis must refuse, "
                    f"got {mine[at][:80]!r}")
            continue
        other = [next(their_replies) for _ in cmds]
        result.compared += 1
        if not _same(case, mine[at], other[at]):
            result.mismatches.append(
                f"{case.label()}: redis {other[at][:120]!r} != ledis {mine[at][:120]!r}")
            continue
        for k in range(0, len(case.key_types) * 3, 3):
            a_ttl, b_ttl = mine[at + 1 + k + 1], other[at + 1 + k + 1]
            if _expiring_soon(a_ttl) or _expiring_soon(b_ttl):
                continue  # the key may expire between the servers' probes
            for probe, a, b in zip(probes[k:k + 3], mine[at + 1 + k:], other[at + 1 + k:],
                                   strict=False):
                if probe == "ttl":
                    a, b = _ttl_class(a), _ttl_class(b)
                if a != b:
                    result.mismatches.append(
                        f"{case.label()}: after it, {probe}: redis {b[:80]!r} != ledis "
                        f"{a[:80]!r}")
                    break


def main(argv: list[str] | None = None) -> int:
    """The long sweep against servers this starts itself."""
    import tempfile

    from .servers import LedisServer, RedisServer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--long", action="store_true", help="more edge values, every key variant")
    ap.add_argument("--no-lane", action="store_true", help="ledis without the C fast lane")
    ap.add_argument("--deadline", type=float, default=20.0, help="seconds per answer")
    opts = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
        env = {"LEDIS_FASTLANE": "0"} if opts.no_lane else None
        ledis = LedisServer(Path(tmp) / "ledis", env=env).start()
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            assert ledis.proc is not None
            n = sum(1 for _ in cases(LONG_EDGES if opts.long else EDGES,
                                     LONG_EDGES if opts.long else VARIANT_EDGES))
            print(f"{n} cases", flush=True)
            res = run(ledis.port, ledis.proc.pid, str(redis.socket), long=opts.long,
                      deadline=opts.deadline)
        finally:
            ledis.kill9()
            redis.stop()
    for m in res.mismatches:
        print(m)
    print(f"cases {res.cases}, compared with Redis {res.compared}, ledis only "
          f"{res.ledis_only}, mismatches {len(res.mismatches)}, hung: {res.hung or 'no'}, "
          f"RSS growth {res.max_rss_growth >> 20} MB, {res.seconds:.1f} s")
    return 1 if res.mismatches or res.hung else 0


if __name__ == "__main__":
    sys.exit(main())
