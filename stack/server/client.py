"""One client connection: parse what arrives, run it, queue replies, respect every limit.

Replies of a read are collected and written once per received chunk (one transport write for a
whole pipeline). When the chunk wrote anything, the replies wait until the server has committed
the write batch (``Server.after_commands``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import (
    NIL,
    NIL_ARRAY,
    NULL3,
    Chunks,
    ProtocolError,
    RequestParser,
    encode_error,
)
from stack.core.resp_client import set_keepalive

from .accel import ext
from .fastlane import ALL_RAN
from .protection import denies_connection, is_local_peer

if TYPE_CHECKING:
    from .acl import User
    from .blocking import Suspended, Waiting
    from .replication import ReplicaLink
    from .server import Server
    from .storage.keyspace import Database
    from .tracking import TrackingState

log = logging.getLogger(__name__)

_ALL = 1 << 30
TURN_OUTPUT = 64 << 20  # replies one turn may queue when the client has no output limit
# One turn of a client: how long it may run commands before the others get theirs.
TURN_SECONDS = 0.001
# The turn of a client doing background work for another node (a migration's restores):
# short, so the clients of this node wait for at most this much of it.
BACKGROUND_TURN_SECONDS = 0.00015
REPLY_BUFFER = 16 * 1024  # Redis's per-client reply buffer, outside its output limits
SCANNER = ext.scan if ext is not None else None  # plain commands parsed in C (RequestParser)


class _PyReader:
    """Client's base without the C extension (with it, ``_fastlane.Reader``: data_received
    in C, a read straight to the lane when the gate says the client is plain)."""

    def attach(self, *parts: object) -> None:
        pass


if TYPE_CHECKING or ext is None:
    Reader = _PyReader
else:
    Reader = ext.Reader


class Client(Reader, asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.attach(
            server.gate.plain,
            server.lane.ctx,
            server.after_commands,
            server.keyspace,
            server.engine,
        )
        self.server = server
        self.id = server.next_client_id()
        self.parser = RequestParser(server.limits, SCANNER)
        self.transport: asyncio.Transport | None = None
        self.adopted = False  # accepted by a busy script (scripting/busy.py), then handed over
        self.db: Database = server.keyspace.dbs[0]
        # ACL: the user, whether AUTH/HELLO logged in (or the default user needed no password
        # at connect: Redis's c->authenticated), and whether commands may run now (that, or
        # the default user needing none now). See acl/access.py.
        self.user: User = server.acl.default
        self.logged_in = server.acl.default_open
        self.authenticated = self.logged_in
        self.parser.authenticated = self.authenticated
        self.name = b""
        self.addr = "?:0"
        self.local = False  # 127.0.0.1 or ::1 (protection.is_local_peer)
        self.laddr = "?:0"
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.out: list[bytes] = []
        self.out_bytes = 0  # bytes in ``out``: a turn stops running commands past a bound
        self.waiting_commit = False
        self.closing = False
        self.close_after_reply = False
        self.paused_reading = False
        self.write_paused = False  # the transport's buffer is over its high-water mark
        self.backlogged = False  # commands left for another turn (Server.backlog)
        self.turn_seconds = TURN_SECONDS  # BACKGROUND_TURN_SECONDS once it restores keys
        self.queue: deque[list[bytes]] = deque()  # parsed commands held while paused
        self.held = False  # waiting for CLIENT UNPAUSE
        self.no_evict = False
        self.multi: list[list[bytes]] | None = None  # commands queued since MULTI
        self.multi_failed = False  # a queued command was rejected: EXEC aborts
        self.watched: dict[bytes, int] = {}  # WATCHed metadata keys -> their expiry then
        self.watch_broken = False
        self.in_exec = False
        self.asking = False  # ASKING: the next command may use a slot migrating here
        self.resp3 = False  # HELLO 3
        self.channels: dict[bytes, None] = {}  # subscribed channels (ordered)
        self.patterns: dict[bytes, None] = {}  # subscribed patterns
        self.blocked: Waiting | Suspended | None = None  # waiting in BLPOP & co (or WAIT)
        self.wrote = False  # a write since the last commit
        # This turn ran a command that may have read data not yet written other than through
        # the engine's tracked reads (Engine.dirty_reads): its replies wait for the batch.
        self.unclean = False
        self.just_wrote = False  # the command being answered was a write (semi-sync)
        self.write_replies: list[tuple[int, int]] = []  # where write replies sit in out
        self.held_replies = 0  # command replies in out (a failed batch answers each)
        self.soft_limit_since = 0.0  # when its output went over its class's soft limit
        self.unparsed = 0  # its unparsed input as last told to server.memory
        self.failures_seen = 0  # the engine's failed batches when this turn began
        self.awaiting_acks = False  # replies held until replicas acknowledge (semi-sync)
        self.last_write_log_id = 0  # the LogID of this client's latest write (for WAIT)
        self.replica_port = 0
        self.replica_link: ReplicaLink | None = None
        self.net_in = 0
        self.net_out = 0
        self.fd = -1
        # Introspection (observers.py): CLIENT REPLY OFF|SKIP (reply_mode.py), CLIENT TRACKING
        # (tracking.py), MONITOR (monitor.py).
        self.reply_off = 0  # reply_mode.ON, OFF or OFF_IN_EXEC
        self.skip = 0  # CLIENT REPLY SKIP: 1 set by the command running, 2 the next one's
        self.tracking: TrackingState | None = None
        self.monitor = False

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.adopted:  # accepted during a busy script: the loop's transport now
            self.transport = transport  # type: ignore[assignment]
            return
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _fmt_addr(peer)
        self.laddr = _fmt_addr(sock)
        raw = transport.get_extra_info("socket")
        self.fd = raw.fileno() if raw is not None else -1
        keepalive = self.server.config["tcp-keepalive"]
        if keepalive and raw is not None:
            set_keepalive(raw, keepalive)
        self.local = is_local_peer(peer)
        server = self.server
        refusal = None
        if len(server.clients) >= server.config["maxclients"]:
            refusal = errors.MAX_CLIENTS
        elif denies_connection(server.config, self.local, server.acl.default.nopass):
            refusal = errors.DENIED
        if refusal is not None:
            server.stats.rejected_connections += 1
            server.refused_client(self.addr, refusal)
            transport.write(encode_error(refusal))  # type: ignore[attr-defined]
            transport.close()
            self.closing = True
            return
        server.clients[self.id] = self
        server.stats.connections_received += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.watched:
            from .transaction import unwatch_all

            unwatch_all(self)
        self.server.forget(self)
        self.server.stats.net_in_gone += self.net_in
        self.server.stats.net_out_gone += self.net_out
        self.server.pubsub.drop(self)
        self.server.memory.gone(self.query_bytes())
        self.server.memory.unparsed(-self.unparsed)
        self.unparsed = 0
        self.parser.reset()
        self.queue.clear()
        self.out.clear()

    if ext is None:  # without the C extension (else _fastlane.Reader's, in C)

        def data_received(self, data: bytes) -> None:
            """A read (see ``_fastlane.Reader.data_received``): stamped, then the Python path
            (the lane cannot run without the extension)."""
            if self.closing:
                return
            self.last_interaction = self.server.keyspace.clock = time.monotonic()
            self.net_in += len(data)
            self._read(data, -1, 0.0, False)

    def _read(self, data: bytes, pos: int, deadline: float, unclean: bool) -> None:
        """The Python path of a read that data_received stamped: when the client was plain
        (``Gate.plain``), the lane ran the bytes as they came up to ``pos``, within the turn
        that ends at ``deadline``, and ``unclean`` says whether what it ran read data not yet
        written; ``pos`` -1: it was not plain. The rest goes into the parser and ``process``
        goes on in the same turn."""
        parser = self.parser
        parser.feed(data)
        lane_ran = None
        if pos >= 0:
            if pos:
                parser.consumed(pos)
            lane_ran = 1 if pos else 0
        if parser.buffered() > parser.limits.max_query_buffer:
            log.warning("closing client %s: query buffer over its limit", self.addr)
            self.close_now()
            return
        if not self.backlogged:  # else the turn the server scheduled runs what came
            self.process(deadline, unclean, lane_ran)

    def pause_writing(self) -> None:
        # The client does not read fast enough: run none of its commands and read none of its
        # input until it catches up (its memory stays bounded by one turn of replies).
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()
        if not self.closing:
            asyncio.get_running_loop().call_soon(self.process)

    def eof_received(self) -> bool | None:
        return None

    # -- running commands ---------------------------------------------------------------------

    def process(
        self, deadline: float = 0.0, unclean: bool = False, lane_ran: int | None = None
    ) -> None:
        """Run the client's complete commands for one turn, then hand the replies to the server.

        A turn ends when no complete command is left, or after ``TURN_SECONDS``: then the rest
        waits, reading stops (backpressure), and
        the server gives the client another turn once this turn's batch is committed and other
        clients had theirs (see ``Server.backlog``). ``deadline``, ``unclean`` and ``lane_ran``:
        the turn began in ``data_received``, in the lane (when it ends, whether what the lane
        ran read data not yet written, and whether it ran any: it stopped at the first
        command left, which the lane is not asked about again).
        """
        server = self.server
        execute = server.dispatcher.execute
        out = self.out
        add = self.add_reply
        lane = server.lane
        turn_limit = server.output_limit(self) or TURN_OUTPUT
        queue = self.queue
        clock = time.monotonic
        background = self.turn_seconds < TURN_SECONDS
        if not deadline:
            deadline = clock() + self.turn_seconds
            self.failures_seen = server.engine.failed_batches
        more = False
        engine = server.engine
        dirty_reads = engine.dirty_reads
        self.unclean = unclean
        try:
            while not self.closing and not self.held and self.blocked is None:
                if self.write_paused:
                    break  # resume_writing calls process again
                if (
                    clock() >= deadline
                    or self.out_bytes > turn_limit
                    or (self.wrote and server.writes_full())
                ):
                    # Its time is up, or enough output for one turn (sent once committed; a
                    # client that does not read is not read either): the rest waits.
                    more = True
                    break
                if queue:
                    args = queue.popleft()
                    if server.must_hold(self, args):
                        queue.appendleft(args)
                        break
                    reply = execute(self, args)
                    if self.blocked is None:
                        add(reply)
                    if self.close_after_reply:
                        break
                    continue
                if lane_ran is None:
                    ran = lane.run(self, deadline)
                else:  # data_received ran the lane on these bytes already
                    ran, lane_ran = lane_ran, None
                if ran == ALL_RAN:
                    break
                if ran:
                    commands = self.parser.parse(1)  # the command the lane stopped at
                else:
                    commands = self.parser.parse(_ALL if self.authenticated else 1)
                if not commands:
                    break
                if server.paused:
                    queue.extend(commands)
                    continue
                for n, args in enumerate(commands):
                    reply = execute(self, args)
                    if self.blocked is not None:  # later commands wait their turn
                        queue.extend(commands[n + 1 :])
                        break
                    add(reply)
                    if self.closing or self.close_after_reply:
                        break
                    if self.out_bytes > turn_limit or (
                        (n & 15 == 15 or background)
                        and (clock() >= deadline or (self.wrote and server.writes_full()))
                    ):
                        queue.extend(commands[n + 1 :])
                        more = True
                        break
                if self.close_after_reply or more:
                    break
        except ProtocolError as e:
            if e.reply:
                out.append(encode_error("ERR " + e.reply))
            log.info("closing client %s: %s", self.addr, e.log)
            self.close_after_reply = True
            more = False
        if more and not self.closing:
            server.backlog(self)
        else:
            self.parser.compact()  # keep only what is unparsed: let the rest of the chunk go
        unparsed = self.parser.buffered()
        if unparsed != self.unparsed:
            server.memory.unparsed(unparsed - self.unparsed)
            self.unparsed = unparsed
        self._update_reading()
        # A blocked client is still read (its commands wait in the buffer), so that a
        # disconnect is noticed and its place in the queue given up.
        server.after_commands(self, not self.unclean and engine.dirty_reads == dirty_reads)

    def push(self, data: bytes) -> None:
        """Send data outside the request/reply flow (replication stream)."""
        if not self.closing:
            self.out.append(data)
            self.server.after_commands(self)

    def add_reply(self, reply: bytes | Chunks) -> None:
        self.held_replies += 1
        start = len(self.out)
        if isinstance(reply, Chunks):
            self.out.extend(reply)
            self.out_bytes += sum(map(len, reply))
        else:
            self.out.append(reply)  # type: ignore[arg-type]
            self.out_bytes += len(reply)
        if self.just_wrote:  # semi-sync may have to turn this reply into -NOREPLICAS
            self.just_wrote = False
            self.write_replies.append((start, len(self.out)))

    def fail_replies(self, error: bytes) -> None:
        """The batch this client's writes were in could not be written: each reply held for
        it becomes ``error`` (nothing of the batch was applied)."""
        self.out = [error] * self.held_replies
        self.write_replies = []

    def fail_unacknowledged(self, error: bytes) -> int:
        """Replace the replies of writes that replicas did not acknowledge in time."""
        if not self.write_replies:
            return 0
        spans = self.write_replies
        out: list[bytes] = []
        pos = 0
        for start, end in spans:
            out += self.out[pos:start]
            out.append(error)
            pos = end
        out += self.out[pos:]
        self.out = out
        self.write_replies = []
        return len(spans)

    def resume_with(self, reply: bytes | Chunks) -> None:
        """A blocking command got its answer: send it and go on with queued commands."""
        if self.resp3 and (reply is NIL or reply is NIL_ARRAY):
            reply = NULL3
        self.add_reply(reply)
        loop = asyncio.get_running_loop()
        loop.call_soon(self.process)

    def flush(self) -> None:
        """Write queued replies (called once their writes are committed)."""
        if self.awaiting_acks:
            return
        if self.write_replies:
            self.write_replies = []
        self.held_replies = 0
        transport = self.transport
        out = self.out
        self.out_bytes = 0
        if out and transport is not None and not self.closing:
            # As Redis, the limits apply to what is held before it goes to the socket: a reply
            # bigger than the hard limit is never sent, however fast the client reads.
            size = sum(map(len, out)) if len(out) > 1 else len(out[0])
            used = transport.get_write_buffer_size() + size
            if used <= REPLY_BUFFER:  # within the reply buffer: under every limit
                self.soft_limit_since = 0.0
            elif self.server.output_over_limit(self, used):
                log.warning(
                    "closing client %s (%s): %d bytes of output over its limits",
                    self.addr,
                    self.kind,
                    used,
                )
                self.server.output_limit_closed += 1
                self.close_now()
                return
            self.net_out += size
            if len(out) == 1:
                transport.write(out[0])
                out.clear()
            elif len(out) < 256:  # a pipeline's small replies: one join, one write
                transport.write(b"".join(out))
                out.clear()
            else:  # a long array in pieces: a vectored write, no join
                self.out = []
                transport.writelines(out)
        if self.close_after_reply:
            self.close()

    def release(self) -> None:
        """Resume after CLIENT UNPAUSE."""
        self.held = False
        self._update_reading()
        if self.transport is not None:
            asyncio.get_running_loop().call_soon(self.process)

    def _update_reading(self) -> None:
        """Read the client's input unless something waits: CLIENT PAUSE, a turn still to run,
        or replies the client has not read."""
        t = self.transport
        if t is None or self.closing:
            return
        want_paused = self.held or self.backlogged or self.write_paused
        if want_paused and not self.paused_reading:
            t.pause_reading()
            self.paused_reading = True
        elif not want_paused and self.paused_reading:
            t.resume_reading()
            self.paused_reading = False

    def close(self) -> None:
        """Close after pending output is written."""
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()

    def close_now(self) -> None:
        """Drop the connection without writing anything more."""
        self.closing = True
        self.out.clear()
        if self.transport is not None:
            self.transport.abort()

    # -- introspection ------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """CLIENT LIST / KILL type: normal, replica (a replication link) or pubsub."""
        if self.replica_link is not None:
            return "replica"
        if self.channels or self.patterns:
            return "pubsub"
        return "normal"

    def query_bytes(self) -> int:
        """Input held for this client: unparsed bytes and parsed commands not yet run."""
        queued = sum(len(a) + 16 for args in self.queue for a in args) if self.queue else 0
        return self.parser.buffered() + queued

    def output_bytes(self) -> int:
        """Output held for this client: written to its transport and not yet sent."""
        t = self.transport
        return t.get_write_buffer_size() if t is not None else 0


def _fmt_addr(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return "?:0"
