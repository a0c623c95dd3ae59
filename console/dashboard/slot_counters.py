"""A proxy's per-slot operation counters (``PROXY SLOTSTATS``), read on a connection of their
own.

The reply is up to 16384 pairs ``[[slot, ops], ...]``. Through the RESP client's parser that
is about 49,000 values made one by one in Python, 35-75 ms per proxy per poll on the loop the
screen is drawn from. Its shape is fixed (``*N``, then ``*2 :slot :ops`` N times), so here it
is read as bytes until all its lines are in (counted with ``bytes.count``) and cut with one
``split``: 2-6 ms. Anything that is not that shape is an error, never a guess; the reply is
bounded (``MAX_REPLY_BYTES``, at most every slot once).
"""

from __future__ import annotations

import asyncio
import contextlib

from stack.cluster.model import parse_addr
from stack.core.slots import SLOT_COUNT

REQUEST = b"*2\r\n$5\r\nPROXY\r\n$9\r\nSLOTSTATS\r\n"
MAX_REPLY_BYTES = SLOT_COUNT * 64  # "*2\r\n:16383\r\n:<20 digits>\r\n" is under 40 a pair


class SlotStatsError(Exception):
    pass


def _int_line(line: bytes, prefix: bytes) -> int:
    """``:123`` -> 123 (digits only: slots, counts and the pair count are never negative)."""
    if not line.startswith(prefix) or not line[1:].isdigit() or len(line) > 24:
        raise SlotStatsError(f"not a PROXY SLOTSTATS reply: {line[:40]!r}")
    return int(line[1:])


def _column(values: list[bytes]) -> list[int]:
    """``[b":5", b":10"]`` -> [5, 10], checked with a few whole-column byte operations (the
    per-value Python work is one ``int``)."""
    joined = b"\n".join(values)
    if values and (
        not joined.startswith(b":")
        or joined.count(b":") != len(values)
        or not joined[1:].replace(b"\n:", b"").isdigit()
    ):
        raise SlotStatsError("not a PROXY SLOTSTATS reply: integers expected")
    try:
        return [int(v[1:]) for v in values]
    except ValueError:  # ":" alone
        raise SlotStatsError("not a PROXY SLOTSTATS reply: integers expected") from None


def parse_reply(data: bytes) -> dict[int, int]:
    """A whole PROXY SLOTSTATS reply (RESP2 bytes) -> {slot: ops}."""
    lines = data.split(b"\r\n")
    count = _int_line(lines[0], b"*")
    if count > SLOT_COUNT or len(lines) != 3 * count + 2 or lines[-1]:
        raise SlotStatsError(f"not a PROXY SLOTSTATS reply of {count} pairs")
    if lines[1 : 3 * count : 3].count(b"*2") != count:
        raise SlotStatsError("not a PROXY SLOTSTATS reply: pairs expected")
    slots = _column(lines[2 : 3 * count + 1 : 3])
    out = dict(zip(slots, _column(lines[3 : 3 * count + 2 : 3]), strict=True))
    if len(out) != count or (slots and max(slots) >= SLOT_COUNT):
        raise SlotStatsError("not a PROXY SLOTSTATS reply: a slot twice or out of range")
    return out


class SlotCounterLink:
    """One kept connection to one proxy for its counters; a failed read closes it (its state
    is unknown) and the next read connects again."""

    def __init__(self, addr: str, password: str | None, timeout: float) -> None:
        self.addr = addr
        self.password = password
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = parse_addr(self.addr)
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_REPLY_BYTES)
        if self.password:
            pw = self.password.encode()
            writer.write(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw))
            line = await reader.readline()
            if not line.startswith(b"+"):
                writer.close()
                raise SlotStatsError(line.decode("utf-8", "replace").strip())
        return reader, writer

    async def _read(self) -> dict[int, int]:
        if self._streams is None:
            self._streams = await self._connect()
        reader, writer = self._streams
        writer.write(REQUEST)
        head = await reader.readline()
        if head.startswith(b"-"):
            raise SlotStatsError(head.decode("utf-8", "replace").strip())
        count = _int_line(head.rstrip(b"\r\n"), b"*")
        if count > SLOT_COUNT:
            raise SlotStatsError(f"PROXY SLOTSTATS of {count} pairs")
        chunks = [head]
        size, lines, last = len(head), 0, b""
        while lines < 3 * count:
            chunk = await reader.read(1 << 16)
            if not chunk:
                raise SlotStatsError("connection closed by the proxy")
            lines += chunk.count(b"\r\n") + (last == b"\r" and chunk[:1] == b"\n")
            last = chunk[-1:]
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise SlotStatsError(f"PROXY SLOTSTATS reply over {MAX_REPLY_BYTES} bytes")
            chunks.append(chunk)
        return parse_reply(b"".join(chunks))

    async def read(self) -> dict[int, int]:
        """The counters now (raises on a timeout, an error reply or a reply of another
        shape)."""
        try:
            return await asyncio.wait_for(self._read(), self.timeout * 2)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
