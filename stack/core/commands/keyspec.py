"""Key specifications (Redis 7's model) and the one function that finds a call's keys.

A command's keys are described by key specs, each a ``begin_search`` step (where the keys
start: a fixed ``index``, or after a ``keyword`` searched from ``startfrom``, or ``unknown``)
and a ``find_keys`` step (which arguments from there are keys: a ``range`` up to ``lastkey``
every ``keystep`` (``lastkey`` negative counts from the end; ``limit`` splits the rest), or a
``keynum`` argument saying how many follow, or ``unknown``), plus flags saying what the command
does with them: RO/RW/OW/RM, ACCESS/UPDATE/INSERT/DELETE, NOT_KEY, INCOMPLETE, VARIABLE_FLAGS.

They are the single source of a command's key positions: the legacy first/last/step of
``COMMAND INFO`` and the ``movablekeys`` flag are derived from them as Redis derives them, and
``keys_of`` (``COMMAND GETKEYS``, the proxy's routing) reads them. Where specs cannot say it
(SORT's STORE anywhere, SET's flags depending on GET, BITFIELD's on its operations) a spec names
a key procedure that reads the arguments, as Redis's getkeys procedures do.

This module imports nothing from the server or the proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import CommandSpec

# Flags in the order COMMAND INFO and COMMAND GETKEYSANDFLAGS print them.
KEY_FLAGS = (
    "RW",
    "RO",
    "OW",
    "RM",
    "ACCESS",
    "UPDATE",
    "INSERT",
    "DELETE",
    "NOT_KEY",
    "INCOMPLETE",
    "VARIABLE_FLAGS",
)
_WRITTEN = {f: (f if f in ("RW", "RO", "OW", "RM") else f.lower()) for f in KEY_FLAGS}


def flag_names(flags: frozenset[str]) -> list[str]:
    """Flags as Redis prints them, in its order (``RW``, ``access``, ``update`` ...)."""
    return [_WRITTEN[f] for f in KEY_FLAGS if f in flags]


@dataclass(frozen=True)
class Index:
    """begin_search: the first key is at argument ``pos`` (the command name is 0)."""

    pos: int


@dataclass(frozen=True)
class Keyword:
    """begin_search: the keys start after ``keyword``, searched from ``startfrom`` (negative:
    backwards from the end)."""

    keyword: str
    startfrom: int


@dataclass(frozen=True)
class Range:
    """find_keys: keys from the start up to ``lastkey`` (relative; negative counts from the end
    of the arguments), every ``keystep``; with ``limit`` N and lastkey -1, 1/N of what is left."""

    lastkey: int = 0
    keystep: int = 1
    limit: int = 0


@dataclass(frozen=True)
class KeyNum:
    """find_keys: the argument at ``keynumidx`` (relative to the start) counts the keys, which
    begin at ``firstkey`` (relative) every ``keystep``."""

    keynumidx: int = 0
    firstkey: int = 1
    keystep: int = 1


class Unknown:
    """begin_search or find_keys that no rule describes (the key procedure decides)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()
BeginSearch = Index | Keyword | Unknown
FindKeys = Range | KeyNum | Unknown


@dataclass(frozen=True)
class KeySpec:
    flags: frozenset[str]
    begin_search: BeginSearch
    find_keys: FindKeys
    notes: str = ""

    @property
    def is_range(self) -> bool:
        return isinstance(self.begin_search, Index) and isinstance(self.find_keys, Range)


def ks(
    flags: str,
    index: int = 1,
    lastkey: int = 0,
    keystep: int = 1,
    limit: int = 0,
    *,
    keyword: str | None = None,
    startfrom: int = 1,
    keynum: tuple[int, int, int] | None = None,
    unknown: bool = False,
    notes: str = "",
) -> KeySpec:
    """One key spec: ``ks("RO ACCESS")`` is the key at index 1; ``ks("OW UPDATE", lastkey=-1,
    keystep=2)`` every other argument from 1; ``ks("RO ACCESS", 2, keynum=(0, 1, 1))`` keys
    counted by argument 2; ``ks("RW ACCESS DELETE", keyword="KEYS", startfrom=-2, lastkey=-1)``
    keys after the last KEYS; ``ks("OW UPDATE INCOMPLETE", unknown=True)`` anywhere."""
    names = frozenset(f.upper() for f in flags.split())
    bad = names - set(KEY_FLAGS)
    if bad:
        raise ValueError(f"unknown key spec flags {sorted(bad)}")
    begin: BeginSearch
    find: FindKeys
    if unknown:
        begin, find = UNKNOWN, UNKNOWN
    else:
        begin = Keyword(keyword, startfrom) if keyword else Index(index)
        find = KeyNum(*keynum) if keynum else Range(lastkey, keystep, limit)
    return KeySpec(names, begin, find, notes)


# --- derived facts --------------------------------------------------------------------------


