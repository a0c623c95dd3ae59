"""Loading the optional C extensions (the server's fast lane, the proxy's router).

``pip install`` compiles them where a C compiler is found. Each has an environment switch:
set to ``0`` it turns the extension off, and its Python path (the reference) runs alone; the
tests run both.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def optional_extension(module: str, switch: str) -> ModuleType | None:
    """The extension ``module``, or None when it is not built or ``switch`` is 0."""
    if os.environ.get(switch, "1") == "0":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
