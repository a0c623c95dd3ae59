"""A ledis-server running in the test's own process (its event loop in a thread), on a real
port, for tests that must reach inside it: install a hook, hold its writer thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from stack.server.config import Config
from stack.server.server import Server


class InProcess:
    """A Server on its own event loop in a thread (so the test can reach its gate)."""

    def __init__(self, data: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: Server | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.config = Config({"port": 0, "dir": str(data), "bind": "127.0.0.1"})
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = Server(self.config)
            self.loop.run_until_complete(self.server.start())
        except BaseException as e:  # reported to the test
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_until_complete(self.server._stopped.wait())

    def start(self) -> Server:
        self.thread.start()
        assert self.ready.wait(60), "the server did not start"
        if self.error is not None:
            raise self.error
        assert self.server is not None
        return self.server

    def call(self, fn: Callable[[], object]) -> None:
        """Run fn() on the server's loop and wait for it."""
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(30)

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.request_shutdown, "test end")
        self.thread.join(60)
        self.loop.close()
