"""Redis glob patterns (``KEYS``, ``SCAN MATCH``, ``CONFIG GET``) compiled to linear-time regexes.

Syntax as Redis's ``stringmatchlen``: ``*``, ``?``, ``[abc]``, ``[^abc]``, ``[a-z]`` and ``\\x``.
A naive backtracking matcher takes exponential time on ``*a*a*a*...b`` (CVE-2022-36021). Here
every ``*`` but the last becomes an atomic lazy group ``(?>.*?SEGMENT)``: the earliest match of
each fixed-length segment is always the right one, so the regex never backtracks across stars and
matching costs O(len(key) * len(pattern)).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

Matcher = Callable[[bytes], bool]


def _class(pattern: bytes, i: int) -> tuple[str, int]:
    """Translate the class starting after ``[`` at index ``i``; return (regex, next index)."""
    n = len(pattern)
    negate = i < n and pattern[i] == 94  # '^'
    if negate:
        i += 1
    items: list[str] = []
    while True:
        if i >= n:
            break
        c = pattern[i]
        if c == 92 and i + 1 < n:  # backslash escapes the next byte
            items.append(re.escape(chr(pattern[i + 1])))
            i += 2
            continue
        if c == 93:  # ']'
            i += 1
            break
        if i + 2 < n and pattern[i + 1] == 45:  # 'a-z'
            lo, hi = sorted((c, pattern[i + 2]))
            items.append(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
            i += 3
            continue
        items.append(re.escape(chr(c)))
        i += 1
    if not items:
        return ("." if negate else "(?!)"), i
    return ("[^" if negate else "[") + "".join(items) + "]", i


def _segments(pattern: bytes) -> list[str]:
    """Split into star-free segments (each a regex string); a trailing '' marks a final '*'."""
    segments: list[str] = []
    cur: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == 42:  # '*'
            segments.append("".join(cur))
            cur = []
            while i < n and pattern[i] == 42:
                i += 1
            continue
        if c == 63:  # '?'
            cur.append(".")
            i += 1
        elif c == 91:  # '['
            regex, i = _class(pattern, i + 1)
            cur.append(regex)
        elif c == 92 and i + 1 < n:
            cur.append(re.escape(chr(pattern[i + 1])))
            i += 2
        else:
            cur.append(re.escape(chr(c)))
            i += 1
    segments.append("".join(cur))
    return segments


def translate(pattern: bytes) -> str:
    """The regex (over latin-1 decoded text) equivalent to a Redis glob pattern."""
    segments = _segments(pattern)
    if len(segments) == 1:
        return segments[0] + r"\Z"
    head, *middle, tail = segments
    return head + "".join(f"(?>.*?{m})" for m in middle if m) + ".*" + tail + r"\Z"


@lru_cache(maxsize=256)
def compile_pattern(pattern: bytes, nocase: bool = False) -> Matcher:
    """A predicate telling whether a key matches the glob ``pattern``."""
    if pattern == b"*":
        return lambda _key: True
    flags = re.DOTALL | (re.IGNORECASE if nocase else 0)
    regex = re.compile(translate(pattern).encode("latin-1"), flags)
    match = regex.match
    return lambda key: match(key) is not None


def matches(pattern: bytes, key: bytes, nocase: bool = False) -> bool:
    return compile_pattern(pattern, nocase)(key)
