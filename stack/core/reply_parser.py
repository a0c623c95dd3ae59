"""Replies from a RESP server, parsed incrementally: bytes in, values out, no I/O (h11's shape).

``feed(data)`` hands over bytes as they arrive; ``get()`` returns the next complete reply or
``INCOMPLETE``. Every byte is examined once: a nested aggregate that is still arriving is kept
as a stack of partly filled frames and resumed where it stopped, so an 80k-element array read in
16 KB pieces costs what it costs read whole. While a long bulk string is arriving its pieces are
kept in a list and joined once, when enough bytes are there.

Both RESP2 and RESP3 are read, every type: ``+ - : $ *`` and ``_ , # ( ! = % ~ > |``, streamed
strings (``$?`` with ``;`` parts) and streamed aggregates (``*?`` ... ``.``).

Values keep their RESP type: Status (``+``), ErrorReply (``-`` and ``!``), int (``:``),
BigNumber (``(``), bytes (``$``), None (``$-1``, ``*-1``, ``_``), list (``*``), Map (``%``, a
flat key/value list), SetReply (``~``), Push (``>``), Double (``,``), bool (``#``), Verbatim
(``=``, without its format prefix). Attributes (``|``) are not replies: those met while reading
a reply are in ``attributes`` after it is returned.

With ``raw=True`` the parser checks the same structure but returns each reply as the exact
bytes it arrived as (attributes included), for a proxy that forwards replies without
re-encoding them.

Lengths and counts are bounded before any work, like requests: a header line longer than
``max_line``, a bulk longer than ``max_bulk``, a count above ``max_count``, nesting deeper than
``max_depth`` or anything malformed raises ProtocolError (the connection must be dropped).
Nothing is allocated for a count the server merely claims.
"""

from __future__ import annotations

from collections.abc import Iterator

from .resp import Double, Map, ProtocolError, Push, SetReply, Status, Verbatim, strict_int


class ErrorReply(str):
    """An error reply received from a server (the text without ``-``)."""

    __slots__ = ()

    @property
    def code(self) -> str:
        """The first word: ``ERR``, ``WRONGTYPE``, ``MOVED`` ..."""
        return self.split(" ", 1)[0]


class BigNumber(int):
    """A RESP3 big number (``(``)."""

    __slots__ = ()


class _Incomplete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INCOMPLETE"


INCOMPLETE: object = _Incomplete()

_CRLF = b"\r\n"
_STREAMED = -2  # frame count of a streamed aggregate (ends with ".")
_STREAMED_STRING = -3  # frame count of a streamed string (ends with ";0")
_AGGREGATE = {42: list, 37: Map, 126: SetReply, 62: Push, 124: Map}  # * % ~ > |
_ATTRIBUTE = 124


class _Frame:
    """An aggregate still being read: its items so far and how many are still to come."""

    __slots__ = ("items", "kind", "left")

    def __init__(self, kind: int, left: int) -> None:
        self.kind = kind
        self.left = left
        self.items: list[object] = []


