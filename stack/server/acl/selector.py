"""A selector: which commands, keys and channels one set of ACL rules allows (Redis 7).

Every user has a root selector (the rules written outside parentheses) and may have more, each
written as ``(rules...)``; a command is allowed when one selector allows all of it: the command
(or a first argument allowed by ``+select|0``), every key it names with the access its key specs
say it needs (``ACCESS`` reads; ``INSERT``, ``DELETE``, ``UPDATE`` write), and every channel it
publishes or subscribes to.

Rules (``apply``), as Redis's ACLSetSelector: ``+cmd`` ``-cmd`` ``+cmd|sub`` ``-cmd|sub``
``+cmd|firstarg`` ``+@cat`` ``-@cat`` ``allcommands``/``+@all`` ``nocommands``/``-@all``
``~pattern`` ``%R~pattern`` ``%W~pattern`` ``%RW~pattern`` ``allkeys``/``~*`` ``resetkeys``
``&pattern`` ``allchannels``/``&*`` ``resetchannels``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from stack.core import errors
from stack.core.commands.keyspec import KeyRef
from stack.core.keypattern import Matcher, compile_pattern

from .catalog import CATALOG, CATEGORIES, Catalog

log = logging.getLogger(__name__)

READ = 1
WRITE = 2
BOTH = READ | WRITE

# Why a selector (or a user) refuses a command; the larger wins when several selectors refuse
# (Redis's ACL_DENIED_* values).
DENIED_COMMAND = 1
DENIED_KEY = 2
DENIED_AUTH = 3  # only in the ACL log
DENIED_CHANNEL = 4

_WRITE_FLAGS = frozenset({"INSERT", "DELETE", "UPDATE"})


class RuleError(Exception):
    """A rule that cannot be applied; ``str()`` is Redis's description of why."""


def has_spaces(text: bytes) -> bool:
    """Spaces (C's isspace) or NUL: not allowed in user names, key and channel patterns."""
    return any(c in b" \t\n\v\f\r\x00" for c in text)


def needed_access(flags: frozenset[str]) -> int:
    """The permission a key needs from its key spec flags (0: any pattern will do)."""
    need = READ if "ACCESS" in flags else 0
    if flags & _WRITE_FLAGS:
        need |= WRITE
    return need


