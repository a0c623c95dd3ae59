"""DUMP and RESTORE for every type (payload format in storage/dump.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core import errors
from stack.core.resp import NIL, OK, ReplyError

from ..notifications import GENERIC, notify
from ..storage import dump as dumpfmt
from ..storage import keyformat as kf
from ..storage.collections import ZSET_MEMBER, Collection
from ..storage.keyspace import now_ms
from ..storage.restore import restore_object
from ..storage.strings import StoredString
from . import handler
from .args import syntax_error, to_int, wrap_int64

if TYPE_CHECKING:
    from ..client import Client

BAD_PAYLOAD = "ERR DUMP payload version or checksum are wrong"


@handler("dump")
def dump(c: Client, args: list[bytes]) -> object:
    record = c.db.lookup(args[1])
    if record is None:
        return NIL
    kind = kf.rtype(record)
    if kind == kf.TYPE_STRING:  # a chunked string is dumped as the string it is
        value = StoredString(c.server.keyspace, c.db.meta_key(args[1]), record).whole()
        return dumpfmt.encode(kind, value, [])
    col = Collection.open(c.db, args[1], kind, for_read=True)
    if kind == kf.TYPE_ZSET:
        entries = list(col.items(space=ZSET_MEMBER))
    elif kind == kf.TYPE_LIST:
        entries = [(element, b"") for _pos, element in col.items()]
    else:
        entries = list(col.items())
    return dumpfmt.encode(kind, None, entries)


@handler("restore")
def restore(c: Client, args: list[bytes]) -> object:
    replace = absolute = False
    idle = freq = None
    i = 4
    while i < len(args):  # Redis's order: options, the key, the TTL, then the payload
        opt = args[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"ABSTTL":
            absolute = True
        elif opt == b"IDLETIME" and i + 1 < len(args) and freq is None:
            i += 1
            idle = to_int(args[i])
            if idle < 0:
                raise ReplyError("ERR Invalid IDLETIME value, must be >= 0")
        elif opt == b"FREQ" and i + 1 < len(args) and idle is None:
            i += 1
            freq = to_int(args[i])
            if not 0 <= freq <= 255:
                raise ReplyError("ERR Invalid FREQ value, must be >= 0 and <= 255")
        else:
            raise syntax_error()
        i += 1
    # Redis's order: options, the key, the TTL, the checksum, then the whole object; the
    # payload is decoded and validated completely before anything is written.
    mkey, old = c.db.read(args[1])
    if old is not None and not replace:
        raise ReplyError("BUSYKEY Target key name already exists.")
    ttl = to_int(args[2])
    if ttl < 0:
        raise ReplyError("ERR Invalid TTL value, must be >= 0")
    try:
        kind, value, entries = dumpfmt.decode(args[3])
    except dumpfmt.BadChecksum:
        raise ReplyError(BAD_PAYLOAD) from None
    except dumpfmt.BadFormat:
        raise ReplyError(errors.BAD_DATA_FORMAT) from None
    now = now_ms()
    # A relative TTL is added as C adds it: past the int64 range it wraps to the past.
    expire = (ttl if absolute else wrap_int64(now + ttl)) if ttl else 0
    if old is not None:  # REPLACE: the old key goes first, then the key is created anew
        c.server.keyspace.delete(mkey, old)
    if expire and expire <= now:  # already expired: nothing to create
        if old is not None:
            notify(c, GENERIC, "del", args[1])
        return OK
    restore_object(c.server.keyspace, mkey, None, kind, value, entries, expire)
    if idle is not None:
        c.server.keyspace.access[mkey] = c.server.keyspace.clock - idle
    notify(c, GENERIC, "restore", args[1])
    return OK
