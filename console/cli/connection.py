"""ledis-cli's connection: the core's blocking client (``stack.core.blocking_client``) with the
CLI's wording. The client's session remembers AUTH, SELECT and the transaction state, and a
reconnect restores them, as redis-cli does."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stack.core.blocking_client import BlockingClient
from stack.core.reply_parser import ErrorReply
from stack.core.resp_session import ConnectionLost, Endpoint, HandshakeError

__all__ = ["Connection", "ConnectionLost", "Target"]


@dataclass
class Target:
    host: str = "127.0.0.1"
    port: int = 6380
    password: str | None = None
    user: str | None = None
    db: int = 0
    timeout: float | None = None
    socket_path: str | None = None  # a unix socket instead of host:port
    protocol: int = 2  # 3: HELLO 3 on connecting (``-3``)

    @property
    def address(self) -> str:
        return self.socket_path or f"{self.host}:{self.port}"

    def endpoint(self) -> Endpoint:
        return Endpoint(
            host=self.host,
            port=self.port,
            unix_path=self.socket_path,
            username=self.user if self.password is not None else None,
            password=self.password,
            db=self.db,
            protocol=self.protocol,
        )


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Connection:
    def __init__(self, target: Target, warn: Callable[[str], None] = _stderr) -> None:
        self.target = target
        self.warn = warn  # where "AUTH failed: ..." and "SELECT 99 failed: ..." go
        self.client = BlockingClient(
            target.endpoint(), connect_timeout=target.timeout or 10, timeout=target.timeout
        )

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def sock(self) -> socket.socket | None:
        return self.client.sock

    @property
    def db(self) -> int:
        return self.client.session.db

    @property
    def in_transaction(self) -> bool:
        return self.client.session.in_multi

    def connect(self) -> None:
        """Connect, then AUTH and SELECT as configured; raises ConnectionLost with the reason.
        A refused AUTH or SELECT is only a warning, as in redis-cli: ``AUTH failed: ...`` and
        the connection goes on unauthenticated; ``SELECT 99 failed: ...`` and it stays on db 0
        (the commands then get the server's own answer, NOAUTH ...)."""
        session = self.client.session
        for _ in range(4):  # each retry drops the refused piece: AUTH, SELECT, HELLO 3, name
            try:
                self.client.connect()
                return
            except HandshakeError as e:
                refused = e
                if e.command == "SELECT":
                    self.warn(f"SELECT {session.db} failed: {e.reply}")
                    session.db = 0
                elif session.password is not None and e.command in ("AUTH", "HELLO"):
                    self.warn(f"AUTH failed: {e.reply}")
                    session.password = session.username = None
                    session.db = 0  # and, as redis-cli, no SELECT or HELLO 3 after it
                    session.protocol = 2
                elif e.command == "HELLO":
                    self.warn(f"HELLO failed: {e.reply}")
                    session.protocol = 2
                else:  # CLIENT SETNAME
                    session.client_name = None
        raise ConnectionLost(f"{refused.command} failed: {refused.reply}")

    def close(self) -> None:
        self.client.close()

    def call(self, args: list[str] | list[bytes]) -> object:
        """Send one command and return its reply (error replies as values)."""
        return self.client.call(*args)

    def subscribe(self, args: list[bytes]) -> list[object]:
        """Send (P)SUBSCRIBE and read its confirmations (one per channel or pattern)."""
        self.client.call(*args)
        return [self.client.read_push() for _ in range(max(1, len(args) - 1))]

    def read_message(self) -> object:
        """The next pub/sub message."""
        return self.client.read_push()

    def take_pushes(self) -> list[object]:
        """The pushes (RESP3 ``>``: tracking invalidations ...) read while waiting for replies."""
        pushes = list(self.client.pushes)
        self.client.pushes.clear()
        return pushes

    def monitor(self) -> Iterator[object]:
        """MONITOR's reply, then each line it streams (for ever: the caller stops reading)."""
        reply = self.client.call("MONITOR")
        yield reply
        if isinstance(reply, ErrorReply):
            return
        while True:
            yield self.client.read_push()  # lines answer no request: they come as pushes

    def fresh_connection(self) -> None:
        """A new connection, with the state restored but no subscriptions and no MONITOR
        (after Ctrl-C in a streaming mode)."""
        self.client.session.forget_subscriptions()
        self.connect()
