"""A decoded DUMP payload written as a key (RESTORE, SLOTSRESTORE)."""

from __future__ import annotations

from . import keyformat as kf
from .collections import Collection, member_records
from .keyspace import Keyspace
from .strings import store


def restore_object(
    ks: Keyspace,
    mkey: bytes,
    old: bytes | None,
    kind: int,
    value: bytes | None,
    entries: list[tuple[bytes, bytes]],
    expire: int,
) -> None:
    """Write a decoded DUMP payload at ``mkey`` over ``old`` (RESTORE, SLOTSRESTORE)."""
    if kind == kf.TYPE_STRING:
        store(ks, mkey, old, value or b"", expire)
        return
    col = Collection(ks, mkey, old, kind)
    col.replace_with(member_records(kind, entries), expire, size=len(entries))
