"""A raw RESP client for tests: sends exact bytes and returns exact reply bytes."""

from __future__ import annotations

import socket

from stack.core.resp import encode_command


def reply_end(buf: bytes, pos: int = 0) -> int:
    """The index just past one complete reply starting at ``pos``, or -1 if incomplete."""
    if pos >= len(buf):
        return -1
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return -1
    kind = buf[pos : pos + 1]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return nl + 2
    n = int(buf[pos + 1 : nl])
    if kind in (b"$", b"=", b"!"):
        if n < 0:
            return nl + 2
        end = nl + 2 + n + 2
        return end if end <= len(buf) else -1
    if kind in (b"*", b"%", b"~", b">"):
        count = n * 2 if kind == b"%" else n
        p = nl + 2
        for _ in range(max(count, 0)):
            p = reply_end(buf, p)
            if p < 0:
                return -1
        return p
    raise ValueError(f"unexpected reply type {kind!r}")


class RawClient:
    def __init__(self, port: int | None = None, unix: str | None = None, timeout: float = 30):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port or 0), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> bytes:
        while True:
            end = reply_end(self.buf)
            if end >= 0:
                reply, self.buf = self.buf[:end], self.buf[end:]
                return reply
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed by server; buffered {self.buf!r}")
            self.buf += chunk

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(encode_command(args))
        return self.read_reply()

    def read_until_closed(self, limit: float = 10) -> tuple[bytes, bool]:
        """Everything the server sends until it closes (True) or goes quiet (False)."""
        self.sock.settimeout(limit)
        data = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return data, True
                data += chunk
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True

    def quiet_read(self, wait: float = 0.3) -> bytes:
        """What the server sends within ``wait`` seconds (for 'no reply' checks)."""
        data, _closed = self.read_until_closed(wait)
        return data

    def close(self) -> None:
        self.sock.close()


def parse_reply(raw: bytes) -> object:
    """Decode reply bytes into Python values (errors become ``ReplyErrorValue``)."""
    import hiredis

    reader = hiredis.Reader(replyError=ReplyErrorValue)
    reader.feed(raw)
    return reader.gets()


class ReplyErrorValue(Exception):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplyErrorValue) and self.args == other.args

    def __hash__(self) -> int:
        return hash(self.args)
