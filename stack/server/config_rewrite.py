"""CONFIG REWRITE's text edit: the config file as it was, with the lines of the settings that
changed replaced in place, as Redis rewrites redis.conf.

The file is cut into entries: a ``key = value`` (its value may span lines: an array such as
``users``, a multi-line string) or any other line (comments, blank lines), kept as it is. An
entry whose key is a setting gets the setting's value now; a setting the file does not name and
whose value is not the default is added at the end, under one comment line. Comments, blank
lines, the order and the keys' spelling (an alias such as ``dir``) stay as the person wrote
them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

ADDED_HEADER = "# added by CONFIG REWRITE"

_KEY = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=\s*(.*)$""")


@dataclass(frozen=True)
class Entry:
    key: str | None  # None: a comment, a blank line or anything that is not a key
    lines: tuple[str, ...]


def entries(text: str) -> list[Entry]:
    """The file cut into entries (see the module's description)."""
    lines = text.splitlines()
    out: list[Entry] = []
    i = 0
    while i < len(lines):
        m = _KEY.match(lines[i])
        if m is None:
            out.append(Entry(None, (lines[i],)))
            i += 1
            continue
        key = m.group(1) or m.group(2) or m.group(3)
        end = i + 1
        state = _Scan()
        state.feed(m.group(4))
        while not state.done() and end < len(lines):
            state.feed(lines[end])
            end += 1
        out.append(Entry(key, tuple(lines[i:end])))
        i = end
    return out


class _Scan:
    """How much of a TOML value is still open after the lines fed so far: brackets of arrays
    and inline tables, and multi-line strings (comments and quoted text are skipped)."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str | None = None  # the open triple quote
        self.comment = -1  # where the comment of the last line fed starts (-1: none)

    def done(self) -> bool:
        return self.depth <= 0 and self.multiline is None

    def feed(self, line: str) -> None:
        self.comment = -1
        i = 0
        while i < len(line):
            if self.multiline is not None:
                close = line.find(self.multiline, i)
                if close < 0:
                    return
                i = close + 3
                self.multiline = None
                continue
            ch = line[i]
            if line.startswith(('"""', "'''"), i):
                self.multiline = line[i : i + 3]
                i += 3
            elif ch in "\"'":
                close = i + 1
                while close < len(line) and line[close] != ch:
                    close += 2 if ch == '"' and line[close] == "\\" else 1
                i = close + 1
            elif ch == "#":
                self.comment = i
                return
            else:
                if ch in "[{":
                    self.depth += 1
                elif ch in "]}":
                    self.depth -= 1
                i += 1


def _trailing_comment(entry: Entry) -> str:
    """The comment at the end of a one-line entry (``port = 1  # why``), to keep it."""
    if len(entry.lines) != 1:
        return ""
    scan = _Scan()
    scan.feed(entry.lines[0])
    return "  " + entry.lines[0][scan.comment :] if scan.comment >= 0 else ""


def rewrite(
    text: str,
    rendered: Callable[[str], str | None],
    added: Iterable[tuple[str, str]],
) -> str:
    """``text`` with each key entry whose ``rendered(key)`` is not None replaced by
    ``key = <that>`` (a key the file names twice keeps its last line), then ``added``
    (key, rendered value) appended under ``ADDED_HEADER``."""
    out: list[str] = []
    for entry in entries(text):
        value = rendered(entry.key) if entry.key is not None else None
        if value is None:
            out.extend(entry.lines)
        else:
            out.append(f"{entry.key} = {value}{_trailing_comment(entry)}")
    extra = list(added)
    if extra:
        if out and out[-1].strip():
            out.append("")
        out.append(ADDED_HEADER)
        out.extend(f"{key} = {value}" for key, value in extra)
    return "\n".join(out) + "\n"
