"""The script or function running now (one at a time: a script runs inside its caller's
command, on the event loop)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import ReplyError, strict_int

if TYPE_CHECKING:
    from ..client import Client
    from .runtime import Runtime


@dataclass(slots=True)
class Run:
    client: Client
    rt: Runtime  # the Lua state it runs in (scripts and functions each have theirs)
    name: bytes  # the script's sha, or the function's name: errors name it
    is_function: bool
    readonly: bool
    started: float
    command: list[bytes]  # what the caller sent (FUNCTION STATS shows it)
    slot: int = -1  # with a slot map: the slot of the keys it used (declared or called)
    cross_slot: bool = False  # allow-cross-slot-keys: its calls may use keys of any slot
    resp3: bool = False  # redis.setresp(3)
    wrote: bool = False
    killed: bool = False
    busy: bool = False  # past busy-reply-threshold: others are answered -BUSY
    seen: set[int] = field(default_factory=set)


def numkeys(args: list[bytes], not_integer: str) -> int:
    """EVAL's and FCALL's numkeys (``args[2]``), checked as Redis does (``not_integer``: the
    error for a numkeys that is no integer, which EVAL and FCALL word differently)."""
    n = strict_int(args[2])
    if n is None:
        raise ReplyError(not_integer)
    if n < 0:
        raise ReplyError(errors.SCRIPT_NEGATIVE_KEYS)
    if n > len(args) - 3:
        raise ReplyError(errors.SCRIPT_TOO_MANY_KEYS)
    return n


def readonly_by_flags(
    flags: Collection[bytes] | None, readonly: bool, replica: bool, cluster: bool
) -> bool:
    """Whether a run is read-only, checking its flags as Redis does before it runs: no flags at
    all (a script without a shebang) leave it to the command; ``no-cluster`` cannot run on a
    node that knows its slots (``cluster``); without ``no-writes`` it cannot run on a replica
    nor from a _RO command."""
    if flags is None:
        return readonly
    if cluster and b"no-cluster" in flags:
        raise ReplyError(errors.SCRIPT_NO_CLUSTER)
    if b"no-writes" in flags:
        return True
    if replica:
        raise ReplyError(errors.SCRIPT_WRITE_FLAG_ON_REPLICA)
    if readonly:
        raise ReplyError(errors.SCRIPT_WRITE_FLAG_IN_RO)
    return False
