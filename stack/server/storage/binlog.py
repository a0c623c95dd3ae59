"""The binlog: every applied write batch, numbered by LogID, kept in the same LevelDB batch as
the data it describes, so data and log never disagree after a crash (docs/storage-format.md).

A record holds the time and the exact LevelDB changes of its batch (key -> value, or a delete),
which is what a replica applies to end byte-identical. Keys under the binlog's own namespace are
never logged: retention purges are local to each node.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from . import keyformat as kf

NS_BINLOG = b"\x04"
_HEADER = struct.Struct(">QI")  # time_ms, number of changes
_U32 = struct.Struct(">I")
_DELETE = b"\xff\xff\xff\xff"


def log_key(log_id: int) -> bytes:
    return NS_BINLOG + kf.U64.pack(log_id)


def log_id_of(key: bytes) -> int:
    return kf.U64.unpack_from(key, 1)[0]  # type: ignore[no-any-return]


def encode_record(time_ms: int, changes: list[tuple[bytes, bytes | None]]) -> bytes:
    parts = [_HEADER.pack(time_ms, len(changes))]
    append = parts.append
    pack = _U32.pack
    for k, v in changes:
        append(pack(len(k)))
        append(k)
        if v is None:
            append(_DELETE)
        else:
            append(pack(len(v)))
            append(v)
    return b"".join(parts)


@dataclass(frozen=True)
class Record:
    log_id: int
    time_ms: int
    changes: list[tuple[bytes, bytes | None]]


def decode_record(log_id: int, raw: bytes) -> Record:
    """Decode one record, checking every length (ValueError when it does not add up)."""
    if len(raw) < _HEADER.size:
        raise ValueError(f"binlog record {log_id} is truncated")
    time_ms, count = _HEADER.unpack_from(raw, 0)
    pos = _HEADER.size
    changes: list[tuple[bytes, bytes | None]] = []
    for _ in range(count):
        if pos + 4 > len(raw):
            raise ValueError(f"binlog record {log_id} is truncated")
        klen = _U32.unpack_from(raw, pos)[0]
        key = raw[pos + 4 : pos + 4 + klen]
        pos += 4 + klen
        if pos + 4 > len(raw) or len(key) != klen:
            raise ValueError(f"binlog record {log_id} is truncated")
        if raw[pos : pos + 4] == _DELETE:
            changes.append((key, None))
            pos += 4
            continue
        vlen = _U32.unpack_from(raw, pos)[0]
        value = raw[pos + 4 : pos + 4 + vlen]
        if len(value) != vlen:
            raise ValueError(f"binlog record {log_id} is truncated")
        changes.append((key, value))
        pos += 4 + vlen
    if pos != len(raw):
        raise ValueError(f"binlog record {log_id} has trailing bytes")
    return Record(log_id, time_ms, changes)


_LOCAL = (b"\x00T", b"\x00L")  # the last fsync mark and the last LogID: per node


def loggable(key: bytes) -> bool:
    """Whether a change belongs in the binlog, backups and digests (not the log itself, nor
    a node's own bookkeeping)."""
    return key[:1] != NS_BINLOG and key not in _LOCAL


def iter_records(scan: Iterator[tuple[bytes, bytes]]) -> Iterator[Record]:
    for key, raw in scan:
        yield decode_record(log_id_of(key), raw)
