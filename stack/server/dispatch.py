"""From an argument list to a reply: lookup in the command table, arity, auth, stats, handler.

Everything a command needs checked before its handler runs is decided here from its spec, so
handlers hold only the command's own semantics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.commands import TABLE, CommandSpec
from stack.core.commands.keyspec import has_keys
from stack.core.resp import (
    NULL3,
    Chunks,
    Raw,
    ReplyError,
    chunks_for_resp3,
    encode,
    encode_error,
)

from .blocking import Block, Suspend, suspend
from .commands import Handler, load_all
from .deferral import wait_and_rerun
from .latency import new_histogram
from .protection import PROTECTED_COMMANDS, allowed
from .storage.keyspace import WrongType

if TYPE_CHECKING:
    from .client import Client
    from .observers import Observers

log = logging.getLogger(__name__)

_WRONGTYPE = encode_error(errors.WRONGTYPE)
_SECURITY = (b"post", b"host:")
_QUEUED = Raw(b"+QUEUED\r\n")
BLOCKED = Raw(b"")  # the reply comes later (see blocking.py)
# Commands that act at once inside MULTI instead of being queued.
_IMMEDIATE = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
_SUBSCRIBED_OK = frozenset(
    {"subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ping", "quit", "reset"}
)


@dataclass(slots=True)
class Entry:
    """A command (or subcommand) ready to run, with its statistics."""

    spec: CommandSpec
    handler: Handler | None
    name: str
    subs: dict[bytes, Entry] = field(default_factory=dict)
    arity: int = 0
    no_auth: bool = False
    no_multi: bool = False
    write: bool = False
    # Reads nothing but its keys (through the engine, which tracks reads of data not yet
    # written) and the connection's state: its reply need not wait for a batch it did not
    # read from (Server.after_commands).
    clean: bool = False
    calls: int = 0
    usec: int = 0
    failed: int = 0
    rejected: int = 0
    # Calls by duration: [k] counts those under 1024 << k ns (latency.py; LATENCY HISTOGRAM).
    histogram: list[int] = field(default_factory=new_histogram)

    def __post_init__(self) -> None:
        self.arity = self.spec.arity
        self.no_auth = "no_auth" in self.spec.flags
        self.no_multi = "no_multi" in self.spec.flags
        self.write = self.spec.is_write
        self.clean = not self.write and (
            self.spec.group == "connection" or (has_keys(self.spec) and not self.spec.key_proc)
        )


class UnknownCommand(Exception):
    pass


def for_resp3(result: object) -> bytes | Chunks:
    """A handler's result encoded for a RESP3 client."""
    if isinstance(result, Chunks):
        return chunks_for_resp3(result)
    return encode(result, resp3=True)


