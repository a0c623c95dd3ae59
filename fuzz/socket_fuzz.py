"""Valid and hostile traffic against a live ledis-server, checked after every round.

Each round opens a few connections and sends, in pieces of random sizes, a mix of commands of
the table with fuzzed arguments, protocol garbage (bad headers, huge claimed counts and lengths,
truncated frames, inline junk, non-UTF-8 names, HTTP) and abrupt closes (RST mid-frame). After
the round:

- the server process is alive (else: a crash);
- a fresh probe connection gets ``+PONG`` within the deadline (else: a hang);
- a bystander connection opened at the start still answers and its key is intact;
- the canary dataset in database 15 has the same ``DEBUG DIGEST DB 15`` as before;
- the server's RSS is under the bound.

The generated traffic never selects database 15 nor runs commands that cross databases, stop,
pause or reconfigure the server, so any change to the canary is a bug.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from stack.core.resp import encode_command

from .data import Stream
from .targets import SKIPPED, CommandMaker, resp_value_end

CANARY_DB = b"15"
BYSTANDER_DB = b"14"  # its own database: fuzzed FLUSHDB / DEL in database 0 cannot reach it
# On a live server, also keep away from what crosses databases or changes the server itself.
LIVE_SKIPPED = SKIPPED | {
    "select",
    "swapdb",
    "move",
    "copy",
    "flushall",
    "migrate",
    "config|resetstat",
    "client|no-evict",
    "latency|reset",
    "slowlog|reset",
}

HOSTILE = (
    b"*3000000000\r\n",
    b"*-10\r\n",
    b"*1\r\n$2000000000\r\n",
    b"*1\r\n$-10\r\n",
    b"*1\r\nfoo\r\n",
    b"*1\r\n$4\r\nPINGxx",
    b"*1000000\r\n$500000000\r\n",
    b"*2\r\n$3\r\nGET\r\n$100\r\nshort",
    b"*" + b"9" * 70000,
    b"*1\r\n$" + b"9" * 70000,
    b"x" * 70000 + b"\r\n",
    b'set "k v\r\n',
    b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\xff\xfe\xfd a b\r\n",
    b"\r\n\r\n\n",
    b"*2\r\n$4\r\nECHO\r\n$5\r\n\x00\x01\x02\x03\x04\r\n",
)


@dataclass
class Report:
    rounds: int = 0
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    max_rss: int = 0
    findings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"socket: {self.rounds} rounds, {self.inputs} inputs, {self.crashes} crashes, "
            f"{self.hangs} hangs, max RSS {self.max_rss / 2**20:.0f} MiB"
        )


class Conn:
    """A plain blocking socket with a deadline per call."""

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def call(self, *args: bytes | str) -> bytes:
        self.sock.sendall(encode_command(args))
        return self.reply()

    def reply(self) -> bytes:
        while True:
            with contextlib.suppress(ValueError):
                end = resp_value_end(self.buf, 0, 0)
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError("closed")
            self.buf += data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class SocketFuzzer:
    skipped: frozenset[str] = frozenset(LIVE_SKIPPED)  # commands the traffic leaves out
    bystander_key = "bystander"

    def __init__(
        self,
        port: int,
        pid: int,
        seed: int = 0,
        rss_limit: int = 3 << 30,  # a 512 MiB value (SETBIT/SETRANGE at the edge) is legal
        deadline: float = 10.0,
        recover: float = 300.0,
    ) -> None:
        self.port = port
        self.pid = pid
        self.rng = random.Random(seed)
        self.rss_limit = rss_limit
        self.deadline = deadline
        self.recover = recover
        self.maker = CommandMaker(self.skipped)
        self.report = Report()
        self.digest = b""
        self.bystander: Conn | None = None
        self.last_round: list[bytes] = []

    # -- set-up and checks -----------------------------------------------------------------

    def setup(self) -> None:
        c = Conn(self.port, self.deadline)
        assert c.call("SELECT", CANARY_DB) == b"+OK\r\n"
        for i in range(50):
            c.call("SET", f"canary:s:{i}", f"value {i}")
            c.call("HSET", "canary:h", f"f{i}", str(i))
            c.call("RPUSH", "canary:l", str(i))
            c.call("SADD", "canary:set", str(i))
            c.call("ZADD", "canary:z", str(i / 3), f"m{i}")
        c.call("PEXPIRE", "canary:s:7", "100000000")
        self.digest = c.call("DEBUG", "DIGEST", "DB", CANARY_DB)
        c.close()
        self.bystander = self._bystander()

    def _bystander(self) -> Conn:
        c = Conn(self.port, self.deadline)
        assert c.call("SELECT", BYSTANDER_DB) == b"+OK\r\n"
        assert c.call("SET", "bystander", "intact") == b"+OK\r\n"
        return c

    def check(self) -> bool:
        """True when the server is healthy; records what is wrong otherwise."""
        r = self.report
        if not Path(f"/proc/{self.pid}").exists() or _zombie(self.pid):
            r.crashes += 1
            self._finding("server died")
            return False
        try:
            pong, digest = self._probe()
        except (OSError, ConnectionError) as e:
            r.hangs += 1
            self._finding(f"probe got no answer within {self.deadline}s: {e}")
            if not self._recovered():
                return False
            pong, digest = self._probe()
        if pong != b"+PONG\r\n":
            self._finding(f"probe PING answered {pong!r}")
        if digest != self.digest:
            self._finding(f"canary digest changed: {self.digest!r} -> {digest!r}")
            self.digest = digest
        assert self.bystander is not None
        try:
            kept = self.bystander.call("GET", self.bystander_key)
        except (OSError, ConnectionError) as e:
            kept = repr(e).encode()
        if kept != b"$6\r\nintact\r\n":
            self._finding(f"bystander disturbed: {kept!r}")
            self.bystander.close()
            self.bystander = self._bystander()
        size = rss(self.pid)
        r.max_rss = max(r.max_rss, size)
        if size > self.rss_limit:
            self._finding(f"RSS {size} over the bound {self.rss_limit}")
        return True

    def _probe(self) -> tuple[bytes, bytes]:
        probe = Conn(self.port, self.deadline)
        try:
            return probe.call("PING"), probe.call("DEBUG", "DIGEST", "DB", CANARY_DB)
        finally:
            probe.close()

    def _recovered(self) -> bool:
        """After a hang, wait up to ``recover`` seconds for the server to answer again."""
        end = time.monotonic() + self.recover
        while time.monotonic() < end:
            if not Path(f"/proc/{self.pid}").exists() or _zombie(self.pid):
                self.report.crashes += 1
                self._finding("server died")
                return False
            with contextlib.suppress(OSError, ConnectionError):
                self._probe()
                self._finding(
                    f"answered again after {self.recover - (end - time.monotonic()):.0f}s"
                )
                return True
        self._finding(f"still no answer after {self.recover}s")
        return False

    def _finding(self, what: str) -> None:
        if len(self.report.findings) >= 20:
            self.report.findings.append(f"round {self.report.rounds}: {what}")
            return
        sent = b" | ".join(m[:60] for m in self.last_round[-6:])
        self.report.findings.append(f"round {self.report.rounds}: {what}; last sent: {sent!r}")

    # -- traffic ------------------------------------------------------------------------------

    def message(self) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.6:
            s = Stream(rng.randbytes(64))
            args = self.maker.make(s)
            if rng.random() < 0.2:  # inline form
                return (
                    b" ".join(a for a in args if a and not any(ch in a for ch in b" \r\n\"'"))
                    + b"\r\n"
                )
            return encode_command(args)
        if kind < 0.85:
            return rng.choice(HOSTILE)
        if kind < 0.95:
            data = bytearray(encode_command(self.maker.make(Stream(rng.randbytes(64)))))
            for _ in range(rng.randint(1, 4)):  # a few flipped bytes in a valid frame
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            return bytes(data)
        return rng.randbytes(rng.randint(1, 200))

    def round(self, connections: int = 4, messages: int = 20) -> None:
        rng = self.rng
        socks: list[socket.socket] = []
        self.last_round = []
        for _ in range(connections):
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.deadline)
            except OSError as e:
                self._finding(f"cannot connect: {e}")
                continue
            sock.setblocking(False)
            socks.append(sock)
        for _ in range(messages):
            if not socks:
                break
            sock = rng.choice(socks)
            data = self.message()
            self.last_round.append(data)
            self.report.inputs += 1
            pos = 0
            while pos < len(data):  # pieces of random sizes, down to one byte
                step = rng.choice((1, 7, 512, 65536, len(data)))
                try:
                    pos += sock.send(data[pos : pos + step])
                except BlockingIOError:
                    _drain(sock)
                    time.sleep(0.001)
                except OSError:
                    socks.remove(sock)
                    break
            with contextlib.suppress(OSError):
                _drain(sock)
        for sock in socks:
            if rng.random() < 0.3:  # reset with whatever is half sent
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.close()
        self.report.rounds += 1

    def run(self, seconds: float) -> Report:
        end = time.monotonic() + seconds
        self.setup()
        while time.monotonic() < end:
            self.round()
            if not self.check():
                break
        if self.bystander is not None:
            self.bystander.close()
        return self.report


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        while sock.recv(1 << 16):
            pass


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
