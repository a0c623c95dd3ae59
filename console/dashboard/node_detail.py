"""A node's detail: its INFO sections (from the last sample), its slow log, the binlog tail as
readable commands (BINLOG SHOW), and a ledis-cli session on it (the REPL's completer and
redis-cli's reply format). Requests go through the sample source, one at a time, each bounded
by the poller's timeout; a recording has no node to ask and says so."""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Footer, Input, RichLog, Static, TabbedContent, TabPane

from console.cli.completion import suggest
from console.cli.dangerous import DANGEROUS
from console.cli.render import format_tty
from stack.core.commands import TABLE

from .sample import ClusterSample
from .style import BAD, DIM

Call = Callable[..., Awaitable[object]]
BINLOG_TAIL = 20


class CommandSuggester(Suggester):
    """Inline completion from the REPL's pure ``suggest``: the first suggestion."""

    def __init__(self) -> None:
        super().__init__(use_cache=True, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        options = suggest(value)
        if not options:
            return None
        s = options[0]
        return value[: len(value) - s.replace] + s.text


def info_text(sample: ClusterSample | None, addr: str) -> Text:
    if sample is None:
        return Text("no sample yet", DIM)
    n = sample.nodes.get(addr)
    if n is None:
        p = sample.proxies.get(addr)
        if p is None:
            return Text(f"{addr} is not in the last sample", DIM)
        return Text(f"proxy {p.id}: ops/s {p.ops_per_sec:g}, clients {p.clients}")
    out = Text()
    if n.stale:
        out.append(f"stale: {n.error}\n\n", BAD)
    for name, fields in n.sections.items():
        if name == "commandstats":
            continue
        out.append(f"# {name}\n", "bold")
        for k, v in fields.items():
            out.append(f"{k}:{v}\n")
        out.append("\n")
    return out


def slowlog_text(reply: object) -> Text:
    out = Text()
    if not isinstance(reply, list) or not reply:
        return Text("the slow log is empty", DIM)
    for entry in reply:
        if not isinstance(entry, list) or len(entry) < 4:
            continue
        eid, ts, usec, args = entry[0], entry[1], entry[2], entry[3]
        words = " ".join(
            a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in args
        )
        out.append(f"#{eid} ", DIM)
        out.append(f"{int(usec) / 1000:.1f} ms ", "bold")
        out.append(f"{words}  ")
        out.append(f"(at {ts})\n", DIM)
    return out


def binlog_text(reply: object) -> Text:
    out = Text()
    if not isinstance(reply, list) or not reply:
        return Text("no binlog records", DIM)
    for record in reply:
        if not isinstance(record, list) or len(record) < 3:
            continue
        log_id, _ms, lines = record[0], record[1], record[2]
        for line in lines if isinstance(lines, list) else [lines]:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
            out.append(f"{log_id:>8} ", DIM)
            out.append(f"{text}\n")
    return out


class NodeDetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("r", "reload", "reload"),
    ]

    def __init__(
        self, addr: str, sample: ClusterSample | None, call: Call | None, read_only: bool
    ) -> None:
        super().__init__()
        self.addr = addr
        self.sample = sample
        self.call = call
        self.read_only = read_only
        self.pending: str | None = None  # a dangerous command waiting for its "y"

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("node ", "bold"), (self.addr, "bold")), id="detail-head")
        with TabbedContent(id="detail-tabs"):
            with TabPane("INFO", id="d-info"):
                yield RichLog(id="info-log", wrap=False, markup=False)
            with TabPane("Slow log", id="d-slowlog"):
                yield Static(id="slowlog")
            with TabPane("Binlog tail", id="d-binlog"):
                yield Static(id="binlog")
            with TabPane("ledis-cli", id="d-cli"):
                yield RichLog(id="cli-log", wrap=True, markup=False)
                yield Input(
                    placeholder=f"{self.addr}> command (Tab accepts the suggestion)",
                    id="cli-input",
                    suggester=CommandSuggester(),
                )
        yield Footer()

    def on_mount(self) -> None:
        self.show_info()
        self.action_reload()

    def show_info(self) -> None:
        log = self.query_one("#info-log", RichLog)
        log.clear()
        log.write(info_text(self.sample, self.addr))

    def update_sample(self, sample: ClusterSample) -> None:
        self.sample = sample

    def action_reload(self) -> None:
        self.show_info()
        self.fetch()

    @work(exclusive=True, group="detail")
    async def fetch(self) -> None:
        slow = self.query_one("#slowlog", Static)
        binlog = self.query_one("#binlog", Static)
        if self.call is None:
            slow.update(Text("a recording has no node to ask", DIM))
            binlog.update(Text("a recording has no node to ask", DIM))
            return
        try:
            slow.update(slowlog_text(await self.call(self.addr, "SLOWLOG", "GET", "20")))
        except Exception as e:
            slow.update(Text(f"SLOWLOG GET: {e}", BAD))
        try:
            info = await self.call(self.addr, "BINLOG", "INFO")
            last = int(info[1]) if isinstance(info, list) and len(info) > 1 else 0
            after = max(0, last - BINLOG_TAIL)
            binlog.update(
                binlog_text(
                    await self.call(self.addr, "BINLOG", "SHOW", str(after), str(BINLOG_TAIL))
                )
            )
        except Exception as e:
            binlog.update(Text(f"BINLOG: {e}", BAD))

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "d-cli":  # typing goes to the prompt, not to the app's keys
            self.query_one("#cli-input", Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "cli-input":
            return
        line = event.value.strip()
        event.input.value = ""
        pending, self.pending = self.pending, None
        log = self.query_one("#cli-log", RichLog)
        if pending is not None:
            if line.lower() in ("y", "yes"):
                self.run_command(pending)
            else:
                log.write(Text(f"(not run) {pending}", DIM))
            return
        if not line:
            return
        reason = DANGEROUS.get(line.split(maxsplit=1)[0].lower())
        if reason is not None and not self.read_only:
            self.pending = line
            log.write(Text(f"{self.addr}> {line}", "bold"))
            log.write(Text(f"{reason} Continue? (y/N)", BAD))
            return
        self.run_command(line)

    @work(group="cli")
    async def run_command(self, line: str) -> None:
        log = self.query_one("#cli-log", RichLog)
        log.write(Text(f"{self.addr}> {line}", "bold"))
        try:
            args = shlex.split(line)
        except ValueError as e:
            log.write(Text(f"(error) {e}", BAD))
            return
        if self.call is None:
            log.write(Text("a recording has no node to ask", DIM))
            return
        spec = TABLE.resolve([a.encode() for a in args])
        if self.read_only and (spec is None or spec.is_write or "admin" in spec.flags):
            log.write(Text("(read-only) only read commands run from a read-only dashboard", BAD))
            return
        try:
            reply = await self.call(self.addr, *args)
        except Exception as e:
            log.write(Text(f"(error) {e}", BAD))
            return
        log.write(format_tty(reply).rstrip("\n"))
