"""SAVE, BGSAVE, LASTSAVE, BINLOG INFO/SHOW."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.core.resp import OK, Raw, ReplyError, Status

from ..storage import keyformat as kf
from ..storage.describe import describe
from . import handler, help_lines
from .args import syntax_error, to_int, to_positive

if TYPE_CHECKING:
    from ..client import Client


@handler("save")
def save(c: Client, args: list[bytes]) -> object:
    if c.server.backups.in_progress:
        raise ReplyError("ERR Background save already in progress")
    c.server.backups.save()
    return OK


@handler("bgsave")
def bgsave(c: Client, args: list[bytes]) -> object:
    if len(args) > 2 or (len(args) == 2 and args[1].upper() != b"SCHEDULE"):
        raise syntax_error()
    if not c.server.backups.start_background():
        if len(args) == 2:
            return Status("Background saving scheduled")
        raise ReplyError("ERR Background save already in progress")
    return Raw(b"+Background saving started\r\n")


@handler("lastsave")
def lastsave(c: Client, args: list[bytes]) -> object:
    return c.server.backups.last_time


@handler("binlog|info")
def binlog_info(c: Client, args: list[bytes]) -> object:
    eng = c.server.engine
    return [eng.first_log_id, eng.last_log_id, eng.log_size()]


BINLOG_SHOW_MAX = 10_000
BINLOG_SHOW_BYTES = 4 << 20


@handler("binlog|show")
def binlog_show(c: Client, args: list[bytes]) -> object:
    after, count = to_int(args[2]), to_positive(args[3])
    eng = c.server.engine
    if eng.first_log_id and after < eng.first_log_id - 1:
        raise ReplyError(f"LOGPURGED the oldest LogID held is {eng.first_log_id}")

    def type_of(mkey: bytes) -> int | None:
        record = eng.get(mkey)
        return kf.raw_type(record) if record else None

    # One call answers at most BINLOG_SHOW_MAX records and about BINLOG_SHOW_BYTES of text;
    # a reader pages on with the last LogID it got.
    out: list[object] = []
    size = 0
    for record in eng.read_log(after):
        if len(out) >= min(count, BINLOG_SHOW_MAX) or size >= BINLOG_SHOW_BYTES:
            break
        lines = [line.encode() for line in describe(record, type_of)]
        size += sum(map(len, lines))
        out.append([record.log_id, record.time_ms, lines])
    return out


@handler("binlog|help")
def binlog_help(c: Client, args: list[bytes]) -> object:
    return help_lines(
        "BINLOG",
        [
            "INFO",
            "    Return the first and last LogID held and the binlog's size in bytes.",
            "SHOW <after> <count>",
            "    Return up to <count> records after LogID <after>, readable.",
        ],
    )
