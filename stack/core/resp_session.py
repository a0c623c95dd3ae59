"""The protocol core of a RESP client, without I/O: what to send, which reply answers which
request, what is a push, and what to restore after a reconnect.

``resp_client.RespClient`` (asyncio) and ``blocking_client.BlockingClient`` (a socket) are thin
I/O around one ``Session``: they write the bytes it returns and feed it the bytes they read.

Replies are matched to requests in order (pipelining): ``send(args, token)`` queues the caller's
token, and ``receive(data)`` returns ``(token, reply)`` pairs, or ``(PUSH, message)`` for what
answers no request: RESP3 pushes (``>``), RESP2 pub/sub messages while subscribed, and anything
the server sends when no request waits (a replication stream). Error replies are values
(``ErrorReply``); the I/O layers decide whether to raise them.

The session remembers what a reconnect must restore (credentials, protocol, database, client
name, subscriptions), from the replies to AUTH, HELLO, SELECT, CLIENT SETNAME, (P)SUBSCRIBE,
MULTI/EXEC and RESET, and ``handshake()`` gives the commands that restore it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .reply_parser import INCOMPLETE, ErrorReply, ReplyParser
from .resp import Push, encode_command

Arg = bytes | str | int


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects and how it introduces itself."""

    host: str = "127.0.0.1"
    port: int = 6379
    unix_path: str | None = None  # a unix socket instead of host:port
    username: str | None = None  # AUTH user pass (ACL); None = the default user
    password: str | None = None
    db: int = 0
    protocol: int = 2  # 3: HELLO 3 on connect, replies and pushes in RESP3
    client_name: str | None = None

    @property
    def address(self) -> str:
        return self.unix_path or f"{self.host}:{self.port}"


class ClientError(Exception):
    """Base of the client's errors."""


class ConnectionLost(ClientError, ConnectionError):
    """The connection could not be made, or broke: the outcome of requests in flight is
    unknown."""


class RequestTimeout(ClientError, TimeoutError):
    """No reply within the request's timeout (the connection stays in step: a late reply is
    dropped)."""


class ServerError(ClientError):
    """The server answered with an error reply."""

    def __init__(self, reply: ErrorReply | str) -> None:
        super().__init__(str(reply))
        self.reply = ErrorReply(reply)

    @property
    def code(self) -> str:
        return self.reply.code


class HandshakeError(ServerError):
    """AUTH, HELLO, CLIENT SETNAME or SELECT was refused while connecting; ``command`` names
    which (``AUTH``, ``HELLO`` ...)."""

    def __init__(self, reply: ErrorReply | str, command: str = "") -> None:
        super().__init__(reply)
        self.command = command


class _Push:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PUSH"


PUSH: object = _Push()  # the token of a reply that answers no request

_SUBSCRIBE = {b"subscribe": 0, b"psubscribe": 1, b"ssubscribe": 2}
_UNSUBSCRIBE = {b"unsubscribe": 0, b"punsubscribe": 1, b"sunsubscribe": 2}
_PUBSUB_KINDS = frozenset([b"message", b"pmessage", b"smessage", *_SUBSCRIBE, *_UNSUBSCRIBE])
_TRACKED = frozenset(
    [b"select", b"hello", b"auth", b"client", b"multi", b"exec", b"discard", b"reset"]
)


def _bytes(a: Arg) -> bytes:
    return a if isinstance(a, bytes) else str(a).encode()


