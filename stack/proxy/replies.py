"""Replies the proxy itself writes: raw RESP bytes, and the splitting of raw backend replies.

Backends' replies travel as the exact bytes they arrived as (the core's ``ReplyParser`` in raw
mode). ``ReplySplitter`` cuts a received chunk into whole replies: the simple ones (``+``,
``-``, ``:``, ``$``) with one ``find`` each, anything else (arrays, maps, RESP3 types) by the
careful parser, which checks every byte and bounds every length.

The proxy's own error texts live here, next to the Redis ones in ``stack/core/errors.py``.
"""

from __future__ import annotations

from stack.core.reply_parser import INCOMPLETE, ReplyParser
from stack.core.resp import ProtocolError, encode_error

from .accel import router as _router

# -- the proxy's own errors (docs/proxy.md, "Errors") --------------------------------------------

CLUSTERDOWN = "CLUSTERDOWN Hash slot not served"
NOT_IN_CLUSTER = "ERR SELECT is not allowed in cluster mode"
SUBSCRIBE_IN_MULTI = "ERR ledis-proxy does not run pub/sub commands inside MULTI"


def unsupported(name: str) -> str:
    return (
        f"ERR '{name}' is not supported by ledis-proxy (a per-node command: "
        "send it to a node directly)"
    )


def backend_down(addr: str, why: str) -> bytes:
    """The reply a client gets for a request its backend could not answer."""
    return encode_error(f"ERR backend {addr} unavailable ({why})")


def slot_moving(slot: int, what: str) -> bytes:
    return encode_error(
        f"ERR ledis-proxy: slot {slot} kept moving ({what}); the command was not run, try again"
    )


def migrate_failed(slot: int, error: bytes) -> bytes:
    text = error[1:].strip().decode("utf-8", "replace")
    return encode_error(f"ERR ledis-proxy: moving a key of slot {slot} failed: {text}")


def transaction_waited(slot: int, seconds: float) -> bytes:
    return encode_error(
        f"ERR ledis-proxy: slot {slot} is still migrating after {seconds:g} s; "
        "the transaction was not run, try again"
    )


# -- splitting replies ---------------------------------------------------------------------------

_LENGTHS = {b"%d" % i: i for i in range(0, 16384)}
_SIMPLE = frozenset(b"+-:")


class ReplySplitter:
    """Whole raw replies out of the bytes a backend sends (``feed`` returns them in order).

    Malformed input raises ProtocolError (drop the connection). With the C router, ``split``
    cuts every canonical reply (aggregates and RESP3 types included) and the start of an
    incomplete one waits in ``rest`` for the next read, up to ``REST_MAX`` bytes; a longer
    incomplete reply (a big value arriving in many reads) or anything unusual goes to the
    careful parser, which takes bytes as they come and names every error. ``errors`` says
    whether the last ``feed`` may have returned an error reply (the C path knows; the Python
    path says so whenever it returned any)."""

    __slots__ = ("errors", "held", "max_bulk", "parser", "rest")

    REST_MAX = 64 * 1024

    def __init__(self, max_bulk: int = 512 * 1024 * 1024) -> None:
        self.parser = ReplyParser(raw=True, max_bulk=max_bulk)
        self.max_bulk = max_bulk
        self.held = 0  # bytes the careful parser holds of replies not complete yet
        self.rest = b""  # the start of an incomplete reply (C path)
        self.errors = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.held:
            self.held += len(data)
            self.parser.feed(data)
            whole = self._careful([])
            self.errors = bool(whole)
            return whole
        if _router is not None:
            return self._feed_c(data)
        out: list[bytes] = []
        append = out.append
        pos = 0
        end = len(data)
        find = data.find
        lengths = _LENGTHS
        while pos < end:
            kind = data[pos]
            nl = find(b"\r\n", pos)
            if nl < 0:
                break
            if kind in _SIMPLE:
                if kind == 58 and not data[pos + 1 : nl].lstrip(b"-").isdigit():
                    break  # let the careful parser name the problem
                append(data[pos : nl + 2])
                pos = nl + 2
                continue
            if kind != 36:
                break
            n = lengths.get(data[pos + 1 : nl])
            if n is None:
                if data[pos + 1 : nl] == b"-1":
                    append(data[pos : nl + 2])
                    pos = nl + 2
                    continue
                break
            stop = nl + 2 + n
            if stop + 2 > end or data[stop : stop + 2] != b"\r\n":
                break
            append(data[pos : stop + 2])
            pos = stop + 2
        if pos < end:
            self._to_careful(data[pos:] if pos else data, out)
        self.errors = bool(out)
        return out

    def _feed_c(self, data: bytes) -> list[bytes]:
        assert _router is not None
        if self.rest:
            data = self.rest + data
            self.rest = b""
        out, pos, bad, errors = _router.split(data, 0, self.max_bulk)
        self.errors = errors > 0
        if pos < len(data):
            if bad or len(data) - pos > self.REST_MAX:
                whole = len(out)
                self._to_careful(data[pos:] if pos else data, out)
                self.errors = self.errors or len(out) > whole
            else:
                self.rest = data[pos:]
        return out

    def _to_careful(self, data: bytes, out: list[bytes]) -> None:
        self.held = len(data)
        self.parser.feed(data)
        self._careful(out)

    def _careful(self, out: list[bytes]) -> list[bytes]:
        """Replies by the core's parser (raw: each is exactly its bytes, so ``held`` says
        whether it is in the middle of one)."""
        parser = self.parser
        while True:
            value = parser.get()
            if value is INCOMPLETE:
                return out
            self.held -= len(value)  # type: ignore[arg-type]
            out.append(value)  # type: ignore[arg-type]


def split_aggregate(raw: bytes) -> list[bytes]:
    """The raw elements of one raw array/set/push reply (a map gives keys and values in turn);
    [] for a nil or empty one."""
    nl = raw.find(b"\r\n")
    if raw[:1] not in (b"*", b"~", b">", b"%") or nl < 0:
        raise ProtocolError(None, f"not an aggregate reply: {raw[:20]!r}")
    count = int(raw[1:nl])
    if count <= 0:
        return []
    splitter = ReplySplitter()
    items = splitter.feed(raw[nl + 2 :])
    expected = count * 2 if raw[:1] == b"%" else count
    if len(items) != expected:
        raise ProtocolError(None, f"aggregate of {expected} gave {len(items)} elements")
    return items


def parse_int(raw: bytes) -> int | None:
    """The value of a raw integer reply, None for anything else."""
    if raw[:1] != b":":
        return None
    try:
        return int(raw[1:-2])
    except ValueError:
        return None
