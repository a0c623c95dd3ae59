"""The ledis-server process: listener, clients, group commit, background cron, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from stack import REDIS_VERSION, __version__
from stack.core import errors
from stack.core.commands import CommandSpec
from stack.core.resp import Limits, encode_error

from . import descriptors
from .acl import AccessControl
from .blocking import Waiters
from .client import REPLY_BUFFER, TURN_SECONDS, Client
from .config import ClassLimit, Config, ConfigError, Value, parse_output_limits
from .dispatch import Dispatcher
from .fastlane import FastLane
from .gate import Gate
from .latency import LatencyMonitor, set_tracking
from .listener import Listener
from .memory import Memory
from .migrate import REST, Migrator
from .notifications import Notifier
from .observers import Observers
from .persistence import Backups
from .protection import startup_warnings
from .pubsub import PubSub
from .replication import Replication
from .scripting import Scripts
from .slotmap import Slots
from .storage.engine import Engine, WriteFailed
from .storage.keyspace import Keyspace

log = logging.getLogger(__name__)

PRE_AUTH_OUTPUT_LIMIT = 64 * 1024
SLOWLOG_MAX_ARGS = 32
RECLAIM_BATCH = 200
# Active expiry works in slices of at most this long (or this many index entries).
EXPIRE_SLICE = 0.002
EXPIRE_BATCH = 2000
# A write batch this big, or this old, is committed at once (its replies sent) before the
# next client runs, however many clients had a turn in this loop iteration.
BATCH_RECORDS = 20_000
BATCH_SECONDS = 0.005
# While a batch is in flight (LevelDB may be waiting for room in its memtable), the next one
# grows up to this many records; past it, the loop waits for LevelDB (memory stays bounded).
BATCH_RECORDS_HELD = 2 * BATCH_RECORDS
UNACKED_REPLY = encode_error(errors.UNACKED)
SLOWLOG_MAX_ARG_LEN = 128


@dataclass
class Stats:
    connections_received: int = 0
    rejected_connections: int = 0
    commands_at_last_sample: int = 0
    ops_per_sec: int = 0
    sample_time: float = 0.0
    # bytes read from and written to clients that went away, and the totals at the last
    # CONFIG RESETSTAT (INFO's totals: these plus the live clients' counts, since the reset)
    net_in_gone: int = 0
    net_out_gone: int = 0
    net_in_reset: int = 0
    net_out_reset: int = 0

    def net(self, clients: Iterable[Client]) -> tuple[int, int]:
        """Bytes read from and written to clients since the start or the last reset: those
        gone and those still here (``clients``)."""
        net_in, net_out = self.net_in_gone, self.net_out_gone
        for c in clients:
            net_in += c.net_in
            net_out += c.net_out
        return net_in - self.net_in_reset, net_out - self.net_out_reset

    def reset(self, clients: Iterable[Client]) -> None:
        """Start again (CONFIG RESETSTAT); ``clients``: those connected now."""
        self.connections_received = 0
        self.rejected_connections = 0
        net_in, net_out = self.net(clients)
        self.net_in_reset += net_in
        self.net_out_reset += net_out


@dataclass
class SlowlogEntry:
    id: int
    timestamp: int
    usec: int
    args: list[bytes]
    addr: str
    name: bytes


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self.started_mono = time.monotonic()
        self.pid = os.getpid()
        self.run_id = os.urandom(20).hex()
        self.clients: dict[int, Client] = {}
        self.acl = AccessControl(self)  # users first: a bad ACL file stops the start here
        self.limits = self._limits()
        self.fds = descriptors.plan(config["maxclients"])
        if self.fds.maxclients != config["maxclients"]:
            config.values["maxclients"] = self.fds.maxclients  # what fits (logged)
        config.check("maxclients", self._check_maxclients)
        config.applier("port", self._move_listener)
        self.engine = Engine(
            Path(config["dir"]),
            config["appendfsync"],
            config["read-cache-entries"],
            binlog=config["binlog"] == "yes",
            compression=config["compression"],
            max_open_files=self.fds.leveldb_files,
            write_buffer_size=config["leveldb-write-buffer-size"],
            max_file_size=config["leveldb-max-file-size"],
        )
        self.keyspace = Keyspace(self.engine, config["databases"])
        self.dispatcher = Dispatcher()
        self.gate = Gate(self)
        self.lane = FastLane(self)
        self.stats = Stats()
        self.slowlog: deque[SlowlogEntry] = deque(maxlen=max(1, config["slowlog-max-len"]))
        self.slowlog_next_id = 0
        self.latency = LatencyMonitor()
        self._client_seq = 0
        self._waiting: list[Client] = []  # replies held for the next batch
        # Replies held for a batch in flight, by the future of its write.
        self._flight_clients: dict[Future[None], list[Client]] = {}
        self._commit_scheduled = False
        self._syncing = False  # an everysec fsync runs in a thread
        self._batch_started = 0.0  # when the commit now scheduled was asked for
        self._failure_logged = -1e9
        self._refusal_logged = -1e9
        self._write_failed_reply = b""
        self.engine.on_failure.append(self._write_failed)
        self._backlog: list[Client] = []  # clients whose turn ended with commands left
        self._backlog_scheduled = False
        self.paused = False
        self.pause_all = False
        self.pause_until = 0.0
        self._held: list[Client] = []
        self.waiters = Waiters(self)
        self.pubsub = PubSub(self)
        self.backups = Backups(self)
        self.replication = Replication(self)
        self.notifier = Notifier(self)
        self.memory = Memory()
        self.slots = Slots(self)  # the slot map and keys held by migrations (slotmap.py)
        self.migrator = Migrator(self)
        self.notifier.configure(config["notify-keyspace-events"])
        self.keyspace.on_expire.append(self.notifier.expired)
        self.observers = Observers(self)  # MONITOR, CLIENT TRACKING, CLIENT REPLY
        self.scripts = Scripts(self)  # Lua: EVAL, EVALSHA, SCRIPT (scripting/)
        self.dispatcher.observers = self.observers
        set_tracking(self.dispatcher, config["latency-tracking"] == "yes")
        self._pause_timer: asyncio.TimerHandle | None = None
        self.listener = Listener(lambda: Client(self))
        self._cron_task: asyncio.Task[None] | None = None
        self._reclaim_task: asyncio.Task[None] | None = None
        self._expire_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.shutting_down = False
        self._stopping_task: asyncio.Task[None] | None = None
        self.read_only = False  # set on replicas
        self.active_expire = True  # DEBUG SET-ACTIVE-EXPIRE 0 stops the background expiry
        self.semi_sync = int(config["min-replicas-to-write"])
        self.port = 0
        self.slowlog_threshold = config["slowlog-log-slower-than"]
        self.latency_threshold_us = config["latency-monitor-threshold"] * 1000
        self.output_limits = parse_output_limits(config["client-output-buffer-limit"])
        self.output_limit_closed = 0  # clients closed for their output buffers
        self.watch_us = self._watch_threshold()
        config.on_change(self._config_changed)

    def _watch_threshold(self) -> int:
        """Commands at least this slow (µs) go to the slow log or the latency monitor."""
        candidates = [2**62]
        if self.slowlog_threshold >= 0:
            candidates.append(self.slowlog_threshold)
        if self.latency_threshold_us > 0:
            candidates.append(self.latency_threshold_us)
        return min(candidates)

    def _limits(self) -> Limits:
        return Limits(
            max_bulk=self.config["proto-max-bulk-len"],
            max_query_buffer=self.config["client-query-buffer-limit"],
        )

    def _check_maxclients(self, value: Value, current: Value) -> Value:
        try:
            self.fds = descriptors.grow(self.fds, int(value))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return value

    def _move_listener(self, value: Value, current: Value) -> None:
        """CONFIG SET port: listen on the new port, then stop listening on the old one
        (clients connected stay); if it cannot be bound, the old one stays."""
        port = int(value)
        if port and port == self.port:
            return  # already listening there (started on port 0)
        try:
            self.listener.move(self.config["bind"], port)
        except OSError as e:
            log.warning("CONFIG SET port %d: cannot listen on %s: %s", port, self.config["bind"], e)
            raise ConfigError(errors.PORT_UNAVAILABLE) from None
        log.info("listening on %s:%d instead of port %d", self.config["bind"], self.listener.port,
                 self.port)  # fmt: skip
        self.port = self.listener.port
        self._write_ready_file()

    def _config_changed(self, name: str, value: Value) -> None:
        if name == "appendfsync":
            self.engine.fsync = str(value)
        elif name == "notify-keyspace-events":
            self.notifier.configure(str(value))
        elif name == "min-replicas-to-write":
            self.semi_sync = int(value)
        elif name == "read-cache-entries":
            self.engine.cache_entries = int(value)
            self.engine.reset_cache()
        elif name == "slowlog-log-slower-than":
            self.slowlog_threshold = int(value)
        elif name == "slowlog-max-len":
            self.slowlog = deque(self.slowlog, maxlen=max(1, int(value)))
        elif name == "latency-monitor-threshold":
            self.latency_threshold_us = int(value) * 1000
        elif name == "latency-tracking":
            set_tracking(self.dispatcher, value == "yes")
        if name in ("slowlog-log-slower-than", "latency-monitor-threshold"):
            self.watch_us = self._watch_threshold()
        if name == "client-output-buffer-limit":
            self.output_limits = parse_output_limits(str(value))
        elif name in ("proto-max-bulk-len", "client-query-buffer-limit"):
            self.limits = self._limits()
            for c in self.clients.values():
                c.parser.limits = self.limits
        elif name == "loglevel":
            from .logsetup import set_level

            set_level(str(value))

    def listening_sockets(self) -> list[socket.socket]:
        """The sockets the server accepts connections on (a busy script accepts for it)."""
        return list(self.listener.sockets)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.listener.start(self.config["bind"], self.config["port"])
        self.port = self.listener.port
        self._cron_task = asyncio.create_task(self._cron())
        self.migrator.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_shutdown, sig.name)
        log.info(
            "ledis-server %s (Redis %s semantics) ready on %s:%d, data in %s, fsync %s",
            __version__,
            REDIS_VERSION,
            self.config["bind"],
            self.port,
            self.config["dir"],
            self.config["appendfsync"],
        )
        for warning in startup_warnings(self.config, self.acl.default.nopass):
            log.warning("%s", warning)
        if self.config["replicaof"]:
            host, port = self.config["replicaof"].split()
            self.replication.replicate(host, int(port))
        self._write_ready_file()

    def _write_ready_file(self) -> None:
        """The ready-file (if asked for) names the port the server listens on now."""
        ready = self.config["ready-file"]
        if ready:
            tmp = Path(ready + ".tmp")
            tmp.write_text(f"{self.port}\n")
            os.replace(tmp, ready)

    async def serve_forever(self) -> None:
        await self.start()
        await self._stopped.wait()

    def request_shutdown(self, reason: str = "SHUTDOWN") -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        log.warning("received %s, shutting down", reason)
        self.listener.close()
        self._stopping_task = asyncio.get_running_loop().create_task(self._stop_moves_first())

    async def _stop_moves_first(self) -> None:
        """Moves end before the store closes (migrate.py ``stop``): none is cut between its
        target's acknowledgement and its delete here, none writes to a closed store."""
        try:
            await self.migrator.stop()
        except Exception:  # pragma: no cover - reported; the store is closed all the same
            log.exception("stopping the moves failed")
        self._shutdown()

    def _shutdown(self) -> None:
        if self._cron_task is not None:
            self._cron_task.cancel()
        for task in (self._reclaim_task, self._expire_task, self.migrator._task):
            if task is not None:
                task.cancel()
        self._commit_now()  # what is in flight, then what is pending
        for c in list(self.clients.values()):
            c.flush()
            c.close()
        try:
            self.engine.close()
        except Exception:  # pragma: no cover - reported, then exit non-zero
            log.exception("closing the data store failed")
            raise
        log.info("data flushed and store closed; bye")
        self._stopped.set()

    # -- clients ------------------------------------------------------------------------------

    def next_client_id(self) -> int:
        self._client_seq += 1
        return self._client_seq

    def refused_client(self, addr: str, refusal: str) -> None:
        """A client was refused as it connected (over maxclients, or protected mode)."""
        now = time.monotonic()
        if now - self._refusal_logged >= 10:  # a flood is logged, not each of its clients
            self._refusal_logged = now
            log.warning(
                "refusing client %s: %s (maxclients %d; %d refused so far)",
                addr,
                refusal,
                self.config["maxclients"],
                self.stats.rejected_connections,
            )

    def forget(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        self.observers.forget(client)
        self.waiters.drop(client)
        if client.replica_link is not None:
            self.replication.detach(client)
        if client in self._held:
            self._held.remove(client)

    def deliver(self, client: Client, payload: bytes) -> None:
        """Push a message to a client outside its request/reply flow (pub/sub)."""
        if client.closing:
            return
        client.out.append(payload)
        self.after_commands(client)

    def output_limit(self, client: Client) -> int:
        """The most output the client may hold (its class's hard limit; 0: none)."""
        if not client.authenticated:
            return PRE_AUTH_OUTPUT_LIMIT
        return self._limits_of(client).hard

    def _limits_of(self, client: Client) -> ClassLimit:
        """The output limits of the client's class; a monitor, fed by others like a
        subscriber, has the pubsub class's while the normal class has none (monitor.py)."""
        limits = self.output_limits
        if client.monitor and not (limits.normal.hard or limits.normal.soft):
            return limits.pubsub
        return limits.of(client.kind)

    def output_over_limit(self, client: Client, used: int) -> bool:
        """Whether a client holding ``used`` bytes of unsent output must be closed, as Redis
        decides (checkClientOutputBufferLimits): at its class's hard limit at once, over the
        soft one for more than its seconds; before AUTH, past a small fixed limit."""
        if not client.authenticated:
            return used > PRE_AUTH_OUTPUT_LIMIT
        used -= REPLY_BUFFER  # Redis counts what its static reply buffer does not hold
        limit = self._limits_of(client)
        if limit.hard and used >= limit.hard:
            return True
        if limit.soft and used >= limit.soft:
            now = time.monotonic()
            if not client.soft_limit_since:
                client.soft_limit_since = now
                return False
            return now - client.soft_limit_since > limit.seconds
        client.soft_limit_since = 0.0
        return False

    # -- group commit -------------------------------------------------------------------------

    def after_commands(self, client: Client, clean: bool = False) -> None:
        """Send the client's replies now, or after the batch their data is in is written.

        ``clean``: the client's turn wrote nothing and read nothing that is not written yet
        (no pending or in-flight record, nothing but its keys and connection state; see
        Client.process), so its replies may go out while a batch is pending or in flight,
        unless replies of its own wait already (they keep their order). (Clients blocked on
        keys a command made ready are served by the dispatcher after that command: never from
        here, which pub/sub delivery reaches in the middle of one.)"""
        engine = self.engine
        if client.failures_seen != engine.failed_batches and client.wrote:
            # A command of this turn committed a batch that failed (others are answered in
            # _write_failed): what the client wrote is not there.
            client.wrote = False
            client.fail_replies(self._write_failed_reply)
        if (engine.pending or engine.flight is not None or client.waiting_commit) and not (
            clean and not client.wrote and not client.waiting_commit
        ):
            if not client.waiting_commit:
                client.waiting_commit = True
                self._waiting.append(client)
            self._schedule_commit()
            if (
                len(engine.pending) >= BATCH_RECORDS
                or time.monotonic() - self._batch_started >= BATCH_SECONDS
            ):
                if engine.flight is None:
                    self._commit_and_release()  # a big or old batch: written now
                elif len(engine.pending) >= BATCH_RECORDS_HELD:
                    self._commit_now()
        else:
            if engine.pending:
                self._schedule_commit()
            client.flush()

    def writes_full(self) -> bool:
        """Whether writers must wait: a batch is in flight (LevelDB may be stalled) and the
        next one is already full. Their turns end after the write that filled it; readers go
        on."""
        return self.engine.flight is not None and len(self.engine.pending) >= BATCH_RECORDS

    def backlog(self, client: Client) -> None:
        """The client has commands left after its turn: it gets another turn after this
        turn's batch is committed, and after the other clients ready now had theirs."""
        if not client.backlogged:
            client.backlogged = True
            self._backlog.append(client)
        self._schedule_commit()

    def _schedule_commit(self) -> None:
        if not self._commit_scheduled:
            self._commit_scheduled = True
            self._batch_started = time.monotonic()
            asyncio.get_running_loop().call_soon(self._commit_and_release)

    def _run_backlog(self) -> None:
        self._backlog_scheduled = False
        clients, self._backlog = self._backlog, []
        lag = self.migrator.lag
        for c in clients:
            if c.turn_seconds < TURN_SECONDS and lag.waited():
                # a link restoring moved keys while others waited here (docs/cluster.md "The
                # pace of the moves"): its next turn after a rest (it stays in the backlog)
                self.migrator.turns_deferred += 1
                asyncio.get_running_loop().call_later(REST, self._deferred_turn, c)
                continue
            c.backlogged = False
            if not c.closing:
                c.process()

    def _deferred_turn(self, c: Client) -> None:
        c.backlogged = False
        if not c.closing:
            c.process()

    def _commit_and_release(self) -> None:
        """Start writing what is pending, in the writer thread (``_committed`` answers its
        clients); with a batch already in flight, the next starts when that one is done. With
        nothing pending, the clients waiting are answered now."""
        self._commit_scheduled = False
        engine = self.engine
        try:
            self._release_written()
            if engine.flight is not None:
                return  # _committed starts the next batch
            try:
                future = engine.start_commit()
            except WriteFailed:
                return  # dropped, reported and answered: _write_failed
            if future is None:  # written already (LevelDB is quick), or nothing was pending
                waiting, self._waiting = self._waiting, []
                self._release(waiting)
                return
            self._flight_clients[future] = self._waiting
            self._waiting = []
            asyncio.wrap_future(future).add_done_callback(lambda _f: self._committed(future))
        finally:
            self._schedule_backlog()

    def _release_written(self) -> None:
        """Answer the clients of batches that a synchronous commit (engine.commit, called by
        background work, BGSAVE ...) finished before their callback came."""
        flight = self.engine.flight
        for future in [f for f in self._flight_clients if flight is None or flight.future is not f]:
            self._release(self._flight_clients.pop(future))

    def _commit_now(self) -> None:
        """Write the batch in flight and what is pending, waiting for LevelDB here: memory
        stays bounded when LevelDB is slower than the writes for a long while."""
        try:
            self.engine.commit()
        except WriteFailed:
            return  # answered in _write_failed
        self._release_written()
        waiting, self._waiting = self._waiting, []
        self._release(waiting)
        self._schedule_backlog()

    def _schedule_backlog(self) -> None:
        """Clients with commands left run their next turn in the next loop iteration, after
        the input that arrived meanwhile (the callbacks scheduled now run after it); writers
        wait while the next batch is full behind one in flight."""
        if self._backlog and not self._backlog_scheduled and not self.writes_full():
            self._backlog_scheduled = True
            asyncio.get_running_loop().call_soon(self._run_backlog)

    def _committed(self, future: Future[None]) -> None:
        """A batch was written (or refused) by the writer thread: answer its clients, and
        start the next batch (what was written meanwhile), or answer those waiting if there
        is none."""
        flight = self.engine.flight
        if flight is not None and flight.future is future:
            try:
                self.engine.finish_commit()
            except WriteFailed:
                self._schedule_backlog()
                return  # answered in _write_failed
        self._release(self._flight_clients.pop(future, []))
        if not self.shutting_down:
            self._commit_and_release()

    def _release(self, waiting: list[Client]) -> None:
        log_id = self.engine.last_log_id
        for c in waiting:
            c.waiting_commit = False
            if c.wrote:
                c.wrote = False
                c.last_write_log_id = log_id
                if self.semi_sync and self.replication.count_acked(log_id) < self.semi_sync:
                    self._await_acks(c, log_id)
                    continue
            c.flush()

    def _write_failed(self, error: WriteFailed) -> None:
        """A batch could not be written, wherever it was committed from. The engine dropped
        it and the keyspace re-read its counts from the store, so memory and disk agree; the
        clients whose replies waited for it are answered: each reply of a client that wrote
        becomes -MISCONF (nothing of the batch applies), the others go out. Logged (at most
        every 10 s) and counted in INFO persistence."""
        self._write_failed_reply = encode_error(errors.write_failed(str(error)))
        now = time.monotonic()
        if now - self._failure_logged >= 10:
            self._failure_logged = now
            log.critical(
                "a write batch could not be written (%d so far); its writes were dropped and "
                "their clients told: %s",
                self.engine.failed_batches,
                error,
            )
        waiting = [c for clients in self._flight_clients.values() for c in clients]
        waiting += self._waiting
        self._flight_clients.clear()
        self._waiting = []
        for c in waiting:
            c.waiting_commit = False
            if c.wrote:
                c.wrote = False
                c.fail_replies(self._write_failed_reply)
            c.flush()

    def _await_acks(self, client: Client, log_id: int) -> None:
        """Semi-sync: hold the client's replies until enough replicas have ``log_id``; when
        they do not in time, its writes (applied, and on their way to the replicas) are
        answered with -UNACKED: never silently asynchronous, and never -NOREPLICAS, which
        says a write was not done (those are refused before they run: dispatch.py)."""
        need = self.semi_sync
        client.awaiting_acks = True
        timeout = self.config["min-replicas-timeout"] / 1000
        future = self.replication.wait_for(log_id, need, timeout)

        def done(_f: object) -> None:
            client.awaiting_acks = False
            if self.replication.count_acked(log_id) < need:
                self.replication.unacked_writes += client.fail_unacknowledged(UNACKED_REPLY)
            client.flush()

        future.add_done_callback(done)

    # -- CLIENT PAUSE -------------------------------------------------------------------------

    def pause(self, ms: int, everything: bool) -> None:
        until = time.monotonic() + ms / 1000
        if self.paused:
            # Redis keeps the later end and the stricter mode of overlapping pauses.
            until = max(until, self.pause_until)
            everything = everything or self.pause_all
        self.paused = True
        self.pause_all = everything
        self.pause_until = until
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        loop = asyncio.get_running_loop()
        self._pause_timer = loop.call_later(max(0.0, until - time.monotonic()), self.unpause)

    def unpause(self) -> None:
        self.paused = False
        self.pause_all = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        held, self._held = self._held, []
        for c in held:
            c.release()
        for c in list(self.clients.values()):
            if c.queue and not c.held:
                asyncio.get_running_loop().call_soon(c.process)

    def must_hold(self, client: Client, args: list[bytes]) -> bool:
        """Whether a queued command must wait for the pause to end (and mark the client)."""
        if not self.paused:
            return False
        hold = self.pause_all
        if not hold:
            spec = self.dispatcher.lookup(args)
            hold = spec is not None and (
                spec.spec.is_write or args[0].lower() in (b"flushall", b"flushdb", b"swapdb")
            )
        if hold:
            client.held = True
            self._held.append(client)
        return hold

    # -- slow log and latency -----------------------------------------------------------------

    def record_slow(self, client: Client, args: list[bytes], usec: int, spec: CommandSpec) -> None:
        if usec >= self.slowlog_threshold >= 0 and "skip_slowlog" not in spec.flags:
            shown = spec.shown(args)[:SLOWLOG_MAX_ARGS]  # secrets read "(redacted)"
            if len(args) > SLOWLOG_MAX_ARGS:
                shown[-1] = b"... (%d more arguments)" % (len(args) - SLOWLOG_MAX_ARGS + 1)
            shown = [
                a
                if len(a) <= SLOWLOG_MAX_ARG_LEN
                else a[:SLOWLOG_MAX_ARG_LEN]
                + b"... (%d more bytes)" % (len(a) - SLOWLOG_MAX_ARG_LEN)
                for a in shown
            ]
            self.slowlog.appendleft(
                SlowlogEntry(
                    self.slowlog_next_id, int(time.time()), usec, shown, client.addr, client.name
                )
            )
            self.slowlog_next_id += 1
        if self.latency_threshold_us and usec >= self.latency_threshold_us:
            event = "fast-command" if "fast" in spec.flags else "command"
            self.latency.sample(event, usec // 1000)

    # -- background work ----------------------------------------------------------------------

    async def _cron(self) -> None:
        last_sync = time.monotonic()
        while True:
            hz = self.config["hz"]
            await asyncio.sleep(1 / hz)
            try:
                now = time.monotonic()
                primary = self.replication.master is None  # replicas change nothing themselves
                expiring = self._expire_task is not None and not self._expire_task.done()
                if primary and self.active_expire and not expiring:
                    self._expire_task = asyncio.create_task(self._expirer())
                if primary and (self._reclaim_task is None or self._reclaim_task.done()):
                    self._reclaim_task = asyncio.create_task(self._reclaimer())
                self._close_idle(now)
                if self.engine.fsync == "everysec" and now - last_sync >= 1 and not self._syncing:
                    self._commit_and_release()
                    last_sync = now
                    if self.engine.unsynced:
                        self._sync_in_background()
                self.keyspace.trim_access()
                self.engine.free_retired(20_000)  # (reads fill the cache without commits)
                self.engine.purge_log(self.config["binlog-max-size"], self.config["binlog-max-age"])
                self._sample_ops(now)
                if self.engine.pending:
                    self._commit_and_release()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task failed; will retry")

    def _sync_in_background(self) -> None:
        """appendfsync everysec: fsync what was written, in a thread (the loop goes on)."""
        self._syncing = True
        future = asyncio.get_running_loop().run_in_executor(None, self.engine.sync_log_files)

        def done(f: asyncio.Future[int]) -> None:
            self._syncing = False
            if f.cancelled():
                return
            error = f.exception()
            if error is not None:
                log.error("fsync of the data store's log failed: %s", error)
            else:
                self.engine.synced(f.result())

        future.add_done_callback(done)

    async def _expirer(self) -> None:
        """Active expiry: slices of at most EXPIRE_SLICE, each committed, with rests between
        them so that the sweep takes at most its share of the CPU (half, and 5% more per step
        of active-expire-effort: about what Redis's slow and fast cycles take together), until
        no key is due; the cron starts it again on its next tick. So a key goes within about a
        tick of its time while the sweep keeps up (tens of thousands of keys a second), and a
        client never waits behind more than one slice."""
        while not self.shutting_down and self.replication.master is None:
            share = 0.5 + 0.05 * (self.config["active-expire-effort"] - 1)
            started = time.monotonic()
            more = self.keyspace.expire_step(EXPIRE_BATCH, started + EXPIRE_SLICE)
            self._commit_and_release()
            if not more:
                return
            await asyncio.sleep((time.monotonic() - started) * (1 - share) / share)

    async def _reclaimer(self) -> None:
        """Delete retired members and dropped databases in small batches, yielding to clients
        between batches and resting as long as each batch took (at most half the CPU), so a
        client never waits behind more than one batch."""
        while not self.shutting_down:
            started = time.monotonic()
            try:
                done = self.keyspace.reclaim_step(RECLAIM_BATCH)
            except Exception:
                log.exception("reclaiming space failed; will retry")
                return
            if done < RECLAIM_BATCH:
                return
            await asyncio.sleep(time.monotonic() - started)

    def _close_idle(self, now: float) -> None:
        timeout = self.config["timeout"]
        if not timeout:
            return
        for c in list(self.clients.values()):
            if now - c.last_interaction > timeout and not c.held:
                log.info("closing idle client %s", c.addr)
                c.close_now()

    def _sample_ops(self, now: float) -> None:
        elapsed = now - self.stats.sample_time
        if elapsed >= 1.0:
            if self.memory.sample(self.clients.values()):
                asyncio.get_running_loop().run_in_executor(None, self.memory.trim)
            total = self.total_commands()
            self.stats.ops_per_sec = int((total - self.stats.commands_at_last_sample) / elapsed)
            self.stats.commands_at_last_sample = total
            self.stats.sample_time = now

    def total_commands(self) -> int:
        return sum(e.calls for e in self.dispatcher.all_entries)
