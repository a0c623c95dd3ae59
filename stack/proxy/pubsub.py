"""Pub/sub through the proxy: one node carries every channel.

Channels are not keys, so they have no slot: all pub/sub goes through the default node (the
master of the lowest group that owns slots). PUBLISH and PUBSUB are forwarded there like any
command; a client's first SUBSCRIBE or PSUBSCRIBE opens a dedicated link to it for that
client, and from then on:

- RESP2: every command of the client goes to that link and everything the node sends on it
  goes to the client as it comes (confirmations, messages, the errors a subscribed RESP2
  client gets for other commands), exactly as if the client spoke to the node. After an
  UNSUBSCRIBE or PUNSUBSCRIBE the proxy sends a marker PING behind it and holds the client's
  next commands until the marker's answer shows whether any subscription is left; with none
  left the link is closed and the client's commands are routed again.
- RESP3: only (P)(UN)SUBSCRIBE go to the link; pushes from it go to the client as they come,
  and every other command is routed as usual.

If that node goes away (the link breaks, or the map names another default node) the client
is disconnected, as a server's subscribers are when it goes away, so that it subscribes
again wherever the channels are now.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from stack.core.resp import encode

from .backend import Backend, Link, encode_requests
from .replies import CLUSTERDOWN

if TYPE_CHECKING:
    from .client import Client
    from .rules import Rule

log = logging.getLogger(__name__)

PUBSUB_COMMANDS = frozenset({"subscribe", "psubscribe", "unsubscribe", "punsubscribe"})
_UNSUBSCRIBES = frozenset({"unsubscribe", "punsubscribe"})
_ZERO_LEFT = (b"*3\r\n$11\r\nunsubscribe\r\n", b"*3\r\n$12\r\npunsubscribe\r\n")


class Subscription:
    def __init__(self, client: Client, backend: Backend, link: Link) -> None:
        self.client = client
        self.backend = backend
        self.link = link
        self.marker = b"ledis-proxy:%d" % client.id
        self.marker_replies = (
            b"$%d\r\n%b\r\n" % (len(self.marker), self.marker),
            b"*2\r\n$4\r\npong\r\n$%d\r\n%b\r\n" % (len(self.marker), self.marker),
        )
        self.none_left = False
        link.stream = self.received
        link.on_close = self.closed

    def received(self, replies: list[bytes]) -> None:
        c = self.client
        out = []
        for raw in replies:
            if raw in self.marker_replies:
                self._marker(raw)
                continue
            if raw.startswith(_ZERO_LEFT):
                self.none_left = raw.endswith(b":0\r\n")
            elif raw[:2] == b"*3":
                self.none_left = False
            out.append(raw)
        if out:
            c.write_raw(b"".join(out))

    def _marker(self, raw: bytes) -> None:
        c = self.client
        if raw == self.marker_replies[0] or self.none_left:  # nothing subscribed any more
            c.sub = None
            self.link.on_close = None
            self.backend.release(self.link)
        if c.stall == 2:
            c.stall = 0
            asyncio.get_running_loop().call_soon(c.process)

    def closed(self, link: Link) -> None:
        c = self.client
        if c.sub is self and not c.closing:
            log.info("client %s: its pub/sub node %s went away", c.addr, self.backend.addr)
            c.close()


def captures(c: Client, rule: Rule) -> bool:
    """Does this command go to the client's pub/sub link?"""
    if rule.name in ("quit", "reset"):
        return False
    return c.protocol == 2 or rule.name in PUBSUB_COMMANDS


def subscribe(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.sub is not None:
        return forward(c, rule, args)
    if c.queue or c.batch_link is not None:
        c.close_batch()
        c.stall = 1  # DRAIN: replies before the subscription go out first
        return False
    backend = c.proxy.routes.default
    if backend is None:
        return c.fail(CLUSTERDOWN)
    link = backend.dedicated_link(c.protocol)
    c.sub = Subscription(c, backend, link)
    c.raw_chunk = None
    link.send(encode_requests([args]), None)
    return True


def unsubscribe(c: Client, rule: Rule, args: list[bytes]) -> bool:
    if c.sub is not None:
        return forward(c, rule, args)
    # not subscribed: the node's answer, without asking it (one per name, or one nil)
    kind = rule.name.encode()
    names: list[bytes | None] = list(args[1:]) or [None]
    push = b">3\r\n" if c.protocol == 3 else b"*3\r\n"
    c.reply(
        b"".join(
            push + encode(kind) + encode(name, resp3=c.protocol == 3) + b":0\r\n" for name in names
        )
    )
    return True


def forward(c: Client, rule: Rule, args: list[bytes]) -> bool:
    sub = c.sub
    assert sub is not None
    c.close_batch()
    c.raw_chunk = None
    cmds = [args]
    if c.protocol == 2 and rule.name in _UNSUBSCRIBES:
        cmds.append([b"PING", sub.marker])
        c.stall = 2  # BUSY until the marker tells whether anything is still subscribed
    sub.link.send(encode_requests(cmds), None)
    return True


def drop(c: Client) -> None:
    sub = c.sub
    c.sub = None
    if sub is not None:
        sub.link.on_close = None
        sub.link.close()
