"""``ledis-server binlog`` and ``ledis-server restore``: operator tools beside the server."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import plyvel

from stack.core.blocking_client import BlockingClient, Endpoint
from stack.core.resp_session import ClientError

from .storage import backup
from .storage import binlog as blog
from .storage import keyformat as kf
from .storage.describe import describe


def _stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def binlog_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="ledis-server binlog",
        description="Print binlog records as readable operations (HSET k f v at LogID 1234). "
        "Read a stopped server's --data-dir, or ask a running one with --port.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="data directory of a stopped server")
    where.add_argument("-p", "--port", type=int, help="port of a running server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-a", "--password")
    p.add_argument(
        "--from",
        dest="after",
        type=int,
        default=0,
        help="print records after this LogID (default: from the oldest)",
    )
    p.add_argument("--follow", action="store_true", help="keep printing new records (--port)")
    p.add_argument("--count", type=int, default=0, help="stop after this many records")
    opts = p.parse_args(argv)
    try:
        records = (
            _from_dir(Path(opts.data_dir), opts.after) if opts.data_dir else _from_server(opts)
        )
        for n, (log_id, time_ms, lines) in enumerate(records, 1):
            for line in lines:
                print(f"LogID {log_id} {_stamp(time_ms)} {line}")
            if opts.count and n >= opts.count:
                break
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, plyvel.Error, ValueError) as e:
        print(f"ledis-server binlog: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _from_dir(path: Path, after: int) -> Iterator[tuple[int, int, list[str]]]:
    if not (path / "CURRENT").exists():
        raise ValueError(f"{path} is not a ledis data directory")
    try:
        db = plyvel.DB(str(path))
    except plyvel.IOError:
        raise ValueError(f"{path} is in use by a running server: use --port") from None
    try:

        def type_of(mkey: bytes) -> int | None:
            record = db.get(mkey)
            return kf.raw_type(record) if record else None

        start = blog.log_key(after + 1)
        with db.iterator(start=start, stop=kf.prefix_end(blog.NS_BINLOG)) as it:
            for record in blog.iter_records(it):
                yield record.log_id, record.time_ms, list(describe(record, type_of))
    finally:
        db.close()


def _from_server(opts: argparse.Namespace) -> Iterator[tuple[int, int, list[str]]]:
    client = BlockingClient(
        Endpoint(host=opts.host, port=opts.port, password=opts.password or None), timeout=30
    )
    try:
        client.connect()
        after = opts.after
        while True:
            batch = client.execute("BINLOG", "SHOW", after, 500)
            assert isinstance(batch, list)
            for log_id, time_ms, lines in batch:
                yield log_id, time_ms, [line.decode("utf-8", "replace") for line in lines]
                after = log_id
            if not batch:
                if not opts.follow:
                    return
                time.sleep(0.5)
    except ClientError as e:
        raise ValueError(str(e)) from None
    finally:
        client.close()


def restore_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="ledis-server restore",
        description="Build a new data directory from a backup (SAVE/BGSAVE). The backup is "
        "checked completely first; a corrupt or truncated one restores nothing.",
    )
    p.add_argument("backup", help="backup file (.ldbk)")
    p.add_argument("--data-dir", required=True, help="new, empty data directory")
    opts = p.parse_args(argv)
    try:
        info = backup.restore(Path(opts.backup), Path(opts.data_dir))
    except backup.BackupError as e:
        print(f"ledis-server restore: {opts.backup}: {e}; nothing was restored", file=sys.stderr)
        return 1
    print(f"restored {info.records} records at LogID {info.log_id} into {opts.data_dir}")
    return 0
