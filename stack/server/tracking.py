"""Client-side caching: CLIENT TRACKING, and the invalidation messages it asks for (Redis 7.0).

Default mode: the keys a tracking client reads (its read-only commands' keys, from the command
table) are remembered in one table, key -> client ids, shared by all databases as in Redis.
When such a key is written, expires, or is dropped from the table to keep it within
``tracking-table-max-keys``, each client that read it is sent one invalidation and forgotten
until it reads the key again. OPTIN / OPTOUT with CLIENT CACHING choose which reads count;
NOLOOP leaves out keys the client changed itself. FLUSHALL and FLUSHDB send every tracking client
a null invalidation ("everything") and empty the table.

BCAST mode: nothing is remembered; every key written that starts with one of the client's
prefixes (all keys without PREFIX) is announced, collected per prefix and sent once per event
loop iteration, as Redis's ``beforeSleep`` does.

Messages: a RESP3 push ``>2 invalidate [keys]`` on the client's own connection, or, with
REDIRECT, to another client: a push when that one speaks RESP3, else a pub/sub ``message`` on
``__redis__:invalidate`` when it is subscribed to anything. When the redirect target is gone,
the client is flagged (``R`` in CLIENT LIST, ``broken_redirect``) and, over RESP3, told with a
``tracking-redir-broken`` push. An invalidation for the client whose command caused it is sent
right after that command's reply (after EXEC's, inside a transaction).

While any client tracks, the keyspace tells this module of every key written or deleted
(``Keyspace.on_modified``, where WATCH learns of them too: Redis's ``signalModifiedKey``), and
the C fast lane stands aside (observers.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import Chunks, ReplyError, encode_bulk

from .storage import keyformat as kf

if TYPE_CHECKING:
    from stack.core.commands import CommandSpec

    from .client import Client
    from .server import Server

CHANNEL = b"__redis__:invalidate"
_PUSH_HEAD = b">2\r\n$10\r\ninvalidate\r\n"
_MESSAGE_HEAD = b"*3\r\n$7\r\nmessage\r\n" + encode_bulk(CHANNEL)
_NULL = {False: b"$-1\r\n", True: b"_\r\n"}  # by the protocol of the tracking client
_FLUSHED = None  # a pending "everything changed" (FLUSHALL / FLUSHDB)


@dataclass(slots=True)
class TrackingState:
    """One client's CLIENT TRACKING settings."""

    redirect: int = 0
    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    caching: bool = False  # CLIENT CACHING YES (optin) / NO (optout) for the next command
    broken_redirect: bool = False
    prefixes: list[bytes] = field(default_factory=list)  # BCAST, in byte order

    def flags(self) -> list[bytes]:
        """CLIENT TRACKINGINFO's flags, in Redis's order."""
        out = [b"on"]
        if self.bcast:
            out.append(b"bcast")
        if self.optin:
            out.append(b"optin")
            if self.caching:
                out.append(b"caching-yes")
        if self.optout:
            out.append(b"optout")
            if self.caching:
                out.append(b"caching-no")
        if self.noloop:
            out.append(b"noloop")
        if self.broken_redirect:
            out.append(b"broken_redirect")
        return out


@dataclass(frozen=True)
class TrackingRequest:
    """A parsed CLIENT TRACKING ON|OFF call."""

    on: bool
    redirect: int = 0
    bcast: bool = False
    optin: bool = False
    optout: bool = False
    noloop: bool = False
    prefixes: tuple[bytes, ...] = ()


def parse_request(args: list[bytes], client_exists: object) -> TrackingRequest:
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP],
    with Redis's errors, in its order (``client_exists(id)`` checks a REDIRECT)."""
    from .commands.args import to_int

    redirect = 0
    opts: set[bytes] = set()
    prefixes: list[bytes] = []
    i = 3
    while i < len(args):
        opt = args[i].upper()
        more = i + 1 < len(args)
        if opt == b"REDIRECT" and more:
            i += 1
            if redirect:
                raise ReplyError("ERR A client can only redirect to a single other client")
            redirect = to_int(args[i])
            if not client_exists(redirect):  # type: ignore[operator]
                raise ReplyError("ERR The client ID you want redirect to does not exist")
        elif opt in (b"BCAST", b"OPTIN", b"OPTOUT", b"NOLOOP"):
            opts.add(opt)
        elif opt == b"PREFIX" and more:
            i += 1
            prefixes.append(args[i])
        else:
            raise ReplyError(errors.SYNTAX)
        i += 1
    mode = args[2].upper()
    if mode not in (b"ON", b"OFF"):
        raise ReplyError(errors.SYNTAX)
    return TrackingRequest(
        mode == b"ON",
        redirect,
        b"BCAST" in opts,
        b"OPTIN" in opts,
        b"OPTOUT" in opts,
        b"NOLOOP" in opts,
        tuple(prefixes),
    )


class _Prefix:
    """A BCAST prefix: its clients, and the keys written since the last broadcast (each with
    the client that wrote it last, for NOLOOP)."""

    __slots__ = ("clients", "keys")

    def __init__(self) -> None:
        self.clients: dict[Client, None] = {}
        self.keys: dict[bytes, Client | None] = {}


