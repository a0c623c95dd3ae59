"""One client as CLIENT LIST and CLIENT INFO show it, in Redis 7.0's words and field order.

Every field comes from what the server knows about the connection; fields that describe
Redis's own buffers (``qbuf-free``, ``rbs``, ``rbp``) are 0, and ``fd`` is the socket's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

# CLIENT LIST / KILL TYPE names (``slave`` is the old name of ``replica``).
CLIENT_TYPES = {
    b"normal": "normal",
    b"master": "master",
    b"replica": "replica",
    b"slave": "replica",
    b"pubsub": "pubsub",
}


def flags(c: Client) -> str:
    """The ``flags=`` letters, in Redis's order; ``N`` when none applies."""
    out = []
    if c.monitor:
        out.append("O")
    elif c.replica_link is not None:
        out.append("S")
    if c.channels or c.patterns:
        out.append("P")
    if c.multi is not None:
        out.append("x")
    if c.blocked is not None or c.held:
        out.append("b")
    t = c.tracking
    if t is not None:
        out.append("t")
        if t.broken_redirect:
            out.append("R")
        if t.bcast:
            out.append("B")
    if c.watch_broken:
        out.append("d")
    if c.close_after_reply:
        out.append("c")
    if c.no_evict:
        out.append("e")
    return "".join(out) or "N"


def multi_bytes(c: Client) -> int:
    """Bytes of the arguments of the commands queued since MULTI (``multi-mem``)."""
    if not c.multi:
        return 0
    return sum(len(a) for args in c.multi for a in args)


def describe(c: Client, now: float | None = None) -> str:
    """The client's CLIENT LIST line (without the newline)."""
    now = time.monotonic() if now is None else now
    qbuf = c.query_bytes()
    pending = sum(map(len, c.out)) if c.out else 0  # replies not yet handed to the socket
    omem = c.output_bytes() + pending
    multi_mem = multi_bytes(c)
    t = c.tracking
    return (
        f"id={c.id} addr={c.addr} laddr={c.laddr} fd={c.fd} "
        f"name={c.name.decode('utf-8', 'replace')} age={int(now - c.created)} "
        f"idle={int(now - c.last_interaction)} flags={flags(c)} db={c.db.index} "
        f"sub={len(c.channels)} psub={len(c.patterns)} ssub=0 "
        f"multi={-1 if c.multi is None else len(c.multi)} qbuf={qbuf} qbuf-free=0 "
        f"argv-mem=0 multi-mem={multi_mem} rbs=0 rbp=0 obl={pending} oll={len(c.out)} "
        f"omem={omem} tot-mem={qbuf + omem + multi_mem} events=r cmd={c.last_command} "
        f"user={c.user.name.decode('utf-8', 'replace')} redir={-1 if t is None else t.redirect} "
        f"resp={3 if c.resp3 else 2}"
    )
