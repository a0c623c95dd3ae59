"""Keyspace notifications of every write command, against real Redis in the same run.

Every write command of the command table is called in each way its argument tree allows
(``calls.py``), on keys prepared in several ways: each key holding the type the command
expects, no key at all, the first key missing, the last key of another type, and every key
with a TTL. For each case notifications are switched on (``KEA`` plus ``n``, the ``new``
event) just around the command, and a listener subscribed to ``__key*__:*`` collects what is
published, on both servers. The events of each case, in order, must be Redis's; a case whose
events never come (the listener waits for a marker published after the case) fails as a
hang, not as a test that waits forever.

``python -m tests.notify_sweep`` runs it against servers it starts and prints what differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stack.core.commands import TABLE, CommandSpec

from . import calls, sweep
from .respclient import reply_end

FLAGS = b"KEAn"
MARK = b"nsweep:mark"
# Never called: they change the server itself, or are not Redis's (checked by hand tests).
SKIP = sweep.SKIP | {"flushall", "flushdb", "swapdb"}
VARIANTS = ("typed", "missing", "first-missing", "last-missing", "last-other", "ttl", "one",
            "same")
# A collection of one member (its last one goes: "del" follows the command's event).
PREPARE_ONE: dict[str, list[list[bytes]]] = {
    "string": [[b"SET", b"%k", b"1"]],
    "hash": [[b"HSET", b"%k", b"f1", b"1"]],
    "list": [[b"RPUSH", b"%k", b"1"]],
    "set": [[b"SADD", b"%k", b"1"]],
    "zset": [[b"ZADD", b"%k", b"1", b"a"]],
}
# Replies compared by kind only: chance, the clock, ledis's own DUMP format, the bytes a key
# takes in each store.
LOOSE_REPLY = frozenset({"spop", "srandmember", "hrandfield", "zrandmember", "dump", "ttl",
                         "pttl", "expiretime", "pexpiretime", "object|idletime",
                         "memory|usage"})
# Where ledis takes what later Redis versions take (docs/core.md): ZRANK/ZREVRANK WITHSCORE
# (7.2), HSCAN NOVALUES (7.4).
LATER_VERSIONS = frozenset({(b"zrank", b"WITHSCORE"), (b"zrevrank", b"WITHSCORE"),
                            (b"hscan", b"NOVALUES")})


@dataclass
class Case:
    spec: CommandSpec
    args: list[bytes]
    key_types: dict[bytes, str]  # key -> the type prepared ("" = missing)
    variant: str
    payload_at: list[int]

    def label(self) -> str:
        shown = " ".join(a.decode("latin-1") if a else '""' for a in self.args)
        types = ",".join(f"{k.decode()}={t or 'missing'}" for k, t in self.key_types.items())
        return f"{shown}  [{types}; {self.variant}]"


def write_specs() -> list[CommandSpec]:
    """The commands whose events are compared: every write command Redis has too."""
    return [s for s in _compared() if s.is_write]


def read_specs() -> list[CommandSpec]:
    """The read commands with keys, whose misses announce ``keymiss``."""
    return [s for s in _compared() if "readonly" in s.flags and s.key_specs]


def _compared() -> list[CommandSpec]:
    return [
        s
        for s in TABLE.all_specs()
        if not s.subcommands and s.name not in SKIP and s.group not in sweep.LEDIS_ONLY_GROUPS
    ]


def cases(specs: list[CommandSpec] | None = None) -> Iterator[Case]:
    for spec in write_specs() if specs is None else specs:
        for call in calls.calls(spec):
            args = calls.args_of(call)
            keys = calls.keys_of(call)
            payload_at = [i for i, p in enumerate(call) if p.kind == "payload"]
            names = list(keys)
            for variant in VARIANTS:
                if not names and variant != "typed":
                    continue
                types = dict(keys)
                call_args = args
                if variant == "missing":
                    types = dict.fromkeys(names, "")
                elif variant == "first-missing":
                    if len(names) < 2:
                        continue
                    types[names[0]] = ""
                elif variant == "last-missing":
                    if len(names) < 2:
                        continue
                    types[names[-1]] = ""
                elif variant == "last-other":
                    types[names[-1]] = sweep.OTHER_TYPE[types[names[-1]]]
                elif variant == "same":  # every key the same one (RENAME k k, LMOVE k k)
                    if len(names) < 2:
                        continue
                    call_args = [names[0] if a in keys else a for a in args]
                    types = {names[0]: keys[names[0]]}
                yield Case(spec, call_args, types, variant, payload_at)


def plan(case: Case, payload: bytes, flags: bytes = FLAGS) -> tuple[list[list[bytes]], int]:
    """The writer's pipeline for one case, and where the command's reply sits."""
    keys = list(case.key_types)
    cmds: list[list[bytes]] = [[b"SELECT", b"0"]]
    if keys:
        cmds.append([b"DEL", *keys])
    prepare = PREPARE_ONE if case.variant == "one" else sweep.PREPARE
    for key, kind in case.key_types.items():
        if kind:
            cmds += [[key if a == b"%k" else a for a in c] for c in prepare[kind]]
            if case.variant == "ttl":
                cmds.append([b"PEXPIRE", key, b"200000"])  # not what the calls set
    cmds.append([b"CONFIG", b"SET", b"notify-keyspace-events", flags])
    at = len(cmds)
    args = list(case.args)
    for i in case.payload_at:
        args[i] = payload
    cmds.append(args)
    cmds.append([b"CONFIG", b"SET", b"notify-keyspace-events", b""])
    if case.spec.name in sweep.RESETS:
        cmds += [[b"SELECT", b"0"], [b"FLUSHALL"]]
    elif keys:
        cmds.append([b"DEL", *keys])
    return cmds, at


class Listener:
    """A connection subscribed to every keyspace channel and to the marker channel."""

    def __init__(self, conn: sweep.Conn, resp: int = 2) -> None:
        self.conn = conn  # (a RESP3 push has the RESP2 message's shape, with ">" for "*")
        conn.pipeline([[b"HELLO", b"%d" % resp], [b"PSUBSCRIBE", b"__key*__:*"],
                       [b"SUBSCRIBE", MARK]])

    def until(self, mark: bytes) -> list[list[bytes]]:
        """Events per case up to the marker ``mark``: a list of (channel, message) lists,
        one per marker seen."""
        out: list[list[bytes]] = []
        current: list[bytes] = []
        conn = self.conn
        while True:
            end = reply_end(conn.buf) if conn.buf else -1  # type: ignore[arg-type]
            if end < 0:
                chunk = conn.sock.recv(1 << 20)  # TimeoutError: the events never came
                if not chunk:
                    raise ConnectionError("listener closed")
                conn.buf += chunk
                continue
            message = bytes(conn.buf[:end])
            del conn.buf[:end]
            parts = message.split(b"\r\n")
            if parts[2] == b"pmessage":
                current.append(parts[6] + b" " + parts[8])
            elif parts[2] == b"message":
                out.append(current)
                current = []
                if parts[6] == mark:
                    return out


@dataclass
class Result:
    cases: int = 0
    mismatches: list[str] = field(default_factory=list)
    hung: str | None = None


def _dump_payload(conn: sweep.Conn) -> bytes:
    dump = conn.pipeline([[b"SET", b"nt:payload", b"10"], [b"DUMP", b"nt:payload"],
                          [b"DEL", b"nt:payload"]])[1]
    return dump[dump.find(b"\r\n") + 2 : -2]


def run(ledis_port: int, redis_socket: str, deadline: float = 20.0, batch: int = 50,
        only: set[str] | None = None, flags: bytes = FLAGS,
        specs: list[CommandSpec] | None = None, resp: int = 2) -> Result:
    """Compare the events (with ``flags`` on) of the cases of ``specs`` (the write commands
    by default; ``only``: just these names)."""
    sides = {
        "ledis": (sweep.Conn(port=ledis_port, deadline=deadline),
                  Listener(sweep.Conn(port=ledis_port, deadline=deadline), resp)),
        "redis": (sweep.Conn(unix=redis_socket, deadline=deadline),
                  Listener(sweep.Conn(unix=redis_socket, deadline=deadline), resp)),
    }
    payloads = {name: _dump_payload(writer) for name, (writer, _l) in sides.items()}
    result = Result()
    todo = [c for c in cases(specs) if only is None or c.spec.name in only]
    try:
        for first in range(0, len(todo), batch):
            group = todo[first : first + batch]
            seen: dict[str, tuple[list[list[bytes]], list[bytes]]] = {}
            for name, (writer, listener) in sides.items():
                plans = [plan(c, payloads[name], flags) for c in group]
                cmds: list[list[bytes]] = []
                where = []
                for n, (pcmds, at) in enumerate(plans):
                    where.append(len(cmds) + at)
                    cmds += pcmds
                    cmds.append([b"PUBLISH", MARK, b"%d" % (first + n)])
                try:
                    replies = writer.pipeline(cmds)
                    events = listener.until(b"%d" % (first + len(group) - 1))
                except TimeoutError:
                    result.hung = f"{name}: no answer or events in time in the batch from " \
                                  f"{group[0].label()}"
                    return result
                seen[name] = (events, [replies[i] for i in where])
            ours, theirs = seen["ledis"], seen["redis"]
            for n, case in enumerate(group):
                result.cases += 1
                a, b = ours[1][n], theirs[1][n]
                if (case.args[0], case.args[-1]) in LATER_VERSIONS:
                    continue
                if a != b and not (case.spec.name in LOOSE_REPLY and a[:1] == b[:1] != b"-"):
                    result.mismatches.append(f"{case.label()}: reply redis {b[:100]!r} != "
                                             f"ledis {a[:100]!r}")
                if ours[0][n] != theirs[0][n]:
                    result.mismatches.append(
                        f"{case.label()}: events\n    redis {_show(theirs[0][n])}\n"
                        f"    ledis {_show(ours[0][n])}")
    finally:
        for writer, listener in sides.values():
            writer.close()
            listener.conn.close()
    return result


def _show(events: list[bytes]) -> str:
    return " | ".join(e.decode("latin-1") for e in events) or "(none)"


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from .servers import LedisServer, RedisServer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="*", help="only these commands")
    ap.add_argument("--keymiss", action="store_true", help="read commands, keymiss events")
    opts = ap.parse_args(argv)
    flags, specs = (b"KEm", read_specs()) if opts.keymiss else (FLAGS, None)
    with tempfile.TemporaryDirectory(prefix="nsweep-") as tmp:
        ledis = LedisServer(Path(tmp) / "ledis").start()
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            res = run(ledis.port, str(redis.socket), only=set(opts.commands) or None,
                      flags=flags, specs=specs)
        finally:
            ledis.kill9()
            redis.stop()
    for m in res.mismatches:
        print(m)
    print(f"cases {res.cases}, mismatches {len(res.mismatches)}, hung: {res.hung or 'no'}")
    return 1 if res.mismatches or res.hung else 0


if __name__ == "__main__":
    sys.exit(main())
