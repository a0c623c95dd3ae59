"""The server's TCP listening sockets: bound at start, and bound anew by CONFIG SET port.

Sockets are bound and listening before anything is served from them, so a failed bind is
known at once (CONFIG SET port then fails and the old sockets stay), and connections made to
new ones before the event loop serves them wait in their backlog. Moving closes the old
listening sockets only: connections accepted from them stay open.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

BACKLOG = 511  # Redis's tcp-backlog default


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to at ``port`` (0: any free
    port), as asyncio's create_server binds them; OSError if one cannot be bound, and then
    none is left open."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, addr in dict.fromkeys(infos):
            s = socket.socket(family, kind, proto)
            bound.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(addr)
            s.listen(BACKLOG)
            s.setblocking(False)
    except OSError:
        for s in bound:
            s.close()
        raise
    return bound


class Listener:
    """The listening sockets of one server and the asyncio servers that accept from them."""

    def __init__(self, protocol: Callable[[], asyncio.Protocol]) -> None:
        self._protocol = protocol
        self.sockets: list[socket.socket] = []  # listening now (served or about to be)
        self._servers: list[asyncio.AbstractServer] = []
        self._unserved: list[socket.socket] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1]) if self.sockets else 0

    async def start(self, host: str, port: int) -> None:
        self.sockets = self._unserved = bind(host, port)
        await self._serve()

    def move(self, host: str, port: int) -> None:
        """Listen on ``port`` instead (OSError: it cannot be bound; nothing changed). The new
        sockets are served from the next turn of the event loop."""
        new = bind(host, port)
        for server in self._servers:
            server.close()
        for s in self._unserved:  # a move that was not served yet
            s.close()
        self._servers = []
        self.sockets = self._unserved = new
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while self._unserved and not self._closed:
            socks = self._unserved
            self._unserved = []
            for i, s in enumerate(socks):
                server = await loop.create_server(self._protocol, sock=s, backlog=BACKLOG)
                if self.sockets is socks and not self._closed:
                    self._servers.append(server)
                    continue
                server.close()  # moved again (or closed) while this one started
                for rest in socks[i + 1 :]:
                    rest.close()
                break

    def close(self) -> None:
        self._closed = True
        for server in self._servers:
            server.close()
        for s in self._unserved:
            s.close()
        self._servers, self._unserved = [], []
