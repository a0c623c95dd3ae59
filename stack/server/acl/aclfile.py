"""The ACL file (``aclfile``): one ``user <name> <rules...>`` line per user, as Redis writes it.

``parse`` reads a whole file into a new set of users or returns Redis's error text naming every
bad line (nothing is applied then: ACL LOAD is all or nothing); ``render`` and
``stack.core.durable.replace_file`` are ACL SAVE (a temporary file, fsynced, renamed over
the old one).
"""

from __future__ import annotations

from stack.core import errors

from .selector import RuleError, has_spaces, merge_selectors
from .user import User

ABORTED = "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"


def parse(text: bytes, filename: str, all_channels: bool) -> tuple[dict[bytes, User], str]:
    """The users a file describes, or ({}, error text) when any line is wrong. Lines are split
    on single spaces (no quoting), as Redis splits them; blank lines are skipped; comments are
    errors (the file is rewritten by ACL SAVE, so they would be lost)."""
    users: dict[bytes, User] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.split(b"\n"), start=1):
        line = raw.strip(b" \t\r\n")
        if not line:
            continue
        argv = line.split(b" ")
        if argv[0] != b"user" or len(argv) < 2:
            problems.append(
                f"{filename}:{number} should start with user keyword followed by the username. "
            )
            continue
        name = argv[1]
        if has_spaces(name):
            problems.append(
                f"'{filename}:{number}: username '{errors.echo(name)}' contains invalid "
                "characters. "
            )
            continue
        if name in users:
            problems.append(
                f"WARNING: Duplicate user '{errors.echo(name)}' found on line {number}. "
            )
            continue
        user = User.new(name, all_channels)
        users[name] = user
        merged, unclosed = merge_selectors(argv[2:])
        if unclosed >= 0:
            problems.append(f"{filename}:{number}: Unmatched parenthesis in selector definition.")
            continue
        reported = False
        for op in merged:
            op = op.strip(b"\t\r\n")
            try:
                user.apply(op, all_channels)
            except RuleError as e:
                if str(e) == errors.RULE_UNKNOWN:
                    problems.append(
                        f"{filename}:{number}: Error in applying operation "
                        f"'{errors.echo(op)}': {e}. "
                    )
                elif not reported:  # only the first other error: it may explain the rest
                    problems.append(f"{filename}:{number}: {e}. ")
                    reported = True
        user.refresh()
    if problems:
        return {}, "".join(problems) + ABORTED
    return users, ""


def render(users: dict[bytes, User]) -> bytes:
    """The file ACL SAVE writes: users in name order."""
    return b"".join(users[name].line() + b"\n" for name in sorted(users))
