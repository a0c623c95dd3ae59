"""Lua scripting (EVAL, EVALSHA, their _RO forms, SCRIPT): see docs/scripting.md.

``runtime.py`` the sandboxed Lua state (``prelude.lua``), ``convert.py`` Redis's conversion
rules, ``libs.py`` bit and cjson, ``shebang.py`` script flags, ``scripts.py`` the cache and
running a script, ``busy.py`` other clients while a script runs long."""

from .scripts import Scripts

__all__ = ["Scripts"]
