"""Syntax highlighting of the typed line: command, keys, tokens, numbers and strings."""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer

from stack.core.commands import TABLE, CommandTable

from .argmatch import analyse, tokenize

STYLE_OF_KIND = {
    "command": "class:command",
    "key": "class:key",
    "token": "class:token",
    "number": "class:number",
    "string": "class:string",
    "unknown": "class:unknown",
}


def classify(line: str, table: CommandTable = TABLE) -> list[tuple[int, int, str]]:
    """(start, end, kind) for every word of ``line``."""
    tokens = tokenize(line)
    if not tokens:
        return []
    words = [t.text for t in tokens]
    if words[0].lower() == "help":
        kinds = ["command"] + ["string"] * (len(words) - 1)
    else:
        kinds = analyse(words, table).kinds
    return [(t.start, t.end, kind) for t, kind in zip(tokens, kinds, strict=False)]


class CommandLexer(Lexer):
    def __init__(self, table: CommandTable = TABLE) -> None:
        self.table = table

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines

        def get_line(lineno: int) -> StyleAndTextTuples:
            line = lines[lineno]
            out: StyleAndTextTuples = []
            pos = 0
            for start, end, kind in classify(line, self.table):
                if start > pos:
                    out.append(("", line[pos:start]))
                out.append((STYLE_OF_KIND.get(kind, ""), line[start:end]))
                pos = end
            if pos < len(line):
                out.append(("", line[pos:]))
            return out

        return get_line
