"""Bounded hints: dicts of what a read found (where a sorted set's live scores begin, a
collection's last member, where a seek led), right or not, so nothing keeps them up to date.
Each is bounded by forgetting all of it at once when a new key would pass its limit: O(1),
and a forgotten hint only costs the walk it would have saved."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(hints: dict[K, V], key: K, value: V, limit: int) -> None:
    """``hints[key] = value``, all of ``hints`` forgotten first when ``key`` is new and it
    already holds ``limit`` of them."""
    if len(hints) >= limit and key not in hints:
        hints.clear()
    hints[key] = value
