"""Keyspace notifications (``notify-keyspace-events``), published through pub/sub.

While notifications are on, the keyspace records which keys a write command changed; after the
command the dispatcher emits one event per key on ``__keyspace@<db>__:<key>`` (message: the
event) and/or ``__keyevent@<db>__:<event>`` (message: the key). Expiry emits ``expired``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.commands import TABLE

from .config import ConfigError
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .server import Server

# Flags as Redis spells them; A is an alias for every event class but m and n.
CLASSES = "g$lshzxetdmn"
ALL = "g$lshzxetd"
TYPE_CLASS = {
    kf.TYPE_STRING: "$",
    kf.TYPE_LIST: "l",
    kf.TYPE_SET: "s",
    kf.TYPE_HASH: "h",
    kf.TYPE_ZSET: "z",
}
GENERIC = {
    "del",
    "unlink",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "persist",
    "rename",
    "renamenx",
    "copy",
    "move",
    "restore",
}
# Where Redis names the event differently from the command.
EVENT_NAME = {
    "incr": "incrby",
    "decr": "decrby",
    "setnx": "set",
    "getset": "set",
    "mset": "set",
    "msetnx": "set",
    "setex": "set",
    "psetex": "set",
    "getex": "expire",
    "hmset": "hset",
    "hsetnx": "hset",
    "unlink": "del",
    "getdel": "del",
    "pexpire": "expire",
    "expireat": "expire",
    "pexpireat": "expire",
    "zincrby": "zincr",
    "bitfield": "setbit",
    "bitop": "set",
    "lpushx": "lpush",
    "rpushx": "rpush",
    "blpop": "lpop",
    "brpop": "rpop",
    "bzpopmin": "zpopmin",
    "bzpopmax": "zpopmax",
    "sort": "sortstore",
}
_SIDES = {b"LEFT": ("lpop", "lpush"), b"RIGHT": ("rpop", "rpush")}
_ENDS = {b"LEFT": "lpop", b"RIGHT": "rpop", b"MIN": "zpopmin", b"MAX": "zpopmax"}


def per_key_events(command: str, args: list[bytes]) -> list[tuple[bytes, str]]:
    """Events, in Redis's order, of commands that do different things to different keys."""
    if command in ("rename", "renamenx"):
        return [(args[1], "rename_from"), (args[2], "rename_to")]
    if command == "smove":
        return [(args[1], "srem"), (args[2], "sadd")]
    if command in ("rpoplpush", "brpoplpush"):
        return [(args[2], "lpush"), (args[1], "rpop")]
    if command in ("lmove", "blmove"):
        return [(args[2], _SIDES[args[4].upper()][1]), (args[1], _SIDES[args[3].upper()][0])]
    if command in ("lmpop", "blmpop", "zmpop", "bzmpop"):
        end = next((a.upper() for a in args if a.upper() in _ENDS), b"LEFT")
        return [(k, _ENDS[end]) for k in args[1:]]
    if command == "copy":
        return [(args[2], "copy_to")]
    return []


def parse_flags(text: str) -> frozenset[str]:
    flags: set[str] = set()
    for ch in text:
        if ch == "A":
            flags.update(ALL)
        elif ch in "KE" or ch in CLASSES:
            flags.add(ch)
        else:
            raise ConfigError(f"argument '{text}' has an unknown class '{ch}'")
    return frozenset(flags)


GROUP_CLASS = {
    "string": "$",
    "bitmap": "$",
    "list": "l",
    "set": "s",
    "hash": "h",
    "sorted-set": "z",
}


_TTL_OPTIONS = {b"EX", b"PX", b"EXAT", b"PXAT"}


def _sets_expiry(command: str, args: list[bytes]) -> bool:
    """SETEX, PSETEX and SET ... EX|PX|EXAT|PXAT also announce an "expire" event."""
    if command in ("setex", "psetex"):
        return True
    return command == "set" and any(a.upper() in _TTL_OPTIONS for a in args[3:])


def _group(command: str) -> str:
    spec = TABLE.get(command.split("|")[0])
    return spec.group if spec else ""


class Notifier:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.flags: frozenset[str] = frozenset()

    def configure(self, text: str) -> None:
        self.flags = parse_flags(text)
        self.server.keyspace.track_changes = bool(self.flags & {"K", "E"})

    @property
    def enabled(self) -> bool:
        return bool(self.flags & {"K", "E"})

    def emit(self, db_index: int, key: bytes, event: str, cls: str) -> None:
        if cls not in self.flags:
            return
        publish = self.server.pubsub.publish
        if "K" in self.flags:
            publish(b"__keyspace@%d__:%b" % (db_index, key), event.encode())
        if "E" in self.flags:
            publish(b"__keyevent@%d__:%b" % (db_index, event.encode()), key)

    def after_command(self, command: str, args: list[bytes], changed: list[bytes]) -> None:
        """Events for the keys one command changed (metadata keys, in order)."""
        ks = self.server.keyspace
        phys_to_db = {db.phys: db.index for db in ks.dbs}
        order = list(dict.fromkeys(changed))
        named = dict(per_key_events(command, args))
        if named:  # Redis's order for these, not the order of our writes
            position = {key: n for n, (key, _e) in enumerate(per_key_events(command, args))}
            order.sort(key=lambda mkey: position.get(kf.user_key(mkey), len(position)))
        for mkey in order:
            db_index = phys_to_db.get(kf.U32.unpack_from(mkey, 1)[0])
            if db_index is None:
                continue
            key = kf.user_key(mkey)
            record = ks.engine.get(mkey)
            name = named.get(key) or EVENT_NAME.get(command, command)
            if command in GENERIC:
                self.emit(db_index, key, name, "g")
                continue
            cls = (
                TYPE_CLASS.get(kf.rtype(record), "g")
                if record
                else GROUP_CLASS.get(_group(command), "g")
            )
            self.emit(db_index, key, name, cls)
            if record is None and name != "del":  # the command emptied the key: it is gone
                self.emit(db_index, key, "del", "g")
            elif _sets_expiry(command, args):
                self.emit(db_index, key, "expire", "g")

    def expired(self, mkey: bytes) -> None:
        ks = self.server.keyspace
        for db in ks.dbs:
            if mkey.startswith(db.prefix):
                self.emit(db.index, kf.user_key(mkey), "expired", "x")
                return