class Dispatcher:
    def __init__(self) -> None:
        handlers = load_all()
        self.entries: dict[bytes, Entry] = {}
        self.all_entries: list[Entry] = []
        for spec in TABLE:
            entry = Entry(spec, handlers.get(spec.name), spec.name)
            self.all_entries.append(entry)
            for sub in spec.subcommands:
                sub_entry = Entry(sub, handlers.get(sub.name), sub.name)
                self.all_entries.append(sub_entry)
                sub_entry_name = sub.name.split("|", 1)[1].encode()
                entry.subs[sub_entry_name] = sub_entry
            name = spec.name.encode()
            self.entries[name] = entry
            self.entries[name.upper()] = entry
        self.errorstats: dict[str, int] = {}
        self.total_error_replies = 0
        # MONITOR, CLIENT TRACKING or CLIENT REPLY OFF|SKIP in use: commands go through
        # server.observers (observers.py).
        self.observed = False
        self.observers: Observers | None = None

    def missing_handlers(self) -> list[str]:
        return [e.name for e in self.all_entries if e.handler is None and not e.spec.subcommands]

    def lookup(self, args: list[bytes]) -> Entry | None:
        name = args[0]
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries.get(name.lower())
        return entry

    def named(self, name: bytes) -> Entry | None:
        """The entry of a command or subcommand by its full name (``client|list``)."""
        parent, bar, sub = name.lower().partition(b"|")
        entry = self.entries.get(parent)
        if entry is None or not bar:
            return entry
        return entry.subs.get(sub)

    def resolve(self, args: list[bytes]) -> Entry | None:
        """The entry that runs ``args``, subcommand resolved (as ``execute`` resolves it)."""
        entry = self.lookup(args)
        if entry is not None and entry.subs and len(args) >= 2:
            return entry.subs.get(args[1].lower())
        return entry

    def count_error(self, reply: bytes) -> None:
        self.total_error_replies += 1
        prefix = reply[1:].split(b" ", 1)[0].decode("latin-1", "replace")
        self.errorstats[prefix] = self.errorstats.get(prefix, 0) + 1

    def reset_stats(self) -> None:
        for e in self.all_entries:
            e.calls = e.usec = e.failed = e.rejected = 0
        self.errorstats.clear()
        self.total_error_replies = 0

    def execute(self, client: Client, args: list[bytes], observing: bool = False) -> bytes | Chunks:
        """Run one command; always returns the encoded reply (errors included)."""
        if self.observed and not observing:
            return self.observers.execute(self, client, args)  # type: ignore[union-attr]
        name = args[0]
        entry = self.entries.get(name)
        if entry is None:
            entry = self.entries.get(name.lower())
            if entry is None:
                if client.multi is not None:
                    client.multi_failed = True
                if not client.in_exec:
                    client.last_command = "NULL"
                return self._unknown(client, args)
        if entry.subs:
            if len(args) >= 2:
                sub = entry.subs.get(args[1].lower())
                if sub is None:
                    if not client.in_exec:
                        client.last_command = "NULL"
                    return self._reject(
                        client, entry, errors.unknown_subcommand(args[1], entry.name).message
                    )
                entry = sub
            elif entry.handler is None:
                return self._reject(client, entry, errors.wrong_arity(entry.name).message)
        if not client.in_exec:  # CLIENT LIST's cmd=: the last command looked up (EXEC's own)
            client.last_command = entry.name
        arity = entry.arity
        argc = len(args)
        if (argc != arity) if arity > 0 else (argc < -arity):
            return self._reject(client, entry, errors.wrong_arity(entry.name).message)
        protected = PROTECTED_COMMANDS.get(entry.name)
        if protected is not None and not allowed(client.server.config[protected[1]], client.local):
            return self._reject(client, entry, errors.protected_command(*protected).message)
        if not client.authenticated and not entry.no_auth:
            return self._reject(client, entry, errors.NOAUTH)
        if not client.user.open and not (entry.no_multi and client.multi is not None):
            denied = client.server.acl.check(client, entry.spec, args)  # ACL (acl/access.py)
            if denied is not None:
                if client.in_exec:  # rules changed since the command was queued
                    return self._error(denied)
                return self._reject(client, entry, denied)
        gate = client.server.gate
        if gate.checks_keys or client.asking:  # slot rules (a map, keys on their way)
            verdict = gate.key_refusal(client, entry, args)
            if verdict is not None:
                return self._redirect(client, entry, args, verdict)
        if (entry.write or entry.name == "exec") and not gate.writes_ok:
            refusal = gate.write_refusal(client, entry)
            if refusal is not None:
                return self._reject(client, entry, refusal)
        if (
            (client.channels or client.patterns)
            and not client.resp3  # RESP3 clients may run any command while subscribed
            and entry.name not in _SUBSCRIBED_OK
        ):
            return self._reject(
                client,
                entry,
                f"ERR Can't execute '{entry.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                "PING / QUIT / RESET are allowed in this context",
            )
        if client.multi is not None and entry.name not in _IMMEDIATE:
            if entry.no_multi:
                client.multi_failed = True
                return self._error(errors.NOT_IN_MULTI)
            client.multi.append(args)
            return _QUEUED
        server = client.server
        if entry.write and server.read_only:
            entry.rejected += 1
            return self._error(errors.READONLY)
        if not entry.clean:
            client.unclean = True
        if entry.write:
            client.wrote = True
            client.just_wrote = server.semi_sync > 0
        start = time.perf_counter_ns()
        reply: bytes | Chunks
        try:
            result = entry.handler(client, args)  # type: ignore[misc]
        except ReplyError as e:
            reply = encode_error(e.message)
            entry.failed += 1
            self.count_error(reply)
        except Suspend as suspension:
            suspend(client, suspension)
            reply = BLOCKED
        except Block as block:
            if client.in_exec:  # inside EXEC a blocking command answers its timeout at once
                reply = NULL3 if client.resp3 else block.in_exec_reply
            else:
                client.server.waiters.block(client, args, block)
                reply = BLOCKED
        except WrongType:
            reply = _WRONGTYPE
            entry.failed += 1
            self.count_error(reply)
        except Exception as e:
            # A bug must cost one reply, never the connection or the server.
            if entry.spec.redact is None:
                log.exception("command %s failed", entry.name)
            else:  # the exception's text or locals could hold the secret: name its type only
                log.error("command %s failed: %s", entry.name, type(e).__name__)
            reply = encode_error(f"ERR internal error in '{entry.name}'; see the server log")
            entry.failed += 1
            self.count_error(reply)
        else:
            t = type(result)
            if client.resp3:
                reply = for_resp3(result)
            elif t is Raw or t is Chunks:
                reply = result
            elif t is bytes:
                reply = b"$%d\r\n%b\r\n" % (len(result), result)
            elif isinstance(result, Chunks):
                reply = result
            else:
                reply = encode(result)
        ns = time.perf_counter_ns() - start
        usec = ns // 1000
        entry.calls += 1
        entry.usec += usec
        entry.histogram[(ns >> 10).bit_length()] += 1
        if usec >= server.watch_us:
            server.record_slow(client, args, usec, entry.spec)
        if server.keyspace.ready_keys and not client.in_exec:  # after the whole command
            server.waiters.serve_ready()
        return reply

    def refuse(self, client: Client, entry: Entry, message: str) -> bytes:
        """Refuse a command before it runs (for checks made outside ``execute``)."""
        return self._reject(client, entry, message)

    def _reject(self, client: Client, entry: Entry, message: str) -> bytes:
        """Refuse a command before it runs, as Redis's ``rejectCommand``: a transaction in
        progress is flagged to abort, and EXEC itself refused discards the transaction and
        answers EXECABORT with the reason."""
        entry.rejected += 1
        if entry.name == "exec":
            from .transaction import end_transaction

            end_transaction(client)
            reason = message[4:] if message.startswith("ERR ") else message
            return self._error(errors.EXECABORT_BECAUSE + reason)
        if client.multi is not None:
            client.multi_failed = True
        return self._error(message)

    def _redirect(
        self, client: Client, entry: Entry, args: list[bytes], verdict: str | asyncio.Future[None]
    ) -> bytes:
        """The slot gate said no (slotmap.py): a redirection or refusal to answer (inside
        MULTI it fails the transaction, and EXEC discards it, as Redis Cluster does), or a
        key on its way to wait for (the command runs again once its move ended)."""
        if not isinstance(verdict, str):
            return wait_and_rerun(client, args, verdict)  # type: ignore[return-value]
        entry.rejected += 1
        if entry.name == "exec":
            from .transaction import end_transaction

            end_transaction(client)
        elif client.multi is not None:
            client.multi_failed = True
        return self._error(verdict)

    def _error(self, message: str) -> bytes:
        reply = encode_error(message)
        self.count_error(reply)
        return reply

    def _unknown(self, client: Client, args: list[bytes]) -> bytes:
        if args[0].lower() in _SECURITY:
            log.warning(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or "
                "Host: commands to ledis-server (client %s). This is likely due to an attacker "
                "attempting to use Cross Protocol Scripting. Connection aborted.",
                client.addr,
            )
            client.close_now()
            return b""
        return self._error(errors.unknown_command(args[0], args[1:]).message)
