"""Keyspace notifications (``notify-keyspace-events``), published through pub/sub.

As in Redis, each write command announces its own events at the point where it makes each
change, in Redis's order: ``notify(c, "l", "lpush", key)``, then ``"del"`` when the change
emptied a collection. Two events come from the keyspace itself, wherever a command or the
server causes them: ``new`` when a key is created (class ``n``) and ``expired`` when a key is
found expired, lazily or by the active sweep (class ``x``). ``keymiss`` (class ``m``) is
announced by reads that find no key. ledis never evicts, so there is no ``evicted`` event.

Each event is published on ``__keyspace@<db>__:<key>`` (message: the event) when ``K`` is on,
and on ``__keyevent@<db>__:<event>`` (message: the key) when ``E`` is on. While any class is
on, the C fast lane stays off (its SET and INCR would have to announce too).

The events of LedisDB's own commands (documented in ``docs/notifications.md``) follow their
Redis counterparts: ``LCLEAR`` is a ``del``, ``LEXPIRE`` an ``expire``, ``LPERSIST`` a
``persist``, ``LTRIM_FRONT`` an ``ltrim``, ``XLSORT ... STORE`` a ``sortstore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import ConfigError
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .client import Client
    from .server import Server

# Classes as Redis spells them; A is an alias for every class but m and n.
CLASSES = "g$lshzxetdmn"
ALL = "g$lshzxetd"
GENERIC, STRING, LIST, SET, HASH, ZSET = "g", "$", "l", "s", "h", "z"
NEW, MISS, EXPIRED = "n", "m", "x"


def parse_flags(text: str) -> frozenset[str]:
    flags: set[str] = set()
    for ch in text:
        if ch == "A":
            flags.update(ALL)
        elif ch in "KE" or ch in CLASSES:
            flags.add(ch)
        else:
            raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")  # Redis's
    return frozenset(flags)


def flags_text(flags: frozenset[str]) -> str:
    """The flags as Redis prints them (CONFIG GET): ``A`` for all of its classes, else each
    class in its order and ``n`` (which ``A`` hides, as in Redis), then ``K``, ``E``, ``m``."""
    if set(ALL) <= flags:
        text = "A"
    else:
        text = "".join(ch for ch in ALL + "n" if ch in flags)
    return text + "".join(ch for ch in "KEm" if ch in flags)


class Notifier:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.keyspace = False  # K: __keyspace@<db>__:<key> channels
        self.keyevent = False  # E: __keyevent@<db>__:<event> channels
        self.classes: frozenset[str] = frozenset()  # the classes announced (none without K/E)

    def configure(self, text: str) -> None:
        flags = parse_flags(text)
        self.keyspace = "K" in flags
        self.keyevent = "E" in flags
        on = self.keyspace or self.keyevent
        self.classes = frozenset(flags - {"K", "E"}) if on else frozenset()
        ks = self.server.keyspace
        ks.track_changes = bool(self.classes)  # keeps the fast lane off
        ks.on_new = self._new if NEW in self.classes else None
        ks.on_miss = self._miss if MISS in self.classes else None

    def emit(self, db_index: int, key: bytes, event: str) -> None:
        """Publish one event (its class already checked)."""
        publish = self.server.pubsub.publish
        if self.keyspace:
            publish(b"__keyspace@%d__:%b" % (db_index, key), event.encode())
        if self.keyevent:
            publish(b"__keyevent@%d__:%b" % (db_index, event.encode()), key)

    def _db_index(self, mkey: bytes) -> int | None:
        for db in self.server.keyspace.dbs:
            if mkey.startswith(db.prefix):
                return db.index
        return None

    def _announce(self, mkey: bytes, event: str, cls: str) -> None:
        if cls in self.classes:
            index = self._db_index(mkey)
            if index is not None:
                self.emit(index, kf.user_key(mkey), event)

    def _new(self, mkey: bytes) -> None:
        self._announce(mkey, "new", NEW)

    def _miss(self, mkey: bytes) -> None:
        self._announce(mkey, "keymiss", MISS)

    def expired(self, mkey: bytes) -> None:
        self._announce(mkey, "expired", EXPIRED)


def notify(c: Client, cls: str, event: str, key: bytes, db_index: int | None = None) -> None:
    """Announce ``event`` (of class ``cls``) on ``key`` of the client's database (or of
    database ``db_index``), if that class is on."""
    notifier = c.server.notifier
    if cls in notifier.classes:
        notifier.emit(c.db.index if db_index is None else db_index, key, event)


def notify_emptied(c: Client, cls: str, event: str, key: bytes, gone: bool) -> None:
    """A change to a collection, then ``del`` when it emptied the collection (Redis's pair)."""
    notifier = c.server.notifier
    if notifier.classes:
        notify(c, cls, event, key)
        if gone:
            notify(c, GENERIC, "del", key)


def notify_stored(c: Client, cls: str, event: str, key: bytes, stored: bool, existed: bool) -> None:
    """A *STORE destination: ``event`` when a result was stored, ``del`` when an empty result
    removed a key that was there (nothing when there was none)."""
    if stored:
        notify(c, cls, event, key)
    elif existed:
        notify(c, GENERIC, "del", key)
