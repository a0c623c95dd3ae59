"""In-process fuzz targets: bytes in, ``Finding`` raised when an invariant breaks.

``resp_request``: the request parser. Only ProtocolError may escape; the same bytes fed whole
and fed in pieces (split where the input says) give the same commands and fail alike; every
command parsed re-encodes to a request that parses back to itself.

``dump_decode``: the DUMP decoder. Most inputs get a valid magic, version and checksum so the
fuzzer reaches the object decoder. Only BadPayload may escape, and anything accepted is
canonical: encoding what was decoded gives back the very payload (so no duplicate, NaN score,
empty collection or stray byte can be accepted).

``command_args``: handlers of the command table against an in-process server. Commands and
arguments are drawn from the table (tokens of each spec's argument tree, integers and floats at
the edges, a few keys, raw bytes); each reply must be one well-formed RESP value, never an
internal error, within a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from stack.core.resp import (
    Chunks,
    Limits,
    ProtocolError,
    RequestParser,
    encode_command,
    strict_int,
)
from stack.server.storage import dump
from stack.server.storage import keyformat as kf
from stack.server.storage.scores import decode_score

from .data import Stream


class Finding(Exception):
    """An invariant broke: a bug to report with the input that shows it."""


class Hang(BaseException):
    """A command ran past its deadline (BaseException: handlers' ``except Exception`` cannot
    swallow it)."""


# --- the RESP request parser -----------------------------------------------------------------

# Small limits so that short inputs reach every limit.
FUZZ_LIMITS = Limits(
    max_header=64, max_bulk=4096, max_query_buffer=1 << 20, unauth_max_args=4, unauth_max_bulk=32
)


def _drain(parser: RequestParser, one_at_a_time: bool) -> tuple[list[list[bytes]], str | None]:
    out: list[list[bytes]] = []
    while True:
        try:
            got = parser.parse(1 if one_at_a_time else 1 << 30)
        except ProtocolError as e:
            if e.reply is not None and not e.reply.startswith("Protocol error: "):
                raise Finding(f"unexpected protocol error text {e.reply!r}") from None
            return out, e.reply or e.log or "closed"
        if not got:
            return out, None
        out.extend(got)


def _parse_pieces(payload: bytes, cuts: list[int], authenticated: bool) -> tuple[Any, ...]:
    parser = RequestParser(FUZZ_LIMITS)
    parser.authenticated = authenticated
    commands: list[list[bytes]] = []
    last = 0
    for cut in [*cuts, len(payload)]:
        if cut <= last:
            continue
        parser.feed(payload[last:cut])
        last = cut
        got, error = _drain(parser, not authenticated)
        commands.extend(got)
        if error is not None:
            return commands, True, 0
    return commands, False, parser.buffered()


def resp_request(data: bytes) -> None:
    s = Stream(data)
    mode = s.byte()
    authenticated = not mode & 1
    cuts = sorted({s.number(256) for _ in range(mode >> 5)})
    if mode & 2:
        cuts = list(range(1, 300))  # every byte a read of its own
    payload = data[s.pos :]
    whole = _parse_pieces(payload, [], authenticated)
    pieces = _parse_pieces(payload, cuts, authenticated)
    if whole[0] != pieces[0] or whole[1] != pieces[1]:
        raise Finding(f"whole {whole!r} but in pieces {pieces!r}")
    if not whole[1] and whole[2] != pieces[2]:
        raise Finding(f"left {whole[2]} bytes whole but {pieces[2]} in pieces")
    if whole[2] > len(payload):
        raise Finding("buffered more than was fed")
    for args in whole[0]:
        if not args:
            raise Finding("an empty command was returned")
        again = RequestParser()
        again.feed(encode_command(args))
        if again.parse() != [args]:
            raise Finding(f"{args!r} does not survive re-encoding")


# --- the DUMP decoder ------------------------------------------------------------------------


def dump_decode(data: bytes) -> None:
    s = Stream(data)
    mode = s.byte()
    if mode & 0x80:  # the raw bytes, checksum and all
        payload = data[1:]
    else:
        body = dump.MAGIC + bytes([dump.VERSION, mode & 7]) + data[1:]
        payload = body + dump._U32.pack(zlib.crc32(body))
    try:
        kind, value, entries = dump.decode(payload)
    except dump.BadPayload:
        return
    again = dump.encode(kind, value, entries)
    if again != payload:
        raise Finding(f"accepted a payload that is not canonical: {payload[:64]!r}")
    if kind != kf.TYPE_STRING and not entries:
        raise Finding("accepted an empty collection")
    if kind not in (kf.TYPE_STRING, kf.TYPE_LIST) and len({m for m, _ in entries}) != len(entries):
        raise Finding("accepted a member twice")
    if kind == kf.TYPE_ZSET and any(v != v for v in map(decode_score, (s for _, s in entries))):
        raise Finding("accepted a NaN score")


# --- command handlers in-process --------------------------------------------------------------

# Commands left out: they block, sleep, stop or pause the server, touch files or the network,
# or need a live connection; the socket fuzzer sends them to a real server instead. CLIENT
# REPLY (OFF/SKIP: no reply) and CLIENT TRACKING (invalidation pushes after replies) change
# what one command answers, which the checks here rely on.
SKIPPED = frozenset(
    {
        "shutdown",
        "debug",
        "monitor",
        "replicaof",
        "slaveof",
        "sync",
        "psync",
        "lsync",
        "fullsync",
        "replconf",
        "save",
        "bgsave",
        "bgrewriteaof",
        "wait",
        "client|pause",
        "client|unpause",
        "client|kill",
        "client|reply",
        "client|tracking",
        "config|set",
        "config|rewrite",
        "subscribe",
        "psubscribe",
        "ssubscribe",
        "quit",
        # slot migration: they connect to other nodes, or give the node a slot map that
        # would answer every later command with a redirection (tests/test_slot_commands.py)
        "slotsmgrtone",
        "slotsmgrttagone",
        "slotsmgrtslot",
        "slotsmgrttagslot",
        "slotsmap|set",
    }
)

# Commands that answer with one reply per argument (as Redis does).
SEVERAL_REPLIES = frozenset({b"unsubscribe", b"punsubscribe", b"sunsubscribe"})

_EDGES = (
    "0 1 -1 2 3 10 100 -100 2147483647 -2147483648 2147483648 4294967295 4294967296 "
    "9223372036854775807 -9223372036854775808 9223372036854775808 -9223372036854775809 "
    "18446744073709551616 1e400 -1e400 1.5 -0.0 inf -inf +inf nan 0x10 1e3 007 "
    "4294967288 536870911 536870912 99999999999 -99999999999"
)
NUMBERS = tuple(x.encode() for x in _EDGES.split(" "))
KEYS = (b"k", b"k2", b"{t}a", b"{t}b", b"h", b"l", b"s", b"z", b"")


def _tokens(args: tuple[Any, ...]) -> Iterator[bytes]:
    for a in args:
        if a.token:
            yield a.token.encode()
        if a.type == "pure-token":
            yield (a.token or a.name).encode()
        yield from _tokens(a.args)


class CommandMaker:
    """Commands of the table with arguments drawn from fuzzer bytes."""

    def __init__(self, skipped: frozenset[str] = SKIPPED) -> None:
        from stack.core.commands import TABLE

        # LEDIS_FUZZ_SKIP=a,b leaves more commands out (known findings still open).
        extra = os.environ.get("LEDIS_FUZZ_SKIP", "")
        skipped = skipped | {name.strip().lower() for name in extra.split(",") if name.strip()}

        self.calls: list[tuple[list[bytes], tuple[bytes, ...]]] = []
        for spec in TABLE.all_specs():
            if spec.subcommands or spec.name in skipped or "blocking" in spec.flags:
                continue
            name = [part.encode() for part in spec.name.split("|")]
            vocab = tuple(dict.fromkeys([*_tokens(spec.args), *NUMBERS, *KEYS]))
            self.calls.append((name, vocab))

    def make(self, s: Stream) -> list[bytes]:
        name, vocab = self.calls[s.number(len(self.calls))]
        args = list(name)
        for _ in range(s.number(9)):
            kind = s.number(8)
            if kind == 0:
                args.append(s.chunk(24))
            elif kind <= 2:
                args.append(s.pick(KEYS))
            else:
                args.append(s.pick(vocab))
        return args


class InProcess:
    """A server without a listener: the dispatcher, the keyspace and one client."""

    def __init__(self) -> None:
        from stack.server.client import Client
        from stack.server.config import Config
        from stack.server.server import Server

        self.dir = tempfile.TemporaryDirectory(prefix="ledis-fuzz-")
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.server = Server(
            Config(
                {"dir": self.dir.name, "read-cache-entries": 1000, "enable-debug-command": "yes"}
            )
        )
        self.client = Client(self.server)
        self.client.local = True
        self.maker = CommandMaker()
        self.runs = 0

    def run(self, commands: list[list[bytes]], deadline: float = 5.0) -> list[bytes]:
        return self.loop.run_until_complete(self._run(commands, deadline))

    async def _run(self, commands: list[list[bytes]], deadline: float) -> list[bytes]:
        server = self.server
        replies = []

        def alarm(_sig: int, _frame: object) -> None:
            raise Hang

        previous = signal.signal(signal.SIGALRM, alarm)
        try:
            for args in commands:
                signal.setitimer(signal.ITIMER_REAL, deadline)
                try:
                    reply = server.dispatcher.execute(self.client, args)
                except Hang:
                    raise Finding(f"no answer within {deadline}s: {args!r}") from None
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                data = b"".join(reply) if isinstance(reply, Chunks) else reply
                _check_reply(args, data)
                replies.append(data)
                if server.engine.pending:
                    server.engine.commit()
        finally:
            signal.signal(signal.SIGALRM, previous)
        self.runs += 1
        if self.runs % 100 == 0:  # big values (512 MiB SETRANGE) must not pile up
            for db in server.keyspace.dbs:
                server.keyspace.flush(db.index)
            server.engine.commit()
        return replies


def _check_reply(args: list[bytes], data: bytes) -> None:
    if data.startswith(b"-ERR internal error"):
        raise Finding(f"internal error for {args!r}: {data[:200]!r}")
    if not data:  # a blocked client or a reply sent later: nothing to check
        return
    several = args[0].lower() in SEVERAL_REPLIES
    pos = 0
    while pos < len(data):
        try:
            pos = resp_value_end(data, pos, 0)
        except ValueError as e:
            raise Finding(f"malformed reply to {args!r}: {e} in {data[:200]!r}") from None
        if pos != len(data) and not several:
            raise Finding(f"more than one reply to {args!r}: {data[:200]!r}")


_LINES = frozenset(b"+-,#_(")  # RESP2 and RESP3 types that are one line
_BULKS = frozenset(b"$=!")
_AGGREGATES = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}


def resp_value_end(data: bytes, pos: int, depth: int) -> int:
    """Where the RESP2/RESP3 value at ``pos`` ends; ValueError unless whole and well formed."""
    nl = data.find(b"\r\n", pos)
    if nl < 0 or depth > 64:
        raise ValueError("unterminated line")
    kind, line = data[pos], data[pos + 1 : nl]
    if kind in _LINES:
        if b"\r" in line or b"\n" in line:
            raise ValueError("CR or LF inside a line")
        return nl + 2
    if (kind != 58 and kind not in _BULKS and kind not in _AGGREGATES) or strict_int(line) is None:
        raise ValueError(f"bad header {data[pos:nl][:40]!r}")
    n = int(line)
    if kind == 58 or n < 0:  # ':' or a nil
        return nl + 2
    if kind in _BULKS:
        end = nl + 2 + n
        if data[end : end + 2] != b"\r\n":
            raise ValueError("bulk length disagrees with its data")
        return end + 2
    pos = nl + 2
    for _ in range(n * _AGGREGATES[kind]):
        pos = resp_value_end(data, pos, depth + 1)
    return pos


_IN_PROCESS: InProcess | None = None


def in_process() -> InProcess:
    global _IN_PROCESS
    if _IN_PROCESS is None:
        _IN_PROCESS = InProcess()
    return _IN_PROCESS


def command_args(data: bytes) -> None:
    target = in_process()
    s = Stream(data)
    commands = [target.maker.make(s) for _ in range(1 + s.number(4))]
    target.run(commands)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "resp": resp_request,
    "dump": dump_decode,
    "commands": command_args,
}