@dataclass
class Selector:
    root: bool = False
    commands: int = 0  # bit set over Catalog ids
    future: bool = False  # set by +@all: also allows commands added later
    firstargs: dict[int, list[bytes]] = field(default_factory=dict)  # +select|0
    allkeys: bool = False
    keys: list[list[object]] = field(default_factory=list)  # [pattern bytes, READ|WRITE]
    allchannels: bool = False
    channels: list[bytes] = field(default_factory=list)
    # Patterns compiled once per selector (a user may have more patterns than the shared
    # cache of compiled patterns holds).
    _matchers: dict[bytes, Matcher] = field(default_factory=dict, repr=False, compare=False)

    def copy(self) -> Selector:
        return Selector(
            self.root,
            self.commands,
            self.future,
            {k: list(v) for k, v in self.firstargs.items()},
            self.allkeys,
            [list(k) for k in self.keys],
            self.allchannels,
            list(self.channels),
        )

    # -- rules ---------------------------------------------------------------------------------

    def apply(self, op: bytes, catalog: Catalog = CATALOG) -> None:
        """Apply one selector rule; raise RuleError with Redis's reason."""
        low = op.lower()
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.keys.clear()
        elif low == b"resetkeys":
            self.allkeys = False
            self.keys.clear()
        elif low in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels.clear()
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels.clear()
        elif low in (b"allcommands", b"+@all"):
            self.commands = catalog.all
            self.future = True
            self.firstargs.clear()
        elif low in (b"nocommands", b"-@all"):
            self.commands = 0
            self.future = False
            self.firstargs.clear()
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise RuleError(errors.RULE_AFTER_ALLCHANNELS)
            pattern = op[1:]
            if has_spaces(pattern):
                raise RuleError(errors.RULE_SYNTAX)
            if pattern not in self.channels:
                self.channels.append(pattern)
            self.allchannels = False
        elif op[:2] in (b"+@", b"-@"):
            grant = catalog.grants.get(op[2:].decode("latin-1").lower())
            if grant is None:
                raise RuleError(errors.RULE_UNKNOWN)
            self._change(grant, op[:1] == b"+", catalog)
        elif op[:1] == b"+":
            self._allow(op[1:], catalog)
        elif op[:1] == b"-":
            cid = catalog.lookup(op[1:])
            if cid is None:
                raise RuleError(errors.RULE_UNKNOWN)
            self._change(catalog.family(cid), False, catalog)
        else:
            raise RuleError(errors.RULE_SYNTAX)

    def _add_key_pattern(self, op: bytes) -> None:
        if self.allkeys:
            raise RuleError(errors.RULE_AFTER_ALLKEYS)
        if op[:1] == b"~":
            flags, offset = BOTH, 1
        else:
            flags, offset = 0, 1
            while offset < len(op):
                c = op[offset : offset + 1].upper()
                if c == b"R" and not flags & READ:
                    flags |= READ
                elif c == b"W" and not flags & WRITE:
                    flags |= WRITE
                elif c == b"~":
                    offset += 1
                    break
                else:
                    raise RuleError(errors.RULE_SYNTAX)
                offset += 1
            if not flags:
                raise RuleError(errors.RULE_SYNTAX)
        pattern = op[offset:]
        if has_spaces(pattern):
            raise RuleError(errors.RULE_SYNTAX)
        for entry in self.keys:
            if entry[0] == pattern:
                entry[1] = int(entry[1]) | flags  # type: ignore[call-overload]
                break
        else:
            self.keys.append([pattern, flags])
        self.allkeys = False

    def _allow(self, name: bytes, catalog: Catalog) -> None:
        bar = name.rfind(b"|")
        if bar < 0:
            cid = catalog.lookup(name)
            if cid is None:
                raise RuleError(errors.RULE_UNKNOWN)
            self._change(catalog.family(cid), True, catalog)
            return
        base, first = name[:bar], name[bar + 1 :]
        cid = catalog.lookup(base)
        if cid is None:
            raise RuleError(errors.RULE_UNKNOWN)
        if catalog.is_sub(cid):
            raise RuleError(errors.RULE_SUBCOMMAND_FIRSTARG)
        if not first:
            raise RuleError(errors.RULE_SYNTAX)
        if catalog.subs.get(cid):
            sub = catalog.lookup(name)
            if sub is None:
                raise RuleError(errors.RULE_UNKNOWN)
            self._change(catalog.family(sub), True, catalog)
            return
        # A first argument of a command without subcommands (+select|0): deprecated in Redis,
        # still honoured.
        log.warning(
            "Deprecation warning: Allowing a first arg of an otherwise blocked command is a "
            "misuse of ACL and may get disabled in the future (offender: +%s)",
            name.decode("utf-8", "replace"),
        )
        allowed = self.firstargs.setdefault(cid, [])
        if all(a.lower() != first.lower() for a in allowed):
            allowed.append(first)

    def _change(self, mask: int, allow: bool, catalog: Catalog) -> None:
        """Allow or deny the commands of ``mask``; their first-argument rules go."""
        if allow:
            self.commands |= mask
        else:
            self.commands &= ~mask
        if self.firstargs:
            for cid in list(self.firstargs):
                if mask >> cid & 1:
                    del self.firstargs[cid]

    # -- checks --------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Allows everything there is: every command, key and channel."""
        return self.allkeys and self.allchannels and self.commands & CATALOG.all == CATALOG.all

    def check(
        self, cid: int, args: Sequence[bytes], keys: list[KeyRef], catalog: Catalog = CATALOG
    ) -> tuple[int, int]:
        """(0, 0) when this selector allows the call, else (DENIED_*, argument index)."""
        if not (self.commands >> cid & 1) and not (catalog.no_auth >> cid & 1):
            allowed = self.firstargs.get(cid)
            if allowed is None or len(args) < 2:
                return DENIED_COMMAND, 0
            first = args[2 if catalog.is_sub(cid) else 1].lower()
            if all(a.lower() != first for a in allowed):
                return DENIED_COMMAND, 0
        if not self.allkeys:
            for ref in keys:
                if not self.key_allowed(args[ref.pos], needed_access(ref.flags)):
                    return DENIED_KEY, ref.pos
        spec = catalog.specs[cid].channels
        if spec is not None and not self.allchannels and spec.flags & {"PUBLISH", "SUBSCRIBE"}:
            literal = "PATTERN" in spec.flags
            for pos in spec.positions(len(args)):
                if not self.channel_allowed(args[pos], literal):
                    return DENIED_CHANNEL, pos
        return 0, 0

    def key_allowed(self, key: bytes, need: int) -> bool:
        if self.allkeys:
            return True
        for pattern, flags in self.keys:
            if int(flags) & need != need:  # type: ignore[call-overload]
                continue
            if self._matcher(pattern)(key):  # type: ignore[arg-type]
                return True
        return False

    def all_keys_readable(self) -> bool:
        """Every key may be read (``~*``, ``%R~*`` ...): SORT's BY and GET need it."""
        if self.allkeys:
            return True
        return any(p == b"*" and int(f) & READ for p, f in self.keys)  # type: ignore[call-overload]

    def channel_allowed(self, channel: bytes, literal: bool) -> bool:
        """A channel matched against the patterns; a PSUBSCRIBE pattern only as itself."""
        if self.allchannels:
            return True
        if literal:
            return channel in self.channels
        return any(self._matcher(p)(channel) for p in self.channels)

    def _matcher(self, pattern: bytes) -> Matcher:
        matcher = self._matchers.get(pattern)
        if matcher is None:
            matcher = self._matchers[pattern] = compile_pattern(pattern)
        return matcher

    # -- description ---------------------------------------------------------------------------

    def describe(self, catalog: Catalog = CATALOG) -> bytes:
        """The rules as ACL LIST and the ACL file write them: keys, channels, commands."""
        parts: list[bytes] = []
        if self.allkeys:
            parts.append(b"~*")
        else:
            parts += [key_rule(p, f) for p, f in self.keys]  # type: ignore[arg-type]
        if self.allchannels:
            parts.append(b"&*")
        else:
            parts.append(b"resetchannels")
            parts += [b"&" + p for p in self.channels]
        parts.append(self.describe_commands(catalog))
        return b" ".join(parts)

    def describe_keys(self) -> bytes:
        if self.allkeys:
            return b"~*"
        return b" ".join(key_rule(p, f) for p, f in self.keys)  # type: ignore[arg-type]

    def describe_channels(self) -> bytes:
        if self.allchannels:
            return b"&*"
        return b" ".join(b"&" + p for p in self.channels)

    def describe_commands(self, catalog: Catalog = CATALOG) -> bytes:
        """The shortest-looking rules that give exactly these commands, found as Redis 7.0
        finds them: start from +@all (when the selector allows future commands) or -@all,
        add the best-fitting categories one at a time while one covers more commands right
        than wrong, then fix what is left command by command."""
        additive = not self.future
        rules = [b"-@all" if additive else b"+@all"]
        fake = 0 if additive else catalog.all
        temp = self.commands
        applied: set[str] = set()
        while True:
            best = None
            min_diff, max_same = 1 << 62, 0
            for cat in CATEGORIES:
                if cat in applied:
                    continue
                mask = catalog.members[cat]
                on = (temp & mask).bit_count()
                off = mask.bit_count() - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < min_diff or (diff == min_diff and same > max_same)):
                    best, min_diff, max_same = cat, diff, same
            if best is None:
                break
            grant = catalog.grants[best]
            if additive:
                fake |= grant
                temp &= ~grant
            else:
                fake &= ~grant
                temp |= grant
            rules.append((b"+@" if additive else b"-@") + best.encode())
            applied.add(best)
        for cid in catalog.top:
            fake = self._single_rules(cid, fake, rules, catalog)
            for sub in catalog.subs.get(cid, ()):
                fake = self._single_rules(sub, fake, rules, catalog)
            if not self.commands >> cid & 1:
                name = catalog.name(cid).encode()
                rules += [b"+" + name + b"|" + a for a in self.firstargs.get(cid, ())]
        if fake & catalog.all != self.commands & catalog.all:  # pragma: no cover - a bug
            raise AssertionError("ACL description does not give back the selector's commands")
        return b" ".join(rules)

    def _single_rules(self, cid: int, fake: int, rules: list[bytes], catalog: Catalog) -> int:
        mine = self.commands >> cid & 1
        if mine != fake >> cid & 1:
            rules.append((b"+" if mine else b"-") + catalog.name(cid).encode())
            family = catalog.family(cid)
            fake = fake | family if mine else fake & ~family
        return fake


def key_rule(pattern: bytes, flags: int) -> bytes:
    prefix = {BOTH: b"~", READ: b"%R~", WRITE: b"%W~"}[flags]
    return prefix + pattern


def merge_selectors(ops: Sequence[bytes]) -> tuple[list[bytes], int]:
    """Join a selector written across several arguments (``(+get`` ``~k)``) into one, as
    Redis does; (merged, -1), or ([], index of the unclosed ``(``)."""
    merged: list[bytes] = []
    start = -1
    current = b""
    for i, op in enumerate(ops):
        if op[:1] == b"(" and op[-1:] != b")":  # (a new one restarts an unclosed one)
            start, current = i, op
            continue
        if start >= 0:
            current += b" " + op
            if op[-1:] == b")":
                merged.append(current)
                start = -1
            continue
        merged.append(op)
    if start >= 0:
        return [], start
    return merged, -1
