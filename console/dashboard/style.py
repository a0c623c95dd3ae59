"""The few colours drawn in cells (rich styles): ANSI names only, so they hold in a 16-colour
terminal and on a light background; everything else is styled by the theme in
dashboard.tcss."""

from __future__ import annotations

from rich.text import Text

OK = "green"
WARN = "yellow"
BAD = "bold red"
DIM = "dim"

# one colour per group, in order (cycled); yellow last: it reads badly on white
GROUP_COLOURS = (
    "blue",
    "green",
    "magenta",
    "cyan",
    "red",
    "bright_blue",
    "bright_green",
    "bright_magenta",
    "bright_cyan",
    "bright_red",
    "yellow",
)


def group_colour(group: int | None) -> str:
    if group is None:
        return "default"
    return GROUP_COLOURS[(group - 1) % len(GROUP_COLOURS)]


def state(text: str, kind: str) -> Text:
    return Text(text, {"ok": OK, "warn": WARN, "bad": BAD, "dim": DIM}.get(kind, ""))
