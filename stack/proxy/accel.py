"""The proxy's optional C extension (``_router.c``), or None.

``pip install`` compiles it where a C compiler is found; without it, or with
``LEDIS_PROXY_C=0`` in the environment, the proxy parses, routes and cuts replies on the Python
path alone (the reference: the C code only takes the common case and stops at anything else;
the routing tests run both).
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("LEDIS_PROXY_C", "1") == "0":
        return None
    try:
        from . import _router
    except ImportError:
        return None
    return _router


router = _load()
