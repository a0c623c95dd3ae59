"""Command history that never keeps secrets (AUTH, HELLO ... AUTH, CONFIG SET of a password)."""

from __future__ import annotations

from prompt_toolkit.history import FileHistory

from .argmatch import tokenize

SECRET_CONFIG = {"requirepass", "masterauth", "masteruser"}


def is_sensitive(line: str) -> bool:
    words = [t.text.lower() for t in tokenize(line)]
    if not words:
        return False
    name = words[0]
    if name in ("auth", "acl", "migrate"):
        return name == "auth" or "auth" in words or "auth2" in words or "setuser" in words
    if name == "hello":
        return "auth" in words
    if name == "config" and len(words) > 1 and words[1] == "set":
        return any(w in SECRET_CONFIG for w in words[2::2])
    return False


class SafeHistory(FileHistory):
    """A file history that drops sensitive lines, both in memory and on disk."""

    def append_string(self, string: str) -> None:
        if not is_sensitive(string):
            super().append_string(string)