def legacy_range(specs: Sequence[KeySpec]) -> tuple[tuple[int, int, int], bool]:
    """(first, last, step) for COMMAND INFO, and whether the keys are movable, derived from
    the specs as Redis 7 derives them: one plain range spec is taken as it is; otherwise the
    consecutive step-1 ranges are merged, and anything else makes the keys movable."""
    if not specs:
        return (0, 0, 0), False
    if len(specs) == 1 and specs[0].is_range:
        spec = specs[0]
        pos = spec.begin_search.pos  # type: ignore[union-attr]
        rng: Range = spec.find_keys  # type: ignore[assignment]
        last = rng.lastkey + pos if rng.lastkey >= 0 else rng.lastkey
        return (pos, last, rng.keystep), "INCOMPLETE" in spec.flags
    movable = False
    first = None
    last = 0
    prev_last = 0
    for spec in specs:
        if not spec.is_range:
            movable = True
            continue
        pos = spec.begin_search.pos  # type: ignore[union-attr]
        rng = spec.find_keys  # type: ignore[assignment]
        if rng.keystep != 1 or (prev_last and prev_last != pos - 1):
            movable = True
            continue
        if "INCOMPLETE" in spec.flags:
            movable = True
        first = pos if first is None else min(first, pos)
        abs_last = rng.lastkey + pos if rng.lastkey >= 0 else rng.lastkey
        last = _unsigned_max(last, abs_last)
        prev_last = last
    if first is None:
        return (0, 0, 0), True
    return (first, last, 1), movable


def _unsigned_max(a: int, b: int) -> int:
    """The larger as unsigned numbers: a negative (from-the-end) last key wins, as in Redis."""
    return a if (a % 2**32) >= (b % 2**32) else b


# --- finding keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRef:
    """One key of a call: its argument index (the command name is 0) and its flags."""

    pos: int
    flags: frozenset[str]


class InvalidCall(Exception):
    """The arguments do not hold the keys their specs promise (a syntax error to come)."""


