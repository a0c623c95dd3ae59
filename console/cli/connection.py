"""A small blocking RESP connection for the REPL and scripts, that remembers what to restore.

After a reconnect it authenticates and selects the database again, as redis-cli does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from stack.core.resp import INCOMPLETE, ErrorReply, ReplyParser, encode_command


class ConnectionLost(Exception):
    """The server went away (or could not be reached)."""


@dataclass
class Target:
    host: str = "127.0.0.1"
    port: int = 6380
    password: str | None = None
    user: str | None = None
    db: int = 0
    timeout: float | None = None
    socket_path: str | None = None  # a unix socket instead of host:port

    @property
    def address(self) -> str:
        return self.socket_path or f"{self.host}:{self.port}"


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock: socket.socket | None = None
        self.parser = ReplyParser()
        self.db = target.db
        self.in_transaction = False

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self) -> None:
        """Connect, then AUTH and SELECT as configured; raises ConnectionLost with the reason."""
        self.close()
        t = self.target
        try:
            if t.socket_path:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(t.timeout or 10)
                self.sock.connect(t.socket_path)
            else:
                self.sock = socket.create_connection((t.host, t.port), timeout=t.timeout or 10)
            self.sock.settimeout(t.timeout)
        except OSError as e:
            self.sock = None
            raise ConnectionLost(
                f"Could not connect to Redis at {t.address}: {_reason(e)}"
            ) from None
        self.parser = ReplyParser()
        self.in_transaction = False
        if t.password is not None:
            args = ["AUTH", t.password] if t.user is None else ["AUTH", t.user, t.password]
            reply = self.call(args)
            if isinstance(reply, ErrorReply):
                raise ConnectionLost(f"AUTH failed: {reply}")
        if self.db:
            reply = self.call(["SELECT", str(self.db)])
            if isinstance(reply, ErrorReply):
                self.db = 0

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def send(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionLost("not connected")
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.close()
            raise ConnectionLost(_reason(e)) from None

    def read_reply(self) -> object:
        while True:
            value = self.parser.get()
            if value is not INCOMPLETE:
                return value
            if self.sock is None:
                raise ConnectionLost("not connected")
            try:
                data = self.sock.recv(1 << 16)
            except OSError as e:
                self.close()
                raise ConnectionLost(_reason(e)) from None
            if not data:
                self.close()
                raise ConnectionLost("Server closed the connection")
            self.parser.feed(data)

    def call(self, args: list[str] | list[bytes]) -> object:
        """Send one command and return its reply, tracking SELECT / AUTH / MULTI state."""
        self.send(encode_command(args))
        reply = self.read_reply()
        self._track(args, reply)
        return reply

    def subscribe(self, args: list[bytes]) -> list[object]:
        """Send (P)SUBSCRIBE and read its confirmations (one per channel or pattern)."""
        self.send(encode_command(args))
        return [self.read_reply() for _ in range(max(1, len(args) - 1))]

    def _track(self, args: list[str] | list[bytes], reply: object) -> None:
        if isinstance(reply, ErrorReply) or not args:
            return
        name = _text(args[0]).lower()
        if name == "select" and len(args) == 2 and not self.in_transaction:
            self.db = int(_text(args[1]))
        elif name == "auth" and len(args) in (2, 3):
            self.target.password = _text(args[-1])
            self.target.user = _text(args[1]) if len(args) == 3 else None
        elif name == "multi":
            self.in_transaction = True
        elif name in ("exec", "discard"):
            self.in_transaction = False
        elif name == "reset":
            self.in_transaction = False
            self.db = 0
        self.target.db = self.db


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _reason(e: OSError) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "Connection refused"
    if isinstance(e, socket.timeout):
        return "Connection timed out"
    return e.strerror or str(e)
