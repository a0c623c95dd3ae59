"""An ACL user: on/off, passwords (SHA-256, as Redis stores them), and selectors.

User rules (``User.apply``), as Redis's ACLSetUser: ``on`` ``off`` ``>password`` ``#sha256hex``
``<password`` ``!sha256hex`` ``nopass`` ``resetpass`` ``reset`` ``(selector rules)``
``clearselectors`` ``sanitize-payload`` ``skip-sanitize-payload``; anything else is a rule of
the root selector (``selector.py``).

A user is changed in place (``assign``), so every connection authenticated as it sees the new
rules at its next command, as in Redis.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from stack.core import errors
from stack.core.commands import CommandSpec
from stack.core.commands.keyspec import KeyRef
from stack.core.resp import Map, ProtocolError, SetReply, split_args

from .catalog import CATALOG, Catalog
from .selector import DENIED_COMMAND, RuleError, Selector, merge_selectors

_HEX = frozenset(b"0123456789abcdef")


def hash_password(password: bytes) -> bytes:
    """The form a password is stored and shown in: SHA-256, lower-case hex (as Redis)."""
    return hashlib.sha256(password).hexdigest().encode()


def valid_hash(text: bytes) -> bool:
    return len(text) == 64 and all(c in _HEX for c in text)


def _hash_of(op: bytes) -> bytes:
    """The stored form of ``>password`` / ``<password`` (hashed) or ``#hash`` / ``!hash``."""
    if op[:1] in (b">", b"<"):
        return hash_password(op[1:])
    if not valid_hash(op[1:]):
        raise RuleError(errors.RULE_BAD_HASH)
    return op[1:]


