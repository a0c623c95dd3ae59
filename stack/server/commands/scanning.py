"""The SCAN family's options and the cursor walk over one collection (HSCAN, SSCAN, ZSCAN)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stack.core.keypattern import compile_pattern

from ..storage import keyformat as kf
from .args import syntax_error, to_cursor, to_int

if TYPE_CHECKING:
    from ..client import Client
    from ..storage.collections import Collection

SMALL = 128  # collections up to this size come back whole, as Redis's listpacks do


@dataclass
class ScanOptions:
    cursor: int
    count: int = 10
    match: Callable[[bytes], bool] | None = None
    type_code: int | None = None
    novalues: bool = False


def parse_scan(
    args: list[bytes], at: int, allow_type: bool = False, allow_novalues: bool = False
) -> ScanOptions:
    """Parse ``cursor [MATCH pattern] [COUNT count] [TYPE type]`` starting at ``args[at]``."""
    opts = ScanOptions(to_cursor(args[at]))
    i = at + 1
    while i < len(args):
        opt = args[i].upper()
        if opt == b"NOVALUES" and allow_novalues:  # HSCAN ... NOVALUES (Redis 7.4)
            opts.novalues = True
            i += 1
            continue
        if i + 1 >= len(args):
            raise syntax_error()
        if opt == b"COUNT":
            opts.count = to_int(args[i + 1])
            if opts.count < 1:
                raise syntax_error()
        elif opt == b"MATCH":
            opts.match = compile_pattern(args[i + 1])
        elif opt == b"TYPE" and allow_type:
            opts.type_code = kf.TYPE_BY_NAME.get(args[i + 1].decode("latin-1").lower(), -1)
        else:
            raise syntax_error()
        i += 2
    return opts


def scan_collection(
    c: Client,
    open_col: Callable[[], Collection],
    args: list[bytes],
    at: int,
    pairs: bool,
    space: bytes = b"",
    value: Callable[[bytes], bytes] | None = None,
) -> list[object]:
    """One step of HSCAN/SSCAN/ZSCAN: ``[next cursor, members (and values when pairs)]``.

    Redis's order: the cursor, then the key (missing: an empty reply; another type:
    WRONGTYPE), then the options. ``space`` selects which sub-keys are the members; ``value``
    renders a stored value."""
    to_cursor(args[at])
    col = open_col()
    if not col.exists:
        return [b"0", []]
    opts = parse_scan(args, at, allow_novalues=pairs and not space)
    pairs = pairs and not opts.novalues
    ks = c.server.keyspace
    start = b""
    budget = opts.count
    if col.size <= SMALL:
        budget = SMALL + 1
    elif opts.cursor:
        last_seen = ks.load_cursor(opts.cursor, col.prefix + space)
        if last_seen is not None:  # else restart: SCAN allows returning an element twice
            start = last_seen + b"\x00"
    out: list[bytes] = []
    last = b""
    done = True
    for n, (member, stored) in enumerate(col.items(start, space=space), 1):
        last = member
        if opts.match is None or opts.match(member):
            if pairs:
                out += (member, value(stored) if value else stored)
            else:
                out.append(member)
        if n >= budget:
            done = False
            break
    if done:
        return [b"0", out]
    return [b"%d" % ks.save_cursor(col.prefix + space, last), out]