class Tracking:
    """The server's tracking table and BCAST prefixes."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.clients = 0  # clients with tracking on
        self.table: dict[bytes, set[int]] = {}  # key -> ids of the clients that read it
        self.items = 0  # client ids in the table, all keys together
        self.prefixes: dict[bytes, _Prefix] = {}
        self.current: Client | None = None  # the client whose command is running
        self.pending: list[bytes | None] = []  # its own invalidations, sent after its reply
        self._broadcast_scheduled = False
        self._limit_effort = 0

    # -- CLIENT TRACKING ----------------------------------------------------------------------

    def apply(self, c: Client, req: TrackingRequest) -> None:
        """Turn tracking on or off for ``c`` (CLIENT TRACKING), checking as Redis does."""
        if not req.on:
            self.disable(c)
            return
        if req.prefixes and not req.bcast:
            raise ReplyError("ERR PREFIX option requires BCAST mode to be enabled")
        state = c.tracking
        if state is not None and state.bcast != req.bcast:
            raise ReplyError(
                "ERR You can't switch BCAST mode on/off before disabling tracking for this "
                "client, and then re-enabling it with a different mode."
            )
        if req.bcast and (req.optin or req.optout):
            raise ReplyError("ERR OPTIN and OPTOUT are not compatible with BCAST")
        if req.optin and req.optout:
            raise ReplyError("ERR You can't specify both OPTIN mode and OPTOUT mode")
        if state is not None and ((req.optin and state.optout) or (req.optout and state.optin)):
            raise ReplyError(
                "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                "client, and then re-enabling it with a different mode."
            )
        if req.bcast:
            _check_prefixes(state.prefixes if state else [], list(req.prefixes))
        if state is None:
            state = c.tracking = TrackingState()
            self.clients += 1
            self.server.keyspace.on_modified = self.key_modified
        state.redirect = req.redirect
        state.broken_redirect = False
        state.bcast = req.bcast
        state.optin, state.optout, state.noloop = req.optin, req.optout, req.noloop
        if req.bcast:
            for prefix in req.prefixes or (b"",):
                entry = self.prefixes.setdefault(prefix, _Prefix())
                if c not in entry.clients:
                    entry.clients[c] = None
                    state.prefixes.append(prefix)
            state.prefixes.sort()
        c.server.observers.refresh()

    def disable(self, c: Client) -> None:
        """Tracking off (CLIENT TRACKING OFF, RESET, or the client went away). Its ids stay in
        the table until those keys change (Redis removes them lazily too)."""
        state = c.tracking
        if state is None:
            return
        for prefix in state.prefixes:
            entry = self.prefixes.get(prefix)
            if entry is not None:
                entry.clients.pop(c, None)
                if not entry.clients:
                    del self.prefixes[prefix]
        c.tracking = None
        self.clients -= 1
        if not self.clients:  # nobody left to tell: drop what was remembered
            self.table.clear()
            self.items = 0
            self.server.keyspace.on_modified = None
        c.server.observers.refresh()

    # -- reads --------------------------------------------------------------------------------

    def after_command(
        self, c: Client, spec: CommandSpec | None, args: list[bytes], ran: bool
    ) -> None:
        """A command of tracking client ``c`` was processed (``ran``: it was run, not refused
        or queued): remember the keys of a read-only command (unless OPTIN without CACHING
        YES, OPTOUT with CACHING NO, or BCAST)."""
        state = c.tracking
        assert state is not None
        if ran and spec is not None and "readonly" in spec.flags and "pubsub" not in spec.flags:
            skipped = (state.optin and not state.caching) or (state.optout and state.caching)
            if not (state.bcast or skipped):
                self._remember(c.id, [args[ref.pos] for ref in spec.keys(args)])
        # CLIENT CACHING lasts for the next command (or the next transaction).
        in_transaction = c.in_exec or c.multi is not None
        if state.caching and not in_transaction and (spec is None or spec.parent != "client"):
            state.caching = False

    def _remember(self, cid: int, keys: list[bytes]) -> None:
        table = self.table
        for key in keys:
            ids = table.get(key)
            if ids is None:
                ids = table[key] = set()
            if cid not in ids:
                ids.add(cid)
                self.items += 1

    # -- writes -------------------------------------------------------------------------------

    def key_modified(self, mkey: bytes) -> None:
        """Keyspace hook, while anyone tracks: a key was written or deleted (by the command
        running, whose client is ``current``, or by the server)."""
        self.invalidate(self.current, kf.user_key(mkey))

    def expired(self, mkey: bytes) -> None:
        """Keyspace hook: a key expired (read by a client's command, or by the active sweep)."""
        if self.clients or self.table:
            self.invalidate(None, kf.user_key(mkey))

    def invalidate(self, writer: Client | None, key: bytes, broadcast: bool = True) -> None:
        if broadcast and self.prefixes:
            for prefix, entry in self.prefixes.items():
                if key.startswith(prefix):
                    entry.keys[key] = writer
                    self._schedule_broadcast()
        ids = self.table.pop(key, None)
        if not ids:
            return
        self.items -= len(ids)
        clients = self.server.clients
        current = self.current
        for cid in ids:
            target = clients.get(cid)
            if target is None:
                continue
            state = target.tracking
            if state is None or state.bcast:
                continue
            if target is current:
                if state.noloop:  # (Redis: whoever changed it, during its own command)
                    continue
                self.pending.append(key)  # after its reply
            else:
                self.send(target, _keys_array([key]))

    def flushed(self) -> None:
        """FLUSHALL / FLUSHDB: every tracking client is told that everything changed."""
        if self.clients:
            current = self.current
            for c in list(self.server.clients.values()):
                state = c.tracking
                if state is None:
                    continue
                if c is current:
                    self.pending.append(_FLUSHED)
                else:
                    self.send(c, _NULL[c.resp3])
        self.table.clear()
        self.items = 0

    # -- delivery -----------------------------------------------------------------------------

    def send(self, c: Client, value: bytes, own: list[bytes] | None = None) -> None:
        """Send an invalidation (``value``: the encoded keys array, or null) for tracking
        client ``c``, to it or to its redirect target. ``own``: where to put what goes to
        ``c`` itself (held until its reply is out) instead of sending it now."""
        state = c.tracking
        if state is None:
            return
        server = self.server
        target = c
        message: bytes | None = None
        if state.redirect:
            found = server.clients.get(state.redirect)
            if found is None or found.closing:
                state.broken_redirect = True
                if c.resp3:
                    message = b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % state.redirect
            else:
                target = found
                if target.resp3:
                    message = _PUSH_HEAD + value
                elif target.channels or target.patterns:
                    message = _MESSAGE_HEAD + value
        elif c.resp3:
            message = _PUSH_HEAD + value
        if message is None:
            return  # RESP2 without a subscribed redirect target: nowhere to say it
        if own is not None and target is c:
            own.append(message)
        else:
            server.deliver(target, message)

    def take_pending(self, c: Client) -> bytes:
        """The invalidations held for ``c`` while its command ran, as bytes to send right
        after its reply (those for a redirect target are sent to it now)."""
        pending, self.pending = self.pending, []
        own: list[bytes] = []
        for key in pending:
            self.send(c, _NULL[c.resp3] if key is _FLUSHED else _keys_array([key]), own)
        return b"".join(own)

    def _schedule_broadcast(self) -> None:
        if not self._broadcast_scheduled:
            self._broadcast_scheduled = True
            asyncio.get_running_loop().call_soon(self.broadcast)

    def broadcast(self) -> None:
        """Send each BCAST prefix's written keys to its clients (once per loop iteration)."""
        self._broadcast_scheduled = False
        for entry in list(self.prefixes.values()):
            if not entry.keys:
                continue
            keys = sorted(entry.keys)
            everything = _keys_array(keys)
            for c in list(entry.clients):
                state = c.tracking
                if state is not None and state.noloop:
                    mine = [k for k in keys if entry.keys[k] is not c]
                    if mine:
                        self.send(c, _keys_array(mine))
                else:
                    self.send(c, everything)
            entry.keys = {}

    # -- bounds -------------------------------------------------------------------------------

    def limit(self, max_keys: int) -> None:
        """Keep the table within ``max_keys`` keys (tracking-table-max-keys; 0: no limit):
        drop keys as if they had changed, a bounded number per call (more while it stays
        over), as Redis does before each command."""
        if not max_keys or len(self.table) <= max_keys:
            self._limit_effort = 0
            return
        effort = 100 * (self._limit_effort + 1)
        for key in list(self.table)[:effort]:
            self.invalidate(None, key, broadcast=False)
            if len(self.table) <= max_keys:
                self._limit_effort = 0
                return
        self._limit_effort += 1


def _keys_array(keys: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(keys) + b"".join(encode_bulk(k) for k in keys)


def _check_prefixes(existing: list[bytes], new: list[bytes]) -> None:
    """BCAST prefixes of one client must not overlap (one a prefix of another)."""
    for i, prefix in enumerate(new):
        for old in existing:
            if prefix.startswith(old) or old.startswith(prefix):
                raise ReplyError(
                    f"ERR Prefix '{errors.echo(prefix)}' overlaps with an existing prefix "
                    f"'{errors.echo(old)}'. Prefixes for a single client must not overlap."
                )
        for other in new[i + 1 :]:
            if prefix.startswith(other) or other.startswith(prefix):
                raise ReplyError(
                    f"ERR Prefix '{errors.echo(prefix)}' overlaps with another provided prefix "
                    f"'{errors.echo(other)}'. Prefixes for a single client must not overlap."
                )


def with_pushes(reply: bytes | Chunks, pushes: bytes) -> bytes | Chunks:
    """A reply followed by pushes for the same client."""
    if not pushes:
        return reply
    if isinstance(reply, Chunks):
        out = Chunks(reply)
        out.append(pushes)
        return out
    return Chunks([reply, pushes])
