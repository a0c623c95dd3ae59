"""HELLO's arguments, read as Redis 7 reads them (for every endpoint that answers HELLO).

``parse_hello(args)`` gives the protocol asked for (None: unchanged), the AUTH credentials
and the SETNAME name, or raises ``ReplyError`` with Redis's words for what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors
from .resp import ReplyError, strict_int


@dataclass(frozen=True)
class Hello:
    protocol: int | None  # 2 or 3; None when HELLO came without a version
    user: bytes | None = None  # HELLO ... AUTH user pass
    password: bytes | None = None
    name: bytes | None = None  # HELLO ... SETNAME name


def parse_hello(args: list[bytes]) -> Hello:
    protocol = None
    if len(args) >= 2:
        protocol = strict_int(args[1])
        if protocol is None:
            raise ReplyError(errors.BAD_PROTOVER)
        if protocol not in (2, 3):
            raise ReplyError(errors.NOPROTO)
    user = password = name = None
    i = 2
    while i < len(args):
        opt = args[i].upper()
        left = len(args) - i - 1
        if opt == b"AUTH" and left >= 2:
            user, password = args[i + 1], args[i + 2]
            i += 3
        elif opt == b"SETNAME" and left >= 1:
            name = args[i + 1]
            i += 2
        else:
            raise ReplyError(errors.hello_syntax(args[i]))
    return Hello(protocol, user, password, name)


def valid_client_name(name: bytes) -> bool:
    """CLIENT SETNAME / HELLO SETNAME: printable ASCII without spaces."""
    return all(33 <= ch <= 126 for ch in name)
