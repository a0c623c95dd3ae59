"""The proxy's optional C extension (``_router.c``), or None: without a C compiler, or with
``LEDIS_PROXY_C=0`` in the environment, the proxy parses, routes and cuts replies on the Python
path alone (the reference: the C code only takes the common case and stops at anything else;
the routing tests run both)."""

from __future__ import annotations

from stack.core.native import optional_extension

router = optional_extension("stack.proxy._router", "LEDIS_PROXY_C")
