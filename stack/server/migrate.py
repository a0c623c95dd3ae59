"""Moving keys to another node: the source side of a slot migration (SLOTSMGRT*).

A key moves with its type, value and remaining TTL (docs/cluster.md "What a node knows"):

1. It is *held* (``Slots.lock``): from then on a command on it waits (slotmap.py), so its
   value cannot change under the move.
2. A key that fits in ``WHOLE_BYTES`` / ``WHOLE_ENTRIES`` travels as a DUMP payload in a
   ``SLOTSRESTORE key ttl payload [key ttl payload ...]`` (several keys, up to
   ``RESTORE_BYTES``, per command; a few commands in flight). A bigger one travels in parts
   (``SLOTSSTAGE``, staging.py): each part at most ``PART_ENTRIES`` entries and ``PART_BYTES``
   bytes, read from LevelDB in one short step and sent pipelined (``IN_FLIGHT`` at a time),
   the event loop free between parts; the last part commits it on the target.
3. Only when the target acknowledged all of it is it deleted here (an O(1) delete: its members
   are reclaimed in the background), through the normal batch and binlog, and released: the
   commands that waited run again and find it gone (-ASK to the target under a slot map).

**Pace.** The work of every move (choosing and holding keys, reading and encoding them,
deleting what the target acknowledged) goes in slices of ``SLICE`` (0.15 ms), the loop
polling its sockets between two (other clients' turns come first), and every ``work``
seconds (1-20 ms, adapting: ``Pace``) it sleeps ``REST``, so the node, and the CPU it
shares, is never busy with moves alone; while the loop's timers run late (looplag.py:
someone's request waited) it rests at once and ``work`` halves. The deletes are committed
per acknowledged restore (at most ``RESTORE_KEYS`` keys), then those keys released. On the
target a client that sends SLOTSRESTORE / SLOTSSTAGE gets short turns (client.py
``BACKGROUND_TURN_SECONDS``), each after a rest while that loop's timers ran late
(server.py ``_run_backlog``), so its restores are spread in the same way.

If anything fails the call answers the error, and what was *sent* decides when the keys are
released (``_doubt``, ``_settle``): a restore (or a big key's COMMIT) that was not answered in
time may still run on the target (paused, stopped, slow), so its keys stay held (commands on
them wait; another move of them answers the key-in-flight error after its timeout) until the
reply comes on the same link: +OK, and the key moved after all (deleted here then,
``ledis_migrate_late_moves``); an error, and it is released here, whole. If the link dies
first, or no reply comes within ``doubt_bound`` (max(DOUBT_MIN, DOUBT_TIMEOUTS x the call's
timeout): a stopped target, a silent network; the links use TCP keepalive too), the outcome
is unknown and the link's *undo* runs (``_run_undo``, one per link, the keys of all its
settles merged): a new connection sends ``SLOTSFORGET <old link's name> key check ...``; the
target closes every connection of that name (what they still queue never runs) and deletes
each key whose value is still the one sent (``check``: ``fingerprint`` of the payload, or
``commit:<token>`` for a big key), never one of a slot it serves by its map. So neither
order of the old restore and the undo leaves a copy, and a newer value there (the slot moved
on meanwhile) is kept. Only its reply releases the keys here. While the target cannot be
reached, or refuses (READONLY, NOPERM, an unknown command: logged at error level every
REFUSED_LOG_EVERY, INFO), it is retried with backoff, the keys held; once this node is no
longer a master (fenced, a replica) it is given up, the keys released with a warning.
``SLOTSDOUBT LIST|RELEASE`` shows them and lets an operator release them. Keys only read or
not sent yet, and the parts of a big key before its COMMIT (a staging is never a key), are
released at once.

Guaranteed, while both nodes run and this one stays master: no interleaving brings back a key
deleted here or deletes a newer value at the target. Not covered (docs/cluster.md "What is
guaranteed"): a target group failing over before its replica got an acknowledged restore
(asynchronous replication: the key is lost, late +OK or timely alike); a source stopping with
keys in doubt whose last undo is not confirmed (logged), or killed -9; an undo given up or
released by an operator; a big key's undo after the target restarted (its tokens are kept in
memory).

At shutdown ``stop`` ends the moves before the store closes: new calls are refused, those
under way stop at their next step (what the target acknowledged is deleted and committed
first; a move cut after ``STOP_GRACE`` does the same and hands what is unanswered to the
undo), the replies and undos still due are waited for (``STOP_GRACE``), then one last
bounded undo per lost link is tried (``_last_undo``: the old link's connections CLIENT
KILLed first, which a CLIENT PAUSE WRITE does not hold back, then SLOTSFORGET).

Links to targets: one pipelined ``RespClient`` per (host, port, database), authenticated with
``masterauth`` (and ``masteruser`` when set), closed after ``LINK_IDLE`` seconds unused. One
link per target keeps the requests of all moves to it in order, so a late restore can never
land after a newer one. A link to this node itself is refused.

``SLOTSMGRTSLOT`` / ``SLOTSMGRTTAGSLOT`` move one bounded batch per call (``MAXKEYS``,
``MAXBYTES``), chosen in key order from where the last call of that slot stopped (so no call
walks again over what earlier ones deleted), and answer ``[moved, remaining]`` (with
``WITHBYTES``, ``[moved, remaining, bytes]``). A big key found on the way is moved by a task
of its own while the calls go on (at most ``BIG_PER_SLOT`` per slot); the call that finds
nothing else to move waits up to ``CALL_WAIT`` for one, so an engine polling the slot neither
spins nor holds the key longer than its move takes. ``remaining`` is 0 only when a pass over
the whole slot found nothing left; otherwise it counts down from the slot's key count (taken
once per slot, in steps) and is at least 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from stack.core import errors
from stack.core.reply_parser import ErrorReply
from stack.core.resp_client import (
    ConnectionLost,
    Endpoint,
    HandshakeError,
    RequestTimeout,
    RespClient,
    ServerError,
)
from stack.core.slots import hash_tag, key_slot

from .looplag import LoopLag
from .staging import Stagings
from .storage import dump
from .storage import keyformat as kf
from .storage.collections import ZSET_MEMBER, Meta, member_prefix
from .storage.keyspace import Database, now_ms
from .storage.slotkeys import STEP_RECORDS, STEP_SECONDS, count_step, live_step, slot_range
from .storage.strings import StoredString

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)
T = TypeVar("T")

WHOLE_BYTES = 256 * 1024  # a key up to this size (and WHOLE_ENTRIES) moves in one restore
WHOLE_ENTRIES = 512
RESTORE_BYTES = 128 * 1024  # payload per SLOTSRESTORE command, and at most RESTORE_KEYS keys
RESTORE_KEYS = 128
PART_ENTRIES = 1000  # entries per part of a big key
PART_BYTES = 128 * 1024
IN_FLIGHT = 4  # parts of a big key in flight
RESTORES_IN_FLIGHT = 16  # SLOTSRESTORE commands in flight per move
BATCH_KEYS = 500  # a SLOTSMGRT*SLOT call's defaults
BATCH_BYTES = 1024 * 1024
MAX_BATCH_KEYS = 100_000
MAX_BATCH_BYTES = 64 * 1024 * 1024
BIG_PER_SLOT = 2
COUNT_RECORDS = 256  # records a step of counting a slot's keys examines (a few tenths of a ms)
DELETE_STEP = 16
PICK_RECORDS = 32  # records a step of choosing keys to move examines  # acknowledged keys deleted (and committed) at a time
SLICE = 0.00015  # the longest a move works on (reads, encodes, deletes) between others' turns
# The pace of the moves (Pace): work between two real rests, within [WORK_MIN, WORK_MAX],
# halved after a rest that ended LATE or more after its time, else grown by WORK_STEP.
REST = 0.001  # the shortest sleep the loop's timers keep (uvloop counts milliseconds)
WORK_START = 0.001
WORK_MIN = 0.001
WORK_MAX = 0.02
WORK_STEP = 0.00025
LATE = 0.001
CALL_WAIT = 0.2
LINK_IDLE = 60.0
FORGET_RETRY_MIN = 0.1  # backoff of the undo on a target that cannot be reached (seconds)
FORGET_RETRY_MAX = 5.0
FORGET_KEYS = 4096  # keys per SLOTSFORGET (the target refuses more)
FORGET_TIMEOUT = 5.0  # the least an undo's reply is waited for (seconds)
DOUBT_MIN = 30.0  # a reply awaited this long, and DOUBT_TIMEOUTS times the call's timeout,
DOUBT_TIMEOUTS = 10  # is given up (the link too): its keys are undone (``doubt_bound``)
KEEPALIVE = 15  # TCP keepalive of the links to targets: probes after this many idle seconds
REFUSED_LOG_EVERY = 60.0  # an undo the target refuses is logged (error) this often
TRANSIENT = ("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN")  # refusals that pass by themselves
STOP_GRACE = 5.0  # at shutdown: how long the moves under way, then the unanswered, may take
HOUSEKEEPING_SECONDS = 5.0


class MigrateError(Exception):
    """A move that could not be done; the message is the error reply."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    timeout: float  # seconds, for connecting and for each reply


