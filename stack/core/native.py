"""Loading the optional native parts: the C extensions (the server's fast lane, the proxy's
router) and uvloop, the event loop the server and the proxy run on.

``pip install`` compiles them where a C compiler is found. Each has an environment switch:
set to ``0`` it turns the extension off, and its Python path (the reference) runs alone; the
tests run both.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Coroutine
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")


def optional_extension(module: str, switch: str) -> ModuleType | None:
    """The extension ``module``, or None when it is not built or ``switch`` is 0."""
    if os.environ.get(switch, "1") == "0":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop (a dependency), or on stock asyncio where it is missing."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - stock asyncio runs everything, only slower
        return asyncio.run(main)
    return uvloop.run(main)
