"""A generated sweep of argument syntax: every command of the command table called wrongly in
every way its argument tree suggests, against real Redis and ledis-server in the same run.

From each call ``calls.py`` builds (every argument valid), the sweep derives broken ones:

* ``misspelled``: a keyword (``NX``, ``LIMIT``, ``WITHSCORES``...) with a letter too many,
  and replaced by an unknown word;
* ``repeated``: an optional argument or block given twice (``SET k v NX NX``, two LIMITs);
* ``no-value``: a keyword whose value is missing (``SET k v EX``, ``LIMIT 0``), at the end
  and in the middle of the call;
* ``numkeys``: a key count that disagrees with the keys that follow (one more, one fewer,
  0, -1, a huge one);
* ``arity``: the last argument dropped, an extra argument added;
* ``conflicting``: two choices of one option at once (``SET k v NX XX``, ``EX 1 PX 1``);
* ``combined``: two options at once, which may or may not go together.

The broken calls with keywords and key counts are tried on a missing first key and on one of
another type as well (Redis checks syntax, existence and type in an order of its own).

Each case prepares the call's keys with the types the command expects, runs the call, and
reads back the type of each key (a failed call must change nothing), in one pipeline on each
server. Where either server answers an error, both must answer the same bytes; where both
accept a call the replies are not compared here (the differential tests and the numeric sweep
do that), except for their kind. A reply later than the deadline is a hang and fails the run.

``python -m tests.syntax_sweep [COMMAND...]`` runs it against servers it starts and prints
what differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stack.core.commands import TABLE, CommandSpec

from . import calls, sweep
from .calls import Call, Part

# Never called: they change the server or the connection beyond what a case can undo, or
# wait for other processes.
SKIP = sweep.SKIP | {"quit", "monitor", "client|reply", "auth", "hello"}
# One reply per channel: a count the sweep cannot know (their syntax is a list of names).
SKIP |= {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"}
# Where ledis takes what later Redis versions take (docs/core.md): ZRANK/ZREVRANK WITHSCORE
# (7.2), HSCAN NOVALUES (7.4).
# A call of more arguments than Redis 7.0's arity for these is not compared.
LATER_VERSIONS = {"zrank": 3, "zrevrank": 3, "hscan": None}
# Cases that leave the connection in another state: put it back after them.
RESET_AFTER = frozenset({"subscribe", "psubscribe", "ssubscribe", "select", "client|setname",
                         "client|no-evict", "multi", "watch", "reset"})


@dataclass
class Case:
    spec: CommandSpec
    how: str
    args: list[bytes]
    key_types: dict[bytes, str]
    payload_at: list[int]

    def label(self) -> str:
        shown = " ".join(a.decode("latin-1") if a else '""' for a in self.args)
        return f"{shown}  [{self.how}]"


def specs() -> list[CommandSpec]:
    return [
        s
        for s in TABLE.all_specs()
        if not s.subcommands and s.name not in SKIP and s.group not in sweep.LEDIS_ONLY_GROUPS
    ]


def _broken(call: Call, pure: bytes | None) -> Iterator[tuple[str, list[Part]]]:
    """The broken variants of one valid call (``pure``: a keyword of the command that takes
    no value, to put where a value is missing in the middle of a call)."""
    parts = list(call)
    words = sum(1 for p in parts if p.kind == "word")
    for i, p in enumerate(parts):
        if p.kind in ("token", "pure"):
            yield "misspelled", [*parts[:i], Part(p.text + b"X", "value"), *parts[i + 1:]]
            yield "misspelled", [*parts[:i], Part(b"FOO", "value"), *parts[i + 1:]]
        if p.kind == "token":
            end = i + 1
            while end < len(parts) and parts[end].group == p.group:
                end += 1
            if end > i + 1:
                yield "no-value", parts[: end - 1] + parts[end:]  # the last value missing
                yield "no-value", parts[: i + 1] + parts[end:]  # every value missing
                if pure is not None:  # ... and a keyword where it should be
                    yield "no-value", [*parts[: i + 1], Part(pure, "pure"), *parts[end:]]
        if p.kind == "numkeys":
            n = int(p.text)
            for wrong in (n + 1, n - 1, 0, -1, 2**31, 2**63):
                if wrong != n:
                    yield "numkeys", [*parts[:i], Part(b"%d" % wrong, "number"), *parts[i + 1 :]]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(parts):
        if p.optional and p.group:
            groups.setdefault(p.group, []).append(i)
    for positions in groups.values():
        last = positions[-1] + 1
        again = [parts[i] for i in positions]
        yield "repeated", parts[:last] + again + parts[last:]
    if len(parts) > words:
        yield "arity", parts[:-1]
    yield "arity", [*parts, Part(b"extra", "value")]


# Broken calls also tried with the first key missing and of another type: Redis checks the
# syntax, the key and its type in an order of its own for each command.
KEY_VARIANTS = frozenset({"misspelled", "no-value", "conflicting", "combined", "numkeys"})


def cases(only: set[str] | None = None, redis_has: set[str] | None = None) -> Iterator[Case]:
    """The broken calls (``redis_has``: the command names Redis knows; others are skipped)."""
    seen: set[tuple[bytes, ...]] = set()
    for spec in specs():
        if only is not None and spec.name not in only:
            continue
        if redis_has is not None and spec.name.split("|")[0] not in redis_has:
            continue
        valid = calls.calls(spec)
        pure = next((p.text for c in valid for p in c if p.kind == "pure"), None)
        broken = [b for call in valid for b in _broken(call, pure)]
        broken += [("conflicting", list(c)) for c in calls.conflicting(spec)]
        broken += [("combined", list(c)) for c in calls.combined(spec)]
        for how, parts in broken:
            args = calls.args_of(tuple(parts))
            if spec.name in LATER_VERSIONS:
                most = LATER_VERSIONS[spec.name]
                if (most is not None and len(args) > most) or b"NOVALUES" in args:
                    continue
            if tuple(args) in seen:
                continue
            seen.add(tuple(args))
            keys = calls.keys_of(tuple(parts))
            payload_at = [i for i, p in enumerate(parts) if p.kind == "payload"]
            yield Case(spec, how, args, keys, payload_at)
            if how in KEY_VARIANTS and keys:
                first = next(iter(keys))
                yield Case(spec, how + ", first key missing", args, {**keys, first: ""},
                           payload_at)
                other = {**keys, first: sweep.OTHER_TYPE[keys[first]]}
                yield Case(spec, how + ", first key of another type", args, other, payload_at)


def plan(case: Case, payload: bytes, resp: int = 2) -> tuple[list[list[bytes]], int]:
    keys = list(case.key_types)
    cmds: list[list[bytes]] = [[b"SELECT", b"0"]]
    if keys:
        cmds.append([b"DEL", *keys])
    for key, kind in case.key_types.items():
        if kind:
            cmds += [[key if a == b"%k" else a for a in c] for c in sweep.PREPARE[kind]]
    args = list(case.args)
    for i in case.payload_at:
        args[i] = payload
    at = len(cmds)
    cmds.append(args)
    cmds += [[b"TYPE", key] for key in keys]
    name = case.spec.name
    hello = [b"HELLO", b"%d" % resp]
    if name in RESET_AFTER or case.spec.group == "pubsub":
        cmds += [[b"RESET"], hello]  # RESET goes back to RESP2
    if name.split("|")[0] in sweep.RESETS:
        cmds += [hello, [b"SELECT", b"0"], [b"FLUSHALL"]]
    elif keys:
        cmds.append([b"DEL", *keys])
    return cmds, at


@dataclass
class Result:
    cases: int = 0
    errors: int = 0  # cases where Redis answered an error
    mismatches: list[str] = field(default_factory=list)
    hung: str | None = None


def _payload(conn: sweep.Conn) -> bytes:
    dump = conn.pipeline([[b"SET", b"sx:payload", b"10"], [b"DUMP", b"sx:payload"],
                          [b"DEL", b"sx:payload"]])[1]
    return dump[dump.find(b"\r\n") + 2 : -2]


def run(ledis_port: int, redis_socket: str, deadline: float = 20.0, batch: int = 60,
        only: set[str] | None = None, resp: int = 2) -> Result:
    ours = sweep.Conn(port=ledis_port, deadline=deadline)
    theirs = sweep.Conn(unix=redis_socket, deadline=deadline)
    for conn in (ours, theirs):
        conn.pipeline([[b"HELLO", b"%d" % resp]])
    payloads = {"ours": _payload(ours), "theirs": _payload(theirs)}
    result = Result()
    listing = theirs.pipeline([[b"COMMAND", b"LIST"]])[0].split(b"\r\n")[2::2]
    todo = list(cases(only, {name.decode().lower() for name in listing}))
    try:
        for first in range(0, len(todo), batch):
            group = todo[first : first + batch]
            replies = {}
            for name, conn in (("ours", ours), ("theirs", theirs)):
                plans = [plan(c, payloads[name], resp) for c in group]
                cmds = [cmd for p, _at in plans for cmd in p]
                try:
                    got = conn.pipeline(cmds)
                except TimeoutError as e:
                    done = e.args[0] if e.args else 0
                    for case, (p, _at) in zip(group, plans, strict=True):
                        if done < len(p):
                            result.hung = f"{name} did not answer in time: {case.label()}"
                            return result
                        done -= len(p)
                    result.hung = f"{name} did not answer in time"
                    return result
                pos, per_case = 0, []
                for case, (p, at) in zip(group, plans, strict=True):
                    types = got[pos + at + 1 : pos + at + 1 + len(case.key_types)]
                    per_case.append((got[pos + at], types))
                    pos += len(p)
                replies[name] = per_case
            for case, (mine, my_types), (other, other_types) in zip(
                group, replies["ours"], replies["theirs"], strict=True
            ):
                result.cases += 1
                if other[:1] == b"-":
                    result.errors += 1
                if (mine[:1] == b"-" or other[:1] == b"-") and mine != other:
                    result.mismatches.append(
                        f"{case.label()}: redis {other[:160]!r} != ledis {mine[:160]!r}")
                elif mine[:1] != other[:1]:
                    result.mismatches.append(
                        f"{case.label()}: reply kind redis {other[:60]!r} != ledis {mine[:60]!r}")
                elif other[:1] == b"-" and my_types != other_types:
                    result.mismatches.append(f"{case.label()}: a failed call changed a key: "
                                             f"redis {other_types} != ledis {my_types}")
    finally:
        ours.close()
        theirs.close()
    return result


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from .servers import LedisServer, RedisServer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commands", nargs="*", help="only these commands (lower case)")
    ap.add_argument("--no-lane", action="store_true", help="ledis without the C fast lane")
    opts = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="syntax-") as tmp:
        env = {"LEDIS_FASTLANE": "0"} if opts.no_lane else None
        ledis = LedisServer(Path(tmp) / "ledis", env=env).start()
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            res = run(ledis.port, str(redis.socket), only=set(opts.commands) or None)
        finally:
            ledis.kill9()
            redis.stop()
    for m in res.mismatches:
        print(m)
    print(f"cases {res.cases} (Redis refused {res.errors}), mismatches {len(res.mismatches)}, "
          f"hung: {res.hung or 'no'}")
    return 1 if res.mismatches or res.hung else 0


if __name__ == "__main__":
    sys.exit(main())
