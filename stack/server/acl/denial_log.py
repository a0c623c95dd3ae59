"""ACL LOG: the latest commands, keys, channels and logins that ACL rules refused (Redis 7.0).

A refusal like a recent one (same reason, context, object and user, within a minute, among the
ten newest entries) counts on that entry and moves it to the front instead of adding one; the
log keeps ``acllog-max-len`` entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from stack.core.resp import Double, Map

from .selector import DENIED_AUTH, DENIED_CHANNEL, DENIED_COMMAND, DENIED_KEY

GROUPING_MS = 60_000
SCAN = 10

REASONS = {
    DENIED_COMMAND: b"command",
    DENIED_KEY: b"key",
    DENIED_CHANNEL: b"channel",
    DENIED_AUTH: b"auth",
}
TOPLEVEL = b"toplevel"
MULTI = b"multi"


@dataclass
class Denial:
    reason: int
    context: bytes
    object: bytes  # the command, key or channel (AUTH / HELLO for a failed login)
    username: bytes
    ctime_ms: int
    client_info: bytes
    count: int = 1

    def reply(self, now_ms: int) -> Map:
        return Map(
            [
                b"count",
                self.count,
                b"reason",
                REASONS.get(self.reason, b"unknown"),
                b"context",
                self.context,
                b"object",
                self.object,
                b"username",
                self.username,
                b"age-seconds",
                Double((now_ms - self.ctime_ms) / 1000),
                b"client-info",
                self.client_info,
            ]
        )


class DenialLog:
    def __init__(self, max_len: int) -> None:
        self.entries: list[Denial] = []  # newest first
        self.max_len = max_len

    def add(self, entry: Denial) -> None:
        for i, old in enumerate(self.entries[:SCAN]):
            if (
                old.reason == entry.reason
                and old.context == entry.context
                and abs(old.ctime_ms - entry.ctime_ms) <= GROUPING_MS
                and old.object == entry.object
                and old.username == entry.username
            ):
                del self.entries[i]
                old.count += 1
                old.ctime_ms = entry.ctime_ms
                old.client_info = entry.client_info
                self.entries.insert(0, old)
                return
        self.entries.insert(0, entry)
        del self.entries[self.max_len :]

    def resize(self, max_len: int) -> None:
        """A new acllog-max-len: applied at the next entry added, as Redis does."""
        self.max_len = max_len

    def reset(self) -> None:
        self.entries.clear()

    def reply(self, count: int) -> list[Map]:
        now = int(time.time() * 1000)
        return [e.reply(now) for e in self.entries[: max(count, 0)]]
