"""The interactive ledis-cli: prompt, completion, hints, highlighting, help, confirmations."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application.current import get_app
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.layout.processors import (
    Processor,
    Transformation,
    TransformationInput,
)
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style
from prompt_toolkit.validation import ValidationError, Validator

from stack import __version__
from stack.core.commands import TABLE, CommandSpec
from stack.core.reply_parser import ErrorReply
from stack.core.resp import ProtocolError, split_args

from .completion import CommandCompleter, arity_problem, hint, toolbar
from .connection import Connection, ConnectionLost
from .dangerous import DANGEROUS
from .history import SafeHistory
from .lexer import CommandLexer
from .render import format_push, format_tty

STYLE = Style.from_dict(
    {
        "command": "bold ansiyellow",
        "key": "ansicyan",
        "token": "ansimagenta",
        "number": "ansigreen",
        "string": "",
        "unknown": "ansired",
        "hint": "#888888",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
    }
)

BIG_KEYS_DB = 10_000
SUBSCRIBING = {"subscribe", "psubscribe"}


class HintProcessor(Processor):
    """Shows the remaining arguments greyed after the cursor (redis-cli's hints)."""

    def __init__(self, has_suggestion: Callable[[], bool]) -> None:
        self.has_suggestion = has_suggestion

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        if get_app().is_done:  # the line was accepted: the scrollback keeps what was typed only
            return Transformation(ti.fragments)
        buffer = ti.buffer_control.buffer
        if ti.lineno != ti.document.line_count - 1 or buffer.document.is_cursor_at_the_end is False:
            return Transformation(ti.fragments)
        if self.has_suggestion():
            return Transformation(ti.fragments)
        text = hint(buffer.text)
        if not text:
            return Transformation(ti.fragments)
        return Transformation([*ti.fragments, ("class:hint", text)])


class ArityValidator(Validator):
    def validate(self, document: object) -> None:
        text = getattr(document, "text", "")
        try:
            words = [w.decode("utf-8", "replace") for w in split_args(text.encode())]
        except ProtocolError:
            return  # reported when the line is run
        problem = arity_problem(words) if words and words[0].lower() != "help" else None
        if problem:
            raise ValidationError(message=problem, cursor_position=len(text))


def help_text(topic: list[str]) -> str:
    """``help``, ``help CMD`` and ``help @group``, from the command table."""
    if not topic:
        groups = ", ".join(f"@{g}" for g in TABLE.groups())
        return (
            f"ledis-cli {__version__}\n"
            "To get help about commands, type:\n"
            '      "help @<group>" to get a list of commands in <group>\n'
            '      "help <command>" for help on <command>\n'
            '      "help <tab>" to get a list of possible help topics\n'
            '      "quit" to exit\n\n'
            f"Groups: {groups}\n"
        )
    word = topic[0]
    if word.startswith("@"):
        group = word[1:].lower()
        specs = [s for s in TABLE if s.group == group]
        if not specs:
            return f"No such group '{word}'. Groups: {', '.join(TABLE.groups())}\n"
        return "".join(_describe(s) for s in specs)
    spec = TABLE.get(" ".join(topic).split()[0])
    if spec is None:
        return f"No help for '{' '.join(topic)}'\n"
    if len(topic) > 1 and spec.subcommands:
        sub = spec.subcommand(topic[1])
        if sub is not None:
            return _describe(sub)
    if spec.subcommands:
        return _describe(spec) + "".join(_describe(s) for s in spec.subcommands)
    return _describe(spec)


def _describe(spec: CommandSpec) -> str:
    return (
        f"\n  {spec.display_name} {spec.hint()}\n"
        f"  summary: {spec.summary}\n"
        f"  since: {spec.since}\n"
        f"  group: {spec.group}\n"
    )


class Repl:
    def __init__(
        self,
        conn: Connection,
        history_path: Path | None = None,
        input: Input | None = None,
        output: Output | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.conn = conn
        self.out = out or sys.stdout
        history: History = SafeHistory(str(history_path)) if history_path else InMemoryHistory()
        self.session: PromptSession[str] = PromptSession(
            history=history,
            completer=CommandCompleter(),
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            lexer=CommandLexer(),
            style=STYLE,
            bottom_toolbar=self._toolbar,
            validator=ArityValidator(),
            validate_while_typing=False,
            enable_history_search=False,  # Ctrl-R incremental search stays available
            input_processors=[HintProcessor(self._has_suggestion)],
            input=input,
            output=output,
        )
        self._confirm_session: PromptSession[str] = PromptSession(input=input, output=output)
        self.was_connected = False

    # -- prompt pieces ------------------------------------------------------------------------

    def prompt_text(self) -> str:
        if not self.conn.connected:
            return "not connected> "
        t = self.conn.target
        db = f"[{self.conn.db}]" if self.conn.db else ""
        tx = "(TX)" if self.conn.in_transaction else ""
        return f"{t.address}{db}{tx}> "

    def _toolbar(self) -> str:
        return toolbar(self.session.default_buffer.text)

    def _has_suggestion(self) -> bool:
        return self.session.default_buffer.suggestion is not None

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        self.connect(initial=True)
        while True:
            try:
                line = self.session.prompt(self.prompt_text)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            if not self.handle(line):
                return 0

    def connect(self, initial: bool = False) -> bool:
        try:
            self.conn.connect()
        except ConnectionLost as e:
            self.write(f"{e}\n")
            return False
        if not initial and self.was_connected:
            db = f", database {self.conn.db} selected again" if self.conn.db else ""
            self.write(f"Reconnected to {self.conn.target.address}{db}.\n")
        self.was_connected = True
        return True

    def handle(self, line: str) -> bool:
        """Run one line; False when the user asked to leave."""
        try:
            args = split_args(line.encode())
        except ProtocolError:
            self.write("Invalid argument(s)\n")
            return True
        if not args:
            return True
        words = [a.decode("utf-8", "replace") for a in args]
        name = words[0].lower()
        if name in ("quit", "exit") and len(words) == 1:
            return False
        if name == "help" or name == "?":
            self.write(help_text(words[1:]))
            return True
        if name == "clear":
            self.session.output.erase_screen()
            return True
        if not self.conn.connected and not self.connect():
            return True
        if not self._confirmed(words):
            self.write("(cancelled)\n")
            return True
        try:
            if name in SUBSCRIBING:
                self.listen(args)
                return True
            if name == "monitor":
                self.monitor()
                return True
            reply = self.conn.call(args)
        except ConnectionLost as e:
            if name != "shutdown":  # redis-cli says nothing when SHUTDOWN did its job
                self.write(f"Error: {e}\n")
            return True
        for push in self.conn.take_pushes():  # CLIENT TRACKING invalidations ...
            self.write(format_push(push))
        self.write(format_tty(reply))
        return True

    def monitor(self) -> None:
        """MONITOR's OK, then every command the server runs, until Ctrl-C (then a fresh
        connection: the old one stays in monitor mode)."""
        try:
            for reply in self.conn.monitor():
                self.write(format_tty(reply))
        except KeyboardInterrupt:
            pass
        self.conn.fresh_connection()

    def listen(self, args: list[bytes]) -> None:
        """Print pub/sub messages as they come, until Ctrl-C (then leave subscribed mode)."""
        for reply in self.conn.subscribe(args):
            self.write(format_tty(reply))
            if isinstance(reply, ErrorReply):
                return
        self.write("Reading messages... (press Ctrl-C to quit)\n")
        try:
            while True:
                self.write(format_tty(self.conn.read_message()))
        except KeyboardInterrupt:
            pass
        self.conn.fresh_connection()  # the rest of the state restored

    def _confirmed(self, words: list[str]) -> bool:
        name = words[0].lower()
        reason = DANGEROUS.get(name)
        if name == "keys" and reason is None:
            try:
                size = self.conn.call(["DBSIZE"])
            except ConnectionLost:
                return True
            if isinstance(size, int) and size > BIG_KEYS_DB:
                reason = (
                    f"KEYS walks all {size} keys and blocks the server meanwhile; SCAN does not."
                )
        if reason is None:
            return True
        try:
            answer = self._confirm_session.prompt(f"{reason} Continue? (y/N) ")
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")
