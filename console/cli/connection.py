"""ledis-cli's connection: the core's blocking client (``stack.core.blocking_client``) with the
CLI's wording. The client's session remembers AUTH, SELECT and the transaction state, and a
reconnect restores them, as redis-cli does."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from stack.core.blocking_client import BlockingClient
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
        )


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
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
        """Connect, then AUTH and SELECT as configured; raises ConnectionLost with the reason."""
        try:
            self.client.connect()
        except HandshakeError as e:
            if e.command != "SELECT":
                raise ConnectionLost(f"AUTH failed: {e.reply}") from None
            self.client.session.db = 0  # as before: a database that is not there is dropped
            self.client.connect()

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

    def leave_subscribed_mode(self) -> None:
        """A fresh connection, with the rest of the state restored but no subscriptions."""
        self.client.session.forget_subscriptions()
        self.connect()
