"""RESP codec without I/O: bytes in, commands out; values in, bytes out (replies from a server
are read by ``reply_parser``).

The request parser enforces the limits and replies of ``shared/reference/bad-inputs.md`` (Redis 7's
``networking.c``): bounded header lines, bounded bulk lengths, tighter limits before AUTH, no
allocation for a count the peer merely claims, and strict CRLF after every bulk. It accepts both
multibulk requests and inline commands (as telnet and ``redis-cli`` send them).

Feeding is O(total bytes): while a large bulk is still arriving, chunks are kept in a list and
joined once enough bytes are present, so a 512 MiB value sent in 64 KiB reads is copied once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

INT_MAX = 2**31 - 1
_CRLF = b"\r\n"


@dataclass(frozen=True)
class Limits:
    """Input limits of one connection (defaults are Redis's)."""

    max_header: int = 64 * 1024  # longest `*`/`$` header or inline line
    max_bulk: int = 512 * 1024 * 1024  # proto-max-bulk-len
    max_query_buffer: int = 1024 * 1024 * 1024  # client-query-buffer-limit
    unauth_max_args: int = 10
    unauth_max_bulk: int = 16 * 1024


class ProtocolError(Exception):
    """Input after which the connection must be closed.

    ``reply`` is the error text to send before closing (without ``-`` and CRLF), or None to
    close silently.
    """

    def __init__(self, reply: str | None, log: str | None = None) -> None:
        super().__init__(reply or log or "protocol error")
        self.reply = reply
        self.log = log or reply


def _small_ints(limit: int) -> dict[bytes, int]:
    return {str(i).encode(): i for i in range(limit)}


# Lengths and counts seen on the hot path are small: a dict lookup replaces validation + int().
_SMALL = _small_ints(10000)
# Whole header lines for the split-based fast path (``*3``, ``$5``).
_FAST_COUNTS = {b"*%d" % i: i for i in range(1, 1025)}
_FAST_LENS = {b"$%d" % i: i for i in range(0, 8193)}


def strict_int(s: bytes) -> int | None:
    """Parse ``s`` as Redis's ``string2ll`` does: optional '-', no '+', spaces or leading zeros,
    at most 19 digits, within a signed 64-bit integer. None when invalid."""
    n = _SMALL.get(s)
    if n is not None:
        return n
    digits = s[1:] if s[:1] == b"-" else s
    if not digits or len(digits) > 19 or not digits.isdigit():
        return None
    if digits[0] == 48:  # leading zero ("0" alone is in _SMALL; "-0" is rejected)
        return None
    value = int(s)
    if value > 2**63 - 1 or value < -(2**63):
        return None
    return value


# scanner(buf, pos, max_commands, max_bulk) -> (commands, new_pos): see RequestParser
Scanner = Callable[[bytes, int, int, int], tuple[list[list[bytes]], int]]


class RequestParser:
    """Turns the bytes a client sends into argument lists (``list[bytes]``).

    ``authenticated`` selects the pre-AUTH limits; the connection flips it after AUTH. Because
    those limits depend on commands executed in between, parse one command at a time
    (``parse(1)``) while not authenticated.

    ``scanner``: a C reader of the plain commands (the server's ``_fastlane.scan``), called as
    ``scanner(buf, pos, max_commands, max_bulk) -> (commands, new_pos)`` once authenticated;
    it takes only well-formed multibulk commands and stops at anything else, which this
    parser then reads (and answers) as without it.
    """

    __slots__ = (
        "_buf",
        "_chunk_bytes",
        "_chunks",
        "_error",
        "_left",
        "_need",
        "_partial",
        "_partial_bytes",
        "_pos",
        "authenticated",
        "limits",
        "scanner",
    )

    def __init__(self, limits: Limits | None = None, scanner: Scanner | None = None) -> None:
        self.limits = limits or Limits()
        self.scanner = scanner
        self.authenticated = True
        self._buf = b""
        self._pos = 0
        self._chunks: list[bytes] = []
        self._chunk_bytes = 0
        self._need = 0  # bytes (from _pos) needed before the command at _pos is whole
        # A multibulk command cut after some of its arguments keeps them here, and the next
        # parse goes on from the first argument not whole (at _pos), as Redis keeps argv and
        # its multibulk length: a command arriving in many reads is parsed once, not again
        # from its start on every read (quadratic: 10 MB in 64 KB reads took seconds).
        self._partial: list[bytes] | None = None
        self._left = 0  # how many arguments _partial is to hold
        self._partial_bytes = 0  # the bytes of the arguments in _partial (buffered() counts them)
        self._error: ProtocolError | None = None

    def feed(self, data: bytes) -> None:
        if not self._chunks and self._pos >= len(self._buf):
            self._buf = data
            self._pos = 0
        else:
            self._chunks.append(data)
            self._chunk_bytes += len(data)

    def empty(self) -> bool:
        """Nothing received is left unconsumed, and no error is pending."""
        return (
            not self._chunks
            and self._pos >= len(self._buf)
            and self._error is None
            and self._partial is None
        )

    def buffered(self) -> int:
        """Bytes received but not yet consumed by a complete command."""
        return len(self._buf) - self._pos + self._chunk_bytes + self._partial_bytes

    def unparsed(self) -> tuple[bytes, int] | None:
        """The buffer and the position of the next command, for a caller that consumes
        commands itself (the server's fast lane); None while an error is pending, a command
        cut between reads is in progress (``_partial``: the parser's own), or the bytes of a
        command known to be incomplete are still arriving (they are joined once)."""
        if (
            self._error is not None
            or self._partial is not None
            or (self._chunks and not self._consolidate())
        ):
            return None
        return self._buf, self._pos

    def consumed(self, pos: int) -> None:
        """The caller of ``unparsed`` used the commands before ``pos``."""
        if pos > self._pos:
            self._need = 0  # it was the need of the command that was at _pos
        if pos >= len(self._buf):
            self._buf = b""
            self._pos = 0
        else:
            self._pos = pos

    def compact(self) -> None:
        """Let go of what was consumed of the buffer (what remains is copied when it is the
        smaller part), so a client that stops mid-command holds only that command."""
        if self._pos >= len(self._buf) and not self._chunks:
            self._buf = b""
            self._pos = 0
        elif self._pos * 2 > len(self._buf):
            self._buf = self._buf[self._pos :]
            self._pos = 0

    def reset(self) -> None:
        self._buf = b""
        self._pos = 0
        self._chunks.clear()
        self._chunk_bytes = 0
        self._need = 0
        self._partial = None
        self._left = 0
        self._partial_bytes = 0
        self._error = None

    def _consolidate(self) -> bool:
        """Join waiting chunks when they may complete a command; False if still too few bytes."""
        if self._chunks:
            if self.buffered() < self._need:
                return False
            self._buf = b"".join([memoryview(self._buf)[self._pos :], *self._chunks])
            self._pos = 0
            self._chunks.clear()
            self._chunk_bytes = 0
        return True

    def parse(self, max_commands: int = 1 << 30) -> list[list[bytes]]:
        """Return up to ``max_commands`` complete commands; raise ProtocolError on bad input.

        Commands before the bad input are returned first (they run, as in Redis); the error
        is raised by the next call, and the connection must then be closed.
        """
        if self._error is not None:
            raise self._error
        if self._pos >= len(self._buf) and not self._chunks:
            return []
        if not self._consolidate():
            return []
        out: list[list[bytes]] = []
        if not self.authenticated or self._partial is not None:
            pass  # one at a time before AUTH; a command cut between reads goes on in _parse
        elif self.scanner is not None:
            out, self._pos = self.scanner(self._buf, self._pos, max_commands, self.limits.max_bulk)
        elif max_commands > 1:
            if self._pos:  # the rest of a chunk whose start was consumed elsewhere
                self._buf = self._buf[self._pos :]
                self._pos = 0
            self._fast_parse(out, max_commands)
        try:
            return self._parse(out, max_commands)
        except ProtocolError as e:
            if not out:
                raise
            self._error = e
            return out

    def _fast_parse(self, out: list[list[bytes]], max_commands: int) -> None:
        """Parse the well-formed prefix of the buffer with a single ``split``.

        A pipelined chunk of ordinary commands becomes a list of tokens in one C call; each
        command's data tokens are one slice, and all declared lengths are compared with the
        actual ones at once at the end. A value containing CRLF makes a data token shorter
        than declared, so any mismatch (or anything unusual: inline commands, big or bad
        headers, incomplete commands) leaves the rest to ``_parse``, which checks every byte.
        """
        buf = self._buf
        if not buf or buf[0] != 42:
            return
        toks = buf.split(b"\r\n")
        ntok = len(toks) - 1  # the last token is whatever follows the final CRLF
        counts = _FAST_COUNTS
        found: list[list[bytes]] = []
        pairs: list[bytes] = []  # every ($N, data) token pair of the commands found
        append = found.append
        extend = pairs.extend
        i = 0
        while i < ntok and max_commands:
            n = counts.get(toks[i])
            if n is None:
                break
            j = i + 1 + 2 * n
            if j > ntok:
                break
            append(toks[i + 2 : j : 2])
            extend(toks[i + 1 : j])
            max_commands -= 1
            i = j
        if not i:
            return
        if list(map(len, pairs[1::2])) != list(map(_FAST_LENS.get, pairs[0::2])):
            return  # some value holds CRLF (or a length is unusual): the careful path decides
        out.extend(found)
        if i == ntok:
            self._pos = len(buf) - len(toks[-1])
        else:
            self._pos = sum(map(len, toks[:i])) + 2 * i

    def _parse(self, out: list[list[bytes]], max_commands: int) -> list[list[bytes]]:
        buf = self._buf
        pos = self._pos
        end = len(buf)
        self._need = 0  # set again below if the command at the end is incomplete
        limits = self.limits
        max_header = limits.max_header
        small = _SMALL
        max_commands -= len(out)
        start_count = len(out)
        if self._partial is not None:  # a command whose first arguments came in earlier reads
            args = self._partial
            p = self._bulks(buf, pos, args, self._left)
            if p < 0:  # still not whole: what came is kept, the rest parsed next time
                self._partial_bytes += ~p - pos
                self._pos = ~p
                return out
            pos = p
            self._partial = None
            self._partial_bytes = 0
            out.append(args)
        while pos < end and len(out) - start_count < max_commands:
            if buf[pos] != 42:  # not '*': an inline command
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if end - pos > max_header:
                        raise ProtocolError("Protocol error: too big inline request")
                    self._need = end - pos + 1
                    break
                if nl - pos > max_header:  # however the bytes arrived (Redis reads 16 KiB)
                    raise ProtocolError("Protocol error: too big inline request")
                line = buf[pos : nl - 1] if nl > pos and buf[nl - 1] == 13 else buf[pos:nl]
                pos = nl + 1
                args = split_args(line)
                if args:
                    out.append(args)
                continue
            nl = buf.find(_CRLF, pos)
            if nl < 0:
                if end - pos > max_header:
                    raise ProtocolError("Protocol error: too big mbulk count string")
                self._need = end - pos + 1
                break
            count = small.get(buf[pos + 1 : nl])
            if count is None:
                count = strict_int(buf[pos + 1 : nl])
                if count is None or count > INT_MAX:
                    raise ProtocolError("Protocol error: invalid multibulk length")
                if count <= 0:
                    pos = nl + 2
                    continue
            elif count == 0:
                pos = nl + 2
                continue
            if not self.authenticated and count > limits.unauth_max_args:
                raise ProtocolError("Protocol error: unauthenticated multibulk length")
            args = []
            p = self._bulks(buf, nl + 2, args, count)
            if p < 0:
                if args:  # resumed from here with the next read: never parsed twice
                    self._partial = args
                    self._left = count
                    self._partial_bytes = ~p - pos
                    pos = ~p
                else:
                    self._need += ~p - pos  # the header is read again with the rest
                break
            out.append(args)
            pos = p
        self._pos = pos
        if pos >= end:
            self._buf = b""
            self._pos = 0
        return out

    def _bulks(self, buf: bytes, p: int, args: list[bytes], count: int) -> int:
        """Read bulk strings from ``p`` into ``args`` until it holds ``count``: the position
        after the last one, or, when the buffer ends first, ``~start`` (negative) of the first
        one not whole (``_need`` then counts from there: what it needs at least)."""
        end = len(buf)
        limits = self.limits
        small = _SMALL
        append = args.append
        for _ in range(count - len(args)):
            if p >= end:
                self._need = 1
                return ~p
            if buf[p] != 36:  # '$'
                raise ProtocolError(f"Protocol error: expected '$', got '{chr(buf[p])}'")
            nl = buf.find(_CRLF, p)
            if nl < 0:
                if end - p > limits.max_header:
                    raise ProtocolError("Protocol error: too big bulk count string")
                self._need = end - p + 1
                return ~p
            n = small.get(buf[p + 1 : nl])
            if n is None:
                n = strict_int(buf[p + 1 : nl])
                if n is None or n < 0 or n > limits.max_bulk:
                    raise ProtocolError("Protocol error: invalid bulk length")
            if not self.authenticated and n > limits.unauth_max_bulk:
                raise ProtocolError("Protocol error: unauthenticated bulk length")
            start = nl + 2
            stop = start + n
            if stop + 2 > end:
                self._need = stop + 2 - p
                return ~p
            if buf[stop] != 13 or buf[stop + 1] != 10:
                raise ProtocolError("Protocol error: bulk string is not followed by CRLF")
            append(buf[start:stop])
            p = stop + 2
        return p


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACE = frozenset(b" \t\n\r\v\f")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class UnbalancedQuotes(ProtocolError):
    def __init__(self) -> None:
        super().__init__("Protocol error: unbalanced quotes in request")


def split_args(line: bytes) -> list[bytes]:
    """Split an inline command the way Redis's ``sdssplitargs`` does (quotes and escapes)."""
    if 34 not in line and 39 not in line:
        return line.split()
    args: list[bytes] = []
    i = 0
    n = len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    raise UnbalancedQuotes()
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == 120
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise UnbalancedQuotes()
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    raise UnbalancedQuotes()
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise UnbalancedQuotes()
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _SPACE:
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


# ---------------------------------------------------------------------------------------------
# Encoding replies


class Raw(bytes):
    """Bytes that are already RESP-encoded (sent as they are)."""

    __slots__ = ()


class Status(str):
    """A simple string reply (``+OK``)."""

    __slots__ = ()


class ReplyError(Exception):
    """An error reply. ``message`` is the whole line without ``-``, e.g. ``ERR syntax error``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Chunks(list[bytes]):
    """A reply already encoded, in pieces that are written out without being joined first
    (long arrays: HGETALL, LRANGE, ZRANGE ...)."""

    __slots__ = ()


class MapChunks(Chunks):
    """Chunks of a map reply (flat key/value pairs): ``*2N`` in RESP2, ``%N`` in RESP3."""

    __slots__ = ()


class SetChunks(Chunks):
    """Chunks of a set reply: ``*N`` in RESP2, ``~N`` in RESP3."""

    __slots__ = ()


def bulk_array(items: Iterable[bytes], kind: type[Chunks] = Chunks) -> Chunks:
    """Encode an array of bulk strings as it is read: one copy of each item, no join."""
    out = kind([b""])
    append = out.append
    for item in items:
        append(b"$%d\r\n%b\r\n" % (len(item), item))
    out[0] = b"*%d\r\n" % (len(out) - 1)
    return out


def encoded_array(body: bytes, count: int, kind: type[Chunks] = Chunks) -> Chunks:
    """An array of ``count`` items whose encoding is ``body`` (read and encoded in one go)."""
    return kind([b"*%d\r\n" % count, body])


def chunks_for_resp3(chunks: Chunks) -> Chunks:
    """The same reply with a RESP3 header when it is a map or a set (the count is the one
    its RESP2 header says: the items may be in fewer pieces)."""
    t = type(chunks)
    if t is MapChunks:
        return Chunks([b"%%%d\r\n" % (int(chunks[0][1:-2]) // 2), *chunks[1:]])
    if t is SetChunks:
        return Chunks([b"~%d\r\n" % int(chunks[0][1:-2]), *chunks[1:]])
    return chunks


OK = Raw(b"+OK\r\n")
NIL = Raw(b"$-1\r\n")
NIL_ARRAY = Raw(b"*-1\r\n")
EMPTY_ARRAY = Raw(b"*0\r\n")
ZERO = Raw(b":0\r\n")
ONE = Raw(b":1\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
PONG = Raw(b"+PONG\r\n")

_INT_CACHE = [Raw(b":%d\r\n" % i) for i in range(-1, 1024)]


def encode_int(n: int) -> bytes:
    if -1 <= n < 1023:
        return _INT_CACHE[n + 1]
    return b":%d\r\n" % n


def encode_bulk(b: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(b), b)


def encode_error(message: str) -> bytes:
    # An error line can never contain CR or LF (Redis replaces them with spaces).
    if "\r" in message or "\n" in message:
        message = message.replace("\r", " ").replace("\n", " ")
    try:  # client bytes echoed in the message come back as they were (errors.echo)
        data = message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = message.encode("utf-8", "replace")
    return b"-" + data + _CRLF


class Map(list):  # type: ignore[type-arg]
    """A map reply, held as a flat [key, value, key, value ...] list: an array in RESP2,
    ``%`` in RESP3."""

    __slots__ = ()


class SetReply(list):  # type: ignore[type-arg]
    """A set reply: an array in RESP2, ``~`` in RESP3."""

    __slots__ = ()


class Push(list):  # type: ignore[type-arg]
    """An out-of-band message (pub/sub): an array in RESP2, ``>`` in RESP3."""

    __slots__ = ()


class Double(float):
    """A double reply: a bulk string in RESP2 (``%.17g``), ``,`` in RESP3."""

    __slots__ = ()


class Verbatim(bytes):
    """A text reply (INFO, CLIENT LIST): a bulk string in RESP2, ``=`` (txt) in RESP3."""

    __slots__ = ()


class Pairs(list):  # type: ignore[type-arg]
    """Pairs (ZRANGE ... WITHSCORES, HRANDFIELD ... WITHVALUES): flat in RESP2, an array of
    2-element arrays in RESP3. Items are tuples; a float second item is a double score."""

    __slots__ = ()


NULL3 = Raw(b"_\r\n")


def encode(value: object, resp3: bool = False) -> bytes:
    """Encode a reply value for a RESP2 (default) or RESP3 client.

    bytes -> bulk, str -> bulk (UTF-8), Status -> simple string, int/bool -> integer,
    float -> bulk in Redis's shortest form, None -> nil, list/tuple -> array, Raw -> as is,
    ReplyError -> error; Map, SetReply, Push, Double, Verbatim and Pairs as their classes say.
    """
    out: list[bytes] = []
    _encode_into(value, out, resp3)
    return out[0] if len(out) == 1 else b"".join(out)


def _encode_into(value: object, out: list[bytes], resp3: bool = False) -> None:
    t = type(value)
    if t is Raw:
        if resp3 and (value is NIL or value is NIL_ARRAY):
            out.append(NULL3)
        else:
            out.append(value)  # type: ignore[arg-type]
    elif t is bytes:
        out.append(b"$%d\r\n%b\r\n" % (len(value), value))  # type: ignore[arg-type, str-format]
    elif t is int:
        out.append(encode_int(value))  # type: ignore[arg-type]
    elif value is None:
        out.append(NULL3 if resp3 else NIL)
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(value))  # type: ignore[arg-type]
        for item in value:  # type: ignore[attr-defined]
            _encode_into(item, out, resp3)
    elif t is Map or t is SetReply or t is Push:
        items: list[object] = value  # type: ignore[assignment]
        if resp3:
            mark = {Map: b"%", SetReply: b"~", Push: b">"}[t]  # type: ignore[index]
            count = len(items) // 2 if t is Map else len(items)
        else:
            mark, count = b"*", len(items)
        out.append(mark + b"%d\r\n" % count)
        for item in items:
            _encode_into(item, out, resp3)
    elif t is Pairs:
        pairs: list[tuple[bytes, object]] = value  # type: ignore[assignment]
        out.append(b"*%d\r\n" % (len(pairs) if resp3 else 2 * len(pairs)))
        for first, second in pairs:
            if resp3:
                out.append(b"*2\r\n")
            _encode_into(first, out, resp3)
            _encode_into(Double(second) if type(second) is float else second, out, resp3)
    elif t is Double:
        text = format_score17(value)  # type: ignore[arg-type]
        out.append(b",%b\r\n" % text if resp3 else encode_bulk(text))
    elif t is Verbatim:
        data: bytes = value  # type: ignore[assignment]
        out.append(b"=%d\r\ntxt:%b\r\n" % (len(data) + 4, data) if resp3 else encode_bulk(data))
    elif t is Status:
        out.append(b"+" + value.encode() + _CRLF)  # type: ignore[attr-defined]
    elif t is str:
        out.append(encode_bulk(value.encode()))  # type: ignore[attr-defined]
    elif t is bool:
        out.append(ONE if value else ZERO)
    elif t is float:
        out.append(encode_bulk(format_double(value).encode()))  # type: ignore[arg-type]
    elif isinstance(value, ReplyError):
        out.append(encode_error(value.message))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(encode_bulk(bytes(value)))
    else:
        raise TypeError(f"cannot encode {t.__name__} as RESP")


def format_score17(value: float) -> bytes:
    """A double as Redis 7.0's addReplyDouble prints it (``%.17g``, ``inf``, ``-inf``)."""
    if value != value:
        return b"nan"
    if value in (float("inf"), float("-inf")):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % (value + 0.0)


def format_double(value: float) -> str:
    """A double as Redis prints it in replies (``%.17g`` shortest round-trip, ``inf``)."""
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e17:
        return str(int(value))
    return repr(value)


def encode_command(args: Iterable[bytes | str | int]) -> bytes:
    """Encode a command as a multibulk request (for clients, links and tests)."""
    parts: list[bytes] = []
    items = list(args)
    parts.append(b"*%d\r\n" % len(items))
    for a in items:
        data = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)
