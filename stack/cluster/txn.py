"""What a change to etcd is made of, apart from the client: writes, guards and the event
sentence that goes with them. Plans build these as pure data; ``Store.commit`` sends them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Write:
    """One operation of a transaction: put ``value`` at ``path`` (delete it when None)."""

    path: str
    value: bytes | None


@dataclass(frozen=True)
class Guard:
    """A comparison a transaction makes: the mod revision of ``path`` equals ``revision``
    (0: the key does not exist); with ``prefix``, no key under ``path`` was modified after
    ``revision`` (a key created since counts as modified)."""

    path: str
    revision: int
    prefix: bool = False


@dataclass(frozen=True)
class EventDraft:
    """A sentence for the events stream, written in the same transaction as its change."""

    source: str
    kind: str
    text: str
