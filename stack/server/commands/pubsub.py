"""SUBSCRIBE, PSUBSCRIBE, their UNs, PUBLISH and PUBSUB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.keypattern import compile_pattern
from stack.core.resp import Push, Raw, encode

from . import handler, help_lines

if TYPE_CHECKING:
    from ..client import Client


def _confirm(kind: bytes, name: bytes | None, c: Client) -> bytes:
    return encode(Push([kind, name, len(c.channels) + len(c.patterns)]), c.resp3)


def _subscribe(c: Client, args: list[bytes], patterns: bool) -> Raw:
    ps = c.server.pubsub
    add, kind = (ps.psubscribe, b"psubscribe") if patterns else (ps.subscribe, b"subscribe")
    out = []
    for name in args[1:]:
        add(c, name)
        out.append(_confirm(kind, name, c))
    return Raw(b"".join(out))


def _unsubscribe(c: Client, args: list[bytes], patterns: bool) -> Raw:
    ps = c.server.pubsub
    if patterns:
        drop, kind, current = ps.punsubscribe, b"punsubscribe", c.patterns
    else:
        drop, kind, current = ps.unsubscribe, b"unsubscribe", c.channels
    names = args[1:] or list(current)
    if not names:
        return Raw(_confirm(kind, None, c))
    out = []
    for name in names:
        drop(c, name)
        out.append(_confirm(kind, name, c))
    return Raw(b"".join(out))


@handler("subscribe")
def subscribe(c: Client, args: list[bytes]) -> object:
    return _subscribe(c, args, patterns=False)


@handler("psubscribe")
def psubscribe(c: Client, args: list[bytes]) -> object:
    return _subscribe(c, args, patterns=True)


@handler("unsubscribe")
def unsubscribe(c: Client, args: list[bytes]) -> object:
    return _unsubscribe(c, args, patterns=False)


@handler("punsubscribe")
def punsubscribe(c: Client, args: list[bytes]) -> object:
    return _unsubscribe(c, args, patterns=True)


@handler("publish")
def publish(c: Client, args: list[bytes]) -> object:
    return c.server.pubsub.publish(args[1], args[2])


@handler("pubsub|channels")
def pubsub_channels(c: Client, args: list[bytes]) -> object:
    if len(args) > 3:
        raise errors.subcommand_syntax(args)
    channels = list(c.server.pubsub.channels)
    if len(args) == 3:
        match = compile_pattern(args[2])
        channels = [ch for ch in channels if match(ch)]
    return channels


@handler("pubsub|numsub")
def pubsub_numsub(c: Client, args: list[bytes]) -> object:
    out: list[object] = []
    for channel in args[2:]:
        out += [channel, len(c.server.pubsub.channels.get(channel, ()))]
    return out


@handler("pubsub|numpat")
def pubsub_numpat(c: Client, args: list[bytes]) -> object:
    return len(c.server.pubsub.patterns)


@handler("pubsub|help")
def pubsub_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "PUBSUB",
        [
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
        ],
    )
