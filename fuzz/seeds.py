"""Seed inputs for each target; ``python -m fuzz.seeds`` writes them to ``fuzz/corpus/``.

The DUMP seeds hold a valid payload of every type and the corrupt ones the issue reported
(a hash with a field twice, a NaN score, a 3-byte score), each with a good checksum.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

from stack.core.resp import encode_command

CORPUS = Path(__file__).with_name("corpus")

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _payload(kind: int, body: bytes) -> bytes:
    from stack.server.storage import dump

    head = dump.MAGIC + bytes([dump.VERSION, kind]) + body
    return head + _U32.pack(zlib.crc32(head))


def _entries(*items: bytes) -> bytes:
    return b"".join(_U32.pack(len(i)) + i for i in items)


def dump_payloads() -> dict[str, bytes]:
    """Whole payloads (checksum included), valid and corrupt."""
    from stack.server.storage import dump
    from stack.server.storage import keyformat as kf
    from stack.server.storage.scores import encode_score

    nan = encode_score(float("nan"))  # NaN as the score encoding stores a double
    negative_nan = encode_score(-float("nan"))
    return {
        "string": dump.encode(kf.TYPE_STRING, b"hello", []),
        "hash": dump.encode(kf.TYPE_HASH, None, [(b"f1", b"v1"), (b"f2", b"v2")]),
        "list": dump.encode(kf.TYPE_LIST, None, [(b"a", b""), (b"a", b""), (b"b", b"")]),
        "set": dump.encode(kf.TYPE_SET, None, [(b"m1", b""), (b"m2", b"")]),
        "zset": dump.encode(
            kf.TYPE_ZSET, None, [(b"a", encode_score(1.5)), (b"b", encode_score(-2.0))]
        ),
        "hash-duplicate-field": _payload(
            kf.TYPE_HASH, _U64.pack(2) + _entries(b"f", b"1", b"f", b"2")
        ),
        "zset-nan-score": _payload(kf.TYPE_ZSET, _U64.pack(1) + _entries(b"m", nan)),
        "zset-negative-nan-score": _payload(
            kf.TYPE_ZSET, _U64.pack(1) + _entries(b"m", negative_nan)
        ),
        "zset-3-byte-score": _payload(kf.TYPE_ZSET, _U64.pack(1) + _entries(b"m", b"abc")),
        "set-count-too-big": _payload(kf.TYPE_SET, _U64.pack(2**40) + _entries(b"m")),
        "list-empty": _payload(kf.TYPE_LIST, _U64.pack(0)),
        "set-trailing-bytes": _payload(kf.TYPE_SET, _U64.pack(1) + _entries(b"m") + b"x"),
        "unknown-type": _payload(9, b"whatever"),
    }


def resp_requests() -> dict[str, bytes]:
    """Request bytes: a pipeline, inline commands and the rows of bad-inputs.md."""
    valid = encode_command([b"SET", b"k", b"v"]) + encode_command([b"GET", b"k"])
    return {
        "pipeline": valid,
        "inline": b"SET k v\r\nGET k\r\n",
        "quoted": b"SET \"k\\x41\" 'v w'\r\n",
        "crlf-in-value": encode_command([b"SET", b"k", b"a\r\nb"]),
        "huge-count": b"*3000000000\r\n",
        "negative-count": b"*-10\r\nPING\r\n",
        "bad-element": b"*1\r\nfoo\r\n",
        "bad-bulk": b"*1\r\n$-10\r\n",
        "no-crlf-after-bulk": b"*1\r\n$4\r\nPINGxx",
        "long-inline": b"x" * 80 + b"\r\n",
        "unbalanced": b'set "k v\r\n',
        "http": b"POST / HTTP/1.1\r\n",
        "empty-lines": b"\r\n\n   \r\n",
    }


def seeds() -> dict[str, dict[str, bytes]]:
    return {
        # The first byte picks the mode (see the targets); 0 = whole, authenticated.
        "resp": {name: b"\x00" + data for name, data in resp_requests().items()}
        | {"split-" + name: b"\x02" + data for name, data in resp_requests().items()},
        "dump": {name: b"\x80" + data for name, data in dump_payloads().items()},
        "commands": {f"bytes-{i}": bytes(range(i, i + 40)) for i in range(0, 200, 20)},
    }


def write(root: Path = CORPUS) -> int:
    count = 0
    for target, items in seeds().items():
        folder = root / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in items.items():
            (folder / name).write_bytes(data)
            count += 1
    return count


if __name__ == "__main__":
    print(f"wrote {write(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)} seeds")
