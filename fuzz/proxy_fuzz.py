"""The socket fuzzer aimed at ledis-proxy: the same valid and hostile traffic, sent to a proxy
in front of a cluster, checked after every round (``SocketFuzzer``'s checks, adapted):

- the proxy and every server behind it are alive (else: a crash);
- a fresh probe connection gets ``+PONG`` through the proxy within the deadline (else: a hang);
- a bystander connection opened at the start still answers and its key is intact;
- the canary keys (every type, in both groups) DUMP to the same payloads as before;
- the proxy's RSS is under the bound.

A proxy serves database 0 only, so the canary and the bystander live there under hash tags the
generated traffic never names; commands that empty or reconfigure every group (FLUSHDB,
FLUSHALL, CONFIG SET...) are left out as they are for a live server.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .socket_fuzz import LIVE_SKIPPED, Conn, SocketFuzzer, _zombie

# two tags that hash to different groups of an evenly split two-group cluster
CANARY_TAGS = ("canary-a7", "canary-2")  # slots 5663 and 11695
BYSTANDER = "{bystander-x9}"


def canary_keys(tag: str) -> list[str]:
    return [f"{{{tag}}}:{kind}" for kind in ("s", "h", "l", "set", "z")]


class ProxyFuzzer(SocketFuzzer):
    skipped = frozenset(LIVE_SKIPPED | {"flushdb", "flushall", "select"})
    bystander_key = BYSTANDER

    def __init__(self, port: int, pid: int, backends: list[int], seed: int = 0) -> None:
        super().__init__(port, pid, seed=seed)
        self.backends = backends

    def setup(self) -> None:
        c = Conn(self.port, self.deadline)
        for tag in CANARY_TAGS:
            s, h, lst, st, z = canary_keys(tag)
            for i in range(50):
                c.call("HSET", h, f"f{i}", str(i))
                c.call("RPUSH", lst, str(i))
                c.call("SADD", st, str(i))
                c.call("ZADD", z, str(i / 3), f"m{i}")
            c.call("SET", s, "canary", "PX", "100000000")
        self.digest = self._digest(c)
        c.close()
        self.bystander = self._bystander()

    def _digest(self, c: Conn) -> bytes:
        h = hashlib.sha1()
        for tag in CANARY_TAGS:
            for key in canary_keys(tag):
                h.update(c.call("DUMP", key))
        return h.hexdigest().encode()

    def _bystander(self) -> Conn:
        c = Conn(self.port, self.deadline)
        assert c.call("SET", BYSTANDER, "intact") == b"+OK\r\n"
        return c

    def _probe(self) -> tuple[bytes, bytes]:
        probe = Conn(self.port, self.deadline)
        try:
            return probe.call("PING"), self._digest(probe)
        finally:
            probe.close()

    def check(self) -> bool:
        for pid in self.backends:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                self.report.crashes += 1
                self._finding(f"a server behind the proxy (pid {pid}) died")
                return False
        return super().check()
