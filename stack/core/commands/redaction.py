"""Which arguments of a command are secrets, and how a call is shown without them.

A command's spec carries its ``Redaction`` next to its key positions; everything that shows a
call to someone (the slow log, MONITOR, logs) shows ``Redaction.shown(args)``, where each secret
argument reads ``(redacted)`` as in Redis 7. The rules are Redis's (``redactClientCommandArgument``
in AUTH, HELLO, CONFIG SET, MIGRATE and ACL SETUSER), made a little stricter where Redis lets a
secret through: AUTH hides every argument even in the syntax-error form.
"""

from __future__ import annotations

from dataclasses import dataclass

REDACTED = b"(redacted)"

# CONFIG SET values that are secrets (Redis's SENSITIVE_CONFIG). The server's settings table
# marks these settings secret from this set.
SECRET_SETTINGS = frozenset({"requirepass", "masterauth", "masteruser"})


@dataclass(frozen=True)
class Redaction:
    """The secret arguments of one command (indexes count the command name as 0).

    ``from_index``: every argument from there on (AUTH, ACL SETUSER).
    ``tokens``: after each TOKEN (case-insensitive) at or past ``tokens_from``, that many
    arguments (HELLO ... AUTH user pass, MIGRATE ... AUTH2 user pass); ``stop`` ends the scan
    (MIGRATE's KEYS, after which every argument is a key).
    ``config_pairs``: name/value pairs from ``tokens_from`` on, values of SECRET_SETTINGS hidden
    (CONFIG SET)."""

    from_index: int = 0
    tokens: tuple[tuple[bytes, int], ...] = ()
    tokens_from: int = 1
    stop: bytes = b""
    config_pairs: bool = False

    def secret_positions(self, args: list[bytes]) -> list[int]:
        n = len(args)
        if self.from_index:
            return list(range(self.from_index, n))
        found: list[int] = []
        if self.config_pairs:
            for i in range(self.tokens_from, n - 1, 2):
                if args[i].decode("latin-1").lower() in SECRET_SETTINGS:
                    found.append(i + 1)
            return found
        counts = dict(self.tokens)
        i = self.tokens_from
        while i < n:
            word = args[i].upper()
            if self.stop and word == self.stop:
                break
            count = counts.get(word, 0)
            if count:
                found.extend(range(i + 1, min(n, i + 1 + count)))
                i += count
            i += 1
        return found

    def shown(self, args: list[bytes]) -> list[bytes]:
        """``args`` with every secret replaced by ``(redacted)``."""
        positions = self.secret_positions(args)
        if not positions:
            return args
        out = list(args)
        for i in positions:
            out[i] = REDACTED
        return out


AUTH = Redaction(from_index=1)
HELLO = Redaction(tokens=((b"AUTH", 2),), tokens_from=2)
CONFIG_SET = Redaction(config_pairs=True, tokens_from=2)
MIGRATE = Redaction(tokens=((b"AUTH", 1), (b"AUTH2", 2)), tokens_from=6, stop=b"KEYS")
ACL_SETUSER = Redaction(from_index=2)
