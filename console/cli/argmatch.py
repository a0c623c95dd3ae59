"""Match what the user has typed against a command's argument tree.

Everything the REPL knows while you type comes from here, computed from the shared command
table: which command (or subcommand) it is, what kind each typed argument is (key, token,
number, string), which tokens may come next (completion) and what is still missing (the greyed
hint). All functions are pure: text in, facts out.

Optional arguments introduced by a token (``NX``, ``EX seconds``, ``WITHSCORES``...) are matched
in any order within their run, as servers accept them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stack.core.commands import TABLE, CommandSpec, CommandTable
from stack.core.commands.spec import Arg

KIND_OF_TYPE = {
    "key": "key",
    "integer": "number",
    "double": "number",
    "unix-time": "number",
    "string": "string",
    "pattern": "string",
}


@dataclass(frozen=True)
class Token:
    """A word of the typed line: its text (quotes removed), span, and whether it is finished."""

    text: str
    start: int
    end: int
    closed: bool = True  # False for an unterminated quote


def tokenize(line: str) -> list[Token]:
    """Split like redis-cli does, tolerating an unfinished quote at the end."""
    tokens: list[Token] = []
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        buf: list[str] = []
        quote = ""
        while i < n:
            ch = line[i]
            if quote:
                if ch == "\\" and i + 1 < n:
                    nxt = line[i + 1]
                    buf.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                    i += 2
                    continue
                if ch == quote:
                    quote = ""
                    i += 1
                    continue
                buf.append(ch)
            elif ch in "\"'":
                quote = ch
            elif ch.isspace():
                break
            else:
                buf.append(ch)
            i += 1
        tokens.append(Token("".join(buf), start, i, closed=not quote))
    return tokens


def leading_tokens(arg: Arg) -> list[str]:
    """The literal words that can start ``arg`` (empty if it starts with a value)."""
    if arg.token:
        return [arg.token]
    if arg.type == "oneof":
        words: list[str] = []
        for child in arg.args:
            child_words = leading_tokens(child)
            if not child_words:
                return []
            words += child_words
        return words
    if arg.type == "block" and arg.args:
        return leading_tokens(arg.args[0])
    return []


def completion_tokens(arg: Arg) -> list[str]:
    """The words worth offering where ``arg`` may start (any alternative that has one)."""
    if arg.token:
        return [arg.token]
    if arg.type == "oneof":
        return [w for child in arg.args for w in completion_tokens(child)]
    if arg.type == "block":
        words: list[str] = []
        for child in arg.args:
            words += completion_tokens(child)
            if not child.optional:
                break
        return words
    return []


def _flexible(arg: Arg) -> bool:
    return arg.optional and bool(leading_tokens(arg))


Trailing = dict[int, list[Arg]]  # optional arguments that may follow a nested block's end


class _Fail(Exception):
    pass


class _Partial(Exception):
    """The words ran out inside an argument: ``expect`` may come next, ``rest`` is still
    missing (for the hint)."""

    def __init__(self, expect: list[Arg], kinds: list[str], rest: list[Arg] | None = None):
        self.expect = expect
        self.kinds = kinds
        self.rest = rest if rest is not None else expect


@dataclass
class Analysis:
    """What is known about a typed command line."""

    spec: CommandSpec | None = None
    name_words: int = 0  # 1, or 2 for a subcommand
    kinds: list[str] = field(default_factory=list)  # one per typed word
    expect: list[Arg] = field(default_factory=list)  # what may come next
    rest: list[Arg] = field(default_factory=list)  # not yet given, for the hint
    mismatch: bool = False
    subcommands: list[CommandSpec] = field(default_factory=list)

    def hint(self) -> str:
        return " ".join(a.hint() for a in self.rest)

    def arity_ok(self, argc: int) -> bool:
        return self.spec is None or self.spec.arity_ok(argc)


def _value_kind(arg: Arg) -> str:
    return KIND_OF_TYPE.get(arg.type, "string")


def _strip(arg: Arg) -> Arg:
    """The same argument, required and single (one repetition of it)."""
    if not arg.optional and not arg.multiple:
        return arg
    return Arg(
        arg.name,
        arg.type,
        arg.token,
        False,
        False,
        arg.multiple_token,
        arg.since,
        arg.display,
        arg.args,
        arg.key_spec_index,
    )


def _match_one(arg: Arg, words: list[str], i: int, kinds: list[str], trailing: Trailing) -> int:
    """Match a single (non-repeated) ``arg`` at ``words[i]``; return the next index."""
    if i >= len(words):
        raise _Partial([arg], kinds)
    if arg.token:
        if words[i].upper() != arg.token.upper():
            raise _Fail
        kinds.append("token")
        i += 1
        if arg.type == "pure-token":
            return i
        if i >= len(words):
            raise _Partial([_value_of(arg)], kinds)
        return _match_value(_value_of(arg), words, i, kinds, trailing)
    return _match_value(arg, words, i, kinds, trailing)


def _value_of(arg: Arg) -> Arg:
    """The part of a token-introduced argument that follows its token."""
    if arg.type == "block":
        return Arg(arg.name, "block", args=arg.args)
    if arg.type == "oneof":
        return Arg(arg.name, "oneof", args=arg.args)
    return Arg(arg.name, arg.type, display=arg.display, key_spec_index=arg.key_spec_index)


def _match_value(arg: Arg, words: list[str], i: int, kinds: list[str], trailing: Trailing) -> int:
    if i >= len(words):
        raise _Partial([arg], kinds)
    if arg.type == "pure-token":
        if words[i].upper() != (arg.token or "").upper():
            raise _Fail
        kinds.append("token")
        return i + 1
    if arg.type == "oneof":
        # A child whose own word matches beats one that would take the word as a value.
        ordered = sorted(arg.args, key=lambda child: not leading_tokens(child))
        for child in ordered:
            trial = list(kinds)
            try:
                j = _match_one(child, words, i, trial, trailing)
            except _Fail:
                continue
            kinds[:] = trial
            return j
        raise _Fail
    if arg.type == "block":
        result = _match_seq_full(list(arg.args), words, i, kinds, trailing)
        if result.mismatch or (result.index == i and i < len(words)):
            raise _Fail  # a block that takes none of the words does not match them
        if result.missing_required:
            raise _Partial(result.expect, kinds, result.rest)
        if result.index == len(words) and result.expect:
            trailing.setdefault(result.index, []).extend(result.expect)
        return result.index
    kinds.append(_value_kind(arg))
    return i + 1


@dataclass
class _SeqResult:
    index: int
    expect: list[Arg]
    rest: list[Arg]
    missing_required: bool
    mismatch: bool = False
    extra: bool = False


def _match_seq_full(
    args: list[Arg], words: list[str], i: int, kinds: list[str], trailing: Trailing
) -> _SeqResult:
    k = 0
    while k < len(args):
        arg = args[k]
        if _flexible(arg):
            m = k
            while m < len(args) and _flexible(args[m]):
                m += 1
            run = args[k:m]
            used: set[int] = set()
            while i < len(words):
                matched = False
                for idx, candidate in enumerate(run):
                    if idx in used and not candidate.multiple:
                        continue
                    trial = list(kinds)
                    try:
                        j = _match_one(_strip(candidate), words, i, trial, trailing)
                    except _Fail:
                        continue
                    except _Partial as p:
                        kinds[:] = p.kinds
                        rest = p.rest + [a for n, a in enumerate(run) if n not in used and n != idx]
                        return _SeqResult(len(words), p.expect, rest + list(args[m:]), True)
                    kinds[:] = trial
                    i = j
                    used.add(idx)
                    matched = True
                    break
                if not matched:
                    break
            left = [a for n, a in enumerate(run) if n not in used or a.multiple]
            if i >= len(words):
                tail = _match_seq_full(list(args[m:]), words, i, kinds, trailing)
                return _SeqResult(i, left + tail.expect, left + tail.rest, tail.missing_required)
            k = m
            continue
        if arg.multiple:
            count = 0
            single = _strip(arg)
            while i < len(words):
                trial = list(kinds)
                try:
                    i = _match_one(single, words, i, trial, trailing)
                except _Fail:
                    break
                except _Partial as p:
                    kinds[:] = p.kinds
                    rest = [*p.rest, _repeat(arg), *args[k + 1 :]]
                    return _SeqResult(len(words), p.expect, rest, True)
                kinds[:] = trial
                count += 1
            if count == 0 and not arg.optional:
                if i >= len(words):
                    missing = list(args[k:])
                    return _SeqResult(i, _expected(missing), missing, True)
                return _SeqResult(i, [], [], True, mismatch=True)
            if i >= len(words):
                tail = _match_seq_full(list(args[k + 1 :]), words, i, kinds, trailing)
                more = _repeat(arg)
                return _SeqResult(
                    i, [more, *tail.expect], [more, *tail.rest], tail.missing_required
                )
            k += 1
            continue
        if i >= len(words):
            missing = list(args[k:])
            required = any(not a.optional for a in missing)
            return _SeqResult(i, _expected(missing), missing, required)
        trial = list(kinds)
        try:
            i = _match_one(arg, words, i, trial, trailing)
        except _Fail:
            if arg.optional:
                k += 1
                continue
            return _SeqResult(i, [], [], True, mismatch=True)
        except _Partial as p:
            kinds[:] = p.kinds
            return _SeqResult(len(words), p.expect, p.rest + list(args[k + 1 :]), True)
        kinds[:] = trial
        k += 1
    return _SeqResult(i, [], [], False, extra=i < len(words))


def _repeat(arg: Arg) -> Arg:
    """How a repeated argument shows once it has been given: ``[key value ...]``."""
    single = _strip(arg)
    return Arg(
        arg.name,
        "block",
        args=(single,),
        optional=True,
        multiple=False,
        display=f"{single.hint()} ...",
    )


def _expected(args: list[Arg]) -> list[Arg]:
    """The arguments that may come next: optional ones up to and including the first required."""
    out: list[Arg] = []
    for a in args:
        out.append(a)
        if not a.optional:
            break
    return out


def analyse(words: list[str], table: CommandTable = TABLE) -> Analysis:
    """Everything known about a command line split into ``words`` (finished words only)."""
    if not words:
        return Analysis()
    spec = table.get(words[0])
    if spec is None:
        return Analysis(kinds=["unknown"] + ["string"] * (len(words) - 1))
    kinds = ["command"]
    name_words = 1
    if spec.subcommands:
        if len(words) == 1:
            return Analysis(
                spec=spec, name_words=1, kinds=kinds, subcommands=list(spec.subcommands)
            )
        sub = spec.subcommand(words[1])
        if sub is None:
            return Analysis(
                spec=spec,
                name_words=1,
                kinds=kinds + ["unknown"] + ["string"] * (len(words) - 2),
                mismatch=True,
            )
        spec = sub
        kinds.append("command")
        name_words = 2
    trailing: Trailing = {}
    result = _match_seq_full(list(spec.args), words, name_words, kinds, trailing)
    kinds += ["string"] * (len(words) - len(kinds))
    expect = list(result.expect)
    rest = list(result.rest)
    if result.index == len(words) and not result.missing_required:
        more = [a for a in trailing.get(len(words), []) if a not in expect]
        expect = more + expect
        rest = more + rest
    return Analysis(
        spec=spec,
        name_words=name_words,
        kinds=kinds[: len(words)],
        expect=expect,
        rest=rest,
        mismatch=result.mismatch or result.extra,
    )