@dataclass
class SlotPass:
    """A slot being emptied by SLOTSMGRT*SLOT calls: where the last call stopped, the key
    count taken when the first call came, and what the big-key tasks did since."""

    after: bytes = b""
    estimate: int = 0
    moved: int = 0
    big: dict[bytes, asyncio.Task[None]] = field(default_factory=dict)
    big_moved: int = 0  # keys the big-key tasks finished, not reported yet
    big_bytes: int = 0
    touched: float = field(default_factory=time.monotonic)
    calls: int = 0  # SLOTSMGRT*SLOT calls of this pass running now


@dataclass
class Sent:
    """What one round of whole-key restores did."""

    moved: int = 0
    nbytes: int = 0
    big: list[Moving] = field(default_factory=list)  # too big for one restore: in parts
    rest: list[Moving] = field(default_factory=list)  # beyond the byte budget: not sent


@dataclass(slots=True)
class Moving:
    """One held key on its way (``released`` once it is gone from here, or given back)."""

    mkey: bytes
    record: bytes
    phys: int
    released: bool = False
    doubtful: bool = False  # sent and not answered: held until settled (``Migrator._settle``)
    check: bytes = b""  # in doubt: what SLOTSFORGET compares on the target (``fingerprint``)
    dest: str = ""  # in doubt: the target, host:port


@dataclass
class Undo:
    """The keys in doubt of one lost link, to be removed from its target before they are
    released here (``Migrator._run_undo``): one per link, the keys of every settle on it."""

    link: RespClient
    target: Target
    keys: list[Moving] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    refused: str = ""  # the target's last refusal of it
    refused_logged: float = -REFUSED_LOG_EVERY


def doubt_bound(target: Target) -> float:
    """How long replies to a link are awaited after its call gave up, before the link is
    given up (a connection that never errors: a stopped target, a silent network)."""
    return max(DOUBT_MIN, DOUBT_TIMEOUTS * target.timeout)


def refusal_kind(reason: str) -> str:
    """The kind of a refused undo, for INFO and SLOTSDOUBT LIST."""
    if reason.startswith("READONLY"):
        return "readonly"
    if reason.startswith("NOPERM"):
        return "noperm"
    if reason.startswith("ERR unknown command"):
        return "unknown-command"
    return "error"


class Pace:
    """The pace of this node's moves, shared by all of them: work in slices of at most
    about SLICE seconds with the other clients' turns between them (``due``, then ``rest``:
    the loop polls its sockets before the move goes on, so another client waits for at
    most one slice), and after ``work`` seconds of that a real rest of REST, the CPU left
    to the other clients and processes. Two signals say that others waited, and each makes
    the move give way (a real rest at once) and halves ``work`` (down to WORK_MIN): a tick
    of the loop's ``LoopLag`` ran late since the pace last looked (someone's request waited
    on this node, its loop busy or the process kept from the CPU), or a rest ended LATE or
    more after its time. Otherwise ``work`` grows by WORK_STEP (up to WORK_MAX): with
    nobody waiting the moves run at about full speed. A late tick is answered once the
    moves worked WORK_MIN since the last rest, so on a machine whose every tick is late
    they still get half of the time (as the rests' own lateness gives them), not a slice
    between two rests."""

    __slots__ = (
        "_late_seen",
        "burst_until",
        "gave_way",
        "lag",
        "rested",
        "slowed",
        "until",
        "work",
    )

    def __init__(self, lag: LoopLag | None = None) -> None:
        self.lag = lag if lag is not None else LoopLag()
        self.work = WORK_START
        self.until = time.monotonic() + SLICE
        self.burst_until = time.monotonic() + self.work
        self._late_seen = self.lag.late_ticks
        self.rested = time.monotonic()  # when the last rest ended
        self.slowed = 0  # times ``work`` was halved (INFO)
        self.gave_way = 0  # rests taken early because the loop's ticks ran late (INFO)

    def due(self) -> bool:
        return time.monotonic() >= self.until

    async def rest(self) -> None:
        lag = self.lag
        lag.touch()
        now = time.monotonic()
        waited = lag.late_ticks != self._late_seen and now - self.rested >= WORK_MIN
        if waited or now >= self.burst_until:
            self._late_seen = lag.late_ticks
            if waited:
                self.gave_way += 1
            await asyncio.sleep(REST)
            after = time.monotonic()
            self.adapt(waited or after - now > REST + LATE)
            self.burst_until = after + self.work
            self.rested = after
        else:
            await asyncio.sleep(0)
        self.until = time.monotonic() + SLICE

    def adapt(self, late: bool) -> None:
        """After a rest: less work before the next one if others waited, else more."""
        if late:
            self.work = max(WORK_MIN, self.work / 2)
            self.slowed += 1
        else:
            self.work = min(WORK_MAX, self.work + WORK_STEP)


