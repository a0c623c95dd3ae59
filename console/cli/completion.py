"""Completions, hints and the toolbar text: pure functions of the typed line.

``suggest`` and ``hint`` know nothing of prompt-toolkit; ``CommandCompleter`` adapts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from stack.core.commands import TABLE, CommandTable
from stack.core.slots import key_slot

from .argmatch import Analysis, analyse, completion_tokens, tokenize

LOCAL_COMMANDS = {"help": "Show help for a command or a group: help SET, help @string"}


@dataclass(frozen=True)
class Suggestion:
    text: str
    replace: int  # how many characters before the cursor it replaces
    meta: str = ""


def _cased(word: str, typed: str, reference: str) -> str:
    """Offer ``word`` in the case the user is typing (lower if they type lower)."""
    sample = typed or reference
    letters = [c for c in sample if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return word.lower()
    return word.upper()


def _split(line: str) -> tuple[list[str], str]:
    """(finished words, the word being typed) for the text before the cursor."""
    tokens = tokenize(line)
    if not tokens:
        return [], ""
    if line[-1:].isspace() and tokens[-1].closed:
        return [t.text for t in tokens], ""
    return [t.text for t in tokens[:-1]], tokens[-1].text


def suggest(line: str, table: CommandTable = TABLE) -> list[Suggestion]:
    """What may be typed at the end of ``line``: commands, subcommands, or argument tokens."""
    words, partial = _split(line)
    up = partial.upper()
    out: list[Suggestion] = []
    if not words:
        for spec in table:
            if spec.name.upper().startswith(up):
                out.append(Suggestion(_cased(spec.name, partial, ""), len(partial), spec.summary))
        for name, meta in LOCAL_COMMANDS.items():
            if name.upper().startswith(up):
                out.append(Suggestion(_cased(name, partial, ""), len(partial), meta))
        return sorted(out, key=lambda s: s.text.upper())
    if words[0].lower() == "help":
        names = [s.name for s in table] + [f"@{g}" for g in table.groups()]
        return [
            Suggestion(_cased(n, partial, words[0]), len(partial))
            for n in names
            if n.upper().startswith(up)
        ]
    analysis = analyse(words, table)
    if analysis.subcommands and len(words) == 1:
        return [
            Suggestion(_cased(s.name.split("|", 1)[1], partial, words[0]), len(partial), s.summary)
            for s in analysis.subcommands
            if s.name.split("|", 1)[1].upper().startswith(up)
        ]
    seen: set[str] = set()
    for arg in analysis.expect:
        for word in completion_tokens(arg):
            if word.upper().startswith(up) and word not in seen:
                seen.add(word)
                out.append(Suggestion(_cased(word, partial, words[0]), len(partial), arg.name))
    return out


def hint(line: str, table: CommandTable = TABLE) -> str:
    """The greyed text shown after the cursor: the arguments not yet typed (as redis-cli)."""
    tokens = tokenize(line)
    if not tokens or not line.strip():
        return ""
    words = [t.text for t in tokens]
    if words[0].lower() == "help":
        return "" if len(words) > 1 else (" " if not line.endswith(" ") else "") + "command|@group"
    analysis = analyse(words, table)
    if analysis.spec is None or analysis.mismatch:
        return ""
    if analysis.subcommands and len(words) == 1:
        text = "|".join(s.name.split("|", 1)[1].upper() for s in analysis.subcommands)
    else:
        text = analysis.hint()
    if not text:
        return ""
    return text if line.endswith(" ") else " " + text


def toolbar(line: str, table: CommandTable = TABLE) -> str:
    """One line about the command being typed: summary, group, since, key slot, arity."""
    tokens = tokenize(line)
    if not tokens:
        return "Tab completes; 'help @group' lists commands; Ctrl-R searches history"
    words = [t.text for t in tokens]
    analysis: Analysis = analyse(words, table)
    spec = analysis.spec
    if spec is None:
        if words[0].lower() == "help":
            return "help COMMAND | help @group"
        return f"unknown command '{words[0]}'"
    parts = [f"{spec.display_name}: {spec.summary}", f"group: {spec.group}", f"since {spec.since}"]
    for word, kind in zip(words, analysis.kinds, strict=False):
        if kind == "key":
            parts.append(f"slot {key_slot(word.encode())} ({word})")
    # The word under the cursor may be half a token: judge only the finished words.
    typing = not line[-1:].isspace() and len(words) > 1
    finished = analyse(words[:-1], table) if typing else analysis
    if not typing and not spec.arity_ok(len(words)) and not analysis.rest:
        parts.append("wrong number of arguments")
    elif finished.mismatch:
        parts.append("unexpected argument")
    return "  ·  ".join(parts)


def arity_problem(words: list[str], table: CommandTable = TABLE) -> str | None:
    """Why a finished command line would be rejected for its argument count, or None."""
    analysis = analyse(words, table)
    spec = analysis.spec
    if spec is None or spec.arity_ok(len(words)) or (analysis.subcommands and len(words) == 1):
        return None
    need = f"exactly {spec.arity - 1}" if spec.arity > 0 else f"at least {-spec.arity - 1}"
    return f"{spec.display_name} takes {need} argument(s); usage: {spec.display_name} {spec.hint()}"


class CommandCompleter(Completer):
    def __init__(self, table: CommandTable = TABLE) -> None:
        self.table = table

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        for s in suggest(document.text_before_cursor, self.table):
            yield Completion(s.text, start_position=-s.replace, display_meta=s.meta)
