"""Backups in the background (SAVE / BGSAVE), their retention, and data digests."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .storage import backup
from .storage import binlog as blog
from .storage import keyformat as kf

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger(__name__)


class Backups:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.in_progress = False
        self.last_ok = True
        self.last: backup.BackupInfo | None = None
        self.last_time = int(time.time())

    @property
    def directory(self) -> Path:
        configured = self.server.config["backup-dir"]
        return Path(configured) if configured else Path(self.server.config["dir"]) / "backups"

    def _snapshot(self) -> tuple[Any, int]:
        eng = self.server.engine
        eng.commit()  # everything acknowledged so far is in the snapshot
        return eng.db.snapshot(), eng.last_log_id

    def _target(self, log_id: int) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.directory / f"ledis-{stamp}-log{log_id}.ldbk"

    def save(self) -> backup.BackupInfo:
        """SAVE: write the backup now (the server waits, as Redis's SAVE does)."""
        snap, log_id = self._snapshot()
        try:
            info = backup.write_backup(
                iter(snap.iterator()),
                log_id,
                self._target(log_id),
            )
        finally:
            snap.close()
        self._done(info)
        return info

    def start_background(self) -> bool:
        """BGSAVE: write the backup from a snapshot in a thread; False if one is running."""
        if self.in_progress:
            return False
        snap, log_id = self._snapshot()
        self.in_progress = True
        target = self._target(log_id)

        def write() -> backup.BackupInfo:
            try:
                return backup.write_backup(
                    iter(snap.iterator()),
                    log_id,
                    target,
                )
            finally:
                snap.close()

        async def run() -> None:
            try:
                info = await asyncio.to_thread(write)
            except Exception:
                log.exception("background save failed")
                self.last_ok = False
            else:
                self._done(info)
            finally:
                self.in_progress = False

        asyncio.get_running_loop().create_task(run())
        return True

    def _done(self, info: backup.BackupInfo) -> None:
        self.last = info
        self.last_ok = True
        self.last_time = int(time.time())
        log.info("backup %s written: LogID %d, %d records", info.path, info.log_id, info.records)
        keep = self.server.config["backup-keep"]
        backups = sorted(self.directory.glob("ledis-*.ldbk"), key=lambda p: p.stat().st_mtime)
        for old in backups[: max(0, len(backups) - keep)]:
            old.unlink(missing_ok=True)


def digest(server: Server, start: bytes = b"", stop: bytes = b"\xff") -> str:
    """SHA-1 over every record in [start, stop) but the binlog: equal on byte-identical nodes."""
    sha = hashlib.sha1()
    count = 0
    for k, v in server.engine.scan(start, stop):
        if blog.loggable(k):
            sha.update(kf.U32.pack(len(k)) + k + kf.U32.pack(len(v)) + v)
            count += 1
    return sha.hexdigest() if count else "0" * 40
