"""The server's optional C extension (``_fastlane.c``), or None: without a C compiler, or with
``LEDIS_FASTLANE=0`` in the environment, everything runs on the Python path (the tests run
both)."""

from __future__ import annotations

from stack.core.native import optional_extension

ext = optional_extension("stack.server._fastlane", "LEDIS_FASTLANE")
