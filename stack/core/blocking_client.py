"""A blocking facade over the client's protocol core (``resp_session.Session``), for programs
without an event loop: ledis-cli and the operator tools. Same session, same handshake and
restore rules as ``resp_client.RespClient``; only the I/O differs (a plain socket)."""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence

from .reply_parser import ErrorReply
from .resp import ProtocolError
from .resp_session import (
    PUSH,
    Arg,
    ConnectionLost,
    Endpoint,
    HandshakeError,
    ServerError,
    Session,
    connect_error_reason,
    handshake_error,
)

__all__ = ["BlockingClient", "ConnectionLost", "Endpoint", "HandshakeError", "ServerError"]


class _Token:
    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = False
        self.value: object = None


class BlockingClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connect_timeout: float = 10.0,
        timeout: float | None = None,
        raw: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.timeout = timeout  # per read; None waits for ever (BLPOP, SUBSCRIBE)
        self.session = Session(endpoint, raw=raw)
        self.sock: socket.socket | None = None
        self.pushes: deque[object] = deque()

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self) -> None:
        """Connect and restore the session (AUTH, HELLO, SETNAME, SELECT, subscriptions);
        raises ConnectionLost (with redis-cli's wording) or HandshakeError."""
        self.close()
        ep = self.endpoint
        try:
            if ep.unix_path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                try:
                    sock.connect(ep.unix_path)
                except OSError:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((ep.host, ep.port), timeout=self.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
        except OSError as e:
            raise ConnectionLost(
                f"Could not connect to Redis at {ep.address}: {connect_error_reason(e)}"
            ) from None
        self.sock = sock
        self.session.connection_made()
        commands = self.session.handshake()
        for cmd, reply in zip(commands, self.pipeline(commands), strict=True):
            if isinstance(reply, ErrorReply):
                self.close()
                raise handshake_error(reply, cmd)
        for cmd in self.session.resubscribe():
            self.send(self.session.send_no_reply(cmd))

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            self.session.connection_lost()
            sock.close()

    # -- requests -------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionLost("not connected")
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.close()
            raise ConnectionLost(connect_error_reason(e)) from None

    def call(self, *args: Arg) -> object:
        """One request's reply (an error reply is an ErrorReply value). The subscribe family
        returns None: its confirmations are pushes (``read_push``)."""
        return self.pipeline([args])[0]

    def execute(self, *args: Arg) -> object:
        """One request's reply; an error reply raises ServerError."""
        reply = self.call(*args)
        if isinstance(reply, ErrorReply):
            raise ServerError(reply)
        return reply

    def pipeline(self, commands: Sequence[Sequence[Arg]]) -> list[object]:
        """Send all, then read the replies in order."""
        tokens: list[_Token | None] = []
        parts = []
        for cmd in commands:
            if Session.answered_by_pushes(cmd):
                parts.append(self.session.send_no_reply(cmd))
                tokens.append(None)
            else:
                new = _Token()
                parts.append(self.session.send(cmd, new))
                tokens.append(new)
        self.send(b"".join(parts))
        out: list[object] = []
        for token in tokens:
            if token is None:
                out.append(None)
                continue
            while not token.done:
                self._read()
            out.append(token.value)
        return out

    def send_no_reply(self, *args: Arg) -> None:
        self.send(self.session.send_no_reply(args))

    def read_push(self) -> object:
        """The next push (pub/sub message, subscription confirmation ...), waiting for it."""
        while not self.pushes:
            self._read()
        return self.pushes.popleft()

    def _read(self) -> None:
        if self.sock is None:
            raise ConnectionLost("not connected")
        try:
            data = self.sock.recv(1 << 16)
        except OSError as e:
            self.close()
            raise ConnectionLost(connect_error_reason(e)) from None
        if not data:
            self.close()
            raise ConnectionLost("Server closed the connection")
        try:
            replies = self.session.receive(data)
        except ProtocolError as e:
            self.close()
            raise ConnectionLost(e.log or "bad reply from server") from None
        for token, value in replies:
            if token is PUSH:
                self.pushes.append(value)
            else:
                token.done = True  # type: ignore[attr-defined]
                token.value = value  # type: ignore[attr-defined]