@dataclass
class User:
    name: bytes
    enabled: bool = False
    nopass: bool = False
    sanitize: bytes = b""  # b"", b"sanitize-payload" or b"skip-sanitize-payload"
    passwords: list[bytes] = field(default_factory=list)  # SHA-256 hex
    selectors: list[Selector] = field(default_factory=list)  # [0] is the root selector
    open: bool = False  # allows every command, key and channel (the dispatcher's fast path)

    @classmethod
    def new(cls, name: bytes, all_channels: bool = False) -> User:
        """A user as ACL SETUSER creates it: off, no password, no commands, no keys, no
        channels (unless acl-pubsub-default is allchannels)."""
        return cls(name, selectors=[Selector(root=True, allchannels=all_channels)])

    @classmethod
    def default(cls) -> User:
        """The default user as a server starts with it: on, nopass, everything allowed."""
        user = cls.new(b"default")
        user.apply_all([b"+@all", b"~*", b"&*", b"on", b"nopass"])
        return user

    def copy(self) -> User:
        return User(
            self.name,
            self.enabled,
            self.nopass,
            self.sanitize,
            list(self.passwords),
            [s.copy() for s in self.selectors],
            self.open,
        )

    def assign(self, other: User) -> None:
        """Take ``other``'s rules (keeping this user's name and identity)."""
        self.enabled = other.enabled
        self.nopass = other.nopass
        self.sanitize = other.sanitize
        self.passwords = list(other.passwords)
        self.selectors = [s.copy() for s in other.selectors]
        self.refresh()

    def refresh(self) -> None:
        self.open = any(s.open for s in self.selectors)

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    # -- rules ---------------------------------------------------------------------------------

    def apply(self, op: bytes, all_channels: bool = False, catalog: Catalog = CATALOG) -> None:
        """Apply one rule; raise RuleError with Redis's reason. ``all_channels``: the server's
        acl-pubsub-default is allchannels (``reset`` and new selectors start with &*)."""
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low in (b"skip-sanitize-payload", b"sanitize-payload"):
            self.sanitize = low
        elif low == b"nopass":
            self.nopass = True
            self.passwords.clear()
        elif low == b"resetpass":
            self.nopass = False
            self.passwords.clear()
        elif op[:1] in (b">", b"#"):
            hashed = _hash_of(op)
            if hashed not in self.passwords:
                self.passwords.append(hashed)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            hashed = _hash_of(op)
            if hashed not in self.passwords:
                raise RuleError(errors.RULE_NO_SUCH_PASSWORD)
            self.passwords.remove(hashed)
        elif op[:1] == b"(" and op[-1:] == b")":
            selector = Selector(allchannels=all_channels)
            try:
                words = split_args(op[1:-1])
            except ProtocolError:  # unbalanced quotes: an empty selector, as in Redis
                words = []
            for word in words:
                selector.apply(word, catalog)
            self.selectors.append(selector)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            self.nopass = False
            self.passwords.clear()
            root = self.root
            root.apply(b"resetkeys")
            root.apply(b"allchannels" if all_channels else b"resetchannels")
            self.enabled = False
            self.sanitize = b"sanitize-payload"
            del self.selectors[1:]
            root.apply(b"-@all")
        else:
            self.root.apply(op, catalog)

    def apply_all(self, ops: Sequence[bytes], all_channels: bool = False) -> None:
        for op in ops:
            self.apply(op, all_channels)
        self.refresh()

    def staged(self, ops: Sequence[bytes], all_channels: bool = False) -> User:
        """A copy with ``ops`` applied (selectors spread over several arguments joined
        first); raise RuleError(message) naming the rule that failed, as ACL SETUSER says it."""
        merged, unclosed = merge_selectors(ops)
        if unclosed >= 0:
            raise RuleError(
                f"Unmatched parenthesis in acl selector starting at '{errors.echo(ops[unclosed])}'."
            )
        copy = self.copy()
        for op in merged:
            try:
                copy.apply(op, all_channels)
            except RuleError as e:
                raise RuleError(f"Error in ACL SETUSER modifier '{errors.echo(op)}': {e}") from None
        copy.refresh()
        return copy

    # -- authentication and checks ---------------------------------------------------------------

    def password_ok(self, password: bytes) -> bool:
        """Whether ``password`` logs in as this user (a disabled user never does)."""
        if not self.enabled:
            return False
        if self.nopass:
            return True
        hashed = hash_password(password)
        ok = False
        for stored in self.passwords:  # every one compared, in constant time each
            ok |= hmac.compare_digest(hashed, stored)
        return ok

    def check(self, cid: int, args: Sequence[bytes], spec: CommandSpec) -> tuple[int, int]:
        """(0, 0) when some selector allows the call; otherwise Redis's choice of what to
        report: the command when no selector allows it, else the denied key or channel that
        comes latest in the arguments."""
        reason, at = DENIED_COMMAND, 0
        keys: list[KeyRef] | None = None
        for selector in self.selectors:
            if keys is None and not selector.allkeys:
                keys = spec.keys(args)
            denied, pos = selector.check(cid, args, keys or [])
            if not denied:
                return 0, 0
            if denied > reason or (denied == reason and pos > at):
                reason, at = denied, pos
        return reason, at

    def all_keys_readable(self, cid: int, args: Sequence[bytes], spec: CommandSpec) -> bool:
        """Some selector allows this call and lets every key be read (SORT BY / GET)."""
        keys = spec.keys(args)
        return any(
            s.all_keys_readable() and not s.check(cid, args, keys)[0] for s in self.selectors
        )

    # -- description ---------------------------------------------------------------------------

    def flag_names(self) -> list[bytes]:
        flags = [b"on" if self.enabled else b"off"]
        if self.nopass:
            flags.append(b"nopass")
        if self.sanitize:
            flags.append(self.sanitize)
        return flags

    def describe(self) -> bytes:
        """The user's rules in ACL LIST / ACL file form (without ``user <name>``)."""
        parts = self.flag_names() + [b"#" + p for p in self.passwords]
        text = b" ".join(parts) + b" " + self.root.describe()
        for selector in self.selectors[1:]:
            text += b" (" + selector.describe() + b")"
        return text

    def line(self) -> bytes:
        return b"user " + self.name + b" " + self.describe()

    def getuser_reply(self) -> Map:
        """ACL GETUSER's map."""

        def selector_fields(s: Selector) -> list[object]:
            return [
                b"commands",
                s.describe_commands(),
                b"keys",
                s.describe_keys(),
                b"channels",
                s.describe_channels(),
            ]

        return Map(
            [
                b"flags",
                SetReply(self.flag_names()),
                b"passwords",
                list(self.passwords),
                *selector_fields(self.root),
                b"selectors",
                [Map(selector_fields(s)) for s in self.selectors[1:]],
            ]
        )
