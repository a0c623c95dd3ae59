"""ACL differential testing: a private ledis-server and a private redis-server (both with an ACL
file), and a pair of connections that sends every call to both and compares the replies.

The servers are private because ACL state is global: users, the default user's password and
the ACL log would leak into other tests through the session servers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from stack.core.reply_parser import ErrorReply, ReplyParser

from .respclient import RawClient
from .servers import LedisServer, RedisServer

Call = tuple[str | bytes | int, ...]


def parse(raw: bytes) -> object:
    p = ReplyParser()
    p.feed(raw)
    return p.get()


def rule_tokens(text: bytes) -> tuple[list[bytes], list[bytes]]:
    """A description's rules: everything but single-command rules in order, and the
    single-command rules as a sorted list (Redis lists them in its hash table's order)."""
    tokens = text.split(b" ")
    single = [t for t in tokens if t[:1] in (b"+", b"-") and t[1:2] != b"@"]
    return [t for t in tokens if t not in single], sorted(single)


def normalise_description(line: bytes) -> object:
    """An ACL LIST line (or a GETUSER commands field), selectors described one by one."""
    parts = re.split(rb" \(|\)", line)
    return [rule_tokens(p) for p in parts if p]


class Both:
    """Two connections, one to each server, used in step."""

    def __init__(self, ledis: LedisServer, redis: RedisServer, resp: int) -> None:
        self.ours = RawClient(ledis.port)
        self.theirs = RawClient(unix=str(redis.socket))
        self.resp = resp
        self.ledis_file = ""
        self.redis_file = ""

    def raw(self, *args: str | bytes | int) -> tuple[bytes, bytes]:
        return self.ours.call(*args), self.theirs.call(*args)

    def call(
        self,
        *args: str | bytes | int,
        norm: Callable[[object], object] | None = None,
        replies: int = 1,
    ) -> object:
        """Send to both; the replies must be equal (after ``norm``, when given). Returns
        Redis's reply, parsed. ``replies``: how many the call gets (SUBSCRIBE a b: 2)."""
        ours, theirs = self.raw(*args)
        for _ in range(replies - 1):
            ours += self.ours.read_reply()
            theirs += self.theirs.read_reply()
        if norm is None:
            ours = ours.replace(self.ledis_file.encode(), b"<aclfile>") if self.ledis_file else ours
            theirs = (
                theirs.replace(self.redis_file.encode(), b"<aclfile>")
                if self.redis_file
                else theirs
            )
            assert ours == theirs, f"{args!r}: redis {theirs!r} != ledis {ours!r}"
            return parse(theirs)
        a, b = norm(parse(ours)), norm(parse(theirs))
        assert a == b, f"{args!r}: redis {b!r} != ledis {a!r}"
        return parse(theirs)

    def hello(self) -> None:
        for c in (self.ours, self.theirs):
            assert c.call("HELLO", self.resp)[:1] in (b"%", b"*")

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


def hello_norm(reply: object) -> object:
    """HELLO's map without the connection id (each server numbers its own)."""
    if isinstance(reply, list):
        out = list(reply)
        if b"id" in out:
            out[out.index(b"id") + 1] = 0
        return (type(reply).__name__, out)
    return reply


def getuser_norm(reply: object) -> object:
    if not isinstance(reply, list):
        return reply
    out: list[object] = []
    for i, item in enumerate(reply):
        if i % 2 and reply[i - 1] == b"commands":
            out.append(rule_tokens(item))  # type: ignore[arg-type]
        elif i % 2 and reply[i - 1] == b"selectors":
            out.append([getuser_norm(s) for s in item])  # type: ignore[attr-defined]
        elif i % 2 and reply[i - 1] == b"flags":
            out.append((type(item).__name__, list(item)))  # type: ignore[call-overload]
        else:
            out.append(item)
    return (type(reply).__name__, out)


def list_norm(reply: object) -> object:
    assert isinstance(reply, list), reply
    return [normalise_description(line) for line in reply]


def log_norm(reply: object) -> object:
    """ACL LOG entries: every field but age-seconds (its type only) and client-info (the
    names of its first fields only: each server describes a client its own way)."""
    if not isinstance(reply, list):
        return reply
    entries = []
    for entry in reply:
        fields = list(entry)
        out: dict[bytes, object] = {}
        for k, v in zip(fields[::2], fields[1::2], strict=True):
            if k == b"age-seconds":
                out[k] = (type(v).__name__, float(v) >= 0)
            elif k == b"client-info":
                out[k] = [f.split(b"=")[0] for f in v.split()][:3]
            else:
                out[k] = v
        entries.append((type(entry).__name__, list(out), out))
    return entries


def error_norm(reply: object) -> object:
    return type(reply).__name__ if isinstance(reply, ErrorReply) else reply


def pair_servers(root: Path) -> Iterator[tuple[LedisServer, RedisServer, Path, Path]]:
    """A ledis-server and a redis-server, each with an (empty) ACL file of its own."""
    (root / "ledis").mkdir(parents=True)
    (root / "redis").mkdir(parents=True)
    ledis_acl = root / "ledis" / "users.acl"
    redis_acl = root / "redis" / "users.acl"
    ledis_acl.write_text("")
    redis_acl.write_text("")
    ledis = LedisServer(root / "ledis", "--aclfile", str(ledis_acl)).start()
    redis = RedisServer(
        root / "redis", "--enable-debug-command", "yes", "--aclfile", str(redis_acl)
    ).start()
    try:
        yield ledis, redis, ledis_acl, redis_acl
    finally:
        redis.stop()
        assert ledis.stop() == 0, ledis.log()
