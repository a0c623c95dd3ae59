"""Hiding secrets in what deploy shows: by key in the node files, by value everywhere else.

A node file's secret lines are masked by key, whatever their value (the old password of a
rotated ``requirepass`` is still in the host's file and must not show in ``--diff``); the
``password`` file is a secret as a whole. Any other text (output, events) is scrubbed of
the current secret values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SHOWN = "<secret>"
SECRET_KEYS = ("requirepass", "masterauth", "backend-password")
SECRET_FILES = ("password",)

_KEY_LINE = re.compile(
    r"^(\s*[\"']?(?:" + "|".join(map(re.escape, SECRET_KEYS)) + r")[\"']?\s*=\s*).*$",
    re.MULTILINE,
)


def mask_file(name: str, text: str) -> str:
    """``text`` of the node file ``name`` with every secret value replaced by SHOWN."""
    if name in SECRET_FILES:
        return "".join(SHOWN + "\n" for _ in text.splitlines()) or (SHOWN if text else "")
    return _KEY_LINE.sub(lambda m: f'{m.group(1)}"{SHOWN}"', text)


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with every non-empty value of ``values`` replaced by SHOWN."""
    for value in values:
        if value:
            text = text.replace(value, SHOWN)
    return text