class Migrator:
    """The source side of migrations on this node (see the module's description)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stagings = Stagings(server.keyspace)
        self.links: dict[tuple[str, int, int], RespClient] = {}
        self._link_used: dict[tuple[str, int, int], float] = {}
        self._self_checked: set[tuple[str, int]] = set()
        self.passes: dict[tuple[int, int], SlotPass] = {}
        self._tokens = itertools.count(1)
        self.lag = LoopLag()  # also read by the target's restoring links (server.py)
        self.pace = Pace(self.lag)
        self._task: asyncio.Task[None] | None = None
        self._link_names = itertools.count(1)
        self.stopping = False
        self._moves: set[asyncio.Task[object]] = set()  # the SLOTSMGRT* calls under way
        self._doubts: set[asyncio.Task[None]] = set()
        self.in_doubt: dict[bytes, Moving] = {}  # held until their restore is settled
        self.unreachable: set[bytes] = set()  # in doubt, and the undo cannot reach the target
        self.refused: dict[bytes, str] = {}  # in doubt, the target refusing the undo: why
        self._undos: dict[int, Undo] = {}  # id(link) -> the undo of that lost link
        self._last_undos = False  # stop makes the last attempts: no new undo task
        # INFO
        self.keys_moved = 0
        self.bytes_moved = 0
        self.big_keys_moved = 0
        self.parts_sent = 0
        self.failures = 0
        self.late_moves = 0  # keys acknowledged after their call gave up: moved all the same
        self.forgotten = 0  # keys in doubt removed from the target (SLOTSFORGET), kept here
        self.abandoned = 0  # keys in doubt released without their undo: this node deposed
        self.released_by_admin = 0  # SLOTSDOUBT RELEASE
        self.turns_deferred = 0  # target: restoring links' turns put after a rest (server.py)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._housekeeping())

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop every move before the store closes (shutdown): new calls are refused, those
        under way stop at their next step (what the target acknowledged deleted here, the
        rest released, whole, or in doubt), each at most ``grace``; then the replies and
        undos still due are waited for (settled as ``_settle`` does), at most ``grace``;
        then one last bounded undo per link for the keys still in doubt (``_last_undo``:
        the old link's connections on the target killed, a CLIENT PAUSE WRITE does not
        hold that back, then SLOTSFORGET); the links closed."""
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
        self.lag.stop()
        moves: set[asyncio.Task[object]] = set(self._moves)
        for p in self.passes.values():
            moves.update(p.big.values())  # type: ignore[arg-type]
        if moves:
            await asyncio.wait(moves, timeout=grace)
        for task in [t for t in moves if not t.done()]:  # in doubt: what they sent unanswered
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self._doubts:
            await asyncio.wait(set(self._doubts), timeout=grace)
        self._last_undos = True
        for task in list(self._doubts):  # the settles hand their keys to the undos
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        undos = list(self._undos.values())
        self._undos.clear()
        if undos:
            await asyncio.gather(*(self._last_undo(u) for u in undos))
        for link in list(self.links.values()):
            await link.close()
        self.links.clear()

    # -- links ----------------------------------------------------------------------------

    async def _link(self, target: Target, db: Database) -> RespClient:
        key = (target.host, target.port, db.index)
        link = self.links.get(key)
        if link is None:
            cfg = self.server.config
            link = RespClient(
                Endpoint(
                    host=target.host,
                    port=target.port,
                    username=str(cfg.values.get("masteruser") or "") or None,
                    password=cfg["masterauth"] or None,
                    db=db.index,
                    # a name of its own: the undo of an unanswered restore finds every
                    # connection this link made (CLIENT LIST) and kills them (_forget_once)
                    client_name=f"ledis-migrate-{self.server.run_id[:8]}-{next(self._link_names)}",
                ),
                connect_timeout=target.timeout,
                backoff=None,
                keepalive=KEEPALIVE,
                max_in_flight=256,
            )
            self.links[key] = link
        self._link_used[key] = time.monotonic()
        addr = f"{target.host}:{target.port}"
        try:
            if not link.connected:
                await link.connect()
            if (target.host, target.port) not in self._self_checked:
                info = await link.execute("INFO", "server", timeout=target.timeout)
                if isinstance(info, bytes) and b"run_id:" + self.server.run_id.encode() in info:
                    raise MigrateError(f"ERR {addr} is this node: a key cannot move to itself")
                self._self_checked.add((target.host, target.port))
        except HandshakeError as e:
            raise MigrateError(errors.migrate_refused(f"{addr} refused the link: {e}")) from None
        except (ConnectionLost, OSError) as e:
            raise MigrateError(errors.migrate_connect_failed(addr, str(e))) from None
        except RequestTimeout:
            raise MigrateError(errors.MIGRATE_IO) from None
        return link

    async def _submit(
        self, link: RespClient, args: list[bytes], encoded: bytes | None = None
    ) -> asyncio.Future[object]:
        """Send one request (``encoded``: already in RESP, ``args`` its name in lowercase)."""
        try:
            if encoded is None:
                fut = await link.submit(args)
            else:
                fut = await link.submit_encoded(args[0], encoded)
        except (ConnectionLost, OSError) as e:
            raise MigrateError(
                errors.migrate_connect_failed(link.endpoint.address, str(e))
            ) from None
        fut.add_done_callback(_seen)  # a failed move may leave a reply nobody reads
        return fut

    async def _submit_restore(self, link: RespClient, args: list[bytes]) -> asyncio.Future[object]:
        """Send one SLOTSRESTORE of ``args`` (``restore_triple`` each)."""
        return await self._submit(link, [b"slotsrestore"], restore_request(args))

    async def _answer(self, fut: asyncio.Future[object], target: Target) -> None:
        """Wait for one reply from the target: +OK, or MigrateError. A reply that does not
        come in time is not given up (the future stays, see ``_doubt``): the target may still
        run the request."""
        if not fut.done():
            await asyncio.wait((fut,), timeout=target.timeout)
            if not fut.done():
                raise MigrateError(errors.MIGRATE_IO)
        try:
            reply = fut.result()
        except (ConnectionLost, OSError):
            raise MigrateError(errors.MIGRATE_IO) from None
        if isinstance(reply, ErrorReply):
            raise MigrateError(errors.migrate_refused(str(reply)))

    # -- reading a held key ---------------------------------------------------------------

    def _entries(
        self, mkey: bytes, record: bytes, after: bytes, max_entries: int, max_bytes: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes, bool, int]:
        """The next entries of a collection or chunked string after sub-key ``after``, as the
        DUMP format lists them; (entries, last sub-key, all read, bytes)."""
        kind = kf.raw_type(record)
        meta = Meta.decode(record)
        base = member_prefix(mkey, meta.version) + (ZSET_MEMBER if kind == kf.TYPE_ZSET else b"")
        cut = len(base)
        start = base + after + b"\x00" if after else base
        out: list[tuple[bytes, bytes]] = []
        size = 0
        last = after
        for k, v in self.server.engine.scan(start, kf.prefix_end(base)):
            sub = k[cut:]
            if kind == kf.TYPE_LIST:
                out.append((v, b""))
            elif kind == kf.TYPE_SET:
                out.append((sub, b""))
            else:
                out.append((sub, v))
            size += len(sub) + len(v) + 8
            last = sub
            if len(out) >= max_entries or size >= max_bytes:
                return out, last, False, size
        return out, last, True, size

    def _whole(self, mkey: bytes, record: bytes) -> bytes | None:
        """The DUMP payload of a held key, or None when it is too big for one restore."""
        kind = kf.raw_type(record)
        if kind == kf.TYPE_STRING:
            return dump.encode(kind, kf.body(record), [])
        if kind == kf.TYPE_CHUNKED:
            value = StoredString(self.server.keyspace, mkey, record)
            if value.length > WHOLE_BYTES:
                return None
            return dump.encode(kf.TYPE_STRING, value.whole(), [])
        if Meta.decode(record).size > WHOLE_ENTRIES:
            return None
        entries, _last, done, _size = self._entries(mkey, record, b"", WHOLE_ENTRIES, WHOLE_BYTES)
        if not done:
            return None
        return dump.encode(kind, None, entries)

    @staticmethod
    def _big(record: bytes) -> bool:
        """Whether a key must travel in parts, judged from its record alone."""
        kind = kf.raw_type(record)
        if kind == kf.TYPE_STRING:
            return False
        return Meta.decode(record).size > (
            WHOLE_BYTES if kind == kf.TYPE_CHUNKED else WHOLE_ENTRIES
        )

    @staticmethod
    def _ttl(record: bytes) -> int | None:
        """Milliseconds left (0: no TTL), or None when the key has expired."""
        expire = kf.expire_of(record)
        if not expire:
            return 0
        left = expire - now_ms()
        return left if left > 0 else None

    # -- after the target has it ----------------------------------------------------------

    def _delete_moved(self, moved: list[Moving]) -> None:
        """Delete keys the target acknowledged (the same record still here: nothing changed
        it while it was held but the clock), in the pending batch; the caller commits."""
        ks = self.server.keyspace
        live = {db.phys for db in ks.dbs}
        track, ks.track_changes = ks.track_changes, False  # not a change of the next command
        try:
            for m in moved:
                if m.phys in live and ks.engine.get(m.mkey) == m.record:
                    ks.delete(m.mkey, m.record)
        finally:
            ks.track_changes = track

    async def _delete_paced(self, moved: list[Moving], pace: Pace) -> None:
        """Delete and release keys the target acknowledged, a slice at a time, each slice's
        deletes committed before its keys are released (so a command that waited for one
        finds it gone for good, and a kill -9 afterwards cannot bring it back)."""
        for i in range(0, len(moved), DELETE_STEP):
            if pace.due():
                await pace.rest()
            self._delete_moved(moved[i : i + DELETE_STEP])
        self._commit()
        self._release(moved)

    def _release(self, moving: list[Moving]) -> None:
        slots = self.server.slots
        for m in moving:
            if not m.released and not m.doubtful:
                m.released = True
                slots.unlock(m.mkey)

    def _commit(self) -> None:
        self.server._commit_and_release()

    # -- requests sent and not answered ---------------------------------------------------

    def _check_stopping(self) -> None:
        if self.stopping:
            raise MigrateError(errors.MIGRATE_STOPPING)

    def _cut(
        self,
        link: RespClient,
        target: Target,
        items: list[tuple[asyncio.Future[object], list[Moving]]],
    ) -> None:
        """A move cancelled (``stop`` after its grace) with requests outstanding: those
        already acknowledged deleted and committed here now, the rest in doubt."""
        while items and items[0][0].done():
            fut, keys = items[0]
            if fut.cancelled() or fut.exception() is not None:
                break
            if not isinstance(fut.result(), ErrorReply):
                self._moved_now(keys)
            self._release(keys)
            items = items[1:]
        self._doubt(link, target, items)

    def _doubt(
        self,
        link: RespClient,
        target: Target,
        items: list[tuple[asyncio.Future[object], list[Moving]]],
    ) -> None:
        """Requests sent to ``link`` whose keys the target may still create (restores, a
        big key's COMMIT), in the order sent: their keys stay held here, whatever the call
        answers, until ``_settle`` knows what the target did. Each key's ``check`` (what
        SLOTSFORGET compares on the target) is taken now, while its record is the one sent."""
        items = [(fut, keys) for fut, keys in items if keys]
        if not items:
            return
        dest = f"{target.host}:{target.port}"
        for _fut, keys in items:
            for m in keys:
                m.doubtful = True
                m.dest = dest
                if not m.check:
                    m.check = self.fingerprint(m.mkey, m.record) or b""
                self.in_doubt[m.mkey] = m
        task = asyncio.get_running_loop().create_task(self._settle(link, target, items))
        self._doubts.add(task)
        task.add_done_callback(self._doubts.discard)

    def fingerprint(self, mkey: bytes, record: bytes) -> bytes | None:
        """What identifies a key's value as a whole restore sends it: the hex BLAKE2b-128 of
        its DUMP payload (None for a key too big for one restore). The source takes it of
        what it sent, the target (SLOTSFORGET) of what it holds now, the same way."""
        payload = self._whole(mkey, record)
        if payload is None:
            return None
        return hashlib.blake2b(payload, digest_size=16).hexdigest().encode()

    async def _settle(
        self,
        link: RespClient,
        target: Target,
        items: list[tuple[asyncio.Future[object], list[Moving]]],
    ) -> None:
        """Wait for the replies on the same link (replies come in order, so the target
        either answers them or the connection dies; a connection that neither answers nor
        errors is given up after ``doubt_bound``). +OK: the key moved after all, deleted
        here like any acknowledged one. An error: nothing was written there, the key
        released. The outcome unknown (the link lost, the bound passed, this task failing):
        the keys go to the link's undo (``_undo``), which removes the possible copies from
        the target before releasing them here."""
        deadline = time.monotonic() + doubt_bound(target)
        unknown: list[Moving] = []
        try:
            for fut, keys in items:
                if unknown:
                    unknown += keys
                    continue
                if not fut.done():
                    await asyncio.wait((fut,), timeout=max(0.0, deadline - time.monotonic()))
                if not fut.done():
                    log.warning(
                        "%d key(s) sent to %s:%d unanswered for %.0f s: giving the link up",
                        len(keys), target.host, target.port, doubt_bound(target),
                    )  # fmt: skip
                    unknown = list(keys)
                    continue
                try:
                    reply = fut.result()
                except (ConnectionLost, OSError):
                    unknown = list(keys)
                    continue
                if isinstance(reply, ErrorReply):
                    self._settled(keys)
                    continue
                self._late_move(keys, target)
        except asyncio.CancelledError:  # stop, after its grace: its last undo takes them
            self._undo(link, target, [m for _f, keys in items for m in keys if m.doubtful])
            raise
        except Exception:
            log.exception("settling keys sent to %s:%d failed; undoing them", target.host,
                          target.port)  # fmt: skip
            unknown = [m for _f, keys in items for m in keys if m.doubtful]
        self._undo(link, target, [m for m in unknown if m.doubtful])

    def _moved_now(self, keys: list[Moving]) -> None:
        """Keys the target acknowledged, outside a move's paced deletes (a move cut by
        ``stop``, a late reply): deleted here at once, committed, counted; the caller
        releases them."""
        self._delete_moved(keys)
        self._commit()
        self.keys_moved += len(keys)

    def _late_move(self, keys: list[Moving], target: Target) -> None:
        """A late +OK: the keys moved after all (deleted here, committed, released)."""
        keys = [m for m in keys if m.doubtful]  # not released by SLOTSDOUBT RELEASE meanwhile
        self._moved_now(keys)
        self.late_moves += len(keys)
        log.info("%d key(s) moved to %s:%d after their call gave up (a late reply)",
                 len(keys), target.host, target.port)  # fmt: skip
        self._settled(keys)

    def _settled(self, keys: list[Moving]) -> None:
        for m in keys:
            m.doubtful = False
            self.in_doubt.pop(m.mkey, None)
            self.unreachable.discard(m.mkey)
            self.refused.pop(m.mkey, None)
        self._release(keys)

    def _undo(self, link: RespClient, target: Target, keys: list[Moving]) -> None:
        """Hand ``keys`` to the undo of ``link`` (one per link: the keys of every settle on
        it merged), started unless running (or ``stop`` is making its last attempt)."""
        if not keys:
            return
        u = self._undos.get(id(link))
        if u is None:
            u = self._undos[id(link)] = Undo(link, target)
        u.keys += keys
        if (u.task is None or u.task.done()) and not self._last_undos:
            u.task = asyncio.get_running_loop().create_task(self._run_undo(u))
            self._doubts.add(u.task)
            u.task.add_done_callback(self._doubts.discard)

    def _drop_link(self, link: RespClient) -> None:
        """Nothing more is sent over ``link`` (its replacement gets a new name)."""
        for key, known in list(self.links.items()):
            if known is link:
                del self.links[key]
                self._link_used.pop(key, None)

    def _deposed(self) -> bool:
        """Whether this node no longer serves writes (fenced, or a replica now)."""
        return self.server.gate.fence.fenced or self.server.replication.master is not None

    async def _run_undo(self, u: Undo) -> None:
        """Make sure the target runs nothing more of the link and holds none of the keys
        (``_forget_once``), retrying with backoff while it cannot be reached or refuses
        (the keys held meanwhile); given up, the keys released, once this node is deposed."""
        target = u.target
        self._drop_link(u.link)
        await u.link.close()  # no reconnect under the old name from here
        delay = FORGET_RETRY_MIN
        unreached = False
        while keys := [m for m in u.keys if m.doubtful]:
            u.keys = keys
            if self._deposed():
                log.warning(
                    "%d key(s) sent to %s:%d unanswered are released without their undo:"
                    " this node no longer serves writes (fenced or a replica); the target"
                    " may keep a copy of them",
                    len(keys), target.host, target.port,
                )  # fmt: skip
                self.abandoned += len(keys)
                self._settled(keys)
                break
            try:
                await self._forget_once(u.link.endpoint, target, keys)
            except ServerError as e:
                if str(e).startswith(TRANSIENT):
                    unreached = self._unreached(u, keys, e, unreached)
                else:
                    self._refused(u, keys, str(e))
            except (ConnectionLost, HandshakeError, RequestTimeout, OSError) as e:
                unreached = self._unreached(u, keys, e, unreached)
            else:
                self.forgotten += len(keys)
                if unreached or u.refused:
                    log.warning("%s:%d reached again: %d held key(s) released", target.host,
                                target.port, len(keys))  # fmt: skip
                self._settled(keys)
                u.refused, unreached, delay = "", False, FORGET_RETRY_MIN
                continue
            await asyncio.sleep(delay)
            delay = min(FORGET_RETRY_MAX, delay * 2)
        if self._undos.get(id(u.link)) is u:
            del self._undos[id(u.link)]

    def _unreached(self, u: Undo, keys: list[Moving], e: Exception, logged: bool) -> bool:
        if not logged:
            log.warning(
                "%d key(s) stay held: the link to %s:%d broke before their restore was"
                " answered, and what it may have created there cannot be removed yet (%s);"
                " retrying",
                len(keys), u.target.host, u.target.port, e,
            )  # fmt: skip
        self.unreachable.update(m.mkey for m in keys)
        for m in keys:
            self.refused.pop(m.mkey, None)
        return True

    def _refused(self, u: Undo, keys: list[Moving], reason: str) -> None:
        """The target refuses the undo (READONLY: deposed or fenced; NOPERM: ``masteruser``
        lacks SLOTSFORGET; an unknown command: an older node): retried all the same, the
        keys held, said at error level at once and every REFUSED_LOG_EVERY seconds."""
        now = time.monotonic()
        if u.refused != reason or now - u.refused_logged >= REFUSED_LOG_EVERY:
            log.error(
                "%d key(s) stay held: %s:%d refuses their undo (SLOTSFORGET: %s); retrying"
                " (docs/cluster.md: SLOTSDOUBT LIST / RELEASE)",
                len(keys), u.target.host, u.target.port, reason,
            )  # fmt: skip
            u.refused_logged = now
        u.refused = reason
        kind = refusal_kind(reason)
        for m in keys:
            self.refused[m.mkey] = kind
            self.unreachable.discard(m.mkey)

    async def _forget_once(
        self, old: Endpoint, target: Target, keys: list[Moving], *, kill_first: bool = False
    ) -> None:
        """One attempt, on a new connection: SLOTSFORGET with the old link's name (the target
        closes every connection of that name, so nothing they still queue ever runs, then
        deletes each key whose value is still the one sent), FORGET_KEYS keys per command.
        ``kill_first`` (``stop``): CLIENT KILL them first, which a CLIENT PAUSE WRITE does
        not hold back (best effort: it needs CLIENT LIST and KILL)."""
        name = old.client_name or ""
        client = RespClient(
            dataclasses.replace(old, client_name=f"{name}-forget"),
            connect_timeout=target.timeout,
            backoff=None,
            keepalive=KEEPALIVE,
        )
        try:
            await client.connect()
            timeout = max(target.timeout, FORGET_TIMEOUT)
            if kill_first:
                with contextlib.suppress(ServerError):
                    await self._kill_link(client, name, timeout)
            for i in range(0, len(keys), FORGET_KEYS):
                args: list[bytes | str] = [b"SLOTSFORGET", name]
                for m in keys[i : i + FORGET_KEYS]:
                    args += [m.mkey[7:], m.check]
                await client.execute(*args, timeout=timeout)
        finally:
            await client.close()

    @staticmethod
    async def _kill_link(client: RespClient, name: str, timeout: float) -> int:
        """Close every connection named ``name`` on the target (CLIENT LIST, CLIENT KILL)."""
        listing = await client.execute("CLIENT", "LIST", timeout=timeout)
        if isinstance(listing, bytes):
            listing = listing.decode("utf-8", "replace")
        if not isinstance(listing, str):
            return 0
        stale = []
        for line in listing.splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
            if fields.get("name") == name:
                stale.append(fields.get("id", "0"))
        if stale:
            await client.pipeline([["CLIENT", "KILL", "ID", cid] for cid in stale], timeout=timeout)
        return len(stale)

    async def _last_undo(self, u: Undo) -> None:
        """At shutdown: one bounded attempt at a link's undo (STOP_GRACE), the old link's
        connections killed first; its keys released here either way (the process ends)."""
        keys = [m for m in u.keys if m.doubtful]
        if not keys:
            return
        self._drop_link(u.link)
        await u.link.close()
        try:
            async with asyncio.timeout(STOP_GRACE):
                await self._forget_once(u.link.endpoint, u.target, keys, kill_first=True)
            self.forgotten += len(keys)
        except (ConnectionLost, HandshakeError, RequestTimeout, ServerError, OSError,
                TimeoutError) as e:  # fmt: skip
            log.warning(
                "stopping with %d key(s) sent to %s:%d unanswered, their undo not confirmed"
                " (%s): kept here, whole; the target may hold a copy of them (remove it"
                " there, or move them again)",
                len(keys), u.target.host, u.target.port, e or "no reply in time",
            )  # fmt: skip
        self._settled(keys)

    # -- SLOTSDOUBT -----------------------------------------------------------------------

    def doubts(self) -> list[list[bytes]]:
        """SLOTSDOUBT LIST: per key in doubt, [key, target, state]."""
        out = []
        for mkey, m in self.in_doubt.items():
            if mkey in self.refused:
                state = b"undo-refused:" + self.refused[mkey].encode()
            elif mkey in self.unreachable:
                state = b"undo-unreachable"
            elif any(m in u.keys for u in self._undos.values()):
                state = b"undoing"
            else:
                state = b"awaiting-reply"
            out.append([mkey[7:], m.dest.encode(), state])
        return out

    def release_doubts(self, db: Database, keys: list[bytes] | None) -> int:
        """SLOTSDOUBT RELEASE: the operator's decision: the keys (every key in doubt for
        None) released here, whole, without their undo; how many."""
        if keys is None:
            chosen = list(self.in_doubt.values())
        else:
            chosen = [m for k in keys if (m := self.in_doubt.get(db.meta_key(k))) is not None]
        if chosen:
            log.warning("SLOTSDOUBT RELEASE: %d key(s) in doubt released without their undo",
                        len(chosen))  # fmt: skip
        self.released_by_admin += len(chosen)
        self._settled(chosen)
        return len(chosen)

    # -- moving keys ----------------------------------------------------------------------

    async def _send_whole(
        self, link: RespClient, target: Target, held: list[Moving], max_bytes: int = 2**62
    ) -> Sent:
        """Send held keys that fit in one restore each: read and sent as they come, several
        per SLOTSRESTORE (up to RESTORE_KEYS / RESTORE_BYTES), a few commands in flight (the
        target restores one while the next is read here), the loop free every SLICE; each
        command's keys deleted and released here once it is acknowledged. Keys too big for
        one restore, and those beyond ``max_bytes``, are handed back. MigrateError after
        deleting what was acknowledged before the failure."""
        out = Sent()
        ks = self.server.keyspace
        args: list[bytes] = []  # the command's arguments after its name, RESP-encoded
        batch: list[Moving] = []
        size = total = 0
        pending: deque[tuple[asyncio.Future[object], list[Moving], int]] = deque()
        pace = self.pace
        try:
            for n, m in enumerate(held):
                if total >= max_bytes:
                    out.rest = held[n:]
                    break
                if pace.due():
                    await pace.rest()
                    self._check_stopping()
                rec = m.record
                ttl = self._ttl(rec)
                if ttl is None:  # its TTL ran out while held: expired here, as a read would
                    if ks.engine.get(m.mkey) == rec:
                        ks.expire_now(m.mkey, rec)
                    continue
                if rec[0] & kf.TYPE_MASK == kf.TYPE_STRING:
                    payload = dump.encode_string(kf.body(rec))
                else:
                    whole = self._whole(m.mkey, rec)
                    if whole is None:
                        out.big.append(m)
                        continue
                    payload = whole
                args.append(restore_triple(m.mkey[7:], ttl, payload))
                batch.append(m)
                size += len(payload) + len(m.mkey)
                total += len(payload)
                if size >= RESTORE_BYTES or len(batch) >= RESTORE_KEYS:
                    pending.append((await self._submit_restore(link, args), batch, size))
                    args, batch, size = [], [], 0
                    while pending and (len(pending) >= RESTORES_IN_FLIGHT or pending[0][0].done()):
                        await self._answer(pending[0][0], target)
                        await self._acked(out, pending.popleft(), pace)
            if batch:
                pending.append((await self._submit_restore(link, args), batch, size))
            while pending:
                await self._answer(pending[0][0], target)
                await self._acked(out, pending.popleft(), pace)
        except MigrateError:
            # what was sent and not answered stays held until it is (or is undone)
            self._doubt(link, target, [(fut, keys) for fut, keys, _n in pending])
            raise
        except asyncio.CancelledError:  # stop, after its grace: the same, at once
            self._cut(link, target, [(fut, keys) for fut, keys, _n in pending])
            raise
        finally:
            self._commit()
        return out

    async def _acked(
        self, out: Sent, done: tuple[asyncio.Future[object], list[Moving], int], pace: Pace
    ) -> None:
        _fut, keys, nbytes = done
        try:
            await self._delete_paced(keys, pace)
        except asyncio.CancelledError:  # stop: acknowledged, so deleted here all the same
            self._delete_moved(keys)
            self._commit()
            self._release(keys)
            raise
        out.moved += len(keys)
        out.nbytes += nbytes
        self.keys_moved += len(keys)
        self.bytes_moved += nbytes

    async def _stream(self, link: RespClient, target: Target, m: Moving) -> int:
        """Send one big held key in parts; delete it once the target committed it. Returns
        the bytes sent (MigrateError when it failed: the key stays here, whole)."""
        kind = kf.raw_type(m.record)
        size = Meta.decode(m.record).size
        key = m.mkey[7:]
        token = b"%s:%d" % (self.server.run_id[:12].encode(), next(self._tokens))
        after = b""
        seq = 0
        sent = 0
        window: deque[asyncio.Future[object]] = deque()
        commit: asyncio.Future[object] | None = None
        try:
            while True:
                self._check_stopping()
                entries, after, done, _n = self._entries(
                    m.mkey, m.record, after, PART_ENTRIES, PART_BYTES
                )
                part_kind = kf.TYPE_CHUNKED if kind == kf.TYPE_CHUNKED else kind
                payload = dump.encode(part_kind, None, entries) if entries else b""
                args = [b"SLOTSSTAGE", key, token, b"%d" % seq, payload]
                if done:
                    ttl = self._ttl(m.record)
                    args += [b"COMMIT", b"%d" % (ttl if ttl is not None else 1), b"%d" % size]
                window.append(await self._submit(link, args))
                if done:
                    commit = window[-1]
                sent += len(payload)
                seq += 1
                self.parts_sent += 1
                while window and (len(window) >= IN_FLIGHT or done):
                    await self._answer(window[0], target)
                    window.popleft()
                if done:
                    break
                await asyncio.sleep(0)  # other clients run between parts
        except (MigrateError, asyncio.CancelledError) as e:
            # parts without their COMMIT never make the key appear (the staging is retired
            # there); a COMMIT sent and not answered keeps the key held until it is
            if commit is not None:
                m.check = b"commit:" + token
                if isinstance(e, MigrateError):
                    self._doubt(link, target, [(commit, [m])])
                else:
                    self._cut(link, target, [(commit, [m])])
            raise
        self._delete_moved([m])
        self._commit()
        self.keys_moved += 1
        self.big_keys_moved += 1
        self.bytes_moved += sent
        return sent

    def _hold(self, db: Database, mkey: bytes) -> Moving | None:
        """Hold a live key that no migration holds (None if there is none to hold)."""
        slots = self.server.slots
        if mkey in slots.locked:
            return None
        rec = self.server.engine.get(mkey)
        if rec is None or self._ttl(rec) is None:
            return None
        slots.lock(mkey)
        return Moving(mkey, rec, db.phys)

    # -- SLOTSMGRTONE / SLOTSMGRTTAGONE ---------------------------------------------------

    async def move_keys(self, db: Database, key: bytes, target: Target, tag: bool) -> int:
        """Move ``key`` (and, with ``tag``, every key sharing its hash tag); how many moved.
        A key another migration holds is waited for (at most the timeout), then looked at
        again: usually it is gone by then."""
        return await self._tracked(self._move_keys(db, key, target, tag))

    async def _tracked(self, work: Coroutine[object, object, T]) -> T:
        """Run one SLOTSMGRT* call's work, known to ``stop`` while it runs."""
        if self.stopping:
            work.close()
            raise MigrateError(errors.MIGRATE_STOPPING)
        task = asyncio.current_task()
        assert task is not None
        self._moves.add(task)
        try:
            return await work
        except asyncio.CancelledError:
            if self.stopping:  # cut by ``stop`` after its grace: the call answers an error
                raise MigrateError(errors.MIGRATE_STOPPING) from None
            raise
        finally:
            self._moves.discard(task)

    async def _move_keys(self, db: Database, key: bytes, target: Target, tag: bool) -> int:
        deadline = time.monotonic() + target.timeout
        names = [key]
        if tag and hash_tag(key) != key:
            names = await self._siblings(db, key)
        mkeys = list(dict.fromkeys(db.meta_key(k) for k in names))
        held: list[Moving] = []
        try:
            for mkey in mkeys:
                fut = self.server.slots.released(mkey)
                while fut is not None:
                    left = deadline - time.monotonic()
                    try:
                        async with asyncio.timeout(max(0.0, left)):
                            await asyncio.shield(fut)
                    except TimeoutError:
                        raise MigrateError(
                            errors.key_in_flight(mkey[7:], int(target.timeout * 1000))
                        ) from None
                    fut = self.server.slots.released(mkey)
                m = self._hold(db, mkey)
                if m is not None:
                    held.append(m)
            if not held:
                return 0
            link = await self._link(target, db)
            sent = await self._send_whole(link, target, held)
            for m in sent.big:
                await self._stream(link, target, m)
            return sent.moved + len(sent.big)
        except MigrateError:
            self.failures += 1
            raise
        finally:
            self._release(held)

    async def _siblings(self, db: Database, key: bytes) -> list[bytes]:
        """Every key of ``key``'s slot with the same hash tag (``key`` first), found by a
        walk over the slot in steps."""
        tag = hash_tag(key)
        needle = b"{" + tag + b"}"
        start, stop = slot_range(db, key_slot(key))
        found = [key]
        after = b""
        while True:
            step = live_step(self.server.keyspace, start, stop, after, STEP_RECORDS,
                             time.monotonic() + STEP_SECONDS)  # fmt: skip
            for mkey, _rec in step.records:
                name = mkey[7:]
                if name != key and needle in name and hash_tag(name) == tag:
                    found.append(name)
            if step.done:
                return found
            after = step.after
            await asyncio.sleep(0)

    # -- SLOTSMGRTSLOT / SLOTSMGRTTAGSLOT -------------------------------------------------

    async def move_slot(
        self, db: Database, slot: int, target: Target, max_keys: int, max_bytes: int
    ) -> tuple[int, int, int]:
        """Move one batch of the slot's keys; (moved, remaining, bytes)."""
        return await self._tracked(self._move_slot(db, slot, target, max_keys, max_bytes))

    async def _move_slot(
        self, db: Database, slot: int, target: Target, max_keys: int, max_bytes: int
    ) -> tuple[int, int, int]:
        p = self.passes.get((db.phys, slot))
        if p is None:  # a concurrent first call may have made the pass while this one counted
            estimate = await self._count(db, slot)
            p = self.passes.setdefault((db.phys, slot), SlotPass(estimate=estimate))
        p.touched = time.monotonic()
        p.calls += 1
        try:
            return await self._move_batch(db, slot, p, target, max_keys, max_bytes)
        finally:
            p.calls -= 1

    async def _move_batch(
        self, db: Database, slot: int, p: SlotPass, target: Target, max_keys: int, max_bytes: int
    ) -> tuple[int, int, int]:
        link = await self._link(target, db)
        from_start = not p.after
        held: list[Moving] = []
        big: list[Moving] = []
        try:
            to_end, busy = await self._pick(db, slot, p, max_keys, max_bytes, held, big)
            sent = await self._send_whole(link, target, held, max_bytes)
            if sent.rest:  # beyond the byte budget: released, and the next call starts there
                self._release(sent.rest)
                held = held[: len(held) - len(sent.rest)]
                p.after = held[-1].mkey if held else b""
                to_end = False
            for m in sent.big:
                held.remove(m)
            for m in big + sent.big:
                p.big[m.mkey] = asyncio.get_running_loop().create_task(
                    self._big_task(link, target, m, p)
                )
            big = []
            moved, nbytes = sent.moved, sent.nbytes
        except MigrateError:
            self.failures += 1
            raise
        finally:
            self._release(held + big)
        if not moved and p.big:
            await asyncio.wait(list(p.big.values()), timeout=CALL_WAIT)
        moved += p.big_moved
        nbytes += p.big_bytes
        p.big_moved = p.big_bytes = 0
        p.moved += moved
        # empty only when this call walked the whole slot alone (another call of the pass may
        # hold keys this one walked past: it went on from where that one stood) and no key is
        # left (one that call sent and had no answer for stays held here after it returned)
        alone = from_start and to_end and not busy and not p.big and p.calls == 1
        if alone and self._slot_empty(db, slot):
            self.passes.pop((db.phys, slot), None)
            return moved, 0, nbytes
        return moved, max(1, p.estimate - p.moved), nbytes

    def _slot_empty(self, db: Database, slot: int) -> bool:
        """No live key of the slot is left here (a few seeks: the moved ones are deleted)."""
        start, stop = slot_range(db, slot)
        step = live_step(self.server.keyspace, start, stop, b"", PICK_RECORDS)
        return step.done and not step.records

    async def _pick(
        self,
        db: Database,
        slot: int,
        p: SlotPass,
        max_keys: int,
        max_bytes: int,
        small: list[Moving],
        big: list[Moving],
    ) -> tuple[bool, bool]:
        """Hold the next keys of the slot in key order, from where the pass stands: small
        ones into ``small`` (up to ``max_keys`` and about ``max_bytes`` by their records),
        big ones into ``big`` (up to BIG_PER_SLOT moving at once). Returns (the walk reached
        the slot's end, keys were left for later because other moves hold them)."""
        ks = self.server.keyspace
        locked = self.server.slots.locked
        lock = self.server.slots.lock
        remember = ks.engine.remember
        phys = db.phys
        start, stop = slot_range(db, slot)
        busy = False
        size = 0
        pace = self.pace
        while True:
            step = live_step(ks, start, stop, p.after, PICK_RECORDS)
            for mkey, rec in step.records:
                p.after = mkey
                if mkey in locked:
                    busy = True
                    continue
                if rec[0] & kf.TYPE_MASK != kf.TYPE_STRING and self._big(rec):
                    if len(p.big) + len(big) >= BIG_PER_SLOT:
                        busy = True
                    elif (m := self._hold(db, mkey)) is not None:
                        big.append(m)
                    continue
                # the step's record is the current one (the scan merges the pending writes,
                # and nothing ran since): held as it is, without reading it again; cached, so
                # that the delete's check of it (``_delete_moved``) is a dict lookup
                remember(mkey, rec)
                lock(mkey)
                small.append(Moving(mkey, rec, phys))
                size += len(rec) + len(mkey)
                if len(small) >= max_keys or size >= max_bytes:
                    return False, busy
            if step.done:
                p.after = b""
                return True, busy
            p.after = step.after
            if pace.due():
                await pace.rest()
                self._check_stopping()

    async def _big_task(self, link: RespClient, target: Target, m: Moving, p: SlotPass) -> None:
        try:
            p.big_bytes += await self._stream(link, target, m)
            p.big_moved += 1
        except MigrateError as e:
            self.failures += 1
            log.log(
                logging.INFO if self.stopping else logging.WARNING,
                "moving %r to %s:%d failed: %s", m.mkey[7:], target.host, target.port, e,
            )  # fmt: skip
        except Exception:
            self.failures += 1
            log.exception("moving %r failed", m.mkey[7:])
        finally:
            self._release([m])
            p.big.pop(m.mkey, None)

    async def _count(self, db: Database, slot: int) -> int:
        """The keys of the slot, counted in steps."""
        start, stop = slot_range(db, slot)
        counts: dict[int, int] = {}
        after = b""
        while True:
            after, done = count_step(
                self.server.keyspace, start, stop, counts, after, COUNT_RECORDS
            )
            if done:
                return counts.get(slot, 0)
            await asyncio.sleep(0)

    # -- housekeeping ---------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                self.tick()
            except Exception:
                log.exception("migration housekeeping failed; will retry")

    def tick(self) -> None:
        server = self.server
        now = time.monotonic()
        if server.replication.master is None and self.stagings.sweep():
            server._commit_and_release()
        for key, used in list(self._link_used.items()):
            link = self.links.get(key)
            if link is not None and now - used > LINK_IDLE and not link.in_flight:
                del self.links[key]
                del self._link_used[key]
                asyncio.get_running_loop().create_task(link.close())
        for where, p in list(self.passes.items()):
            if not p.big and now - p.touched > LINK_IDLE:
                del self.passes[where]

    def info(self) -> list[tuple[str, object]]:
        return [
            ("ledis_migrate_keys_moved", self.keys_moved),
            ("ledis_migrate_bytes_moved", self.bytes_moved),
            ("ledis_migrate_big_keys_moved", self.big_keys_moved),
            ("ledis_migrate_parts_sent", self.parts_sent),
            ("ledis_migrate_failures", self.failures),
            ("ledis_migrate_keys_in_doubt", len(self.in_doubt)),
            ("ledis_migrate_keys_unreachable", len(self.unreachable)),
            ("ledis_migrate_late_moves", self.late_moves),
            ("ledis_migrate_keys_forgotten", self.forgotten),
            ("ledis_migrate_keys_undo_refused", len(self.refused)),
            ("ledis_migrate_undo_refused_reason", _reason(self.refused)),
            ("ledis_migrate_keys_abandoned", self.abandoned),
            ("ledis_migrate_keys_released_by_admin", self.released_by_admin),
            ("ledis_migrate_pace_work_us", round(self.pace.work * 1e6)),
            ("ledis_migrate_pace_slowed", self.pace.slowed),
            ("ledis_migrate_pace_gave_way", self.pace.gave_way),
            ("ledis_loop_lag_ticks", self.lag.ticks),
            ("ledis_loop_lag_late_ticks", self.lag.late_ticks),
            ("ledis_migrate_restore_turns_deferred", self.turns_deferred),
            ("ledis_migrate_links", len(self.links)),
            ("ledis_migrate_big_keys_in_flight", sum(len(p.big) for p in self.passes.values())),
            *self.stagings.info(),
        ]


def restore_triple(key: bytes, ttl: int, payload: bytes) -> bytes:
    """One key's three SLOTSRESTORE arguments (key, ttl in ms, DUMP payload) in RESP, as one
    piece: the move builds its restores key by key, each command's bytes in one join."""
    ttl_text = b"%d" % ttl
    return b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        len(key), key, len(ttl_text), ttl_text, len(payload), payload
    )  # fmt: skip


def restore_request(triples: list[bytes]) -> bytes:
    """The SLOTSRESTORE request of ``triples`` (``restore_triple`` each), as RESP."""
    return b"*%d\r\n$12\r\nSLOTSRESTORE\r\n%b" % (1 + 3 * len(triples), b"".join(triples))


def _reason(refused: dict[bytes, str]) -> str:
    """The kinds of the undos refused now (INFO), e.g. ``noperm``; ``-`` when none."""
    return "/".join(sorted(set(refused.values()))) or "-"


def _seen(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled():
        fut.exception()


def parse_target(host: bytes, port: int, timeout_ms: int) -> Target:
    """The target of a SLOTSMGRT* call (its timeout 0 means 100 ms, as Codis reads it)."""
    return Target(host.decode("utf-8", "replace"), port, (timeout_ms or 100) / 1000)