def _from_specs(specs: Sequence[KeySpec], args: Sequence[bytes]) -> list[KeyRef]:
    argc = len(args)
    out: list[KeyRef] = []
    for spec in specs:
        if "NOT_KEY" in spec.flags:
            continue
        begin = spec.begin_search
        if isinstance(begin, Index):
            first = begin.pos
        elif isinstance(begin, Keyword):
            first = _search(begin, args)
            if not first:
                continue  # keyword absent: no keys from this spec
        else:
            raise InvalidCall("unknown begin_search")
        find = spec.find_keys
        if isinstance(find, Range):
            step = find.keystep
            if find.lastkey >= 0:
                last = first + find.lastkey
            elif not find.limit:
                last = argc + find.lastkey
            else:
                last = first + ((argc - first) // find.limit + find.lastkey)
        elif isinstance(find, KeyNum):
            step = find.keystep
            at = first + find.keynumidx
            if find.keynumidx >= argc or at >= argc:
                raise InvalidCall("no numkeys argument")
            count = _strict_count(args[at])
            if count is None:
                raise InvalidCall("bad numkeys")
            first += find.firstkey
            last = first + count - 1
        else:
            raise InvalidCall("unknown find_keys")
        if last >= argc or last < first or first >= argc:
            raise InvalidCall("keys out of the arguments")
        out.extend(KeyRef(i, spec.flags) for i in range(first, last + 1, step))
        if "INCOMPLETE" in spec.flags:
            raise InvalidCall("incomplete spec")
    return out


def _search(begin: Keyword, args: Sequence[bytes]) -> int:
    """The index after ``begin.keyword`` (0 when absent), searched as Redis searches: forwards
    from ``startfrom`` up to the one before last, or backwards from the end down to index 2."""
    argc = len(args)
    word = begin.keyword.lower().encode()
    if begin.startfrom > 0:
        indexes = range(begin.startfrom, argc - 1)
    else:
        indexes = range(argc + begin.startfrom, 1, -1)
    for i in indexes:
        if i < 1 or i >= argc:
            break
        if args[i].lower() == word:
            return i + 1
    return 0


def _strict_count(arg: bytes) -> int | None:
    """A non-negative count written as Redis's string2ll accepts it."""
    if not arg or len(arg) > 20:
        return None
    digits = arg[1:] if arg[:1] == b"-" else arg
    if not digits.isdigit() or (digits[:1] == b"0" and len(digits) > 1) or arg == b"-0":
        return None
    n = int(arg)
    return n if 0 <= n < 2**63 else None


def _atoi(arg: bytes) -> int:
    """C's atoi: leading blanks, a sign and the digits that follow; 0 when none."""
    text = arg.lstrip(b" \t\n\r\v\f")
    sign = 1
    if text[:1] in (b"-", b"+"):
        sign = -1 if text[:1] == b"-" else 1
        text = text[1:]
    n = 0
    for c in text:
        if not 48 <= c <= 57:
            break
        n = n * 10 + c - 48
    return max(min(sign * n, 2**31 - 1), -(2**31))


# Key procedures: what a spec cannot express. Each returns the keys found (maybe none).
KeyProc = Callable[[Sequence[bytes]], list[KeyRef]]
_RO = frozenset({"RO", "ACCESS"})
_NONE: frozenset[str] = frozenset()


def numkeys_proc(count_at: int, first: int, store: int = 0) -> KeyProc:
    """Keys counted by the argument at ``count_at`` from ``first`` (then a destination at
    ``store``): the fallback when the counted specs fail (a count that is not a number, or
    more keys than arguments). It reads the count as C's atoi does and gives no flags."""

    def proc(args: Sequence[bytes]) -> list[KeyRef]:
        if count_at >= len(args):
            return []
        n = _atoi(args[count_at])
        if n < 1 or n > len(args) - first:
            return []
        keys = [KeyRef(first + i, _NONE) for i in range(n)]
        if store:
            keys.append(KeyRef(store, _NONE))
        return keys

    return proc


def sort_proc(args: Sequence[bytes], readonly: bool = False) -> list[KeyRef]:
    """SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE dest]: the sorted key,
    and the last STORE's destination (skipping the operands of the other options)."""
    keys = [KeyRef(1, _RO)]
    if readonly:
        return keys
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    store = 0
    i = 2
    while i < len(args):
        word = args[i].lower()
        n = skip.get(word)
        if n is not None:
            i += n
        elif word == b"store" and i + 1 < len(args):
            store = i + 1
            i += 1
        i += 1
    if store:
        keys.append(KeyRef(store, frozenset({"OW", "UPDATE"})))
    return keys


def set_proc(args: Sequence[bytes]) -> list[KeyRef]:
    """SET's key reads the old value only with GET."""
    if any(a.lower() == b"get" for a in args[3:]):
        return [KeyRef(1, frozenset({"RW", "ACCESS", "UPDATE"}))]
    return [KeyRef(1, frozenset({"OW", "UPDATE"}))]


def bitfield_proc(args: Sequence[bytes]) -> list[KeyRef]:
    """BITFIELD only reads its key when every operation is a GET."""
    readonly = True
    i = 2
    while i < len(args):
        word = args[i].lower()
        left = len(args) - i - 1
        if word == b"get" and left >= 2:
            i += 3
        elif word == b"overflow" and left >= 1:
            i += 2
        else:
            readonly = False  # SET, INCRBY, or a syntax error: assume it writes
            break
    flags = _RO if readonly else frozenset({"RW", "ACCESS", "UPDATE"})
    return [KeyRef(1, flags)]


def migrate_proc(args: Sequence[bytes]) -> list[KeyRef]:
    """MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 u pw]
    [KEYS k ...]: one key at 3, or the keys after KEYS when argument 3 is empty."""
    flags = frozenset({"RW", "ACCESS", "DELETE"})
    if len(args) > 6 and args[3] == b"":
        i = 6
        while i < len(args):
            word = args[i].lower()
            if word == b"auth":
                i += 2
                continue
            if word == b"auth2":
                i += 3
                continue
            if word == b"keys":
                return [KeyRef(j, flags) for j in range(i + 1, len(args))]
            i += 1
        return []
    return [KeyRef(3, flags)]


KEY_PROCS: dict[str, KeyProc] = {
    "sort": sort_proc,
    "sort_ro": lambda args: sort_proc(args, readonly=True),
    "set": set_proc,
    "bitfield": bitfield_proc,
    "migrate": migrate_proc,
    "numkeys@1": numkeys_proc(1, 2),  # SINTERCARD, ZUNION, ZINTER, ZDIFF, LMPOP, ZMPOP ...
    "numkeys@2": numkeys_proc(2, 3),  # EVAL, FCALL, BLMPOP, BZMPOP
    "numkeys@2+store": numkeys_proc(2, 3, store=1),  # ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE
}


def has_keys(spec: CommandSpec) -> bool:
    """Whether a command takes keys at all (COMMAND GETKEYS refuses those that do not)."""
    return spec.key_proc is not None or any("NOT_KEY" not in k.flags for k in spec.key_specs)


def keys_of(spec: CommandSpec, args: Sequence[bytes]) -> list[KeyRef]:
    """The keys of a call of ``spec`` (``args[0]`` is the command name): positions and flags,
    as ``COMMAND GETKEYSANDFLAGS`` gives them. The specs decide when they can (all complete,
    none with VARIABLE_FLAGS); otherwise, or when they do not fit the arguments, the key
    procedure does. An empty list: no keys (or arguments that will fail as a syntax error)."""
    specs = spec.key_specs
    variable = any("VARIABLE_FLAGS" in k.flags for k in specs)
    if not variable and any("NOT_KEY" not in k.flags for k in specs):
        try:
            return _from_specs(specs, args)
        except InvalidCall:
            pass
    proc = KEY_PROCS.get(spec.key_proc) if spec.key_proc else None
    return proc(args) if proc is not None else []
