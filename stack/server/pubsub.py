"""Publish/subscribe: channels and patterns, and delivery to subscribed clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.keypattern import compile_pattern
from stack.core.resp import Push, encode

if TYPE_CHECKING:
    from .client import Client
    from .server import Server


class PubSub:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.channels: dict[bytes, dict[Client, None]] = {}  # ordered sets
        self.patterns: dict[bytes, dict[Client, None]] = {}

    def subscribe(self, client: Client, name: bytes) -> bool:
        channel = name
        if channel in client.channels:
            return False
        client.channels[channel] = None
        self.channels.setdefault(channel, {})[client] = None
        return True

    def unsubscribe(self, client: Client, name: bytes) -> bool:
        channel = name
        if client.channels.pop(channel, 0) == 0:
            return False
        subscribers = self.channels.get(channel)
        if subscribers is not None:
            subscribers.pop(client, None)
            if not subscribers:
                del self.channels[channel]
        return True

    def psubscribe(self, client: Client, name: bytes) -> bool:
        pattern = name
        if pattern in client.patterns:
            return False
        client.patterns[pattern] = None
        self.patterns.setdefault(pattern, {})[client] = None
        return True

    def punsubscribe(self, client: Client, name: bytes) -> bool:
        pattern = name
        if client.patterns.pop(pattern, 0) == 0:
            return False
        subscribers = self.patterns.get(pattern)
        if subscribers is not None:
            subscribers.pop(client, None)
            if not subscribers:
                del self.patterns[pattern]
        return True

    def drop(self, client: Client) -> None:
        for channel in list(client.channels):
            self.unsubscribe(client, channel)
        for pattern in list(client.patterns):
            self.punsubscribe(client, pattern)

    def publish(self, channel: bytes, message: bytes) -> int:
        """Deliver to channel subscribers, then to matching patterns; returns receivers."""
        receivers = 0
        subscribers = self.channels.get(channel)
        if subscribers:
            message2 = encode([b"message", channel, message])
            message3 = encode(Push([b"message", channel, message]), resp3=True)
            for client in list(subscribers):
                self.server.deliver(client, message3 if client.resp3 else message2)
                receivers += 1
        for pattern, clients in list(self.patterns.items()):
            if compile_pattern(pattern)(channel):
                payload = [b"pmessage", pattern, channel, message]
                message2 = encode(payload)
                message3 = encode(Push(payload), resp3=True)
                for client in list(clients):
                    self.server.deliver(client, message3 if client.resp3 else message2)
                    receivers += 1
        return receivers
