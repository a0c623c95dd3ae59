"""Backups: a consistent LevelDB snapshot written to one checksummed file, and its restore.

File layout (version 1, docs/storage-format.md):

    "LDBK" | version u8 | LogID u64 | unix ms u64
    then per LevelDB record: u32 key length, key, u32 value length, value
    then the trailer: u32 0xFFFFFFFF, record count u64, SHA-256 of everything before (32 bytes)

The binlog itself is not copied; the LogID of the snapshot is, so a restored node continues the
master's sequence and can catch up from its log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import plyvel

from . import binlog as blog
from . import keyformat as kf

MAGIC = b"LDBK"
VERSION = 1
_HEAD = struct.Struct(">4sBQQ")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_END = b"\xff\xff\xff\xff"
CHUNK = 1 << 20


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    log_id: int
    time_ms: int
    records: int
    digest: str


def backed_up(key: bytes) -> bool:
    return blog.loggable(key)


def write_backup(
    snapshot_items: Iterator[tuple[bytes, bytes]], log_id: int, target: Path
) -> BackupInfo:
    """Write a backup file atomically (temp file, fsync, rename) from a snapshot iterator."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    sha = hashlib.sha256()
    digest = hashlib.sha1()
    count = 0
    now = int(time.time() * 1000)
    with open(tmp, "wb") as f:
        buf: list[bytes] = [_HEAD.pack(MAGIC, VERSION, log_id, now)]
        size = 0
        for k, v in snapshot_items:
            if not backed_up(k):
                continue
            buf += (_U32.pack(len(k)), k, _U32.pack(len(v)), v)
            size += len(k) + len(v) + 8
            digest.update(_U32.pack(len(k)) + k + _U32.pack(len(v)) + v)
            count += 1
            if size >= CHUNK:
                _flush(f, sha, buf)
                buf, size = [], 0
        buf += (_END, _U64.pack(count))
        _flush(f, sha, buf)
        f.write(sha.digest())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return BackupInfo(target, log_id, now, count, digest.hexdigest() if count else "0" * 40)


def _flush(f: BinaryIO, sha: hashlib._Hash, buf: list[bytes]) -> None:
    data = b"".join(buf)
    sha.update(data)
    f.write(data)


def read_backup(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """Records of a backup whose checksum was verified (call ``verify`` first)."""
    with open(path, "rb") as f:
        f.read(_HEAD.size)
        while True:
            head = f.read(4)
            if head == _END:
                return
            k = f.read(_U32.unpack(head)[0])
            v = f.read(_U32.unpack(f.read(4))[0])
            yield k, v


def verify(path: Path) -> BackupInfo:
    """Check magic, version, structure and SHA-256; BackupError says what is wrong."""
    try:
        total = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
            if len(head) != _HEAD.size:
                raise BackupError("truncated header")
            magic, version, log_id, time_ms = _HEAD.unpack(head)
            if magic != MAGIC:
                raise BackupError("not a ledis backup")
            if version != VERSION:
                raise BackupError(f"backup format {version}, this server reads {VERSION}")
            sha = hashlib.sha256(head)
            digest = hashlib.sha1()
            count = 0
            pos = _HEAD.size
            while True:
                lead = f.read(4)
                pos += 4
                if len(lead) != 4:
                    raise BackupError("truncated")
                sha.update(lead)
                if lead == _END:
                    break
                klen = _U32.unpack(lead)[0]
                k = f.read(klen)
                vhead = f.read(4)
                if len(k) != klen or len(vhead) != 4:
                    raise BackupError("truncated")
                vlen = _U32.unpack(vhead)[0]
                if pos + klen + 4 + vlen > total:
                    raise BackupError("truncated")
                v = f.read(vlen)
                sha.update(k + vhead + v)
                digest.update(lead + k + vhead + v)
                pos += klen + 4 + vlen
                count += 1
            tail = f.read(8)
            sha.update(tail)
            stored = f.read(32)
            if len(tail) != 8 or len(stored) != 32 or f.read(1):
                raise BackupError("truncated or trailing bytes")
            if _U64.unpack(tail)[0] != count or stored != sha.digest():
                raise BackupError("checksum mismatch")
    except OSError as e:
        raise BackupError(f"cannot read: {e.strerror}") from None
    return BackupInfo(path, log_id, time_ms, count, digest.hexdigest() if count else "0" * 40)


def restore(path: Path, data_dir: Path) -> BackupInfo:
    """Build ``data_dir`` from a backup: all or nothing (a temp dir renamed at the end)."""
    info = verify(path)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty; restore into a new directory")
    tmp = data_dir.with_name(data_dir.name + ".restoring")
    shutil.rmtree(tmp, ignore_errors=True)
    db = plyvel.DB(str(tmp), create_if_missing=True)
    try:
        batch = db.write_batch()
        for n, (k, v) in enumerate(read_backup(path), 1):
            batch.put(k, v)
            if n % 10_000 == 0:
                batch.write()
                batch = db.write_batch()
        batch.put(kf.SYS_LAST_LOG, _U64.pack(info.log_id))
        batch.write()
    finally:
        db.close()
    if data_dir.exists():
        data_dir.rmdir()
    os.replace(tmp, data_dir)
    return info