class Session:
    """One client's protocol state; ``connection_made()`` starts each new connection."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        raw: bool = False,
        max_bulk: int = 512 * 1024 * 1024,
        max_depth: int = 64,
    ) -> None:
        self.endpoint = endpoint
        self.raw = raw
        self._parser_limits = {"max_bulk": max_bulk, "max_depth": max_depth}
        # What a reconnect restores:
        self.username = endpoint.username
        self.password = endpoint.password
        self.protocol = endpoint.protocol
        self.db = endpoint.db
        self.client_name = endpoint.client_name
        self.subscriptions: tuple[set[bytes], set[bytes], set[bytes]] = (set(), set(), set())
        # Per connection:
        self.in_multi = False
        self.pubsub = False  # RESP2: subscribed, so pub/sub arrays are pushes
        self.parser = ReplyParser(raw=raw, **self._parser_limits)
        self._pending: deque[tuple[object, list[bytes] | None]] = deque()

    # -- connections ----------------------------------------------------------------------

    def connection_made(self) -> None:
        self.parser = ReplyParser(raw=self.raw, **self._parser_limits)
        self._pending.clear()
        self.in_multi = False
        self.pubsub = False

    def connection_lost(self) -> list[object]:
        """The tokens of requests that will never be answered (fail them)."""
        tokens = [t for t, _ in self._pending]
        self._pending.clear()
        return tokens

    def handshake(self) -> list[list[bytes]]:
        """Commands that restore the remembered state on a new connection, in order; each
        answers with a reply (``send`` them), except the trailing subscriptions (``subscriptions
        _handshake``)."""
        out: list[list[bytes]] = []
        if self.protocol != 2:
            hello = [b"HELLO", str(self.protocol).encode()]
            if self.password is not None:
                hello += [b"AUTH", (self.username or "default").encode(), self.password.encode()]
            if self.client_name:
                hello += [b"SETNAME", self.client_name.encode()]
            out.append(hello)
        else:
            if self.password is not None:
                auth = [b"AUTH", self.password.encode()]
                if self.username:
                    auth.insert(1, self.username.encode())
                out.append(auth)
            if self.client_name:
                out.append([b"CLIENT", b"SETNAME", self.client_name.encode()])
        if self.db:
            out.append([b"SELECT", str(self.db).encode()])
        return out

    def forget_subscriptions(self) -> None:
        for names in self.subscriptions:
            names.clear()

    def resubscribe(self) -> list[list[bytes]]:
        """(P|S)SUBSCRIBE commands for the remembered subscriptions (no replies: pushes)."""
        out = []
        for names, verb in zip(self.subscriptions, _SUBSCRIBE, strict=True):
            if names:
                out.append([verb.upper(), *sorted(names)])
        return out

    # -- requests -------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def send(self, args: Sequence[Arg], token: object) -> bytes:
        """The bytes of a request whose reply will come back with ``token``."""
        items = [_bytes(a) for a in args]
        name = items[0].lower() if items else b""
        if name in _SUBSCRIBE or name in _UNSUBSCRIBE:
            raise ValueError("the subscribe commands have no reply of their own: send_no_reply")
        self._pending.append((token, items if name in _TRACKED else None))
        return encode_command(items)

    def send_encoded(self, name: bytes, data: bytes, token: object) -> bytes:
        """``data``, a request already encoded (a caller that builds a long one in one pass),
        whose reply will come back with ``token``: ``name`` is its command, lowercase, one
        that neither changes the session's state nor is answered by pushes."""
        if name in _TRACKED or name in _SUBSCRIBE or name in _UNSUBSCRIBE:
            raise ValueError(f"{name!r} changes the session: send it with send()")
        self._pending.append((token, None))
        return data

    @staticmethod
    def answered_by_pushes(args: Sequence[Arg]) -> bool:
        """True for the subscribe family: their confirmations come as pushes."""
        name = _bytes(args[0]).lower() if args else b""
        return name in _SUBSCRIBE or name in _UNSUBSCRIBE

    def send_no_reply(self, args: Sequence[Arg]) -> bytes:
        """The bytes of a command that gets no reply of its own (REPLCONF ACK, and the
        subscribe family, whose confirmations are pushes)."""
        items = [_bytes(a) for a in args]
        name = items[0].lower() if items else b""
        kind = _SUBSCRIBE.get(name)
        if kind is not None:
            self.subscriptions[kind].update(items[1:])
            self.pubsub = True
        else:
            kind = _UNSUBSCRIBE.get(name)
            if kind is not None:
                if len(items) > 1:
                    self.subscriptions[kind].difference_update(items[1:])
                else:
                    self.subscriptions[kind].clear()
        return encode_command(items)

    # -- replies --------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[tuple[object, object]]:
        """Feed bytes from the server; the replies now complete, each with its token (or
        PUSH). Raises ProtocolError on bytes that are not RESP (drop the connection)."""
        parser = self.parser
        parser.feed(data)
        out: list[tuple[object, object]] = []
        pending = self._pending
        while (value := parser.get()) is not INCOMPLETE:
            if self._is_push(value) or not pending:
                out.append((PUSH, value))
                continue
            token, tracked = pending.popleft()
            if tracked is not None:
                self._track(tracked, value)
            out.append((token, value))
        return out

    def _is_push(self, value: object) -> bool:
        if self.raw:
            if not isinstance(value, bytes) or not value:
                return False
            if value[0] == 62:  # ">"
                return True
            if not self.pubsub or value[0] != 42:
                return False
            probe = ReplyParser()
            probe.feed(value)
            value = probe.get()
        elif type(value) is Push:
            return True
        if not self.pubsub or not isinstance(value, list) or not value:
            return False
        kind = value[0]
        if not isinstance(kind, bytes) or kind.lower() not in _PUBSUB_KINDS:
            return False
        if kind.lower() in _UNSUBSCRIBE and len(value) == 3 and value[2] == 0:
            self.pubsub = False
        return True

    def _track(self, args: list[bytes], reply: object) -> None:
        """Remember what a successful state-changing command changed."""
        if isinstance(reply, ErrorReply):
            return
        if self.raw and reply[:1] in (b"-", b"!"):  # type: ignore[index]
            return
        name = args[0].lower()
        if name == b"select" and len(args) == 2 and not self.in_multi:
            if args[1].isdigit():
                self.db = int(args[1])
        elif name == b"auth" and len(args) in (2, 3):
            self.password = args[-1].decode("utf-8", "surrogateescape")
            self.username = args[1].decode("utf-8", "surrogateescape") if len(args) == 3 else None
        elif name == b"hello" and len(args) >= 2:
            if args[1].isdigit():
                self.protocol = int(args[1])
            self._track_hello_options(args[2:])
        elif name == b"client" and len(args) == 3 and args[1].lower() == b"setname":
            self.client_name = args[2].decode("utf-8", "surrogateescape") or None
        elif name == b"multi":
            self.in_multi = True
        elif name in (b"exec", b"discard"):
            self.in_multi = False
        elif name == b"reset":
            self.in_multi = self.pubsub = False
            self.db = 0
            self.protocol = 2
            self.client_name = None
            for names in self.subscriptions:
                names.clear()

    def _track_hello_options(self, options: Iterable[bytes]) -> None:
        opts = list(options)
        i = 0
        while i < len(opts):
            word = opts[i].lower()
            if word == b"auth" and i + 2 < len(opts):
                self.username = opts[i + 1].decode("utf-8", "surrogateescape")
                self.password = opts[i + 2].decode("utf-8", "surrogateescape")
                i += 3
            elif word == b"setname" and i + 1 < len(opts):
                self.client_name = opts[i + 1].decode("utf-8", "surrogateescape") or None
                i += 2
            else:
                i += 1


def connect_error_reason(e: OSError) -> str:
    """Why a connection failed, in redis-cli's words."""
    if isinstance(e, ConnectionRefusedError):
        return "Connection refused"
    if isinstance(e, TimeoutError):
        return "Connection timed out"
    return e.strerror or str(e)


def handshake_error(reply: object, cmd: Sequence[bytes]) -> HandshakeError:
    """The error for a handshake command the server refused (``reply`` decoded or raw)."""
    text = reply.decode("utf-8", "replace")[1:].strip() if isinstance(reply, bytes) else str(reply)
    return HandshakeError(text, cmd[0].decode("latin-1").upper())