class ReplyParser:
    __slots__ = (
        "_attrs",
        "_buf",
        "_chunk_bytes",
        "_chunks",
        "_need",
        "_pos",
        "_raw_parts",
        "_scan",
        "_stack",
        "_start",
        "attributes",
        "headers",
        "max_bulk",
        "max_count",
        "max_depth",
        "max_line",
        "raw",
    )

    def __init__(
        self,
        *,
        raw: bool = False,
        max_bulk: int = 512 * 1024 * 1024,
        max_count: int = 2**31 - 1,
        max_depth: int = 64,
        max_line: int = 64 * 1024,
    ) -> None:
        self.raw = raw
        self.max_bulk = max_bulk
        self.max_count = max_count
        self.max_depth = max_depth
        self.max_line = max_line
        self._buf = b""
        self._pos = 0  # next byte to parse
        self._start = 0  # (raw) where the current top-level reply starts in _buf
        self._raw_parts: list[bytes] = []  # (raw) bytes of the current reply already dropped
        self._chunks: list[bytes] = []  # bytes fed while waiting for _need bytes
        self._chunk_bytes = 0
        self._need = 0  # bytes from _pos needed before parsing can go on
        self._scan = 0  # a header line's CRLF is not before this position
        self._stack: list[_Frame] = []
        self._attrs: list[Map] = []
        self.attributes: list[Map] = []  # attributes met while reading the last reply
        self.headers = 0  # type bytes parsed so far: a count of the work done

    # -- input ----------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._chunks or self.buffered() + len(data) < self._need:
            self._chunks.append(bytes(data))
            self._chunk_bytes += len(data)
            return
        self._compact()
        self._buf = self._buf + data if self._buf else bytes(data)

    def buffered(self) -> int:
        """Bytes received and not yet returned as part of a complete reply."""
        return len(self._buf) - self._pos + self._chunk_bytes

    def _compact(self) -> None:
        """Drop the bytes before the parse position (kept aside for the raw reply)."""
        pos = self._pos
        if not pos:
            return
        if self.raw and pos > self._start:
            self._raw_parts.append(self._buf[self._start : pos])
        self._buf = self._buf[pos:]
        self._scan = max(0, self._scan - pos)
        self._pos = self._start = 0

    def _join(self) -> bool:
        if self.buffered() < self._need:
            return False
        self._compact()
        self._buf = b"".join([self._buf, *self._chunks])
        self._chunks.clear()
        self._chunk_bytes = 0
        return True

    # -- output ---------------------------------------------------------------------------

    def get(self) -> object:
        """The next complete reply, or INCOMPLETE until more bytes are fed."""
        if self._chunks and not self._join():
            return INCOMPLETE
        return self._parse()

    def __iter__(self) -> Iterator[object]:
        """Every complete reply buffered now."""
        while (value := self.get()) is not INCOMPLETE:
            yield value

    def _fail(self, why: str) -> ProtocolError:
        return ProtocolError(None, f"bad reply from server: {why}")

    def _parse(self) -> object:  # one loop, one branch per type byte
        buf = self._buf
        pos = self._pos
        end = len(buf)
        stack = self._stack
        raw = self.raw
        headers = 0
        value: object = None
        try:
            while True:
                if pos >= end:
                    return self._wait(pos, 1)
                kind = buf[pos]
                nl = buf.find(_CRLF, max(pos, self._scan))
                if nl < 0:
                    if end - pos > self.max_line:
                        raise self._fail("header line too long")
                    self._scan = end - 1
                    return self._wait(pos, end - pos + 1)
                self._scan = 0
                headers += 1
                nxt = nl + 2
                if kind == 36:  # $ bulk string
                    line = buf[pos + 1 : nl]
                    n = strict_int(line)
                    if n is None:
                        if line == b"?":
                            stack.append(_Frame(36, _STREAMED_STRING))
                            self._check_depth()
                            pos = nxt
                            continue
                        raise self._fail(f"bulk length {line[:40]!r}")
                    if n < 0:
                        if n != -1:
                            raise self._fail(f"bulk length {n}")
                        value = None
                    else:
                        if n > self.max_bulk:
                            raise self._fail(f"bulk length {n} over the limit")
                        stop = nxt + n
                        if stop + 2 > end:
                            headers -= 1  # the header is read again with the data
                            return self._wait(pos, stop + 2 - pos)
                        if buf[stop] != 13 or buf[stop + 1] != 10:
                            raise self._fail("bulk string not followed by CRLF")
                        value = None if raw else buf[nxt:stop]
                        nxt = stop + 2
                elif kind in _AGGREGATE:
                    line = buf[pos + 1 : nl]
                    n = strict_int(line)
                    if n is None:
                        if line != b"?" or kind == _ATTRIBUTE:
                            raise self._fail(f"aggregate length {line[:40]!r}")
                        n = _STREAMED
                    elif n < 0:
                        if n != -1 or kind != 42:
                            raise self._fail(f"aggregate length {n}")
                        value = None
                        n = None  # a nil array: a value, not a frame
                    elif n > self.max_count:
                        raise self._fail(f"aggregate length {n} over the limit")
                    if n is not None:
                        if kind in (37, 124) and n > 0:
                            n *= 2
                        if n == 0:
                            value = _empty(kind, raw)
                        else:
                            stack.append(_Frame(kind, n))
                            self._check_depth()
                            pos = nxt
                            continue
                elif kind == 58:  # : integer
                    value = strict_int(buf[pos + 1 : nl])
                    if value is None:
                        raise self._fail(f"integer {buf[pos + 1 : nl][:40]!r}")
                elif kind == 43:  # + simple string
                    value = None if raw else Status(buf[pos + 1 : nl].decode("utf-8", "replace"))
                elif kind == 45:  # - error
                    value = (
                        None if raw else ErrorReply(buf[pos + 1 : nl].decode("utf-8", "replace"))
                    )
                elif kind == 95:  # _ null
                    if nl != pos + 1:
                        raise self._fail("null with data")
                    value = None
                elif kind == 44:  # , double
                    value = _double(buf[pos + 1 : nl])
                    if value is None:
                        raise self._fail(f"double {buf[pos + 1 : nl][:40]!r}")
                elif kind == 35:  # # boolean
                    line = buf[pos + 1 : nl]
                    if line not in (b"t", b"f"):
                        raise self._fail(f"boolean {line[:40]!r}")
                    value = line == b"t"
                elif kind == 40:  # ( big number
                    line = buf[pos + 1 : nl]
                    digits = line[1:] if line[:1] == b"-" else line
                    if not digits.isdigit() or len(digits) > self.max_line:
                        raise self._fail(f"big number {line[:40]!r}")
                    value = BigNumber(line)
                elif kind in (33, 61):  # ! blob error, = verbatim string
                    n = strict_int(buf[pos + 1 : nl])
                    if n is None or n < 0 or n > self.max_bulk:
                        raise self._fail(f"blob length {buf[pos + 1 : nl][:40]!r}")
                    stop = nxt + n
                    if stop + 2 > end:
                        headers -= 1
                        return self._wait(pos, stop + 2 - pos)
                    if buf[stop] != 13 or buf[stop + 1] != 10:
                        raise self._fail("blob not followed by CRLF")
                    data = buf[nxt:stop]
                    if kind == 61:
                        if n < 4 or data[3] != 58:  # "txt:"
                            raise self._fail("verbatim string without a format")
                        value = None if raw else Verbatim(data[4:])
                    else:
                        value = None if raw else ErrorReply(data.decode("utf-8", "replace"))
                    nxt = stop + 2
                elif kind == 59:  # ; a part of a streamed string
                    if not stack or stack[-1].left != _STREAMED_STRING:
                        raise self._fail("string part outside a streamed string")
                    n = strict_int(buf[pos + 1 : nl])
                    if n is None or n < 0 or n > self.max_bulk:
                        raise self._fail(f"string part length {buf[pos + 1 : nl][:40]!r}")
                    frame = stack[-1]
                    if n == 0:
                        stack.pop()
                        value = None if raw else b"".join(frame.items)  # type: ignore[arg-type]
                    else:
                        stop = nxt + n
                        if stop + 2 > end:
                            headers -= 1
                            return self._wait(pos, stop + 2 - pos)
                        if buf[stop] != 13 or buf[stop + 1] != 10:
                            raise self._fail("string part not followed by CRLF")
                        if not raw:
                            frame.items.append(buf[nxt:stop])
                        pos = stop + 2
                        continue
                elif kind == 46:  # . end of a streamed aggregate
                    if nl != pos + 1 or not stack or stack[-1].left != _STREAMED:
                        raise self._fail("end marker outside a streamed aggregate")
                    frame = stack.pop()
                    if frame.kind in (37, 124) and len(frame.items) % 2:
                        raise self._fail("streamed map with a key and no value")
                    value = _finish(frame, raw)
                    if frame.kind == _ATTRIBUTE:  # pragma: no cover - refused at its header
                        raise self._fail("streamed attribute")
                else:
                    raise self._fail(f"unexpected type byte {chr(kind)!r}")
                pos = nxt
                # A value is complete: it fills its parent, which may complete in turn.
                while stack:
                    frame = stack[-1]
                    if frame.left == _STREAMED_STRING:
                        raise self._fail("streamed string holds a value that is not a part")
                    if not raw:
                        frame.items.append(value)
                    elif frame.left == _STREAMED:
                        frame.items.append(None)  # only counted (map pairs)
                    if frame.left == _STREAMED:
                        break
                    frame.left -= 1
                    if frame.left:
                        break
                    stack.pop()
                    if frame.kind == _ATTRIBUTE:
                        if not raw:
                            self._attrs.append(Map(frame.items))
                        value = _NO_VALUE
                        break
                    value = _finish(frame, raw)
                else:
                    if value is _NO_VALUE:
                        continue
                    return self._complete(value, pos)
        finally:
            self.headers += headers

    def _wait(self, pos: int, need: int) -> object:
        self._pos = pos
        self._need = need
        return INCOMPLETE

    def _complete(self, value: object, pos: int) -> object:
        self._pos = pos
        self._need = 0
        self.attributes = self._attrs
        self._attrs = []
        if self.raw:
            whole = self._buf[self._start : pos]
            if self._raw_parts:
                whole = b"".join([*self._raw_parts, whole])
                self._raw_parts.clear()
            self._start = pos
            value = whole
        if pos >= len(self._buf) and not self._chunks:
            self._buf = b""
            self._pos = self._start = 0
        return value

    def _check_depth(self) -> None:
        if len(self._stack) > self.max_depth:
            raise self._fail("replies nested too deep")


_NO_VALUE = object()  # an attribute was read: nothing to hand to the parent


def _empty(kind: int, raw: bool) -> object:
    if raw:
        return None
    return _AGGREGATE[kind]()


def _finish(frame: _Frame, raw: bool) -> object:
    if raw:
        return None
    if frame.kind == 36:
        return b"".join(frame.items)  # type: ignore[arg-type]
    cls = _AGGREGATE[frame.kind]
    return frame.items if cls is list else cls(frame.items)


_SPECIAL_DOUBLES = {b"inf": "inf", b"+inf": "inf", b"-inf": "-inf", b"nan": "nan"}
_DOUBLE_BYTES = b"0123456789+-.eE"


def _double(line: bytes) -> Double | None:
    special = _SPECIAL_DOUBLES.get(line)
    if special is not None:
        return Double(special)
    if not line or len(line) > 400 or line.translate(None, _DOUBLE_BYTES):
        return None
    try:
        return Double(line)
    except ValueError:
        return None
