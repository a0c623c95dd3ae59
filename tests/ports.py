"""Blocks of loopback ports for tests that start a whole cluster from one port base.

A base is drawn below the kernel's ephemeral range (net.ipv4.ip_local_port_range): ports
handed out for ``bind(0)`` and outgoing connections come from that range, so a block above its
low end could be taken by another test's listener or client between the check and the start
(a deploy in CI lost a port that way)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_block(count: int) -> int:
    """A port base with ``count`` ports after it free on 127.0.0.1 now, all below the
    ephemeral range."""
    top = ephemeral_low() - count
    if top <= LOWEST:
        raise RuntimeError(f"no room for {count} ports below the ephemeral range")
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(LOWEST, top)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} free ports in a row below {top + count}")
