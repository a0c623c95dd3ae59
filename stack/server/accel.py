"""The server's optional C extension (``_fastlane.c``), or None.

``pip install`` compiles it where a C compiler is found; without it, or with
``LEDIS_FASTLANE=0`` in the environment, everything runs on the Python path (the tests run both).
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("LEDIS_FASTLANE", "1") == "0":
        return None
    try:
        from . import _fastlane
    except ImportError:
        return None
    return _fastlane


ext = _load()
